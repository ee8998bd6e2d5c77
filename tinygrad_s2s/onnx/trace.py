"""Tracing: run a function once under `autograd.tracing`, keeping every op that ran (`Node`: the op,
its input and output tensors, its module path and the user's line), then lower the ops that the
outputs depend on into a `Builder`, each through its own `onnx` method.

The trace holds for the example it ran on, as torch.onnx.export's does: the shapes it saw (save those
declared dynamic) and the branch each Python `if` took. Where the function read a tensor's values into
Python (`bool(t)`, `t.item()`, `t.numpy()`, a comparison, `argmax`) on a tensor that depends on the
inputs, a `TracerWarning` names what was read and where: that value may decide a branch that another
input would take otherwise.
"""
from __future__ import annotations

import sys
import warnings

from .. import backend
from ..autograd import current_module_path, tracing
from ..autograd.errors import _user_frame
from .graph import Builder

__all__ = ["Node", "OnnxExportError", "Trace", "TracerWarning", "issue_warnings", "lower"]


class OnnxExportError(ValueError):
    """An export that cannot be made: an op without a lowering, a lowering that refused its input, an
    exported graph that disagrees with the function."""


class TracerWarning(UserWarning):
    """The trace may not hold for other inputs: a value read into Python, a random mask baked in."""


_ARRAY_PARAMS = ("index", "cond", "indices", "targets")
"""The op parameters that may carry an input's ids or mask (getitem, where, take_along_axis, the loss)."""


class Node:
    """One op as it ran: `fn` (the Function, its parameters as attributes), input and output tensors,
    the module path and the user's file:line."""
    __slots__ = ("fn", "inputs", "outputs", "module", "location")

    def __init__(self, fn, inputs, outputs, module, location):
        self.fn, self.inputs, self.outputs, self.module, self.location = fn, inputs, outputs, module, location

    def describe(self) -> str:
        return f"{self.fn.op} in module '{self.module or '<top level>'}' at {self.location}"


def _location(frame) -> str:
    f = _user_frame(frame)
    return "<unknown>" if f is None else f"{f.f_code.co_filename}:{f.f_lineno}"


class Trace:
    """The tracer `autograd.tracing` calls: records each op, and warns where a value that depends on the
    `inputs` (Tensors) is read into Python."""

    def __init__(self, inputs=()):
        self.nodes: list[Node] = []
        self.dependent = {id(t) for t in inputs}
        self.dependent_arrays = {id(t._data) for t in inputs}
        self.keep = list(inputs)           # ids stay unique while the trace holds its tensors

    def op(self, fn, inputs, outputs):
        self.nodes.append(Node(fn, inputs, outputs, current_module_path(), _location(sys._getframe(1))))
        if any(id(t) in self.dependent for t in inputs) or any(
                id(getattr(fn, p, None)) in self.dependent_arrays for p in _ARRAY_PARAMS):
            self.dependent.update(id(o) for o in outputs)

    def read(self, tensor, what: str):
        if id(tensor) in self.dependent:
            warnings.warn(f"{what} read the values of a tensor that depends on the inputs, in module "
                          f"'{current_module_path() or '<top level>'}' at {_location(sys._getframe(1))}: the "
                          "exported graph holds the shapes and the Python branches of this example only, "
                          "and any value computed from what was read is a constant in it", TracerWarning,
                          stacklevel=3)

    def run(self, fn, *args):
        """fn(*args) under this trace."""
        with tracing(self):
            return fn(*args)


def lower(trace: Trace, inputs: dict, outputs: list, leaf_names: dict) -> Builder:
    """A Builder holding the ops `outputs` (tensors) depend on. inputs: id(tensor) -> input name;
    leaf_names: id(tensor) -> name for parameters and buffers (other leaves are unnamed constants).
    Returns the builder and each output's value name."""
    g = Builder({id(t._data): name for t, name in inputs.values()})
    names = {i: name for i, (t, name) in inputs.items()}
    for t, name in inputs.values():
        g.meta[name] = (tuple(t.shape), t.dtype)
    producer = {id(o): n for n in trace.nodes for o in n.outputs}
    _lower_nodes(g, _needed(trace.nodes, producer, outputs, names), names, leaf_names)
    for t in outputs:
        _name_of(g, t, names, leaf_names)
    return g, [names[id(t)] for t in outputs]


def _needed(nodes, producer, outputs, names) -> list:
    """The nodes the outputs depend on, in the order they ran (an iterative walk: deep graphs work)."""
    seen, stack = set(), [t for t in outputs]
    while stack:
        t = stack.pop()
        n = producer.get(id(t))
        if n is None or id(n) in seen or id(t) in names:
            continue
        seen.add(id(n))
        stack.extend(n.inputs)
    return [n for n in nodes if id(n) in seen]


def _name_of(g: Builder, t, names: dict, leaf_names: dict) -> str:
    """The value name of tensor t: traced, an input, or a leaf made an initializer here."""
    key = id(t)
    if key not in names:
        name = leaf_names.get(key) or f"const_{len(g.initializers)}_{len(names)}"
        g.add_initializer(name, backend.to_numpy(t._data).copy())
        names[key] = name
    return names[key]


def _lower_nodes(g: Builder, nodes, names: dict, leaf_names: dict) -> None:
    for node in nodes:
        ins = [_name_of(g, t, names, leaf_names) for t in node.inputs]
        fn, outer = node.fn, g.node
        g.node = node
        try:
            method = getattr(type(fn), "onnx", None)
            outs = NotImplemented if method is None else method(fn, g, *ins)
            if outs is NotImplemented and getattr(type(fn), "reference", None) is not None:
                outs = _lower_reference(g, node, names, leaf_names)
            elif outs is NotImplemented:
                raise OnnxExportError(f"{node.describe()}: op '{fn.op}' ({type(fn).__name__}) has no ONNX "
                                      f"lowering; give {type(fn).__name__} an onnx(self, g, *inputs) method (see "
                                      "tinygrad_s2s/ops/base.py) or a reference composition of ops that have one")
        except OnnxExportError:
            raise
        except (NotImplementedError, KeyError, ValueError, TypeError) as exc:
            raise OnnxExportError(f"{node.describe()}: its ONNX lowering failed: {exc}") from exc
        finally:
            g.node = outer
        outs = outs if isinstance(outs, tuple) else (outs,)
        for t, name in zip(node.outputs, outs):
            names[id(t)] = name
            g.meta.setdefault(name, (tuple(t.shape), t.dtype))


def _lower_reference(g: Builder, node, names, leaf_names):
    """An op without a lowering of its own, written as its reference composition (traced now)."""
    sub = Trace()
    result = sub.run(node.fn.reference, *node.inputs)
    result = result if isinstance(result, tuple) else (result,)
    for n in sub.nodes:            # errors and names point at the fused op's own module and line
        n.module, n.location = node.module, node.location
    _lower_nodes(g, sub.nodes, names, leaf_names)
    return tuple(_name_of(g, t, names, leaf_names) for t in result)


def issue_warnings(g: Builder) -> None:
    for message in dict.fromkeys(g.warnings):
        warnings.warn(message, TracerWarning, stacklevel=3)
