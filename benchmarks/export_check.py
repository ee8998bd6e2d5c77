"""The ONNX export checked on whole test splits: each trained run is exported (`tinygrad-s2s export
--format onnx`), its test split decoded in onnxruntime by the exported files (predict.py's decoder) and
by the model itself (what `tinygrad-s2s eval` runs), and the two compared answer by answer.

    python -m benchmarks.export_check RUN [RUN ...] [--beam 3] [--write docs/results/export.md]

For each run it reports eval's exact-match accuracy, the exported model's, how many answers differ,
and the largest difference of any step's logits (the model's own ids fed to both). With --write FILE
it writes the table (with the machine, command, commit and date) as the "## ONNX" section of FILE,
replacing the one it holds and keeping its other sections (the PyTorch export's among them). Needs
the export extra.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tinygrad_s2s.autograd import no_grad
from tinygrad_s2s.onnx import export_run
from tinygrad_s2s.onnx.predict import ExportedModel
from tinygrad_s2s.training.evaluation import exact_match, generate_batched
from tinygrad_s2s.training.fingerprint import dataset_of
from tinygrad_s2s.training.runfiles import load_run

from .common import (blas_threads, command_line, commit, cpu_model, kernel_pin, load_average, markdown_table,
                     write_section)

CHUNK = 1000


def decode_both(run, exported, x):
    """(our greedy ids, the export's greedy ids, the largest |logit difference|) over x, in chunks."""
    length = run.answer_width - 1
    ours = generate_batched(run.model, x, run.start_id, length, batch_size=CHUNK)
    theirs, worst = [], 0.0
    for i in range(0, len(x), CHUNK):
        part = x[i:i + CHUNK]
        ids, logits = exported.decode(part)
        theirs.append(ids)
        with no_grad():          # the model's own logits, fed the model's own ids
            memory, state = run.model.decode_start(part)
            prev = np.full((len(part), 1), run.start_id, dtype=np.int64)
            for j, scores in enumerate(logits):
                out, state = run.model.decode_step(prev, memory, state)[:2]
                prev = ours[i:i + CHUNK, j:j + 1]
                same = (ids[:, :j] == ours[i:i + CHUNK, :j]).all(axis=1)   # rows both fed the same ids so far
                if same.any():
                    worst = max(worst, float(np.abs(out.numpy()[same] - scores[same]).max()))
    return ours, np.concatenate(theirs), worst


def check(run_path, beam: int) -> dict:
    run = load_run(run_path)
    config = dict(run.config, limit=None, test_limit=None)
    ds = dataset_of(config)
    x, t = ds.x_test, ds.t_test
    with tempfile.TemporaryDirectory() as d:
        files = export_run(run, Path(d))
        exported = ExportedModel(d)
        ours, theirs, worst = decode_both(run, exported, x)
        c = run.config
        trained = (f"{c.get('epochs')} epochs on {c.get('limit') or 'all'} examples, D={c.get('wordvec')} "
                   f"H={c.get('hidden')}" + "".join(f" {k}={v}" for k, v in (c.get("model_args") or {}).items()))
        row = {"run": str(run_path), "model": run.config["model"], "trained": trained, "dataset": ds.name,
               "questions": len(x),
               "files": len(files) - 2, "eval": float(exact_match(ours, t).mean()),
               "onnx": float(exact_match(theirs, t).mean()), "differ": int((ours != theirs).any(axis=1).sum()),
               "logits": worst}
        if beam > 1:
            b_ours = run.model.beam_search(x, run.start_id, run.answer_width - 1, beam=beam)[0][:, 0]
            b_theirs = np.concatenate([exported.beam_search(x[i:i + CHUNK], beam)[0] for i in range(0, len(x), CHUNK)])
            row.update(beam=beam, beam_eval=float(exact_match(b_ours, t).mean()),
                       beam_onnx=float(exact_match(b_theirs, t).mean()),
                       beam_differ=int((b_ours != b_theirs).any(axis=1).sum()))
    return row


def table(rows) -> list[str]:
    beam = any("beam" in r for r in rows)
    head = ["model", "run (trained)", "test questions", "eval (greedy)", "exported (greedy)", "answers differing",
            "largest logit difference"] + (["eval (beam)", "exported (beam)", "beam answers differing"] if beam else [])
    body = []
    for r in rows:
        cells = [r["model"], f"`{r['run']}` ({r['trained']})", f"{r['questions']:,}", f"{r['eval']:.2%}", f"{r['onnx']:.2%}",
                 str(r["differ"]), f"{r['logits']:.1e}"]
        if beam:
            cells += ([f"{r['beam_eval']:.2%} (beam {r['beam']})", f"{r['beam_onnx']:.2%}", str(r["beam_differ"])]
                      if "beam" in r else ["", "", ""])
        body.append(cells)
    return markdown_table(head, body)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories or checkpoints")
    p.add_argument("--beam", type=int, default=1, help="also compare beam search with B hypotheses")
    p.add_argument("--write", type=Path, help="write the results as a Markdown page here")
    args = p.parse_args(argv)
    rows = []
    for run in args.runs:
        rows.append(check(run, args.beam))
        print(table(rows[-1:])[-1], flush=True)
    import onnxruntime  # noqa: PLC0415 - its version for the record
    blas, threads = blas_threads()
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; BLAS "
               f"{blas} ({threads} threads; {kernel_pin().lstrip(' |')}); Python {platform.python_version()}, NumPy "
               f"{np.__version__}, onnxruntime {onnxruntime.__version__}; load average at the end "
               f"{load_average()} (a shared machine)")
    lines = table(rows)
    print("\n".join(lines))
    if args.write:
        page = [
            "## ONNX", "",
            "Each run exported with `tinygrad-s2s export RUN --format onnx`, its whole test split decoded by the "
            "exported encoder and decoder steps in onnxruntime (the decoder of `predict.py`) and by the model "
            "itself (what `tinygrad-s2s eval` runs). *Answers differing* counts questions whose decoded answer "
            "differs; the logit difference is the largest over every step of every question (the same ids fed "
            "to both). Written by `benchmarks/export_check.py`.", "",
            *lines, "",
            f"Machine: {machine}.  ",
            f"Command: `{command_line()}`; commit {commit()}; "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
        ]
        write_section(args.write, "\n".join(page), "## ONNX")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
