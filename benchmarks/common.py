"""Shared benchmark plumbing: command-line flags, the machine header, timing of one framework's
candidates, NumPy's GEMM peak and plain-text tables.

Two frameworks are never timed in one process: benchmarks/processes.py starts one child process per
framework and thread setting, and each child times only its own framework's callables here.
"""
from __future__ import annotations

import re

import argparse
import importlib.util
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from dataclasses import dataclass, field

from . import THREAD_ENV, usable_cores

import numpy as np

from tinygrad_s2s.backend import compiled
from tinygrad_s2s.cli.argtypes import positive_float   # the library's own (every child process imports it anyway)

TORCH_SKIPPED = "PyTorch: skipped (not installed)"
TORCH_DISABLED = "PyTorch: skipped (--no-torch)"
DEFAULT_SETTING = "default"      # no thread variable set: what a user's program gets
DEFAULT_SETTINGS = "1,default"


# ---------------------------------------------------------------- command line
def thread_settings(text: str) -> list[str]:
    """`--threads` value -> settings, e.g. '1,default' -> ['1', 'default'] (each a count >= 1 or
    'default'); an argparse type, so a bad value exits 2 naming the flag."""
    settings = []
    for part in (p.strip() for p in str(text).split(",")):
        if part != DEFAULT_SETTING and not (part.isdigit() and int(part) >= 1):
            raise argparse.ArgumentTypeError(
                f"expected thread counts >= 1 or 'default', comma-separated (e.g. 1,default or 4), got {part!r}")
        setting = part if part == DEFAULT_SETTING else str(int(part))
        if setting not in settings:
            settings.append(setting)
    return settings


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def parser(description: str, repeats: int, pairs: int = 3, sample_s: float = 0.05) -> argparse.ArgumentParser:
    """The flags every benchmark takes; add your own before `parse_args`. `sample_s`: this benchmark's
    default shortest timed sample (see Bench.min_sample_s)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and repeat counts (a smoke run of a few seconds, numbers meaningless)")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help=f"timed samples per candidate in each process (median reported; default {repeats})")
    p.add_argument("--threads", type=thread_settings, default=thread_settings(DEFAULT_SETTINGS),
                   help="thread settings to measure, comma-separated counts or 'default' (nothing set: all "
                        f"usable cores, as a user's program gets); default {DEFAULT_SETTINGS}")
    p.add_argument("--pairs", type=positive_int, default=None,
                   help=f"process pairs (one process per framework) per thread setting; the tables give "
                        f"the median and the spread over pairs (default {pairs}, 1 with --quick)")
    p.add_argument("--sample-seconds", type=positive_float, default=None,
                   help=f"shortest timed sample: short calls are looped to fill it (default {sample_s}; "
                        "0.002 with --quick)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns even if installed")
    p.add_argument("--child", choices=["ours", "torch"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--setting", default=None, help=argparse.SUPPRESS)
    p.set_defaults(default_repeats=repeats, default_pairs=pairs, default_sample_s=sample_s)
    return p


@dataclass
class Bench:
    """What one process of a benchmark run knows. In the parent, `framework` is None and `settings`
    lists the thread settings to run; in a child, `framework` is 'ours' or 'torch', `setting` its
    thread setting, and `torch` the imported module in the torch child (None elsewhere)."""
    args: argparse.Namespace
    quick: bool
    repeats: int
    pairs: int
    settings: list[str]
    frameworks: list[str]
    torch_note: str = ""
    framework: str | None = None
    setting: str | None = None
    torch: object = None
    extra: dict = field(default_factory=dict)

    @property
    def min_sample_s(self) -> float:
        """Shortest time one timed sample may take; short calls are looped to reach it. Whole-model
        benchmarks default to half a second: on a VM one of the cores can run ~30% slower than the
        other for a few seconds at a time (benchmarks/README.md, "Timing on a shared VM"), and a process
        timed for only a quarter of a second measures which core it got more than its own speed."""
        if self.args.sample_seconds:
            return self.args.sample_seconds
        return 0.002 if self.quick else self.args.default_sample_s


def torch_available() -> bool:
    """Whether `import torch` would find it, without importing it (the parent times nothing and
    needs no 300 MB library)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):   # ValueError: a module in sys.modules without a spec
        return False


def setup(args: argparse.Namespace) -> Bench:
    """The Bench of this process: a child's (imports torch in the torch child) or the parent's."""
    repeats = args.repeats or (3 if args.quick else args.default_repeats)
    pairs = args.pairs or (1 if args.quick else args.default_pairs)
    if args.child:
        bench = Bench(args, args.quick, repeats, pairs, [args.setting], [args.child],
                      framework=args.child, setting=args.setting)
        if args.child == "torch":
            import torch
            if args.setting != DEFAULT_SETTING:
                torch.set_num_threads(int(args.setting))
            bench.torch = torch
        return bench
    if args.no_torch:
        frameworks, note = ["ours"], TORCH_DISABLED
    elif torch_available():
        frameworks, note = ["ours", "torch"], ""
    else:
        frameworks, note = ["ours"], TORCH_SKIPPED
    return Bench(args, args.quick, repeats, pairs, args.threads, frameworks, note)


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


def blas_threads() -> tuple[str, int | None]:
    """(BLAS library description, its thread count in this process) — the count from threadpoolctl
    when installed, else None."""
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            return f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')})", p.get("num_threads")
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (no threadpoolctl: thread count unknown)", None
    except Exception:   # the build-info layout is not a stable API
        return "unknown BLAS (no threadpoolctl)", None


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as /proc/loadavg shows them."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_lines(bench: Bench) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        torch_line = f"PyTorch {version('torch')}" if "torch" in bench.frameworks else bench.torch_note
    except PackageNotFoundError:
        torch_line = "PyTorch (version unknown)"
    lines = [
        f"CPU: {cpu_model()} | {os.cpu_count()} logical cores, {usable_cores()} usable | "
        f"{platform.system()} {platform.machine()}",
        f"Python {platform.python_version()} | NumPy {np.__version__} | BLAS: {blas_threads()[0]}{kernel_pin()}",
        f"fused recurrent layers: {compiled.active()}",
        f"commit {commit()} | {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | command: {command_line()}",
        torch_line,
        f"thread settings: {', '.join(bench.settings)} ('default': none of {', '.join(THREAD_ENV)} set, "
        "as a user's program runs)",
        f"each framework alone in its own process; {bench.pairs} process pair(s) per setting, "
        f"{bench.repeats} timed samples of >= {bench.min_sample_s:g} s per process (median)"
        + (" | --quick: smoke run, numbers not meaningful" if bench.quick else ""),
        f"load average (1, 5, 15 min) at start: {load_average()}",
    ]
    return lines


def kernel_pin() -> str:
    """How the environment chose OpenBLAS's kernels: a table run under a pin says so."""
    pin = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.get(k)}
    return (" | kernels pinned by " + ", ".join(f"{k}={v}" for k, v in pin.items())) if pin else \
        " | kernels: OpenBLAS's own choice (no pin)"


def commit(outputs=()) -> str:
    """The repository's commit, marked when the work tree differs from it; 'unknown' outside git.
    `outputs`: the files and folders the calling benchmark writes its own results into, whose changes
    are not a difference of the code that measured them; the results pages of the docs (`docs/results/`,
    which `--write` fills) never are."""
    root = Path(__file__).resolve().parents[1]
    exclude = [f":(exclude){Path(p).resolve().relative_to(root)}" for p in (*outputs, root / "docs" / "results")]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", *exclude], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes" if dirty else "")


def command_line() -> str:
    """The command that printed this table, as a person would type it again."""
    module = sys.modules["__main__"].__spec__
    head = f"python -m {module.name}" if module else f"python {sys.argv[0]}"
    return " ".join([head, *sys.argv[1:]])


def print_machine(bench: Bench) -> None:
    for line in machine_lines(bench):
        print(line)
    print()


# ---------------------------------------------------------------- timing (inside one process)
def _calibrate(fn, min_sample_s: float) -> int:
    """How many calls make one sample last at least min_sample_s (after one warm-up call)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    return max(1, min(100_000, math.ceil(min_sample_s / max(one, 1e-7))))


def time_alternating(fns: dict, repeats: int, min_sample_s: float = 0.05) -> dict:
    """Median seconds per call of each callable, sampled in alternating (ABBA) order.

    For candidates of ONE framework in one process (e.g. our fused and unfused LSTM): every repeat
    times each once (looping short calls so a sample lasts >= min_sample_s), the order reversing
    every other repeat so a drift in machine speed hits all alike. Never use it to compare two
    frameworks: their thread pools would compete for the cores (benchmarks/processes.py).
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


def bench_gemm_peak(bench: Bench) -> float:
    """The GEMM peak at this process's thread setting (small and quick with --quick)."""
    return gemm_peak_gflops(256 if bench.quick else 2048, repeats=3 if bench.quick else 7)


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


def target_line(label: str, ratio, target: float, quick: bool = False) -> str:
    """'label: 1.23x (target <= 1.5x: met)' — the verdict of one ratio against one target (none for
    a --quick smoke run, whose sizes and samples mean nothing)."""
    if ratio is None:
        return f"{label}: n/a (target <= {target}x; no PyTorch to compare with)"
    verdict = "not judged: --quick" if quick else "met" if ratio <= target else "NOT met"
    return f"{label}: {ratio:.2f}x (target <= {target}x: {verdict})"


def flush() -> None:
    sys.stdout.flush()


def issue15_target(setting: str) -> float:
    """Issue 15's ours/PyTorch target for training and decoding: <= 0.9x at one thread, <= 1.0x at the
    default thread count (and at any other count asked for)."""
    return 0.9 if setting == "1" else 1.0


def setting_label(setting: str) -> str:
    return "default threads" if setting == DEFAULT_SETTING else f"{setting} thread" + ("" if setting == "1" else "s")


def fmt_pct(rate, peak) -> str:
    """rate as a percentage of peak, or n/a."""
    return "n/a" if rate is None or not peak else f"{100 * rate / peak:.0f}%"


def replace_section(page: str, section: str, heading: str, title: str = "# Export results") -> str:
    """`page` (a results page that several scripts write, one section each) with its `heading` section
    (up to the next "## ") replaced by `section`, else with it appended; an empty page gets `title`."""
    if not page.strip():
        return title + "\n\n" + section
    match = re.search(rf"(?ms)^{re.escape(heading)}\n.*?(?=^## |\Z)", page)
    if match is None:
        return page.rstrip("\n") + "\n\n" + section
    return page[:match.start()] + section + ("\n" if page[match.end():] else "") + page[match.end():]


def write_section(path, section: str, heading: str, title: str = "# Export results") -> None:
    """Write `section` (which starts with `heading`) into the results page at `path`, atomically,
    replacing that section where the page has it and keeping the rest of the page as it is."""
    from pathlib import Path

    from tinygrad_s2s.serialization import write_bytes
    path = Path(path)
    page = path.read_text(encoding="utf-8") if path.is_file() else ""
    write_bytes(path, replace_section(page, section, heading, title).encode("utf-8"))


def markdown_table(headers, rows) -> list[str]:
    """A Markdown table, one line per row."""
    return ["| " + " | ".join(str(c) for c in headers) + " |", "| " + " | ".join("---" for _ in headers) + " |",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]
