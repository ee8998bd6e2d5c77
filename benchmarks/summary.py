"""The README's speed table, from one run of every per-process benchmark that compares with PyTorch.

    python -m benchmarks.summary [--quick] [--threads 1,default] [--pairs 3] [--repeats N] [--sample-seconds S]
    python -m benchmarks.summary --combine RUN1.txt RUN2.txt RUN3.txt

Runs train_step, evaluate, lstm_layer, op_overhead and memory one after another (each prints its
full tables, as when run alone), then prints the Markdown table of README.md's "Speed" section: for
each thread setting, ours / PyTorch (the median over the process pairs, with the lowest and highest
pair in brackets) and the two times, and the load average before and after. Copy that table, not
hand-picked figures, into the README. `--repeats` and `--sample-seconds` (when given) apply to every
benchmark.

`--combine` reads the saved outputs of several such runs and prints one table whose cells give every
run's ratio in order, then the middle run's two times: the README's table, with its spread over runs.
"""
from __future__ import annotations

import re
import statistics

from .common import DEFAULT_SETTING, fmt_time, load_average, parser, torch_available
from .processes import Summary, summarize

TABLE_MARK = "==== README speed table"
CELL = re.compile(r"(?P<ratio>[\d.]+x) \([\d.]+-[\d.]+\): (?P<ours>.+?) vs (?P<torch>.+?)(;.*)?")


def cell(s: Summary, fmt=fmt_time, extra: str = "") -> str:
    """'0.90x (0.88-0.93): 9.20 ms vs 10.30 ms' for one Markdown cell."""
    return f"{s.ratio:.2f}x ({s.lo:.2f}-{s.hi:.2f}): {fmt(s.ours)} vs {fmt(s.torch)}{extra}"


def fmt_mib(x: float) -> str:
    return f"{x:.0f} MiB"


def setting_header(results, setting: str) -> str:
    if setting != DEFAULT_SETTING:
        return f"{setting} thread" + ("" if setting == "1" else "s")
    used = results.children(setting, "ours")[0]["threads"]["blas_threads"]
    return f"default threads ({used if used is not None else '?'} here)"


def rows_for(settings, runs) -> list[list[str]]:
    """The table's rows: one per benchmark line, one cell per thread setting."""
    from . import lstm_layer, op_overhead
    from .train_step import train_flops
    train, decode, lstm, ops, memory = (runs[k] for k in ("train_step", "evaluate", "lstm_layer", "op_overhead",
                                                          "memory"))
    rows = []
    for w in train["workloads"]:
        cells = []
        for setting in settings:
            s = train["results"].summary(setting, w.model)
            peak = train["results"].peak(setting)
            pct = f"; ours {100 * train_flops(w) / s.ours / 1e9 / peak:.0f}% of GEMM peak" if peak else ""
            cells.append(cell(s, extra=pct))
        rows.append([f"training iteration (fwd+bwd+clip+Adam), {w.model} on {w.data} shapes", *cells])
    for w in decode["workloads"]:
        rows.append([f"greedy decoding of 5,000 questions, {w.model} on {w.data}",
                     *(cell(decode["results"].summary(s, w.model)) for s in settings)])
    res = lstm["results"]
    rows.append(["LSTM layer fwd+bwd, N=128 T=8 D=16 H=128",
                 *(cell(summarize(res.values(s, "ours", lstm_layer.FUSED), res.values(s, "torch", lstm_layer.TORCH)))
                   for s in settings)])
    rows.append(["per-op overhead, every op of the op table (geometric mean)",
                 *(cell(op_overhead.geomean_summary(ops["results"], s)) for s in settings)])
    cells = []
    for s in settings:
        peaks = {fw: statistics.median(c["cases"]["attention"]["peak"] for c in memory["results"].children(s, fw))
                 for fw in ("ours", "torch")}
        ratio = peaks["ours"] / peaks["torch"]
        cells.append(cell(Summary(peaks["ours"], peaks["torch"], ratio, ratio, ratio), fmt=fmt_mib))
    rows.append(["peak RSS of 200 attention training iterations", *cells])
    return rows


def read_table(text: str, source: str) -> list[list[str]]:
    """The rows (header first) of the speed table in one saved summary output."""
    if TABLE_MARK not in text:
        raise SystemExit(f"--combine: {source} has no '{TABLE_MARK}' section (is it a benchmarks.summary output?)")
    lines = text[text.index(TABLE_MARK):].splitlines()
    return [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines
            if ln.startswith("| ") and not ln.startswith("| ---")]


def combine(paths) -> list[list[str]]:
    """One table from several runs' tables: each cell 'r1 / r2 / r3 (middle run: ours vs torch)'."""
    tables = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            tables.append(read_table(f.read(), path))
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
    print("| " + " | ".join(rows[0]) + " |")
    print("| " + " | ".join("---" for _ in rows[0]) + " |")
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=1)
    p.add_argument("--combine", nargs="+", metavar="OUTPUT", default=None,
                   help="saved outputs of earlier runs: print their tables as one (every run's ratio)")
    args = p.parse_args(argv)
    if args.combine:
        print(f"==== README speed table over {len(args.combine)} runs (ours / PyTorch, lower is better; each "
              "run's median over its process pairs, then the middle run's times)\n")
        print_markdown(combine(args.combine))
        return None
    if args.no_torch or not torch_available():
        raise SystemExit("benchmarks.summary compares with PyTorch: install it (pip install -e '.[bench]') "
                         "and leave out --no-torch")
    from . import evaluate, lstm_layer, memory, op_overhead, train_step
    from .train_step import selected_workloads
    common = (["--quick"] if args.quick else []) + ["--threads", ",".join(args.threads)]
    for flag in ("pairs", "repeats", "sample_seconds"):     # unless given, each benchmark keeps its own default
        if getattr(args, flag):
            common += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    before = load_average()
    runs = {}
    for name, module in (("train_step", train_step), ("evaluate", evaluate), ("lstm_layer", lstm_layer),
                         ("op_overhead", op_overhead), ("memory", memory)):
        print(f"==== python -m benchmarks.{name} {' '.join(common)}\n", flush=True)
        runs[name] = {"results": module.main(common), "workloads": selected_workloads(None, args.quick)}
        print(flush=True)
    after = load_average()
    settings = args.threads
    print(f"{TABLE_MARK} (ours / PyTorch, lower is better; median over process pairs, "
          "lowest-highest pair in brackets)\n")
    headers = ["benchmark", *(setting_header(runs["train_step"]["results"], s) for s in settings)]
    rows = rows_for(settings, runs)
    if args.quick:
        for row in rows:
            row[0] += " (--quick sizes: meaningless)"
    print_markdown([headers, *rows])
    print(f"\nload average (1, 5, 15 min): {before} before, {after} after")
    return runs


if __name__ == "__main__":
    main()
