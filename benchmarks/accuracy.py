"""Reproduce the zoo's accuracy runs (issue 4) through the `tinygrad-s2s train` command.

    python -m benchmarks.accuracy                 # every run, one after another (tens of minutes)
    python -m benchmarks.accuracy attention-date  # only the named runs
    python -m benchmarks.accuracy --list

Each run trains in runs/accuracy/NAME; its metrics.csv and learning_curve.png are copied to
benchmarks/accuracy/NAME/ with provenance.txt (machine, BLAS, threads, commit, date, command), and
benchmarks/accuracy/RESULTS.md gets one table row per run with the per-epoch test accuracy (exact
match of the whole answer, greedy decoding, 10% test split); the table of docs/results/accuracy.md
(between its `accuracy-table` markers) is written from the same files. A run recorded before
provenance was kept says so, with the commit that holds its files.
`python -m benchmarks.accuracy --tables` rewrites both tables without training.
These runs take minutes each: they stay out of CI.

The training subprocesses get one BLAS thread (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS /
MKL_NUM_THREADS = 1 unless the user set them), as the recorded runs had: a multithreaded BLAS sums in
a different order, which changes the trajectory slightly. Runs at a constant learning rate are the
most sensitive to that order (attention-date-constant-lr has ended epoch 3 anywhere from 99.56% to
100% across thread counts and code versions); the recorded targets use a cosine schedule.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tinygrad_s2s.serialization import atomic_write

from . import THREAD_ENV, user_set_threads
from .common import blas_threads, command_line, commit, cpu_model, kernel_pin

HERE = Path(__file__).resolve().parent / "accuracy"
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "results" / "accuracy.md"
MARKERS = ("<!-- accuracy-table: written by python -m benchmarks.accuracy; do not edit -->",
           "<!-- accuracy-table: end -->")


@dataclass(frozen=True)
class AccuracyRun:
    name: str
    args: tuple
    target: str

    def command(self, out: Path) -> list[str]:
        return ["tinygrad-s2s", "train", *self.args, "--out", str(out), "--json", "--no-progress"]


RUNS = [
    AccuracyRun("peeky-addition-reversed", ("peeky", "--dataset", "addition", "--reverse", "--lr", "0.005",
                                            "--lr-schedule", "cosine"),
                ">= 99% at the end of 25 epochs (final, not just best)"),
    AccuracyRun("peeky-addition-reversed-constant-lr", ("peeky", "--dataset", "addition", "--reverse"),
                "reported (the book's settings: constant lr, unstable at the end)"),
    AccuracyRun("seq2seq-addition", ("seq2seq", "--dataset", "addition"), "reported (the book's baseline)"),
    AccuracyRun("seq2seq-addition-reversed", ("seq2seq", "--dataset", "addition", "--reverse"),
                "reported (reversal helps)"),
    AccuracyRun("attention-date", ("attention", "--dataset", "date", "--epochs", "3", "--lr", "0.005",
                                   "--lr-schedule", "cosine"), ">= 90% after 2 epochs, >= 99.9% after 3"),
    AccuracyRun("attention-date-constant-lr", ("attention", "--dataset", "date", "--epochs", "3", "--lr", "0.003"),
                "reported (constant lr: epoch 3 moves with the order of float sums; 99.56% to 100% seen)"),
    AccuracyRun("deep_lstm-addition-reversed", ("deep_lstm", "--dataset", "addition", "--reverse", "--lr", "0.003",
                                                "--lr-schedule", "cosine"), ">= 99.5% within 25 epochs"),
    AccuracyRun("deep_lstm-addition-reversed-constant-lr", ("deep_lstm", "--dataset", "addition", "--reverse"),
                "reported (the book's constant lr 0.001)"),
    AccuracyRun("transformer-date", ("transformer", "--dataset", "date", "--hidden", "64", "--epochs", "10",
                                     "--lr-schedule", "cosine"), ">= 99.9% within 30 minutes"),
    AccuracyRun("transformer-date-constant-lr",
                ("transformer", "--dataset", "date", "--hidden", "64", "--epochs", "6"),
                "reported (constant lr: the last epochs wobble with the order of float sums; "
                "99.74% to 99.98% seen)"),
    AccuracyRun("transformer-addition", ("transformer", "--dataset", "addition", "--reverse", "--hidden", "128",
                                         "--lr", "0.002", "--lr-schedule", "cosine", "--epochs", "55"),
                ">= 99% within 30 minutes"),
]


def training_env() -> dict:
    """The environment of a training run: one BLAS thread unless the user set a count (importing
    `benchmarks` has pinned the variables to the core count by now, so that is no sign)."""
    env = dict(os.environ)
    if not user_set_threads():
        env.update({var: "1" for var in THREAD_ENV})
    return env


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def table_row(run: AccuracyRun, rows: list[dict]) -> str:
    curve = ", ".join(f"{100 * float(r['test_accuracy']):.1f}" for r in rows)
    minutes = sum(float(r["seconds"]) for r in rows) / 60
    final = 100 * float(rows[-1]["test_accuracy"])
    best = 100 * max(float(r["test_accuracy"]) for r in rows)
    cmd = "tinygrad-s2s train " + " ".join(run.args)
    return (f"| {run.name} | `{cmd}` | {final:.2f}% | {best:.2f}% | {len(rows)} | {minutes:.1f} | "
            f"{run.target} | {curve} |")


PROVENANCE = "provenance.txt"
"""Beside each run's files: the machine, BLAS, commit, date and command that produced them."""


def provenance() -> str:
    """One line saying where a run's figures came from (the training child runs on one BLAS thread
    unless the user set a thread variable, see training_env)."""
    threads = "as set by the user" if user_set_threads() else "1 BLAS thread"
    return (f"{cpu_model()}, {os.cpu_count()} cores | BLAS {blas_threads()[0]}{kernel_pin()} | {threads} | "
            f"commit {commit(outputs=(HERE, DOCS_PAGE))} | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | "
            f"{command_line()}")


def measured_on(name: str) -> str:
    """A run's provenance line as a table cell (its ` | ` separators as `; `), or for a run recorded
    before provenance was kept, that fact and the commit that holds its files (from git log)."""
    where = HERE / name / PROVENANCE
    if where.is_file():
        return where.read_text(encoding="utf-8").strip().replace(" | ", "; ").replace("|", "\\|")
    try:
        found = subprocess.run(["git", "-C", str(HERE), "log", "-1", "--format=%h (%ad)", "--date=short", "--",
                                f"{name}/metrics.csv"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    return ("measured before provenance was recorded" + (f"; files from commit {found}" if found else "")
            + "; 2-core CPU, one BLAS thread")


def write_results() -> Path:
    """RESULTS.md (every column, the per-epoch curve) and the docs page's table, from the recorded runs."""
    lines = ["# Accuracy runs (issue 4)", "",
             "Exact match of the whole decoded answer on the 10% test split, greedy decoding. "
             "Training minutes exclude evaluation; the runs had one BLAS thread each on the 2-core "
             "machine, with other work on the machine, so they are upper bounds. "
             "Reproduce with `python -m benchmarks.accuracy NAME`.", "",
             "| run | command | final | best | epochs | train min | target | test accuracy per epoch (%) | measured on |",
             "|---|---|---|---|---|---|---|---|---|"]
    docs = ["| run | command (`tinygrad-s2s train ...`) | final | best (epoch) | epochs | train min | measured on |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for run in RUNS:
        metrics = HERE / run.name / "metrics.csv"
        if metrics.is_file():
            rows = read_metrics(metrics)
            lines.append(table_row(run, rows) + f" {measured_on(run.name)} |")
            docs.append(docs_row(run, rows))
        else:
            lines.append(f"| {run.name} | `tinygrad-s2s train {' '.join(run.args)}` | not measured on the current "
                         f"data | | | | {run.target} | | |")
    path = HERE / "RESULTS.md"
    _write(path, "\n".join(lines) + "\n")
    write_docs_table(docs)
    return path


def docs_row(run: AccuracyRun, rows: list[dict]) -> str:
    acc = [100 * float(r["test_accuracy"]) for r in rows]
    best = max(range(len(acc)), key=acc.__getitem__)
    minutes = sum(float(r["seconds"]) for r in rows) / 60
    return (f"| {run.name} | `{' '.join(run.args)}` | {acc[-1]:.2f}% | {acc[best]:.2f}% ({best + 1}) | {len(rows)} | "
            f"{minutes:.1f} | {measured_on(run.name)} |")


def write_docs_table(rows: list[str]) -> None:
    """Replace the table between MARKERS in docs/results/accuracy.md."""
    text = DOCS_PAGE.read_text(encoding="utf-8")
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        raise SystemExit(f"{DOCS_PAGE}: the markers {MARKERS} are missing; put them where the table goes")
    _write(DOCS_PAGE, text[:start + len(MARKERS[0])] + "\n\n" + "\n".join(rows) + "\n\n" + text[end:])


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="runs to do (default: all)")
    p.add_argument("--list", action="store_true", help="list the runs and exit")
    p.add_argument("--tables", action="store_true", help="rewrite RESULTS.md and the docs table from the "
                   "recorded runs, without training")
    p.add_argument("--runs-dir", default="runs/accuracy", help="where the runs train (default runs/accuracy)")
    args = p.parse_args(argv)
    known = {r.name: r for r in RUNS}
    if args.list:
        for r in RUNS:
            print(f"{r.name:30s} tinygrad-s2s train {' '.join(r.args)}   target: {r.target}")
        return 0
    if args.tables:
        print(f"results: {write_results()}")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        p.error(f"unknown runs {unknown}; known: {', '.join(known)}")
    for name in args.names or list(known):
        run = known[name]
        out = Path(args.runs_dir) / name
        if out.exists():
            shutil.rmtree(out)
        t0 = time.time()
        print(f"== {name}: {' '.join(run.command(out))}", flush=True)
        proc = subprocess.run(run.command(out), stdout=subprocess.PIPE, text=True, env=training_env())
        if proc.returncode != 0:
            print(f"{name} failed with exit code {proc.returncode}", file=sys.stderr)
            return 1
        report = json.loads(proc.stdout)
        dest = HERE / name
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("metrics.csv", "learning_curve.png", "config.json"):
            shutil.copy2(out / f, dest / f)
        _write(dest / PROVENANCE, provenance() + "\n")
        print(f"   accuracy {100 * report['accuracy']:.2f}% in {(time.time() - t0) / 60:.1f} min", flush=True)
        write_results()                      # after each run: a stopped series keeps what it measured
    print(f"results: {write_results()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
