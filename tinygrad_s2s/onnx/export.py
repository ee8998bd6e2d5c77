"""`tg.onnx.export(fn, example_inputs, path)`: trace `fn` on the example, lower every op it ran through
that op's own `onnx` method, and write an ONNX model (opset 17) that `onnx.checker` accepts and
onnxruntime runs: its inputs and outputs are fn's, its parameters initializers named by module path
(`decoder.affine.weight`). Importing this module needs neither onnx nor onnxruntime; exporting needs
onnx, and checking the export (`verify=True`, the default) onnxruntime: both come with the `export`
extra (`pip install 'tinygrad-s2s[export]'`).

The trace holds for the example's shapes and Python branches (as torch.onnx.export's): axes named in
`dynamic_axes` are left free in the model's signature, and `verify` checks the model against fn on the
example itself. See docs/guide/export.md.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from .. import backend
from .._version import __version__
from ..autograd import TensorBase, no_grad
from ..nn import Module
from ..serialization import write_bytes
from ..tensor import Tensor
from .trace import OnnxExportError, Trace, issue_warnings, lower

__all__ = ["OPSET", "TOLERANCES", "check_outputs", "export", "require", "run_model", "to_model"]

OPSET = 17
"""The ONNX opset exported models import (ONNX 1.12's; onnxruntime has run it since 1.12)."""

TOLERANCES = {np.dtype(np.float32): (1e-4, 1e-5), np.dtype(np.float64): (1e-9, 1e-11)}
"""dtype -> (rtol, atol) within which an exported model's outputs must equal fn's: the runtime's kernels
(its exp, tanh, GEMM order) are not ours, so float32 results differ in the last bits."""


def require(module: str):
    """Import onnx or onnxruntime, or fail naming the extra that installs them."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"tinygrad_s2s.onnx needs the '{module}' package, which the 'export' extra "
                                  "installs: pip install 'tinygrad-s2s[export]'") from None


def _leaf_names(fn) -> dict:
    """id(tensor) -> module path name of every parameter and buffer of fn's module (fn a Module or a
    bound method of one)."""
    owner = fn if isinstance(fn, Module) else getattr(fn, "__self__", None)
    names = {}
    if isinstance(owner, Module):
        for path, m in owner.named_modules():
            for kind in (m._params, m._buffers):
                for name, t in kind.items():
                    if t is not None:
                        names.setdefault(id(t), f"{path}.{name}" if path else name)
    return names


def _flatten(out, what="output") -> list:
    """The tensors of a (nested) result, in order; None and ints are left out."""
    if isinstance(out, TensorBase):
        return [out]
    if isinstance(out, dict):
        return [t for k in out for t in _flatten(out[k], what)]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o, what)]
    if out is None or isinstance(out, (int, float, np.integer)):
        return []
    raise TypeError(f"tg.onnx.export: fn returned a {type(out).__name__} among its outputs; expected Tensors "
                    "(in tuples, lists or dicts)")


def to_model(fn, example_inputs, *, input_names=None, output_names=None, dynamic_axes=None, opset: int = OPSET,
             doc: str = ""):
    """Trace `fn(*example_inputs)` and build the ONNX model of it (what `export` writes), checked by
    `onnx.checker`; nothing is written and onnxruntime is not needed.

    Args:
        fn: a function of Tensors (a Module, a bound method, a lambda) returning Tensors, as `export`'s.
        example_inputs: one Tensor or array per positional argument of fn.
        input_names: the model's input names (default input0, input1, ...), one per example input.
        output_names: its output names (default output0, ...), one per Tensor fn returns.
        dynamic_axes: `{name: {axis: label}}` of inputs and outputs whose sizes may change.
        opset: the ONNX opset imported.
        doc: the model's doc_string.

    Returns:
        (model, inputs, outputs): the ModelProto, the example inputs as host arrays and fn's outputs on
            them as host arrays (what the model must reproduce).

    Raises:
        ValueError: input_names or output_names of the wrong length, or dynamic_axes naming a value the
            model does not have, or an axis its shape does not have.
        OnnxExportError: fn returned no Tensor, or ran an op that has no ONNX lowering (naming the op,
            its module and the line).
        TypeError: fn returned something other than Tensors in tuples, lists or dicts (None and ints
            among them are left out).
    """
    onnx = require("onnx")
    xs = [x if isinstance(x, TensorBase) else Tensor(np.asarray(x)) for x in example_inputs]
    input_names = list(input_names or [f"input{i}" for i in range(len(xs))])
    if len(input_names) != len(xs):
        raise ValueError(f"tg.onnx.export: {len(input_names)} input_names for {len(xs)} example inputs")
    trace = Trace(xs)
    with no_grad():
        result = trace.run(fn, *xs)
    outs = _flatten(result)
    if not outs:
        raise OnnxExportError("tg.onnx.export: fn returned no Tensor")
    output_names = list(output_names or [f"output{i}" for i in range(len(outs))])
    if len(output_names) != len(outs):
        raise ValueError(f"tg.onnx.export: {len(output_names)} output_names for {len(outs)} outputs")
    inputs = {id(t): (t, name) for t, name in zip(xs, input_names)}
    g, values = lower(trace, inputs, outs, _leaf_names(fn))
    issue_warnings(g)
    for value, name in zip(values, output_names):
        g.nodes.append(("Identity", [value], [name], {}, f"output/{name}"))
    dynamic = dynamic_axes or {}
    unknown = set(dynamic) - set(input_names) - set(output_names)
    if unknown:
        raise ValueError(f"tg.onnx.export: dynamic_axes names {sorted(unknown)}, which are not among the inputs "
                         f"{input_names} or outputs {output_names}")
    graph = onnx.helper.make_graph(
        [_node(onnx, *n) for n in g.nodes], "tinygrad_s2s",
        [_value_info(onnx, name, t, dynamic.get(name)) for t, name in zip(xs, input_names)],
        [_value_info(onnx, name, t, dynamic.get(name)) for t, name in zip(outs, output_names)],
        [onnx.numpy_helper.from_array(a, name) for name, a in g.initializers.items() if name in _used(g)])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="tinygrad-s2s", producer_version=__version__, doc_string=doc)
    model.ir_version = 8                  # opset 17's IR version: what older runtimes read too
    onnx.checker.check_model(model, full_check=True)
    host = [backend.to_numpy(x._data) for x in xs]
    return model, host, [backend.to_numpy(t._data).copy() for t in outs]


def _used(g) -> set:
    return {i for n in g.nodes for i in n[1]}


def _node(onnx, op_type, inputs, outputs, attrs, name):
    attrs = {k: onnx.helper.np_dtype_to_tensor_dtype(v) if isinstance(v, np.dtype) else v for k, v in attrs.items()}
    return onnx.helper.make_node(op_type, inputs, outputs, name=name, **attrs)


def _value_info(onnx, name, t, axes):
    shape = list(t.shape)
    for axis, label in (axes or {}).items():
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"tg.onnx.export: dynamic axis {axis} of '{name}', which has shape {tuple(shape)}")
        shape[axis] = label
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(t.dtype), shape)


def run_model(model, inputs: dict) -> list:
    """Run an ONNX model in onnxruntime on the CPU.

    Args:
        model: a ModelProto, its serialized bytes, or the path of a .onnx file.
        inputs: `input name -> array` for every input of the model.

    Returns:
        The model's outputs as NumPy arrays, in the order of its graph's outputs.
    """
    ort = require("onnxruntime")
    if not isinstance(model, (bytes, str, os.PathLike)):
        model = model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 4        # its errors come back as exceptions; its notes are not ours to show
    session = ort.InferenceSession(os.fspath(model) if isinstance(model, os.PathLike) else model, options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def export(fn, example_inputs, path, *, dynamic_axes=None, input_names=None, output_names=None,
           opset: int = OPSET, verify: bool = True) -> Path:
    """Trace `fn(*example_inputs)` once and write it to `path` as an ONNX model. A value read into Python
    from the inputs warns (TracerWarning): the trace holds for this example's shapes and branches.

    Args:
        fn: a function of Tensors (a Module, a bound method, a lambda) returning a Tensor or Tensors in
            tuples, lists or dicts (None and ints among them are left out). Its parameters become
            initializers named by module path; other tensors it did not compute from its inputs
            become constants.
        example_inputs: one Tensor or array per positional argument of fn.
        path: the .onnx file to write.
        dynamic_axes: `{name: {axis: label}}` for inputs and outputs whose sizes may change (a batch).
        input_names: the model's input names (default input0, input1, ...).
        output_names: its output names (default output0, ...).
        opset: the ONNX opset imported.
        verify: run the model in onnxruntime on the example first and require fn's outputs within
            `TOLERANCES` (nothing is written otherwise).

    Returns:
        The path written.

    Raises:
        OnnxExportError: an op without a lowering (naming the op, its module and the line that ran it),
            or, with `verify`, outputs that differ from fn's.
        ValueError: names or dynamic axes that do not fit the inputs and outputs (see `to_model`).
    """
    model, host, expected = to_model(fn, example_inputs, input_names=input_names, output_names=output_names,
                                     dynamic_axes=dynamic_axes, opset=opset)
    if verify:
        names = [i.name for i in model.graph.input]
        check_outputs(run_model(model, dict(zip(names, host))), expected, [o.name for o in model.graph.output])
    path = Path(path)
    write_bytes(path, model.SerializeToString())
    return path


def check_outputs(got, expected, names, where: str = "the exported model") -> None:
    """Compare a model's outputs with fn's: equal shape and dtype, floats within TOLERANCES (NaN equals
    NaN), other dtypes exactly.

    Args:
        got: the model's outputs (arrays).
        expected: fn's outputs, in the same order.
        names: the outputs' names, for the message.
        where: what produced `got`, for the message.

    Raises:
        OnnxExportError: at the first output that differs, naming it and its shapes and dtypes, or its
            first differing element and how many elements differ.
    """
    for name, a, e in zip(names, got, expected):
        if a.shape != e.shape or a.dtype != e.dtype:
            raise OnnxExportError(f"{where}: output '{name}' is {a.dtype} {a.shape}, fn gave {e.dtype} {e.shape}")
        if e.dtype.kind == "f":
            rtol, atol = TOLERANCES.get(e.dtype, TOLERANCES[np.dtype(np.float32)])
            bad = ~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = a != e
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise OnnxExportError(f"{where}: output '{name}' differs from fn's at {idx}: {a[idx]!r} against "
                                  f"{e[idx]!r} ({int(bad.sum())} of {bad.size} elements)")
