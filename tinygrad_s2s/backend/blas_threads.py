"""BLAS threads for the fused LSTM's time loops and the big matmuls, chosen by measurement (opt-in).

A recurrent step's GEMM is small ((128 x 145) @ (145 x 512) for the book's LSTM) and is followed by
elementwise work on one thread, so whether BLAS's other threads speed the loop up depends on the machine
and on the moment: on this project's 2-core AMD EPYC VM (OpenBLAS pinned to its Haswell kernels;
2026-11-30, commit 2692a29) the same LSTM loop ran 1.4x faster on two threads than on one at one time,
and 1.2x slower at another, when waking the second thread between steps cost more than it saved; and on
a machine where another program keeps one core busy, every GEMM split over two threads waits for that
core. So the fused LSTM's loops, its weight-gradient GEMM and every 2-D product of the matmul op of at
least GEMM_MIN multiply-adds run through `run(key, ...)`: each kind of work (op and shapes) is timed on
one thread and on BLAS's own count, later calls take the one with the lower median time per step over
its last SAMPLES timed calls, and every PROBE_EVERY-th call starts a probe of the other count,
PROBE_CALLS calls in a row, so a change of regime is noticed. The first call after a change of count is
not timed: it pays for the change (BLAS's idle threads have to be woken), which a run that stays on that
count does not. Timed, one-call probes made two threads look slower than one where they were faster:
seq2seq's forward loop took 167-186 us a step in them, 90-101 us in consecutive calls on two threads,
and 122-149 us on one (same VM, 2026-11-30, commit a24993a).

The choice never changes a number. Some GEMM shapes round differently on one thread than on several
(OpenBLAS takes another kernel path; an LSTM layer whose input is 256 wide is one), so the first call
of each kind runs on both counts, on the same inputs, and compares the results bit for bit: a kind
whose results differ stays on BLAS's own count, as if nothing chose (results that are all zeros, as
when no gradient came in, prove nothing: the next call compares again). So a run is as reproducible as
before, and a resumed run still continues bit for bit.

Calls from several Python threads take turns while one has changed the count; other NumPy products
running meanwhile in another thread (plain NumPy, or matmuls below GEMM_MIN) see the changed count:
a program that runs models in several threads at once and needs bit-for-bit repeatability should set
TINYGRAD_S2S_BLAS_THREADS=fixed.

BLAS's own count is the ceiling: with OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1 or a threadpoolctl
limit of 1 there is nothing to choose and nothing is timed.

Opt-in: TINYGRAD_S2S_BLAS_THREADS=auto turns the choice on; by default (fixed) every GEMM runs as BLAS
decides. Measured per process at the default thread count on a 2-core Xeon with AVX-512, OpenBLAS 0.3.31
(2026-12-07, commit d374a85; training steps of seq2seq, peeky and attention, 5 alternating pairs each,
`python -m benchmarks.train_step --no-torch --threads default`), auto / fixed was 0.998-1.022 with
OpenBLAS's own SkylakeX kernels and 1.008-1.028 pinned to Haswell's: it did not pay on either kernel
family, so it is not the default. The thread counts are set through threadpoolctl; without a BLAS it can
drive, nothing changes.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque

import numpy as np

from . import envvars

ENV_VAR = "TINYGRAD_S2S_BLAS_THREADS"
SAMPLES = 5          # the recent timed calls whose median decides
GEMM_MIN = 1 << 21   # multiply-adds: a smaller matmul takes ~10 us or less, and choosing would cost a share
PROBE_EVERY = 50     # then every 50th call starts a probe of the other count...
PROBE_CALLS = 3      # ...this many calls in a row (the first of them, after the change, is not timed)

_controllers = None  # threadpoolctl's controllers of the loaded BLAS libraries, found on first use
# The thread count is process-wide: while one call has set it, a call from another Python thread waits
# (running meanwhile on a count it did not choose could round differently); a nested call passes.
_lock = threading.RLock()
_kinds: dict = {}
clock = time.perf_counter


def enabled() -> bool:
    """Whether the choice runs: only with TINYGRAD_S2S_BLAS_THREADS=auto (opt-in, see the module's docs)."""
    return envvars.choice(ENV_VAR, ("auto", "fixed"), "fixed") == "auto"


def controllers() -> list:
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
            _controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:   # no BLAS threadpoolctl can drive: leave BLAS as it is
            _controllers = []
    return _controllers


class Choice:
    """The running record of one kind of work: per thread count, the seconds per step of recent timed
    calls; `pinned` when the counts gave different results (then only BLAS's own count runs)."""

    def __init__(self, counts, pinned=None, last=None):
        self.times = {n: deque(maxlen=SAMPLES) for n in counts}
        self.calls = 0
        self.pinned = pinned
        self.last = last         # the count the previous call ran on
        self.probing = 0         # calls left in the current probe

    def pick(self) -> int:
        self.calls += 1
        if self.pinned is not None:
            return self.pinned
        for n, seen in self.times.items():
            if len(seen) < 2:            # each count timed twice before any choice
                return n
        if self.probing:
            self.probing -= 1
            return self.last
        best = self.best()
        if self.calls % PROBE_EVERY == 0:
            self.probing = PROBE_CALLS - 1
            return next(n for n in self.times if n != best)
        return best

    def record(self, n: int, seconds_per_step: float) -> None:
        """A call ran on n threads: timed unless it was the first on n after another count."""
        if n == self.last:
            self.times[n].append(seconds_per_step)
        self.last = n

    def best(self) -> int:
        if self.pinned is not None:
            return self.pinned
        return min(self.times, key=lambda n: statistics.median(self.times[n]))


def run(key, steps: int, xp, fn):
    """fn() on the BLAS thread count chosen for the kind of work `key` (`steps` steps of it, on arrays
    of the module `xp`); returns what fn returns. fn must compute everything it writes from inputs it
    does not write, so that it can run twice: the first call of a kind runs it on both counts and
    compares what they return. On a GPU (xp is not NumPy) nothing is chosen."""
    libs = controllers() if xp is np and enabled() else []
    if not libs:
        return fn()
    with _lock:
        own = [lib.get_num_threads() for lib in libs]
        ceiling = max(own)
        if ceiling <= 1:
            return fn()
        choice = _kinds.get((key, ceiling))
        if choice is None:
            return _first_call(key, ceiling, libs, own, fn)
        n = choice.pick()
        _set(libs, n, own)
        try:
            start = clock()
            result = fn()
            if choice.pinned is None:
                choice.record(n, (clock() - start) / max(steps, 1))
            return result
        finally:
            _restore(libs, n, own)


def _first_call(key, ceiling, libs, own, fn):
    """Runs fn on one thread, then on BLAS's count, and compares; neither run is timed (both pay for
    the change of count, and for whatever a kind's first call warms up)."""
    _set(libs, 1, own)
    try:
        one = _copies(fn())                  # fn may return views of buffers that its next run rewrites
    finally:
        _restore(libs, 1, own)
    result = fn()
    same = _identical(one, result)
    if same and not _any_nonzero(result):   # all zeros (no gradient came in): it proves nothing, ask again
        return result
    _kinds[(key, ceiling)] = Choice((1, ceiling), pinned=None if same else ceiling, last=ceiling)
    return result


def _set(libs, n, own):
    if n != max(own):
        for lib in libs:
            lib.set_num_threads(n)


def _restore(libs, n, own):
    if n != max(own):
        for lib, count in zip(libs, own):
            lib.set_num_threads(count)


def _copies(result):
    if isinstance(result, tuple):
        return tuple(_copies(r) for r in result)
    return result.copy() if isinstance(result, np.ndarray) else result


def _identical(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a is b or a == b


def _any_nonzero(result) -> bool:
    if isinstance(result, tuple):
        return any(_any_nonzero(r) for r in result)
    return isinstance(result, np.ndarray) and bool(np.any(result))


def gemm(m: int, n: int, k: int, xp, fn, key=()):
    """`run` for one 2-D product (m x k) @ (k x n) (a matmul op's forward or backward) of at least
    GEMM_MIN multiply-adds; smaller ones run as BLAS decides. `key` tells layouts apart."""
    if m * n * k < GEMM_MIN:
        return fn()
    return run(("gemm", m, n, k, *key), 1, xp, fn)


def chosen() -> dict:
    """What has been measured so far: {(key, ceiling): {'best': n, 'identical': bool,
    'seconds per step': {n: median}}}."""
    return {k: {"best": c.best() if c.pinned is not None or all(len(s) for s in c.times.values()) else None,
                "identical": c.pinned is None,
                "seconds per step": {n: statistics.median(s) for n, s in c.times.items() if s}}
            for k, c in _kinds.items()}
