"""Benchmarks of tinygrad-s2s against PyTorch CPU (not tests): `python -m benchmarks.<name>`.

Every comparison runs each framework alone in its own process (benchmarks/processes.py), at one
thread and at the default thread count, because BLAS and OpenMP thread pools read their size once,
when the library loads, and because two frameworks' pools spinning in one process steal each
other's cores. The parent process sets the child's thread variables before the child starts.
"""
from __future__ import annotations

import os

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_USER_SET_THREADS = any(var in os.environ for var in THREAD_ENV)


def user_set_threads() -> bool:
    """Whether the user set any of THREAD_ENV for this process."""
    return _USER_SET_THREADS


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity): what 'the default thread count' can use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1
