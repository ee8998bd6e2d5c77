"""Shared benchmark plumbing: command-line flags, thread setup, the machine header, alternating
median timing, NumPy's GEMM peak and plain-text tables.

Every benchmark times this project and PyTorch side by side in one process, alternating between them
(ABBA order) so that a slow spell of the machine hits both, and reports medians of the repeats.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

from . import THREAD_ENV, thread_count, usable_cores

import numpy as np   # noqa: E402  (after the package pinned the thread count)

TORCH_SKIPPED = "PyTorch: skipped (not installed)"
TORCH_DISABLED = "PyTorch: skipped (--no-torch)"


# ---------------------------------------------------------------- command line
def parser(description: str, repeats: int) -> argparse.ArgumentParser:
    """The flags every benchmark takes; add your own before `parse_args`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and repeat counts (a smoke run of a few seconds, numbers meaningless)")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed samples per candidate (median reported; default {repeats})")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS and PyTorch alike (default: usable cores)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns even if installed")
    p.set_defaults(default_repeats=repeats)
    return p


@dataclass
class Bench:
    """What a benchmark run knows: flags, the thread count, and torch (None when absent/disabled)."""
    args: argparse.Namespace
    quick: bool
    repeats: int
    threads: int
    torch: object
    torch_note: str

    @property
    def min_sample_s(self) -> float:
        """Shortest time one timed sample may take; short calls are looped to reach it."""
        return 0.002 if self.quick else 0.05


def setup(args: argparse.Namespace) -> Bench:
    """Apply the thread count to both frameworks and find torch; print the machine header."""
    threads = args.threads if args.threads is not None else thread_count([])
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    repeats = args.repeats or (3 if args.quick else args.default_repeats)
    torch, note = (None, TORCH_DISABLED) if args.no_torch else load_torch()
    if torch is not None:
        torch.set_num_threads(threads)
    _limit_numpy_threads(threads)
    bench = Bench(args, args.quick, repeats, threads, torch, note)
    print_machine(bench)
    return bench


def load_torch():
    """(torch, '') when importable, else (None, the 'skipped' note)."""
    try:
        import torch
    except ImportError:
        return None, TORCH_SKIPPED
    return torch, ""


_limiters = []   # keep threadpoolctl's limiter alive for the whole run


def _limit_numpy_threads(n: int) -> None:
    # Without threadpoolctl the env vars set in benchmarks/__init__.py (before NumPy loaded) rule.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _limiters.append(threadpool_limits(limits=n))


# ---------------------------------------------------------------- machine header
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def blas_description() -> str:
    """BLAS library and its thread count: from threadpoolctl when installed, else NumPy's build info."""
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
                             f"{p.get('architecture')})" for p in pools)
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        env = os.environ.get("OPENBLAS_NUM_THREADS", "?")
        return f"{blas.get('name')} {blas.get('version')} (OPENBLAS_NUM_THREADS={env}; no threadpoolctl)"
    except Exception:   # the build-info layout is not a stable API
        return "unknown (no threadpoolctl)"


def machine_lines(bench: Bench) -> list[str]:
    torch = bench.torch
    lines = [
        f"CPU: {cpu_model()} | {os.cpu_count()} logical cores, {usable_cores()} usable | "
        f"{platform.system()} {platform.machine()}",
        f"Python {platform.python_version()} | NumPy {np.__version__} | BLAS: {blas_description()}",
        ("PyTorch " + torch.__version__ + f" ({torch.get_num_threads()} threads)") if torch is not None
        else bench.torch_note,
        f"threads: {bench.threads} (" + ", ".join(f"{v}={os.environ.get(v, '-')}" for v in THREAD_ENV) + ")",
    ]
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        busy = " (machine busy: numbers are noisy)" if load > 0.5 * bench.threads else ""
        lines.append(f"load average (1 min) at start: {load:.2f}{busy}")
    lines.append(f"repeats: {bench.repeats} (median of alternating samples)"
                 + (" | --quick: smoke run, numbers not meaningful" if bench.quick else ""))
    return lines


def print_machine(bench: Bench) -> None:
    for line in machine_lines(bench):
        print(line)
    print()


# ---------------------------------------------------------------- timing
def _calibrate(fn, min_sample_s: float) -> int:
    """How many calls make one sample last at least min_sample_s (after one warm-up call)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    return max(1, min(100_000, math.ceil(min_sample_s / max(one, 1e-7))))


def time_alternating(fns: dict, repeats: int, min_sample_s: float = 0.05) -> dict:
    """Median seconds per call of each callable, sampled in alternating (ABBA) order.

    Every repeat times each candidate once (looping short calls so a sample lasts >= min_sample_s);
    the order reverses every other repeat so a drift in machine speed hits all candidates alike.
    """
    numbers = {name: _calibrate(fn, min_sample_s) for name, fn in fns.items()}
    samples = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, n = fns[name], numbers[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """NumPy's float32 GEMM rate (GFLOP/s): the best of `repeats` n x n @ n x n products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)   # warm-up: thread pool start, page faults
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def print_gemm_peak(bench: Bench) -> float:
    n = 512 if bench.quick else 2048
    peak = gemm_peak_gflops(n, repeats=3 if bench.quick else 7)
    print(f"NumPy float32 GEMM peak ({n}x{n} @ {n}x{n}, best of runs): {peak:.1f} GFLOP/s\n")
    return peak


# ---------------------------------------------------------------- formatting
def fmt_time(seconds) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ours, theirs) -> str:
    """ours / theirs (lower is better), or n/a."""
    if ours is None or theirs is None or theirs <= 0:
        return "n/a"
    return f"{ours / theirs:.2f}x"


def gflops(flops: float, seconds) -> float | None:
    return None if seconds is None or seconds <= 0 else flops / seconds / 1e9


def fmt_num(x, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{suffix}"


def geomean(values) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def print_table(headers, rows, title: str | None = None) -> None:
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    if title:
        print(title)
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    print()


def target_line(label: str, ratio, target: float) -> str:
    """'label: 1.23x (target <= 1.5x: met)' — the verdict of one ratio against one target."""
    if ratio is None:
        return f"{label}: n/a (target <= {target}x; no PyTorch to compare with)"
    verdict = "met" if ratio <= target else "NOT met"
    return f"{label}: {ratio:.2f}x (target <= {target}x: {verdict})"


def flush() -> None:
    sys.stdout.flush()
