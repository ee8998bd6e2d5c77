"""Each framework timed alone, in its own process, at each thread setting.

A benchmark's parent process times nothing. For every process pair and thread setting it starts one
child per framework (`python -m benchmarks.NAME ... --child ours|torch --setting S`), the two in
alternating order from pair to pair, and reads back one JSON line of the child's medians. Alone, a
framework gets the cores as a user's program does; two frameworks in one process would have their
thread pools spinning on the same cores, each slowing the other.

A child's environment carries its thread setting: for a count, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS
and MKL_NUM_THREADS all set to it (OpenBLAS and OpenMP read them once, at load); for 'default', none
of them set (the user's own settings are removed too), so each library picks its own default.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import THREAD_ENV
from .common import (DEFAULT_SETTING, Bench, bench_gemm_peak, blas_threads, fmt_ratio, load_average,
                     print_machine, setup)

REPO_ROOT = Path(__file__).resolve().parent.parent
MARK = "BENCH-RESULT "
CHILD_TIMEOUT_S = 1800


def child_env(setting: str) -> dict:
    """The environment of a child process for one thread setting."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    if setting != DEFAULT_SETTING:
        env.update({var: setting for var in THREAD_ENV})
    return env


def run_child(module: str, argv: list[str], framework: str, setting: str) -> dict:
    """Run one child of `module` and return its result; a failed child stops the benchmark with its
    stderr, naming which child it was."""
    cmd = [sys.executable, "-m", module, *argv, "--child", framework, "--setting", setting]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env(setting), capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{module}: the {framework} process at threads={setting} failed "
                         f"(exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


def threads_in_child(bench: Bench) -> dict:
    """The thread counts the libraries of this child process really use."""
    blas, n = blas_threads()
    info = {"blas": blas, "blas_threads": n, "env": {var: os.environ.get(var) for var in THREAD_ENV}}
    if bench.torch is not None:
        info["torch_threads"] = bench.torch.get_num_threads()
    return info


@dataclass(frozen=True)
class Summary:
    """One case at one thread setting, over the process pairs: medians and the ratio's spread."""
    ours: float
    torch: float | None
    ratio: float | None    # median over pairs of ours/torch within each pair
    lo: float | None
    hi: float | None

    def spread(self) -> str:
        """'0.88-0.93x' (min-max of the pairs' ratios), or n/a."""
        if self.lo is None:
            return "n/a"
        return f"{self.lo:.2f}-{self.hi:.2f}x"

    def ratio_text(self) -> str:
        return fmt_ratio(self.ratio, 1.0) if self.ratio is not None else "n/a"


def summarize(ours: list[float], theirs: list[float] | None) -> Summary:
    """Median of each framework's per-process medians; ratio = median of the per-pair ratios."""
    if not theirs:
        return Summary(statistics.median(ours), None, None, None, None)
    ratios = [o / t for o, t in zip(ours, theirs)]
    return Summary(statistics.median(ours), statistics.median(theirs), statistics.median(ratios),
                   min(ratios), max(ratios))


class Results:
    """Every child's result: results.by[setting][framework] is the list over pairs."""

    def __init__(self, by: dict):
        self.by = by

    def children(self, setting: str, framework: str) -> list[dict]:
        return self.by[setting].get(framework, [])

    def values(self, setting: str, framework: str, case: str, key: str = "seconds") -> list:
        return [child["cases"][case][key] for child in self.children(setting, framework)]

    def summary(self, setting: str, case: str, key: str = "seconds") -> Summary:
        theirs = self.values(setting, "torch", case, key) if self.children(setting, "torch") else None
        return summarize(self.values(setting, "ours", case, key), theirs)

    def pair_values(self, setting: str, case: str, key: str = "seconds") -> list[tuple]:
        """[(ours, torch)] per pair, torch None when it did not run."""
        ours = self.values(setting, "ours", case, key)
        theirs = self.values(setting, "torch", case, key) if self.children(setting, "torch") else [None] * len(ours)
        return list(zip(ours, theirs))

    def peak(self, setting: str) -> float | None:
        """Median NumPy GEMM peak of the 'ours' processes at this setting (GFLOP/s)."""
        peaks = [c["peak_gflops"] for c in self.children(setting, "ours") if c.get("peak_gflops")]
        return statistics.median(peaks) if peaks else None

    def threads_text(self, setting: str) -> str:
        """What the libraries used at this setting, from the children's own reports."""
        label = "default (nothing set)" if setting == DEFAULT_SETTING else setting
        ours = self.children(setting, "ours")[0]["threads"]
        parts = [f"NumPy's BLAS {ours['blas_threads'] if ours['blas_threads'] is not None else '?'}"]
        torch = self.children(setting, "torch")
        if torch:
            parts.append(f"PyTorch {torch[0]['threads']['torch_threads']}")
        return f"threads: {label} -> " + ", ".join(parts) + " thread(s)"


def run_pairs(bench: Bench, module: str, argv: list[str]) -> Results:
    """All children of a benchmark run: pairs x settings x frameworks, alternating the order."""
    by = {s: {} for s in bench.settings}
    for pair in range(bench.pairs):
        for setting in bench.settings:
            order = bench.frameworks if pair % 2 == 0 else bench.frameworks[::-1]
            for framework in order:
                by[setting].setdefault(framework, []).append(run_child(module, argv, framework, setting))
    return Results(by)


def dispatch(module: str, args, argv, measure, report, gemm_peak: bool = False):
    """The one flow of every framework-comparing benchmark.

    In a child: `measure(bench)` -> {case: {"seconds": ..., ...}} for this framework alone, printed as
    one JSON line (with the thread counts used, and NumPy's GEMM peak in 'ours' children when
    `gemm_peak`). In the parent: the machine header, all children, then `report(bench, results)`,
    and the load average again at the end.
    """
    bench = setup(args)
    if args.child:
        result = {"framework": bench.framework, "setting": bench.setting, "pid": os.getpid(),
                  "threads": threads_in_child(bench)}
        if gemm_peak and bench.framework == "ours":
            result["peak_gflops"] = bench_gemm_peak(bench)
        result["cases"] = measure(bench)
        print(MARK + json.dumps(result))
        return result
    print_machine(bench)
    argv = list(sys.argv[1:] if argv is None else argv)
    results = run_pairs(bench, module, argv)
    out = report(bench, results)
    if bench.torch_note:
        print(bench.torch_note)
    print(f"load average (1, 5, 15 min) at end: {load_average()}")
    return out
