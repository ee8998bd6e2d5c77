"""Benchmarks of tinygrad-s2s against PyTorch CPU (not tests): `python -m benchmarks.<name>`.

Importing this package pins the BLAS/OpenMP thread count *before* NumPy or PyTorch load, because
OpenBLAS and OpenMP read their thread count once, when the library is loaded; setting it later
(without threadpoolctl) has no effect. The count comes from `--threads N` on the command line, else
from OMP_NUM_THREADS (or OPENBLAS_/MKL_NUM_THREADS) if set, else from the cores this process may
run on; all three variables are then set to that one number.
"""
from __future__ import annotations

import os
import sys

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads_flag(argv=None) -> int | None:
    """The thread count asked for with `--threads N` / `--threads=N` on the command line, or None."""
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        value = None
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--threads="):
            value = arg.split("=", 1)[1]
        if value is not None:
            try:
                return max(1, int(value))
            except ValueError:
                raise SystemExit(f"--threads expects an integer, got {value!r}") from None
    return None


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), which is what the thread pools should use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def thread_count(argv=None) -> int:
    """The one thread count both frameworks use: `--threads`, else the first of THREAD_ENV the user
    set, else the usable cores."""
    flag = threads_flag(argv)
    if flag is not None:
        return flag
    for var in THREAD_ENV:
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    return usable_cores()


_USER_SET_THREADS = any(var in os.environ for var in THREAD_ENV)


def user_set_threads() -> bool:
    """Whether the user set any of THREAD_ENV (before importing this package pinned all three)."""
    return _USER_SET_THREADS


def _pin_threads_before_import() -> None:
    n = str(thread_count())
    for var in THREAD_ENV:     # all of them, so OpenBLAS (NumPy) and OpenMP (PyTorch) agree
        os.environ[var] = n


if "numpy" not in sys.modules and "torch" not in sys.modules:
    _pin_threads_before_import()
