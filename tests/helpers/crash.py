"""Crash injection for the kill -9 tests, armed through the environment of a CLI subprocess:

- TG_KILL_WRITE=N : SIGKILL this process in the middle of its N-th atomic file write (the temporary
  file half written, the target not yet replaced);
- TG_KILL_STEP=N  : SIGKILL it at the start of the N-th training forward pass.

Importing this module arms what the environment asks for."""
import os
import signal

from tinygrad_s2s import serialization

import tiny_model


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


_writes = [0]
_kill_write = int(os.environ.get("TG_KILL_WRITE", "0"))
_kill_step = int(os.environ.get("TG_KILL_STEP", "0"))

if _kill_write:
    _atomic_write = serialization.atomic_write

    def atomic_write(path, write):
        _writes[0] += 1
        if _writes[0] != _kill_write:
            return _atomic_write(path, write)

        def half_then_die(f):
            f.write(b"PK\x03\x04 half a file")
            f.flush()
            _die()
        return _atomic_write(path, half_then_die)
    serialization.atomic_write = atomic_write

if _kill_step:
    _forward = tiny_model.TinySeq2seq.forward

    def forward(self, xs, ts):
        if self.training and self.calls + 1 == _kill_step:
            _die()
        return _forward(self, xs, ts)
    tiny_model.TinySeq2seq.forward = forward
