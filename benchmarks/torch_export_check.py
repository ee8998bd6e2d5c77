"""Check PyTorch exports of trained runs on their WHOLE test split: each run is exported
(`tinygrad_s2s.torch_export.export_run`, what `tinygrad-s2s export RUN --format torch` writes), its
model.py loaded with torch, and compared with our model on every test question:

- greedy answers: PyTorch's `generate` against the ids `tinygrad-s2s eval` decodes (the same call, batches
  of 1,000): how many answers are identical, and both exact-match accuracies (they must be equal);
- logits: the largest absolute difference of the teacher-forced logits of every decoder step, in the run's
  dtype (float32) and with both sides cast to float64.

    python -m benchmarks.torch_export_check RUN [RUN ...] [--markdown FILE] [--tolerance 1e-5]

Exits 1 when an answer differs, a float32 logit differs by more than --tolerance, or a float64 one by
more than 1e-9. With --markdown the table
is written (atomically) as the "PyTorch" section of FILE (replacing the one it holds, other sections kept) with the machine, command, commit and date, for
docs/results/export.md. Needs the `export` and `bench` extras (safetensors, torch).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import (blas_threads, command_line, commit, cpu_model, kernel_pin, load_average, markdown_table,
                     write_section)

BATCH = 1000
"""Questions decoded (and logits compared) at once: eval's default batch size."""


def import_exported(directory: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"exported_{name}", directory / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_run(path, torch) -> dict:
    """Export run `path` to a temporary directory and compare it with ours on the whole test split."""
    import tinygrad_s2s as tg
    from tinygrad_s2s.torch_export import export_run
    from tinygrad_s2s.training.evaluation import exact_match, generate_batched
    from tinygrad_s2s.training.fingerprint import dataset_of
    from tinygrad_s2s.training.runfiles import load_run

    run = load_run(path)
    ds = dataset_of(dict(run.config, limit=None, test_limit=None))      # as `eval` reads it
    x, t = ds.x_test, ds.t_test
    start = time.perf_counter()
    ours = generate_batched(run.model, x, run.start_id, t.shape[1] - 1, batch_size=BATCH)
    with tempfile.TemporaryDirectory() as out:
        export_run(path, out)
        m = import_exported(Path(out), run.config["model"]).load(out)
    dtype = str(next(m.parameters()).dtype).replace("torch.", "")
    theirs, diff, scale = [], 0.0, 0.0
    with torch.no_grad(), tg.no_grad():
        for i in range(0, len(x), BATCH):
            xb, tb = x[i:i + BATCH], t[i:i + BATCH, :-1]
            theirs.append(m.generate(torch.from_numpy(xb), t.shape[1] - 1, run.start_id).numpy())
            a, b = run.model.logits(xb, tb).numpy(), m(torch.from_numpy(xb), torch.from_numpy(tb)).numpy()
            diff, scale = max(diff, float(np.abs(a - b).max())), max(scale, float(np.abs(a).max()))
        theirs = np.concatenate(theirs)
        # the same weights in float64 on both sides: what is left is the difference of the two functions
        run.model.to(np.float64)
        m.double()
        diff64 = max(float(np.abs(run.model.logits(x[i:i + BATCH], t[i:i + BATCH, :-1]).numpy() - m(
            torch.from_numpy(x[i:i + BATCH]), torch.from_numpy(t[i:i + BATCH, :-1])).numpy()).max())
            for i in range(0, len(x), BATCH))
    c, sizes = run.config, run.model.config
    trained = (f"{'reversed, ' if c.get('reverse') else ''}D={sizes.get('wordvec_size')} H={sizes.get('hidden_size')}, "
               f"lr {c.get('lr')} {c.get('lr_schedule')}, {run.meta.get('step')} steps of {c.get('batch_size')}")
    return {"run": str(path), "model": run.config["model"], "dataset": ds.name, "checkpoint": run.checkpoint.name,
            "epoch": run.meta.get("epoch"), "trained": trained, "questions": len(x), "ours": float(exact_match(ours, t).mean()),
            "torch": float(exact_match(theirs, t).mean()), "identical": int((ours == theirs).all(axis=1).sum()),
            "max_diff": diff, "max_diff64": diff64, "max_logit": scale, "dtype": dtype,
            "seconds": time.perf_counter() - start}


HEADERS = ["model", "dataset", "training", "checkpoint (epochs done)", "test questions", "eval accuracy", "PyTorch accuracy",
           "identical answers", "max |logit difference|",
           "the same in float64", "max |logit|"]


def rows(results) -> list[list[str]]:
    return [[r["model"], r["dataset"], r["trained"], f"{r['checkpoint']} ({r['epoch']})", f"{r['questions']:,}",
             f"{100 * r['ours']:.2f}%", f"{100 * r['torch']:.2f}%", f"{r['identical']:,} / {r['questions']:,}",
             f"{r['max_diff']:.2e} ({r['dtype']})", f"{r['max_diff64']:.1e}", f"{r['max_logit']:.1f}"] for r in results]


def markdown(results, torch) -> str:
    table = markdown_table(HEADERS, rows(results))
    blas, threads = blas_threads()
    return "\n".join([
        "## PyTorch", "",
        "Each run exported with `tinygrad-s2s export RUN --format torch` (the same `export_run`), its `model.py`",
        "loaded with torch, and compared with our model on the whole test split: greedy answers against the",
        "ids `tinygrad-s2s eval` decodes, and the teacher-forced logits of every decoder step, in the runs'",
        "float32 and with the same weights cast to float64 on both sides (what remains there is the difference",
        "of the two functions, not rounding).", "",
        *table, "",
        f"Measured by `{command_line()}` on {cpu_model()}, {os.cpu_count()} cores (shared with other work, load "
        f"average {load_average()}), BLAS {blas} ({threads} threads; "
        f"{kernel_pin().lstrip(' |')}), Python {platform.python_version()}, NumPy {np.__version__}, PyTorch "
        f"{torch.__version__}; commit {commit()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.torch_export_check", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or checkpoints")
    p.add_argument("--tolerance", type=float, default=1e-5, help="largest logit difference accepted (default 1e-5)")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as a markdown section to FILE")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        raise SystemExit("torch_export_check needs torch and safetensors: pip install -e '.[export,bench]'") from None

    results = []
    for path in args.runs:
        results.append(check_run(path, torch))
        r = results[-1]
        print(f"{r['model']}: {r['identical']}/{r['questions']} identical answers, accuracy "
              f"{100 * r['ours']:.2f}% (eval) / {100 * r['torch']:.2f}% (PyTorch), max logit difference "
              f"{r['max_diff']:.2e} ({r['seconds']:.0f} s)", flush=True)
    text = markdown(results, torch)
    print("\n" + text)
    if args.markdown:
        write_section(args.markdown, text, "## PyTorch")
    bad = [r["model"] for r in results
           if r["identical"] != r["questions"] or r["ours"] != r["torch"] or not r["max_diff"] <= args.tolerance
           or not r["max_diff64"] <= 1e-9]
    if bad:
        print(f"torch_export_check: the export of {', '.join(bad)} differs from ours", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
