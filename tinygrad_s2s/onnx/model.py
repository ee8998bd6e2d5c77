"""`export_run(run, out)`: a trained zoo model (any `Seq2seqModel`) as ONNX files and a JSON sidecar that
`predict.py` (NumPy and onnxruntime only) decodes with.

The encoder is `model.decode_start(xs)` traced: its outputs are the leaves of (memory, state). The
one-step decoder is `model.decode_step(ids, memory, state)` traced: its inputs are ids (N, 1) and those
leaves, its outputs the logits (N, V) and the new state's leaves. A trace holds for the state's shapes
and Python values (a None start state, a step counter, a cache that grows), so a step is traced again
until its input state looks like the one before (same structure, same non-batch shapes, same Python
values): one file then serves every later step. A recurrent decoder needs two (step 0 starts from a
None cell state), the Transformer one per answer position (its cache grows). Every axis 0 is a
dynamic batch. Before anything is written, the files decode examples of two batch sizes in
onnxruntime, whose answers must equal the model's own and whose logits must agree within 1e-4.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..serialization import TMP_PREFIX, write_bytes
from ..tensor import Tensor
from ..training.rundir import check_output_dir
from ..training.runfiles import Run, load_run
from .export import _flatten, to_model
from .predict import FORMAT, SIDECAR, ExportedModel
from .trace import OnnxExportError

__all__ = ["LOGITS_TOLERANCE", "check_export", "export_model", "export_run", "write_checked"]

LOGITS_TOLERANCE = 1e-4
"""How far an exported model's logits may be from the model's own (absolute, float32 kernels differ)."""

_CHECK_BATCHES = (3, 5)
PREDICT = "predict.py"


def _signature(tree):
    """What a trace of decode_step depends on in its state: structure, Python values, non-batch shapes."""
    if isinstance(tree, Tensor):
        return ("tensor", tuple(tree.shape[1:]), str(tree.dtype))
    if isinstance(tree, dict):
        return ("dict", tuple((k, _signature(v)) for k, v in tree.items()))
    if isinstance(tree, (tuple, list)):
        return (type(tree).__name__, tuple(_signature(t) for t in tree))
    return ("value", repr(tree))


def _fill(tree, leaves):
    """`tree` with its Tensors replaced, in order, by `leaves` (an iterator)."""
    if isinstance(tree, Tensor):
        return next(leaves)
    if isinstance(tree, dict):
        return {k: _fill(v, leaves) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        items = [_fill(t, leaves) for t in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    return tree


def _batch_axes(names):
    return {n: {0: "batch"} for n in names}


def export_run(run, out, *, examples: int = _CHECK_BATCHES[0]) -> list[Path]:
    """Write a trained run's model to ONNX: encoder.onnx, decoder_step*.onnx, the model.json sidecar and
    predict.py. The files are checked in onnxruntime at two batch sizes, in a staging folder inside
    `out`, before they are written there.

    Args:
        run: a run directory, a checkpoint file, or a loaded `Run`.
        out: the output directory: absent, empty, or an earlier ONNX export (whose files are replaced).
        examples: the batch size of the random questions the model is traced on.

    Returns:
        The paths written in `out`.

    Raises:
        OnnxExportError: `out` holds other files or is a file, the model runs an op that has no ONNX
            lowering, or the exported files' answers or logits disagree with the model's.
    """
    run = run if isinstance(run, Run) else load_run(run)
    name = run.config.get("model", type(run.model).__name__)
    files, sidecar = export_model(run.model, len(run.vocab), run.question_width, run.start_id, run.answer_width - 1,
                                  name, examples)
    sidecar.update({"model_config": run.config.get("model_config"), "vocab": list(run.vocab.chars),
                    "question_width": run.question_width, "answer_width": run.answer_width,
                    "reverse": run.reverse})
    return write_checked(run.model, files, sidecar, Path(out), len(run.vocab))


def export_model(model, vocab_size: int, width: int, start_id: int, length: int, name: str, examples: int = 3):
    """(ONNX models by file name, the sidecar's decoding part) of a Seq2seqModel traced on random ids
    (examples, width): the encoder and the one-step decoders of `length` steps."""
    model.eval()
    xs = np.random.default_rng(0).integers(0, vocab_size, (examples, width)).astype(np.int64)
    files, steps = {}, []
    with no_grad():
        memory, state = model.decode_start(xs)
    memory_names = [f"memory{i}" for i in range(len(_flatten(memory)))]
    state_names = [f"state0_{i}" for i in range(len(_flatten(state)))]
    files["encoder.onnx"] = to_model(lambda x: _flatten(model.decode_start(x)), [Tensor(xs)], input_names=["xs"],
                                     output_names=memory_names + state_names, doc=f"{name} encoder",
                                     dynamic_axes=_batch_axes(["xs", *memory_names, *state_names]))[0]
    ids = np.full((examples, 1), start_id, dtype=np.int64)
    seen, n_memory = None, len(memory_names)
    for j in range(length):
        if _signature(state) == seen:
            break                      # the last step's file serves every step from here on
        seen = _signature(state)

        def step(ids_t, *leaves, template=(memory, state), n_m=n_memory):
            mem, st = _fill(template[0], iter(leaves[:n_m])), _fill(template[1], iter(leaves[n_m:]))
            logits, new_state = model.decode_step(ids_t, mem, st)[:2]
            return [logits, *_flatten(new_state)]
        with no_grad():
            logits, new_state = model.decode_step(ids, memory, state)[:2]
        out_names = [f"state{j + 1}_{i}" for i in range(len(_flatten(new_state)))]
        names = ["ids", *memory_names, *state_names, "logits", *out_names]
        files[f"decoder_step{j}.onnx"] = to_model(
            step, [Tensor(ids), *_flatten(memory), *_flatten(state)], input_names=names[:-1 - len(out_names)],
            output_names=names[-1 - len(out_names):], dynamic_axes=_batch_axes(names), doc=f"{name} decoder step {j}")[0]
        steps.append({"file": f"decoder_step{j}.onnx", "from_step": j, "state_in": state_names,
                      "state_out": out_names})
        state, state_names = new_state, out_names
        ids = np.asarray(logits.numpy().argmax(axis=1), dtype=np.int64)[:, None]
    sidecar = {"format": FORMAT, "version": 1, "model": name, "start_id": int(start_id), "question_width": width,
               "reverse": False, "vocab": [], "decoding": {"length": length, "greedy": "argmax, ties to the lower id",
                                                           "beam": "summed log-probabilities, no end id, no length penalty"},
               "encoder": {"file": "encoder.onnx", "input": "xs"}, "memory": memory_names, "steps": steps,
               "logits": "logits"}
    return files, sidecar


def _owned(name: str) -> bool:
    """Whether an ONNX export writes a file of this name (an earlier one is written over)."""
    return name in (SIDECAR, PREDICT) or name.endswith(".onnx")


def write_checked(model, files: dict, sidecar: dict, out: Path, vocab_size: int) -> list[Path]:
    """Write the files into a staging folder inside `out`, check them (`check_export`) at two batch sizes,
    then into `out` (refused where it holds anything but an earlier ONNX export, whose files left over
    are removed); returns the paths written there."""
    earlier = check_output_dir(out, _owned, SIDECAR, FORMAT, "an ONNX export", OnnxExportError)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=f"{TMP_PREFIX}{os.getpid()}-check-"))
    try:
        _write(staging, files, sidecar)
        rng = np.random.default_rng(1)
        for n in _CHECK_BATCHES:
            xs = rng.integers(0, vocab_size, (n, sidecar["question_width"])).astype(np.int64)
            check_export(model, sidecar["start_id"], staging, xs)
        written = _write(out, files, sidecar)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for name in set(earlier) - {p.name for p in written}:     # an earlier export's extra decoder steps
        (out / name).unlink(missing_ok=True)
    return written


def _write(directory: Path, files: dict, sidecar: dict) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, proto in files.items():
        write_bytes(directory / fname, proto.SerializeToString())
        paths.append(directory / fname)
    write_bytes(directory / SIDECAR, (json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    write_bytes(directory / PREDICT, Path(__file__).with_name(PREDICT).read_bytes())
    return paths + [directory / SIDECAR, directory / PREDICT]


def check_export(model, start_id: int, directory, xs) -> float:
    """Decode xs with the exported files and with the model: each step's logits within LOGITS_TOLERANCE and
    the same greedy ids (else OnnxExportError); returns the largest logit difference.

    Where the model's best token leads the exported model's pick by no more than twice the tolerance (a
    near-tie), either may round to either token; that is no error, and the model then follows the
    exported model's pick, so that every later step still compares the same inputs."""
    exported = ExportedModel(directory)
    got_ids, got_logits = exported.decode(xs)
    worst = 0.0
    with no_grad():
        memory, state = model.decode_start(xs)
        ids = np.full((len(xs), 1), start_id, dtype=np.int64)
        for j, scores in enumerate(got_logits):
            logits, state = model.decode_step(ids, memory, state)[:2]
            ours = logits.numpy()
            worst = max(worst, float(np.abs(ours - scores).max()) if ours.size else 0.0)
            if ours.shape != scores.shape or worst > LOGITS_TOLERANCE:
                raise OnnxExportError(f"the exported decoder's logits at step {j} (batch {len(xs)}) differ from the "
                                      f"model's by {worst:.3g} (> {LOGITS_TOLERANCE})")
            theirs = got_ids[:, j].astype(np.int64)
            rows = np.arange(len(theirs))
            lead = ours[rows, ours.argmax(axis=1)] - ours[rows, theirs]
            if lead.size and lead.max() > 2 * LOGITS_TOLERANCE:
                raise OnnxExportError(f"the exported decoder picks other ids than the model at step {j} "
                                      f"(batch {len(xs)}), where the model's choice leads by {lead.max():.3g}")
            ids = theirs[:, None]
    return worst
