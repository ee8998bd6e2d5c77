"""`export_run(run, out)`: a trained run as a PyTorch model in `out`: `model.safetensors` (the weights in
PyTorch's layout, written with NumPy through `safetensors.numpy`: exporting needs no torch),
`config.json` (model name and settings, vocabulary, widths, start id, reversal, decoding) and
`model.py` (torch_model.py, copied: the modules, `load`, greedy `generate`)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

from .. import serialization
from ..training.rundir import check_output_dir
from .._version import __version__
from ..models.base import check_finite_parameters
from ..training.runfiles import load_run
from . import convert

__all__ = ["EXPORTABLE", "ExportError", "FORMAT", "export_run", "export_settings"]

SOURCE = Path(__file__).with_name("torch_model.py")


def _read_source_names() -> dict:
    """The file names, format and model list that torch_model.py defines, read from its source (it
    imports torch, which exporting does not need): they live there once."""
    found = {}
    for node in ast.parse(SOURCE.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], (ast.Name, ast.Tuple)):
            names = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets[0:1]
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for n, v in zip(names, values):
                found[n.id] = tuple(ast.literal_eval(k) for k in v.keys) if isinstance(v, ast.Dict) \
                    else ast.literal_eval(v) if isinstance(v, ast.Constant) else None
    return found


_NAMES = _read_source_names()
FORMAT, VERSION = _NAMES["FORMAT"], _NAMES["VERSION"]
CONFIG, WEIGHTS, MODULE = _NAMES["CONFIG"], _NAMES["WEIGHTS"], _NAMES["MODULE"]
FILES = (CONFIG, WEIGHTS, MODULE)
EXPORTABLE = _NAMES["MODELS"]
"""The models torch_model.py has a PyTorch module for (its MODELS: the zoo's five)."""


class ExportError(ValueError):
    """A run that cannot be exported to PyTorch, or an output directory it must not be written to."""


def _safetensors_numpy():
    try:
        from safetensors import numpy as st_numpy  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        raise ImportError("PyTorch export writes safetensors, which is not installed: pip install "
                          "'tinygrad-s2s[export]' (loading the export in PyTorch also needs torch: "
                          f"pip install 'tinygrad-s2s[export,bench]') ({exc})") from None
    return st_numpy


def export_settings(run) -> dict:
    """The config.json of a PyTorch export: what `model.py` needs to rebuild, feed and decode the model.

    Args:
        run: a loaded `Run` (training.runfiles.load_run).

    Returns:
        A JSON-ready dict: format and version, model name and config, vocabulary (id i is its i-th
            character), start id, pad, widths, reversal, greedy decoding settings, the weights file and
            the run's checkpoint, epoch, step and tinygrad_s2s version. Its "dtype" is None:
            `export_run` fills it in from the weights.
    """
    vocab = "".join(run.vocab.chars)        # id i is vocab[i]
    return {"format": FORMAT, "version": VERSION, "model": run.config["model"],
            "model_config": dict(run.model.config), "vocab": vocab, "start_id": run.start_id, "pad": " ",
            "question_width": run.question_width, "answer_width": run.answer_width, "reverse": run.reverse,
            "decoding": {"method": "greedy", "start_id": run.start_id, "max_len": run.answer_width - 1},
            "weights": WEIGHTS, "dtype": None,
            "source": {"checkpoint": str(run.checkpoint), "epoch": run.meta.get("epoch"),
                       "step": run.meta.get("step"), "tinygrad_s2s": __version__}}


def export_run(run, out) -> list[Path]:
    """Export a trained run to PyTorch: the weights as safetensors (written with NumPy, no torch),
    config.json and model.py.

    Args:
        run: a run directory or checkpoint file.
        out: the output directory: absent, empty, or an earlier PyTorch export (replaced).

    Returns:
        The paths written: the weights, config.json and model.py, in that order.

    Raises:
        ExportError: `out` is a file or holds other files, the run's model is not one of
            `EXPORTABLE`, or one of its parameters has no PyTorch counterpart.
        ImportError: safetensors is not installed (the `export` extra).
        FloatingPointError: a parameter holds NaN or Inf (a diverged run).
    """
    st_numpy = _safetensors_numpy()
    out = Path(out)
    check_output_dir(out, FILES.__contains__, CONFIG, FORMAT, "a PyTorch export", ExportError)
    loaded = load_run(run)
    name = loaded.config["model"]
    if name not in EXPORTABLE:
        raise ExportError(f"cannot export model {name!r} of {loaded.checkpoint} to PyTorch: there is a PyTorch "
                          f"module for {', '.join(EXPORTABLE)} only (a plugin's own model needs its own)")
    check_finite_parameters(loaded.model, f"export of {loaded.checkpoint}")
    try:
        state = convert.torch_state(loaded.model)
    except convert.ConversionError as exc:
        raise ExportError(f"cannot export model {name!r} of {loaded.checkpoint}: {exc}") from None
    settings = export_settings(loaded)
    settings["dtype"] = str(next(iter(state.values())).dtype)
    weights = st_numpy.save(state, metadata={"format": FORMAT, "model": name})
    out.mkdir(parents=True, exist_ok=True)
    serialization.write_bytes(out / WEIGHTS, weights)
    serialization.write_bytes(out / CONFIG, (json.dumps(settings, indent=2, allow_nan=False) + "\n").encode())
    serialization.write_bytes(out / MODULE, SOURCE.read_bytes())
    return [out / WEIGHTS, out / CONFIG, out / MODULE]
