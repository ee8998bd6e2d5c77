"""The `export` command: a trained run's model written for another runtime, in one of `FORMATS`."""
from __future__ import annotations

import importlib
from pathlib import Path

from .base import UsageError, emit_json

FORMATS = {
    "onnx": ("tinygrad_s2s.onnx", "the encoder and the one-step decoders as ONNX files (dynamic batch), "
             "model.json and a predict.py that needs NumPy and onnxruntime only"),
    "torch": ("tinygrad_s2s.torch_export", "the weights as safetensors and a PyTorch nn.Module"),
}
"""format -> (the module whose `export_run(run, out) -> list[Path]` writes it, what it writes). Both
need the `export` extra: pip install 'tinygrad-s2s[export]'."""


def add_subparsers(sub) -> None:
    """Add `export` to an argparse subparsers object."""
    p = sub.add_parser("export", help="write a run's model for onnxruntime or PyTorch",
                       description="Write a trained run's model (its best checkpoint) for another runtime: "
                                   + "; ".join(f"{k}: {v[1]}" for k, v in FORMATS.items())
                                   + ". The exported model is checked against this one before anything "
                                     "is written. Needs the 'export' extra.")
    p.add_argument("run", help="run directory or checkpoint (.npz)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="what to write")
    p.add_argument("--out", required=True, help="directory to write into (created if missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    """tinygrad-s2s export: the run's model written by its format's `export_run`; holds the run
    directory's lock meanwhile, so no training replaces the checkpoint halfway."""
    from .run import _held_run_dir  # noqa: PLC0415 - the run directory's lock, as eval holds it
    out = Path(args.out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"--out {out}: not a directory (a link or a file is not followed or replaced)")
    module_name = FORMATS[args.format][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise UsageError(f"--format {args.format}: this install has no {module_name}") from None
        raise
    with _held_run_dir(args.run):
        paths = module.export_run(args.run, out)
    if args.json:
        emit_json({"format": args.format, "out": str(out), "files": [str(p) for p in paths]})
    else:
        print(f"exported {args.run} as {args.format} to {out}:")
        for p in paths:
            print(f"  {p}")
    return 0
