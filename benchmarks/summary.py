"""The README's speed table, from one run of every per-process benchmark that compares with PyTorch.

    python -m benchmarks.summary [--quick] [--threads 1,default] [--pairs 3] [--repeats N]

Runs train_step, evaluate, lstm_layer, op_overhead and memory one after another (each prints its
full tables, as when run alone), then prints the Markdown table of README.md's "Speed" section: for
each thread setting, ours / PyTorch (the median over the process pairs, with the lowest and highest
pair in brackets) and the two times, and the load average before and after. Copy that table, not
hand-picked figures, into the README. `--repeats` (when given) applies to every benchmark.
"""
from __future__ import annotations

import statistics

from .common import DEFAULT_SETTING, fmt_time, load_average, parser, torch_available
from .processes import Summary, summarize


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


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=1)
    args = p.parse_args(argv)
    if args.no_torch or not torch_available():
        raise SystemExit("benchmarks.summary compares with PyTorch: install it (pip install -e '.[bench]') "
                         "and leave out --no-torch")
    from . import evaluate, lstm_layer, memory, op_overhead, train_step
    from .train_step import selected_workloads
    common = (["--quick"] if args.quick else []) + ["--threads", ",".join(args.threads)]
    for flag in ("pairs", "repeats"):     # unless given, each benchmark keeps its own default
        if getattr(args, flag):
            common += [f"--{flag}", str(getattr(args, flag))]
    before = load_average()
    runs = {}
    for name, module in (("train_step", train_step), ("evaluate", evaluate), ("lstm_layer", lstm_layer),
                         ("op_overhead", op_overhead), ("memory", memory)):
        print(f"==== python -m benchmarks.{name} {' '.join(common)}\n", flush=True)
        runs[name] = {"results": module.main(common), "workloads": selected_workloads(None, args.quick)}
        print(flush=True)
    after = load_average()
    settings = args.threads
    print("==== README speed table (ours / PyTorch, lower is better; median over process pairs, "
          "lowest-highest pair in brackets)\n")
    headers = ["benchmark", *(setting_header(runs["train_step"]["results"], s) for s in settings)]
    print("| " + " | ".join(headers) + " |")
    print("| " + " | ".join("---" for _ in headers) + " |")
    for row in rows_for(settings, runs):
        if args.quick:
            row[0] += " (--quick sizes: meaningless)"
        print("| " + " | ".join(row) + " |")
    print(f"\nload average (1, 5, 15 min): {before} before, {after} after")
    return runs


if __name__ == "__main__":
    main()
