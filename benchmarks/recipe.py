"""The README's quick start as a user feels it: its training run against the same recipe in PyTorch.

    python -m benchmarks.recipe [--pairs 3] [--epochs 3] [--quick] [--write docs/results/speed.md]

Ours is the quick start's own command, `tinygrad-s2s train attention --dataset date --epochs 3 --lr 0.005
--lr-schedule cosine`, in a process of its own; PyTorch's is a plain PyTorch loop over the same recipe
in another (the attention model of tinygrad_s2s/torch_export/torch_model.py; Adam, learning rate 0.005
annealed to 0 by a cosine over every step, gradients clipped to norm 5, batch 128, greedy decoding of
the whole test split after each epoch, as `train` does). Both start from the book's initialisation
drawn with the run's seed (the PyTorch process builds our model as `train` does and converts its
weights) and train on the same 90/10 split in the same batches (drawn from our generator as `train`
draws them), so the two runs differ only in the order of floating-point sums, and their accuracies
can be compared too. Each process is timed from its start to its exit, imports
included: the PyTorch one pays for importing tinygrad_s2s (data loading and the weights) as well as
torch. The two run alternately, each alone, at the default thread count (nothing set, as a user's
program gets); the table gives the median over `--pairs` and the spread. A training run takes
minutes: this stays out of CI (the tests run it with `--quick`: 200 examples, one epoch).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from .common import blas_threads, command_line, commit, cpu_model, fmt_time, load_average, markdown_table, write_section
from .processes import REPO_ROOT, child_env

MARK = "RECIPE-RESULT "
WRITE_HEADING = "## The quick start against PyTorch"
RECIPE = {"model": "attention", "dataset": "date", "lr": 0.005, "lr_schedule": "cosine"}
QUICK_LIMIT = 200
TIMEOUT_S = 3600


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=None, help="alternating process pairs, median reported (default 3)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each run (default 3, the quick start's)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_LIMIT} examples, 1 epoch, 1 pair: a smoke run")
    p.add_argument("--write", metavar="PAGE", default=None,
                   help=f"also write the table into the Markdown page PAGE, as its '{WRITE_HEADING}' section")
    p.add_argument("--child", choices=["torch"], help=argparse.SUPPRESS)
    p.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.pairs, args.epochs, args.limit = args.pairs or 1, 1, QUICK_LIMIT
    args.pairs = args.pairs or 3
    if args.pairs < 1 or args.epochs < 1:
        p.error("--pairs and --epochs must be at least 1")
    return args


def ours_command(args, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "tinygrad_s2s", "train", RECIPE["model"], "--dataset", RECIPE["dataset"],
           "--epochs", str(args.epochs), "--lr", str(RECIPE["lr"]), "--lr-schedule", RECIPE["lr_schedule"],
           "--out", str(out)]
    return cmd + (["--limit", str(args.limit), "--test-limit", str(args.limit)] if args.limit else [])


def torch_command(args) -> list[str]:
    cmd = [sys.executable, "-m", "benchmarks.recipe", "--child", "torch", "--epochs", str(args.epochs)]
    return cmd + (["--limit", str(args.limit)] if args.limit else [])


# ---------------------------------------------------------------- the PyTorch run (child)
def torch_run(args) -> None:
    """The recipe in plain PyTorch; prints the test accuracy after each epoch."""
    from dataclasses import replace

    import numpy as np
    import torch

    from tinygrad_s2s.backend import random
    from tinygrad_s2s.data import batch_indices, load_dataset
    from tinygrad_s2s.torch_export import torch_model, torch_state
    from tinygrad_s2s.training.config import TrainConfig
    from tinygrad_s2s.training.runfiles import build_model

    # what `train` does before its first step: resolve the settings, load (and limit) the data, seed, build
    cfg = TrainConfig(model=RECIPE["model"], dataset=RECIPE["dataset"], epochs=args.epochs, lr=RECIPE["lr"],
                      lr_schedule=RECIPE["lr_schedule"], limit=args.limit, test_limit=args.limit).resolved()
    ds = load_dataset(cfg.dataset, reverse=cfg.reverse)
    if cfg.limit:
        ds = ds.limit(cfg.limit, cfg.test_limit)
    x_train, t_train, x_test, t_test = ds.x_train, ds.t_train, ds.x_test, ds.t_test
    random.manual_seed(cfg.seed)
    ours = build_model(replace(cfg, vocab="".join(ds.vocab.chars)))
    weights = {k: torch.from_numpy(v) for k, v in torch_state(ours).items()}
    model = torch_model.from_weights(RECIPE["model"], ours.config, weights).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    steps_per_epoch = -(-len(x_train) // cfg.batch_size)
    total, step = steps_per_epoch * args.epochs, 0
    x_train, t_train = torch.from_numpy(x_train).long(), torch.from_numpy(t_train).long()
    accuracies = []
    for _ in range(args.epochs):
        # the batches `train` draws: the same generator, seeded as it seeds it, the model drawn first
        for idx in batch_indices(len(x_train), cfg.batch_size, random.generator()):
            idx = torch.from_numpy(idx)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * step / total))
            opt.zero_grad(set_to_none=True)
            loss = model.loss(x_train[idx], t_train[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad)
            opt.step()
            step += 1
        model.eval()
        right = 0
        for i in range(0, len(x_test), 1000):
            ids = model.generate(torch.from_numpy(x_test[i:i + 1000]).long(), max_len=t_test.shape[1] - 1,
                                 start_id=ds.start_id).numpy()
            right += int(np.all(ids == t_test[i:i + 1000, 1:], axis=1).sum())
        model.train()
        accuracies.append(right / len(x_test))
        print(f"epoch {len(accuracies)}: test accuracy {100 * accuracies[-1]:.2f}%", flush=True)
    print(MARK + json.dumps({"accuracy": accuracies, "threads": torch.get_num_threads()}), flush=True)


# ---------------------------------------------------------------- the parent
def timed(cmd: list[str], what: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env("default"), capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"recipe: the {what} run failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                         f"{proc.stderr[-3000:]}")
    return seconds, proc


def run_ours(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="tg-recipe-") as tmp:
        seconds, _ = timed(ours_command(args, Path(tmp) / "run"), "tinygrad-s2s")
        with open(Path(tmp) / "run" / "metrics.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    return {"seconds": seconds, "accuracy": [float(r["test_accuracy"]) for r in rows]}


def run_torch(args) -> dict:
    seconds, proc = timed(torch_command(args), "PyTorch")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)][-1]
    return {"seconds": seconds, **json.loads(line[len(MARK):])}


def measure(args) -> dict:
    """framework -> list of {seconds, accuracy per epoch}, the two frameworks alternating which goes first."""
    runs = {"ours": [], "torch": []}
    for pair in range(args.pairs):
        order = ["ours", "torch"] if pair % 2 == 0 else ["torch", "ours"]
        for name in order:
            runs[name].append(run_ours(args) if name == "ours" else run_torch(args))
            r = runs[name][-1]
            print(f"pair {pair + 1} {name}: {r['seconds']:.1f} s, final test accuracy {100 * r['accuracy'][-1]:.2f}%",
                  flush=True)
    return runs


def report(args, runs: dict) -> None:
    ours, theirs = ([r["seconds"] for r in runs[k]] for k in ("ours", "torch"))
    ratios = [a / b for a, b in zip(ours, theirs)]
    acc = {k: [100 * r["accuracy"][-1] for r in runs[k]] for k in runs}
    from tinygrad_s2s.backend import compiled
    head = [f"machine: {cpu_model()} | BLAS: {blas_threads()[0]} | fused recurrent layers: {compiled.active()} | "
            f"default threads (PyTorch used {runs['torch'][0]['threads']})",
            f"commit {commit()} | {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC | command: {command_line()}",
            f"{args.pairs} alternating process pair(s), each framework alone; {args.epochs} epoch(s); load average "
            f"at the end: {load_average()}" + (" | --quick: smoke run, numbers meaningless" if args.quick else "")]
    rows = [["wall time, start to exit", fmt_time(statistics.median(ours)), fmt_time(statistics.median(theirs)),
             f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"],
            ["final test accuracy (each pair)", " / ".join(f"{a:.2f}%" for a in acc["ours"]),
             " / ".join(f"{a:.2f}%" for a in acc["torch"]), ""]]
    met = statistics.median(ratios) < 1 and min(acc["ours"]) >= 99.9
    verdict = ("not judged: --quick" if args.quick else "met" if met else "NOT met")
    table = markdown_table(["", "tinygrad-s2s", "PyTorch", "ours / PyTorch (lowest-highest pair)"], rows)
    lines = [*(line + "  " for line in head), "", *table, "",
             f"Target (issue 27): the quick start reaches >= 99.9% in less wall time than PyTorch: {verdict}."]
    print("\n".join(lines))
    if args.write:
        write_section(args.write, "\n".join([WRITE_HEADING, "", *lines, ""]), WRITE_HEADING, title="# Speed")
        print(f"written to {args.write}")


def main(argv=None) -> None:
    args = parse(argv)
    if args.child:
        torch_run(args)
        return
    try:
        import torch  # noqa: F401 - only checks that the PyTorch side can run
    except ImportError:
        raise SystemExit("benchmarks.recipe compares with PyTorch: pip install -e '.[bench]'") from None
    report(args, measure(args))


if __name__ == "__main__":
    main()
