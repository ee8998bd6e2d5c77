"""BLAS threads for the recurrent layers' time loops and the big matmuls, chosen by measurement.

A recurrent step's GEMM is small ((128 x 145) @ (145 x 512) for the book's LSTM) and is followed by
elementwise work on one thread, so whether BLAS's other threads speed the loop up depends on the
machine and on the moment: on this project's 2-core VM the same LSTM loop ran 1.4x faster on two
threads than on one at one time, and 1.2x slower at another, when waking the second thread between
steps cost more than it saved. So each fused layer runs its time loop under `threads_for(key)`: the
first calls of each kind of loop (op and shapes) try one thread and BLAS's own count in turn, later
calls take the one with the lower median time per step over its last SAMPLES calls, and every
PROBE_EVERY-th call tries the other again, so a change of regime is noticed. The same choice is made
for the layers' weight-gradient GEMMs and for every 2-D product of the matmul op (forward and
backward) of at least GEMM_MIN multiply-adds: on a machine where another program keeps one core busy,
a GEMM split over two threads waits for that core (the book's seq2seq step: 15.6 ms with BLAS on two
threads everywhere, 8.0-9.6 ms with the choice, 5.2 ms on one thread), while on a quiet machine the
choice keeps two threads where they pay.

BLAS's own count is the ceiling: with OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1 or a threadpoolctl
limit of 1 there is nothing to choose and nothing is timed. TINYGRAD_S2S_BLAS_THREADS=fixed turns the
choice off (BLAS keeps its count everywhere); the results are the same either way, to float32
round-off (tested on every zoo model). The thread counts are set through threadpoolctl; without it,
or without a BLAS it can drive, nothing changes.
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext

import numpy as np

ENV_VAR = "TINYGRAD_S2S_BLAS_THREADS"
SAMPLES = 5          # the recent calls whose median decides
GEMM_MIN = 1 << 21   # multiply-adds: a smaller matmul takes ~10 us or less, and choosing would cost a share
PROBE_EVERY = 50     # then every 50th call measures the other count again

_controllers = None  # threadpoolctl's controllers of the loaded BLAS libraries, found on first use
_lock = threading.Lock()   # the thread count is process-wide: one chooser at a time changes it
_kinds: dict = {}
clock = time.perf_counter


def enabled() -> bool:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value not in ("", "auto", "fixed"):
        raise ValueError(f"environment variable {ENV_VAR}={value!r}: use 'auto' (the default) or 'fixed'")
    return value != "fixed"


def controllers() -> list:
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
            _controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:   # no threadpoolctl, or nothing it can drive: leave BLAS as it is
            _controllers = []
    return _controllers


class Choice:
    """The running record of one kind of loop: per thread count, the seconds per step of recent calls."""

    def __init__(self, counts):
        self.times = {n: deque(maxlen=SAMPLES) for n in counts}
        self.calls = 0

    def pick(self) -> int:
        self.calls += 1
        for n, seen in self.times.items():
            if len(seen) < 2:            # each count twice before any choice: a first call pays warm-ups
                return n
        best = self.best()
        if self.calls % PROBE_EVERY == 0:
            return next(n for n in self.times if n != best)
        return best

    def best(self) -> int:
        return min(self.times, key=lambda n: statistics.median(self.times[n]))


@contextmanager
def threads_for(key, steps: int, xp):
    """Run the block (a loop of `steps` steps of the kind `key`, on arrays of the module `xp`) on the
    BLAS thread count chosen for it; on a GPU (xp is not NumPy) nothing is chosen."""
    libs = controllers() if xp is np and enabled() else []
    if not libs or not _lock.acquire(blocking=False):   # another thread is choosing: leave it be
        yield
        return
    try:
        own = [lib.get_num_threads() for lib in libs]
        ceiling = max(own)
        if ceiling <= 1:
            yield
            return
        choice = _kinds.get((key, ceiling))
        if choice is None:
            choice = _kinds[(key, ceiling)] = Choice((1, ceiling))
        n = choice.pick()
        if n != ceiling:
            for lib in libs:
                lib.set_num_threads(n)
        start = clock()
        try:
            yield
            choice.times[n].append((clock() - start) / max(steps, 1))
        finally:
            if n != ceiling:
                for lib, count in zip(libs, own):
                    lib.set_num_threads(count)
    finally:
        _lock.release()


def for_gemm(m: int, n: int, k: int, xp):
    """`threads_for` one kind of 2-D product (m x k) @ (k x n) (a matmul op's forward or backward), for
    products of at least GEMM_MIN multiply-adds; smaller ones run as BLAS decides."""
    if m * n * k < GEMM_MIN:
        return nullcontext()
    return threads_for(("gemm", m, n, k), 1, xp)


def chosen() -> dict:
    """What has been measured so far: {(key, ceiling): {'best': n, 'seconds per step': {n: median}}}."""
    return {k: {"best": c.best() if all(len(s) for s in c.times.values()) else None,
                "seconds per step": {n: statistics.median(s) for n, s in c.times.items() if s}}
            for k, c in _kinds.items()}
