"""Does a trained run generalise across the whole task, not only its own test split?

    python -m benchmarks.generalisation RUN                 # a run directory or checkpoint
    python -m benchmarks.generalisation RUN --samples 2000 --json
    python -m benchmarks.generalisation RUN --require 99    # exit 1 if any bucket is below 99%
    python -m benchmarks.generalisation RUN --years 1950-2039   # date: per decade, also outside the task's years

Addition: exact match per (digits of a, digits of b) bucket, on a fresh stratified sample of all
questions a+b with a, b in 0..999 (every question of a bucket smaller than --samples, else --samples
distinct ones drawn uniformly). Date: exact match per written format x letter case, on --samples
distinct days from the task's range in each (a format without letters is one bucket). Each row also
says how many of its sampled questions are in the run's training split, so memorised and new
questions can be told apart, and the first line gives the accuracy on the run's own test split.
The sample is seeded (--seed), so a report can be reproduced.

`--years FIRST-LAST` (date only) asks about other years than the task's 1970-2020 instead: one
bucket per decade (clipped to the years asked for), --samples distinct days each (all of them when a
bucket has fewer), each written in a format with a four-digit year (a two-digit year outside the task
has no single reading) and a letter case drawn at random; each row says whether its years are in the
task's range, all, none or part.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys

import numpy as np

from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.training.runfiles import load_run
from tinygrad_s2s.training.evaluation import evaluate
from tinygrad_s2s.training.fingerprint import dataset_of

TASKS = ("addition", "date")


def addition_buckets(samples: int, rng: np.random.Generator):
    """(name parts, questions in the bucket, [(question, answer), ...]) per (digits of a, digits of b)."""
    for da in range(1, datagen.ADDITION_DIGITS + 1):
        for db in range(1, datagen.ADDITION_DIGITS + 1):
            (a0, a1), (b0, b1) = datagen.operand_range(da), datagen.operand_range(db)
            size = (a1 - a0) * (b1 - b0)
            picks = np.arange(size) if size <= samples else np.sort(rng.choice(size, samples, replace=False))
            a, b = a0 + picks // (b1 - b0), b0 + picks % (b1 - b0)
            yield (f"{da}+{db} digits",), size, [(f"{x}+{y}", str(x + y)) for x, y in zip(a.tolist(), b.tolist())]


def date_buckets(samples: int, rng: np.random.Generator):
    """((format, case), days in the task's range, [(question, answer), ...]) per format x letter case."""
    first, last = datagen.DATE_RANGE
    span = (last - first).days + 1
    for fmt in datagen.DATE_FORMATS:
        has_letters = "{MMM" in fmt or "{EEE" in fmt
        for case_name, case in datagen.DATE_CASES.items() if has_letters else [("any case", str)]:
            days = rng.choice(span, min(samples, span), replace=False)
            pairs = [(datagen.format_date(first + dt.timedelta(days=int(k)), fmt, case),
                      (first + dt.timedelta(days=int(k))).isoformat()) for k in days]
            yield (fmt, case_name), span, pairs


def parse_years(text: str) -> tuple[int, int]:
    """'1950-2039' -> (1950, 2039): four-digit years, first <= last."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--years must be FIRST-LAST, e.g. 1950-2039; got {text!r}")
    first, last = (int(p) for p in parts)
    if not 1000 <= first <= last <= 9999:
        raise ValueError(f"--years must be four-digit years with FIRST <= LAST; got {text!r}")
    return first, last


def year_buckets(years: tuple[int, int], samples: int, rng: np.random.Generator):
    """((decade,), days in it, [(question, answer), ...]) per decade of `years`, every day written in a
    format with a four-digit year and a letter case, both drawn at random."""
    formats = [f for f in datagen.DATE_FORMATS if "{yy}" not in f]
    cases = list(datagen.DATE_CASES.values())
    first, last = years
    for start in [first, *range(first - first % 10 + 10, last + 1, 10)]:   # the first, then each decade
        end = min(last, start - start % 10 + 9)
        day0 = dt.date(start, 1, 1)
        span = (dt.date(end, 12, 31) - day0).days + 1
        days = [day0 + dt.timedelta(days=int(k)) for k in np.sort(rng.choice(span, min(samples, span), replace=False))]
        fmts, case_ids = rng.integers(0, len(formats), len(days)), rng.integers(0, len(cases), len(days))
        pairs = [(datagen.format_date(day, formats[f], cases[c]), day.isoformat())
                 for day, f, c in zip(days, fmts, case_ids)]
        yield (f"{start}-{end}",), span, pairs


def in_task_range(decade: str) -> str:
    """'all', 'none' or 'part': how much of a year bucket lies in the date task's range."""
    start, end = (int(y) for y in decade.split("-"))
    lo, hi = (d.year for d in datagen.DATE_RANGE)
    if lo <= start and end <= hi:
        return "all"
    return "none" if end < lo or start > hi else "part"


def report(run_path, task: str | None = None, samples: int = 1000, seed: int = 0,
           batch_size: int = 1000, years: tuple[int, int] | None = None) -> dict:
    """The generalisation report of a run as a dict (see the module docstring)."""
    if samples <= 0:
        raise ValueError(f"--samples must be positive, got {samples}")
    run = load_run(run_path)
    task = task or run.config.get("dataset")
    if task not in TASKS:
        raise ValueError(f"{run.run_dir} was trained on {run.config.get('dataset')!r}; the report knows the "
                         f"tasks {', '.join(TASKS)} (pass --task if the file holds one of them)")
    if years is not None and task != "date":
        raise ValueError(f"--years asks about other years of the date task; {run.run_dir} is on {task!r}")
    ds = dataset_of(dict(run.config, test_limit=None))
    trained_on = set(ds.question_text(ds.x_train))
    test_accuracy = evaluate(run.model, ds.x_test, ds.t_test, run.start_id, batch_size=batch_size)
    if years is not None:
        buckets = functools.partial(year_buckets, years)
    else:
        buckets = addition_buckets if task == "addition" else date_buckets
    rows = []
    for name, size, pairs in buckets(samples, np.random.default_rng(seed)):
        questions = [q for q, _ in pairs]
        answers = run.predict(questions, batch_size=batch_size)
        correct = sum(got == want for got, (_, want) in zip(answers, pairs))
        where = ({"years": name[0], "in_task_range": in_task_range(name[0])} if years is not None
                 else dict(zip(("format", "case"), name)) if task == "date" else {})
        rows.append({"bucket": " ".join(name), **where,
                     "questions_in_bucket": size, "sampled": len(pairs),
                     "in_training_split": sum(q in trained_on for q in questions),
                     "correct": correct, "accuracy": correct / len(pairs)})
    return {"run": str(run.run_dir), "checkpoint": str(run.checkpoint), "task": task, "seed": seed,
            "years": None if years is None else list(years),
            "test_accuracy": test_accuracy, "test_examples": len(ds.x_test),
            "training_examples": len(ds.x_train), "buckets": rows}


def format_table(rep: dict) -> list[str]:
    """The report as a Markdown table, after a line with the test-split accuracy: one row per
    addition bucket, or for date one row per format with a column per letter case."""
    rows = rep["buckets"]
    lines = [f"{rep['run']} ({rep['task']}): test split {100 * rep['test_accuracy']:.2f}% of "
             f"{rep['test_examples']:,}; lowest bucket {100 * min(r['accuracy'] for r in rows):.2f}%", ""]
    if rep.get("years"):
        lines += ["| years | in the task's range | days | sampled | also in training split | exact match |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['years']} | {r['in_task_range']} | {r['questions_in_bucket']:,} | {r['sampled']:,} | "
                  f"{r['in_training_split']:,} | {100 * r['accuracy']:.2f}% |" for r in rows]
        return lines
    if rep["task"] == "addition":
        lines += ["| digits of a+b | questions in bucket | sampled | also in training split | exact match |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['bucket']} | {r['questions_in_bucket']:,} | {r['sampled']:,} | "
                  f"{r['in_training_split']:,} | {100 * r['accuracy']:.2f}% |" for r in rows]
        return lines
    cases = list(dict.fromkeys(r["case"] for r in rows))
    lines += [f"Exact match per written format and letter case, {rows[0]['sampled']:,} sampled days each; in "
              "brackets, how many of them are also in the training split.", "",
              "| format | " + " | ".join(cases) + " |", "|---|" + "---:|" * len(cases)]
    for fmt in dict.fromkeys(r["format"] for r in rows):
        cells = {r["case"]: f"{100 * r['accuracy']:.2f}% ({r['in_training_split']:,})"
                 for r in rows if r["format"] == fmt}
        lines.append(f"| `{fmt}` | " + " | ".join(cells.get(c, "") for c in cases) + " |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generalisation", description=__doc__.splitlines()[0])
    p.add_argument("run", help="a run directory (its best checkpoint) or a checkpoint file")
    p.add_argument("--task", choices=TASKS, help="the task the run's file holds (default: the run's dataset name)")
    p.add_argument("--samples", type=int, default=1000, help="questions per bucket (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--batch-size", type=int, default=1000, help="questions decoded at a time (default 1000)")
    p.add_argument("--require", type=float, metavar="PCT",
                   help="exit 1 when the test split or any bucket is below PCT percent")
    p.add_argument("--years", metavar="FIRST-LAST",
                   help="date only: one bucket per decade of these years, also outside the task's 1970-2020")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    try:
        years = None if args.years is None else parse_years(args.years)
        rep = report(args.run, args.task, args.samples, args.seed, args.batch_size, years)
    except (ValueError, OSError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(rep, indent=2) if args.json else "\n".join(format_table(rep)))
    if args.require is not None:
        low = [r["bucket"] for r in rep["buckets"] if 100 * r["accuracy"] < args.require]
        if 100 * rep["test_accuracy"] < args.require:
            low.insert(0, "test split")
        if low:
            print(f"below {args.require}%: {', '.join(low)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
