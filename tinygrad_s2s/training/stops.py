"""What stops training: Ctrl-C, SIGTERM and SIGHUP (at the next step boundary, after saving), and a
NaN/Inf loss or gradient (before it reaches the weights); the exceptions that say where the run
stopped and how to continue it."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP) during `fit`; the position reached was saved first (a KeyboardInterrupt).

    Args:
        checkpoint: where the position was saved (None without a run directory).
        epoch: the epoch it stopped in.
        batch: the batch it stopped before.
        step: the number of updates done.
        signum: the signal that stopped it (the command exits 128 + it).
    """

    def __init__(self, checkpoint, epoch: int, batch: int, step: int, signum: int = signal.SIGINT):
        self.checkpoint, self.epoch, self.batch, self.step = checkpoint, epoch, batch, step
        self.signum = int(signum)
        where = f"epoch {epoch + 1}, after batch {batch}, step {step}"
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no run directory, nothing saved"
        super().__init__(f"interrupted at {where}; {saved}")


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN/Inf; the weights were not updated with it (a RuntimeError).

    Args:
        what: `"loss"` or `"gradient norm"`.
        value: the value (NaN or Inf).
        step: the update it happened at.
        epoch: the epoch.
        batch: the batch.
        checkpoint: the last good checkpoint (None without a run directory).
    """

    def __init__(self, what: str, value: float, step: int, epoch: int, batch: int, checkpoint):
        self.what, self.value = what, value
        self.step, self.epoch, self.batch, self.checkpoint = step, epoch, batch, checkpoint
        kept = (f"the last good checkpoint is {checkpoint}" if checkpoint
                else "no run directory, nothing saved")
        super().__init__(f"training stopped: the {what} is {value} at step {step} (epoch {epoch + 1}, "
                         f"batch {batch + 1}); {kept}; start a new run with a smaller --lr or --max-grad"
                         + (f" (in another --out, or in {checkpoint.parent} with --overwrite)" if checkpoint else ""))


# ---------------------------------------------------------------- Ctrl-C, SIGTERM, SIGHUP
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
"""Signals that stop training as Ctrl-C does (save, then exit 128 + the signal): docker stop, Slurm
and timeout send SIGTERM, a closed terminal SIGHUP; their default action would lose the work since
the last checkpoint."""


class _StopFlag:
    """A stop signal while training: the first asks to stop at the next step boundary, a second
    stops at once (except inside a weight update, which is never cut in half). With `at_once` False
    (ranks of one job, which must stop at the same step) a second signal changes nothing."""

    def __init__(self, at_once: bool = True, announce: bool = True):
        self.at_once, self.announce = at_once, announce
        self.requested = False
        self.critical = False
        self.signum = None       # the first stop signal received

    def handler(self, signum, frame):
        if self.requested and not self.critical and self.at_once:
            raise KeyboardInterrupt
        if not self.requested:
            self.signum = signum
        if not self.requested and self.announce:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            again = " (press Ctrl-C again to stop now)" if self.at_once else ""
            print(f"\n{name}: stopping after this step and saving a checkpoint{again}", file=sys.stderr, flush=True)
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self         # signals only reach the main thread; KeyboardInterrupt is still caught
            return
        old = {s: signal.signal(s, self.handler) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)
