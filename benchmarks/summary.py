"""The README's speed table, from one run of every per-process benchmark that compares with PyTorch.

    python -m benchmarks.summary [--quick] [--threads 1,default] [--pairs N] [--kernels own,Haswell]
                                 [--repeats N] [--sample-seconds S]
    python -m benchmarks.summary --combine RUN1.txt RUN2.txt RUN3.txt

Runs train_step, evaluate, lstm_layer, op_overhead, memory and profile one after another (each prints
its full tables, as when run alone), under each OpenBLAS kernel family of `--kernels`, then prints one
Markdown table per family (README.md's "Speed" section): for each thread setting, ours / PyTorch (the
median over the process pairs, with the lowest and highest pair in brackets), the two times, and
whether issue 27's target is met; above each table the machine, the kernels the child processes
really ran, the commit, the date and the command. Copy those tables, not hand-picked figures, into
the README.

Process pairs: 7 for training and decoding (the medians issue 27 asks for), 3 for peak memory, each
benchmark's own default for the rest (1 for the profile); `--pairs` sets them all.

Kernel families (`--kernels`, default `own,auto`): `own` leaves OpenBLAS to choose for this CPU (no
OPENBLAS_CORETYPE in the children's environment); a name such as `Haswell` sets OPENBLAS_CORETYPE in
the children, and for `Haswell` and `Sandybridge` also pins PyTorch's MKL, oneDNN and ATen kernels to
the same instruction set (AVX2, AVX), so both frameworks run as on such a machine; `auto` picks one
this CPU supports other than its own (Haswell on an AVX-512 CPU, Sandybridge on an AVX2 one).
Training, decoding, the LSTM layer and the profile run under each family; op_overhead and memory
(tiny tensors, and allocation: not BLAS-bound) under the first only.

The run is bounded: it prints its estimated length before it starts (about 55 minutes with the
defaults on a 2-core machine: every child process is a fixed number of timed samples, and a child
that runs past processes.CHILD_TIMEOUT_S stops the run naming it), and the time it took at the end.

`--combine` reads the saved outputs of several such runs and prints, per kernel family, one table
whose cells give every run's ratio in order, then the middle run's two times: the README's table,
with its spread over runs.
"""
from __future__ import annotations

import os
import re
import statistics
import time
from contextlib import contextmanager
from datetime import datetime, timezone

from .common import (DEFAULT_SETTING, blas_threads, command_line, commit, cpu_model, fmt_time, load_average,
                     markdown_table, parser, torch_available, write_section)
from .processes import Summary, summarize

TABLE_MARK = "==== README speed table"
WRITE_HEADING = "## Measured"
CELL = re.compile(r"(?P<ratio>[\d.]+x) \([\d.]+-[\d.]+\): (?P<ours>.+?) vs (?P<torch>.+?)(;.*)?")
BENCHMARKS = (("train_step", 7, True), ("evaluate", 7, True), ("lstm_layer", None, True),
              ("op_overhead", None, False), ("memory", 3, False), ("profile", None, True))
"""(benchmark, process pairs unless --pairs says (None: its own default), whether it runs under every
kernel family or only the first)."""
CHILD_SECONDS = {"train_step": 20, "evaluate": 20, "lstm_layer": 8, "op_overhead": 40, "memory": 12, "profile": 15}
"""About how long one child process of each benchmark takes at full size on a 2-core machine (imports,
calibration, timed samples): the estimate printed before the run."""
OWN_PAIRS = {"train_step": 3, "evaluate": 3, "lstm_layer": 3, "op_overhead": 3, "memory": 1, "profile": 1}
TARGETS = {"training": {"1": 0.9, DEFAULT_SETTING: 1.0}, "decoding": 0.8, "memory": 0.5}
"""Issue 27's targets, ours / PyTorch: training at one thread and at the default count, greedy
decoding and peak memory at both."""
FAMILY_ENV = {"haswell": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                          "ONEDNN_MAX_CPU_ISA": "AVX2"},
              "sandybridge": {"MKL_ENABLE_INSTRUCTIONS": "AVX", "ATEN_CPU_CAPABILITY": "default",
                              "ONEDNN_MAX_CPU_ISA": "AVX"}}
PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY",
        "ONEDNN_MAX_CPU_ISA")
NEEDS = {"haswell": ("avx2", "fma"), "sandybridge": ("avx",), "skylakex": ("avx512f",), "zen": ("avx2",)}


def cell(s: Summary, fmt=fmt_time, extra: str = "") -> str:
    """'0.90x (0.88-0.93): 9.20 ms vs 10.30 ms' for one Markdown cell."""
    return f"{s.ratio:.2f}x ({s.lo:.2f}-{s.hi:.2f}): {fmt(s.ours)} vs {fmt(s.torch)}{extra}"


def verdict(ratio: float, target: float, quick: bool) -> str:
    """'; target <= 0.9x: NOT met', the cell's judgement against issue 27's target."""
    return f"; target <= {target}x: " + ("not judged (--quick)" if quick else "met" if ratio <= target else "NOT met")


def fmt_mib(x: float) -> str:
    return f"{x:.0f} MiB"


def setting_header(results, setting: str) -> str:
    if setting != DEFAULT_SETTING:
        return f"{setting} thread" + ("" if setting == "1" else "s")
    used = results.children(setting, "ours")[0]["threads"]["blas_threads"]
    return f"default threads ({used if used is not None else '?'} here)"


def rows_for(settings, runs, quick: bool = False) -> list[list[str]]:
    """The table's rows: one per benchmark line, one cell per thread setting (benchmarks not in `runs`,
    as op_overhead and memory under a second kernel family, give no row)."""
    from . import lstm_layer, op_overhead
    from .train_step import train_flops
    rows = []
    train = runs["train_step"]
    for w in train["workloads"]:
        cells = []
        for setting in settings:
            s = train["results"].summary(setting, w.model)
            peak = train["results"].peak(setting)
            pct = f"; ours {100 * train_flops(w) / s.ours / 1e9 / peak:.0f}% of GEMM peak" if peak else ""
            target = TARGETS["training"].get(setting, 1.0)
            cells.append(cell(s, extra=pct + verdict(s.ratio, target, quick)))
        rows.append([f"training iteration (fwd+bwd+clip+Adam), {w.model} on {w.data} shapes", *cells])
    decode = runs["evaluate"]
    for w in decode["workloads"]:
        summaries = [decode["results"].summary(s, w.model) for s in settings]
        rows.append([f"greedy decoding of 5,000 questions, {w.model} on {w.data}",
                     *(cell(s, extra=verdict(s.ratio, TARGETS["decoding"], quick)) for s in summaries)])
    if "lstm_layer" in runs:
        res = runs["lstm_layer"]["results"]
        rows.append(["LSTM layer fwd+bwd, N=128 T=8 D=16 H=128",
                     *(cell(summarize(res.values(s, "ours", lstm_layer.FUSED), res.values(s, "torch", lstm_layer.TORCH)))
                       for s in settings)])
    if "op_overhead" in runs:
        rows.append(["per-op overhead, every op of the op table (geometric mean)",
                     *(cell(op_overhead.geomean_summary(runs["op_overhead"]["results"], s)) for s in settings)])
    if "memory" in runs:
        cells = []
        for s in settings:
            peaks = {fw: statistics.median(c["cases"]["attention"]["peak"]
                                           for c in runs["memory"]["results"].children(s, fw))
                     for fw in ("ours", "torch")}
            ratio = peaks["ours"] / peaks["torch"]
            cells.append(cell(Summary(peaks["ours"], peaks["torch"], ratio, ratio, ratio), fmt=fmt_mib,
                              extra=verdict(ratio, TARGETS["memory"], quick)))
        rows.append(["peak RSS of 200 attention training iterations", *cells])
    return rows


def read_tables(text: str, source: str) -> list[tuple[str, list[list[str]]]]:
    """(title, rows with the header first) of every speed table in one saved summary output."""
    if TABLE_MARK not in text:
        raise SystemExit(f"--combine: {source} has no '{TABLE_MARK}' section (is it a benchmarks.summary output?)")
    sections = text.split(TABLE_MARK)[1:]
    return [(TABLE_MARK + sec.splitlines()[0], [[c.strip() for c in ln.strip().strip("|").split("|")]
                                               for ln in sec.splitlines()
                                               if ln.startswith("| ") and not ln.startswith("| ---")])
            for sec in sections]


def read_table(text: str, source: str) -> list[list[str]]:
    """The rows (header first) of the first speed table in one saved summary output."""
    return read_tables(text, source)[0][1]


def combine(paths, section: int = 0) -> list[list[str]]:
    """One table from several runs' tables (the `section`-th of each: one per kernel family): each
    cell 'r1 / r2 / r3 (middle run: ours vs torch)'."""
    tables = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            found = read_tables(f.read(), path)
        if section >= len(found):
            raise SystemExit(f"--combine: {path} has {len(found)} speed table(s), {paths[0]} more")
        tables.append(found[section][1])
    shape = [(row[0], len(row)) for row in tables[0]]
    for path, table in zip(paths, tables):
        if [(row[0], len(row)) for row in table] != shape:
            raise SystemExit(f"--combine: {path} has other rows or thread settings than {paths[0]}")
    header = [h if i == 0 else f"{h}: runs {' / '.join(str(k + 1) for k in range(len(tables)))}"
              for i, h in enumerate(tables[0][0])]
    rows = [header]
    for r in range(1, len(shape)):
        row = [tables[0][r][0]]
        for c in range(1, shape[r][1]):
            cells = [CELL.fullmatch(t[r][c]) for t in tables]
            if not all(cells):
                raise SystemExit(f"--combine: cannot read the cell {tables[0][r][0]!r}, column {c}")
            m = cells[len(tables) // 2]
            row.append(" / ".join(x["ratio"] for x in cells) + f" ({m['ours']} vs {m['torch']})")
        rows.append(row)
    return rows


def print_markdown(rows) -> None:
    print("\n".join(markdown_table(rows[0], rows[1:])))


# ---------------------------------------------------------------- kernel families
def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def own_family() -> str:
    """The kernel family OpenBLAS chose for this CPU (threadpoolctl's 'architecture'), or ''."""
    arch = blas_threads()[0]
    m = re.search(r"\((\w+)\)$", arch)
    return m.group(1) if m else ""


def kernel_families(text: str) -> list[str]:
    """`--kernels` -> ['own', 'Haswell', ...]: 'own', 'auto' or OpenBLAS core names, comma-separated."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


def resolve_families(names: list[str]) -> list[str]:
    """'auto' replaced by a family this CPU supports other than its own (left out where none is
    known); a named family this CPU lacks the instructions for is refused (its kernels would crash)."""
    flags, own = cpu_flags(), own_family().lower()
    chosen = []
    for name in names:
        if name == "auto":
            name = next((f for f in ("Haswell", "Sandybridge") if f.lower() != own and flags
                         and all(x in flags for x in NEEDS[f.lower()])), None)
            if name is None:
                print(f"--kernels auto: no second kernel family known for this CPU (OpenBLAS chose {own or '?'})")
                continue
        elif name != "own" and flags and not all(x in flags for x in NEEDS.get(name.lower(), ())):
            raise SystemExit(f"--kernels {name}: this CPU lacks {', '.join(NEEDS[name.lower()])}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def family_label(family: str) -> str:
    if family == "own":
        return f"OpenBLAS's own choice ({own_family() or '?'} here), nothing pinned"
    extra = FAMILY_ENV.get(family.lower())
    return f"OPENBLAS_CORETYPE={family}" + (f" (PyTorch pinned alike: {', '.join(f'{k}={v}' for k, v in extra.items())})"
                                              if extra else "")


@contextmanager
def family_env(family: str):
    """The children's environment for one kernel family (they copy this process's environment)."""
    saved = {k: os.environ.get(k) for k in PINS}
    for k in PINS:
        os.environ.pop(k, None)
    if family != "own":
        os.environ["OPENBLAS_CORETYPE"] = family
        os.environ.update(FAMILY_ENV.get(family.lower(), {}))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def plan(families, args) -> list[tuple[str, str, int]]:
    """(family, benchmark, process pairs) in the order they run."""
    return [(fam, name, args.pairs or (1 if args.quick else pairs or OWN_PAIRS[name]))
            for i, fam in enumerate(families) for name, pairs, every in BENCHMARKS if every or i == 0]


def estimate_seconds(steps, settings, args) -> float:
    return sum(pairs * len(settings) * 2 * (3 if args.quick else CHILD_SECONDS[name]) for _, name, pairs in steps)


def table_header(family: str, train_results, settings) -> list[str]:
    kernels = sorted({c["threads"]["blas"] for s in settings for c in train_results.children(s, "ours")})
    from tinygrad_s2s.backend import compiled
    return [f"machine: {cpu_model()} | {os.cpu_count()} logical cores | fused recurrent layers: {compiled.active()}",
            f"kernels: {family_label(family)}; the ours processes ran {', '.join(kernels)}",
            f"commit {commit()} | {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | command: {command_line()}"]


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=1)
    p.add_argument("--kernels", type=kernel_families, default=kernel_families("own,auto"),
                   help="OpenBLAS kernel families to run under, comma-separated: own (OpenBLAS's choice), auto "
                        "(another this CPU supports) or a core name such as Haswell (default own,auto)")
    p.add_argument("--write", metavar="PAGE", default=None,
                   help=f"also write the tables into the Markdown page PAGE, as its '{WRITE_HEADING}' section "
                        "(e.g. docs/results/speed.md)")
    p.add_argument("--combine", nargs="+", metavar="OUTPUT", default=None,
                   help="saved outputs of earlier runs: print their tables as one (every run's ratio)")
    args = p.parse_args(argv)
    if args.combine:
        with open(args.combine[0], encoding="utf-8") as f:
            titles = [t for t, _ in read_tables(f.read(), args.combine[0])]
        for i, title in enumerate(titles):
            print(f"{title}\n\nover {len(args.combine)} runs (ours / PyTorch, lower is better; each run's median "
                  "over its process pairs, then the middle run's times)\n")
            print_markdown(combine(args.combine, i))
            print()
        return None
    if args.no_torch or not torch_available():
        raise SystemExit("benchmarks.summary compares with PyTorch: install it (pip install -e '.[bench]') "
                         "and leave out --no-torch")
    import importlib
    from .train_step import selected_workloads
    families = resolve_families(args.kernels)
    steps = plan(families, args)
    settings = args.threads
    common = (["--quick"] if args.quick else []) + ["--threads", ",".join(settings)]
    for flag in ("repeats", "sample_seconds"):     # unless given, each benchmark keeps its own default
        if getattr(args, flag):
            common += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    print(f"benchmarks.summary: {len(steps)} benchmark runs, {sum(len(settings) * 2 * n for _, _, n in steps)} "
          f"child processes; estimated {estimate_seconds(steps, settings, args) / 60:.0f} min "
          f"(kernel families: {', '.join(families)})\n", flush=True)
    before, start = load_average(), time.perf_counter()
    runs = {fam: {} for fam in families}
    for fam, name, pairs in steps:
        argv = [*common, "--pairs", str(pairs)]
        with family_env(fam):
            print(f"==== python -m benchmarks.{name} {' '.join(argv)}   [kernels: {family_label(fam)}]\n", flush=True)
            module = importlib.import_module(f"benchmarks.{name}")
            runs[fam][name] = {"results": module.main(argv), "workloads": selected_workloads(None, args.quick)}
        print(flush=True)
    after = load_average()
    section, printed = [WRITE_HEADING, ""], []
    for fam in families:
        train = runs[fam]["train_step"]["results"]
        head = (f"kernels: {family_label(fam)} (ours / PyTorch, lower is better; median over process pairs, "
                "lowest-highest pair in brackets; issue 27's targets)")
        printed.append(len(section))
        section += [f"### {head}", ""]
        section += [line + "  " for line in table_header(fam, train, settings)] + [""]
        rows = rows_for(settings, runs[fam], args.quick)
        if args.quick:
            for row in rows:
                row[0] += " (--quick sizes: meaningless)"
        section += markdown_table(["benchmark", *(setting_header(train, s) for s in settings)], rows) + [""]
    section += [f"Load average (1, 5, 15 min): {before} before, {after} after; the run took "
                f"{(time.perf_counter() - start) / 60:.1f} min (estimated {estimate_seconds(steps, settings, args) / 60:.0f})."]
    print("\n".join(f"{TABLE_MARK}, {line[4:]}" if i in printed else line for i, line in enumerate(section) if i > 1))
    if args.write:
        write_section(args.write, "\n".join(section) + "\n", WRITE_HEADING, title="# Speed")
        print(f"written to {args.write}")
    return runs


if __name__ == "__main__":
    main()
