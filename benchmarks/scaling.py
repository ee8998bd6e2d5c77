"""Data-parallel training over MPI: training examples per second at N ranks, and where scaling stops.

    python -m benchmarks.scaling [--procs 1 2] [--models attention,peeky] [--runs 3] [--steps 30] [--quick]
                                 [--no-torch] [--write docs/results/scaling.md]

1. Measured, on this machine: the zoo model's training step (batch 128 split over the ranks,
   forward + backward + one Allreduce + clip 5.0 + Adam: `training.distributed`, as `train` runs it)
   under `mpiexec -n N` for each N of --procs, each rank with 1 BLAS thread; against one process at the
   default thread count (no MPI) and PyTorch alone at its default thread count (the twins in
   tinygrad_s2s/torch_export/torch_model.py). Each configuration is its own job, alone on the machine,
   --runs times in rotating order; the table gives the median examples/s.
2. Written: what an allreduce costs beyond one machine. Each zoo model's gradient is `parameters x 4`
   bytes (float32) per step; a ring allreduce moves 2(N-1)/N of it through every link and pays
   2(N-1) message latencies: t = 2(N-1)/N * bytes / bandwidth + 2(N-1) * latency, at 10 and
   100 Gbit/s (latency 20 and 5 us). Against the measured one-rank step time at batch 128 (1 BLAS
   thread): with 128 examples per rank (weak scaling) efficiency = step / (step + allreduce); with a
   global batch of 128 (strong scaling) the compute shrinks to step/N while the allreduce does not.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import THREAD_ENV
from .common import fmt_num, markdown_table, print_table, write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
MARK = "SCALING-RESULT "
BATCH = 128
NETWORKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}   # bytes/s, latency per message
MODEL_RANKS = (8, 64, 512)
WRITE_HEADING = "## Measured"
TIMEOUT_S = 1800


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="rank counts to measure (default 1 2)")
    p.add_argument("--models", default="attention,peeky", help="zoo models to measure (default attention,peeky)")
    p.add_argument("--runs", type=int, default=None, help="jobs per configuration, median reported (default 3)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per job after 3 warm-up steps (default 30)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 run of 3 steps: a smoke run, numbers meaningless")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--write", metavar="PAGE", default=None,
                   help=f"also write the tables into the Markdown page PAGE, as its '{WRITE_HEADING}' section "
                        "(e.g. docs/results/scaling.md)")
    p.add_argument("--child", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.steps = args.steps or (3 if args.quick else 30)
    return args


def workload(name: str, quick: bool):
    from .train_step import WORKLOADS, Workload, quick_workload
    w = next((w for w in WORKLOADS if w.model == name), None) or Workload(name, "date", 59, 16, 256, 29, 11)
    return quick_workload(w) if quick else w


# ---------------------------------------------------------------- a job (child)
def child(args) -> None:
    """One job's process (a rank under mpiexec, or alone): time `steps` training steps per model."""
    from .train_step import build_ours, build_torch, make_batch, torch_train_step
    results = {}
    for name in args.models.split(","):
        w = workload(name, args.quick)
        xs, ts = make_batch(w, n=BATCH)
        model = build_ours(w)
        if args.child == "torch":
            import torch
            step = torch_train_step(torch, build_torch(torch, w, model), xs, ts)
            rank = 0
        else:
            step, rank = ours_step(model, xs, ts)
        for _ in range(3):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        results[name] = (time.perf_counter() - t0) / args.steps
    if rank == 0:
        print(MARK + json.dumps(results), flush=True)


def ours_step(model, xs, ts):
    """A callable doing one data-parallel training step of `model` on the global batch, as the
    Trainer does it (shard, forward + backward, one Allreduce, clip, Adam), and this rank's number."""
    import numpy as np

    import tinygrad_s2s as tg
    from tinygrad_s2s.training import distributed
    comm = distributed.world()
    params = model.parameters()
    opt = tg.optim.Adam(params, lr=1e-3)
    mine = comm.shard(np.arange(len(xs)))

    def step():
        opt.zero_grad()
        loss = model(xs[mine], ts[mine])
        loss.backward()
        comm.reduce_step(params, float(loss.item()), len(mine), len(xs), False)
        tg.optim.clip_grad_norm(params, 5.0)
        opt.step()
    return step, comm.rank


# ---------------------------------------------------------------- the parent
def configurations(args) -> list[tuple[str, list[str], dict]]:
    """(label, command, environment) of every configuration measured."""
    from tinygrad_s2s.cli.ranks import find_mpiexec
    me = [sys.executable, "-m", "benchmarks.scaling", "--models", args.models, "--steps", str(args.steps)] + \
        (["--quick"] if args.quick else [])
    default = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    one = dict(default, **{k: "1" for k in THREAD_ENV})
    out = [(f"{n} rank{'s' if n > 1 else ''} (mpiexec, 1 thread each)", [find_mpiexec(), "-n", str(n), *me,
            "--child", "ours"], one) for n in args.procs]
    out.append(("1 process, default threads (no MPI)", [*me, "--child", "ours"], default))
    if not args.no_torch and _has_torch():
        out.append(("PyTorch alone, default threads", [*me, "--child", "torch"], default))
    return out


def _has_torch() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def measure(args) -> dict:
    """label -> model -> seconds per step for each run, the configurations in rotating order."""
    configs = configurations(args)
    times: dict = {label: {} for label, _, _ in configs}
    for r in range(args.runs):
        for label, cmd, env in configs[r % len(configs):] + configs[:r % len(configs)]:
            proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
            if proc.returncode or not lines:
                raise SystemExit(f"scaling: {label} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
            for model, seconds in json.loads(lines[-1][len(MARK):]).items():
                times[label].setdefault(model, []).append(seconds)
    return times


def ring_seconds(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    """A ring allreduce of `nbytes` over `n` ranks: 2(n-1)/n of the buffer through each link, 2(n-1) hops."""
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def parameter_counts(quick: bool) -> dict:
    import tinygrad_s2s as tg
    from tinygrad_s2s.models.registry import available_models
    counts = {}
    for name in available_models():
        w = workload(name, quick)
        try:
            model = tg.create_model(name, vocab_size=w.vocab, wordvec_size=w.D, hidden_size=w.H)
        except Exception:       # noqa: BLE001 - a plugin that takes other sizes is left out of the model
            continue
        counts[name] = sum(p.size for p in model.parameters())
    return counts


def report(args, times: dict) -> None:
    from datetime import datetime, timezone

    from .common import blas_threads, commit, command_line, cpu_model, load_average
    from tinygrad_s2s.backend import compiled
    head = [f"CPU: {cpu_model()} | {os.cpu_count()} logical cores | BLAS: {blas_threads()[0]} | fused recurrent "
            f"layers: {compiled.active()}",
            f"commit {commit()} | {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | command: {command_line()}",
            f"global batch {BATCH}; {args.runs} job(s) per configuration, {args.steps} timed steps each (median); "
            f"load average at the end: {load_average()}" + (" | --quick: smoke run, numbers not meaningful"
                                                             if args.quick else "")]
    print("\n".join(head))
    tables = [throughput_table(args, times), network_table(args, times)]
    for title, headers, rows in tables:
        print_table(headers, rows, title=title)
    if args.write:
        section = [WRITE_HEADING, "", *(line + "  " for line in head), ""]
        for title, headers, rows in tables:
            section += [f"### {title}", "", *markdown_table(headers, rows), ""]
        write_section(args.write, "\n".join(section), WRITE_HEADING, title="# Scaling over MPI")
        print(f"written to {args.write}")


def throughput_table(args, times: dict):
    """(title, headers, rows): examples per second of each configuration, and against 1 rank."""
    models = args.models.split(",")
    base = next(iter(times))
    rows = []
    for label, by in times.items():
        row = [label]
        for m in models:
            s = statistics.median(by[m])
            row += [fmt_num(BATCH / s, 0), f"{statistics.median(times[base][m]) / s:.2f}x"]
        rows.append(row)
    return ("Training examples per second (higher is better)",
            ["configuration"] + [h for m in models for h in (f"{m} ex/s", "vs 1 rank")], rows)


def network_table(args, times: dict):
    """(title, headers, rows): the written model of a ring allreduce over a network."""
    models = args.models.split(",")
    base = next(iter(times))
    step = {m: statistics.median(times[base][m]) for m in models}
    rows = []
    for name, count in parameter_counts(args.quick).items():
        nbytes = 4 * count
        t1 = step.get(name)
        for net, (bw, lat) in NETWORKS.items():
            row = [name, f"{count:,}", f"{nbytes / 2**20:.2f}", net]
            for n in MODEL_RANKS:
                comm = ring_seconds(nbytes, n, bw, lat)
                weak = f"{100 * t1 / (t1 + comm):.0f}%" if t1 else "-"
                strong = f"{100 * (t1 / n) / (t1 / n + comm):.0f}%" if t1 and n <= BATCH else "-"
                row += [f"{1e3 * comm:.2f} ms", weak, strong]
            rows.append(row)
    return ("Written model: ring allreduce per step vs the measured 1-rank step "
            f"({', '.join(f'{m} {1e3 * s:.1f} ms' for m, s in step.items())}; efficiency "
            "'-' where not measured, or strong scaling with fewer than 1 example per rank)",
            ["model", "parameters", "MiB/step", "network"] +
            [h for n in MODEL_RANKS for h in (f"allreduce N={n}", "eff. weak", "eff. strong")], rows)


def main(argv=None) -> None:
    args = parse(argv)
    if args.child:
        child(args)
        return
    report(args, measure(args))


if __name__ == "__main__":
    main()
