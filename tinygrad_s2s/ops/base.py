"""What every op module shares: `Op` (a primitive whose backward runs on arrays and on Tensors),
`_pair` (two operands as Tensors) and `_xp`, the array module that backward code calls.

Backward code written once as `_xp(v).exp(v)` runs on arrays (a first-order backward: NumPy or CuPy)
and on Tensors (`create_graph=True`: ops, so the gradient is itself a graph). For Tensors `_xp` gives
`tensor_functions`, which holds the ops that stand for the array functions backward code uses; each op
module registers its own with `@array_function(name)`. `@numpy_keywords` marks a function that takes
NumPy's `axis=`/`keepdims=`, so PyTorch's `dim=`/`keepdim=` get an answer in our spelling.
"""
from __future__ import annotations

import functools
import types

from numpy.lib.array_utils import normalize_axis_tuple

from .. import backend
from ..autograd import Function, TensorBase, as_tensor

tensor_functions = types.SimpleNamespace()


def array_function(name: str):
    """Register the decorated function as `_xp(t).<name>` for Tensors (numpy's name and signature)."""
    def register(f):
        setattr(tensor_functions, name, f)
        return f
    return register


TORCH_KEYWORDS = {"dim": "axis", "keepdim": "keepdims"}
"""PyTorch's keyword -> ours (NumPy's), for the same meaning."""


def numpy_keywords(f):
    """Refuse PyTorch's `dim=` / `keepdim=` on a function that takes NumPy's `axis=` / `keepdims=`, with a
    TypeError naming ours ("sum() takes axis=, not dim= (NumPy's name)"), not Python's "unexpected
    keyword argument". The one place this check is made; every public function with `axis` wears it
    (tests/unit/ops/test_torch_keywords.py finds any that does not)."""
    @functools.wraps(f)
    def checked(*args, **kwargs):
        if kwargs and not kwargs.keys().isdisjoint(TORCH_KEYWORDS):
            theirs = next(k for k in kwargs if k in TORCH_KEYWORDS)
            raise TypeError(f"{f.__name__}() takes {TORCH_KEYWORDS[theirs]}=, not {theirs}= (NumPy's name)")
        return f(*args, **kwargs)
    return checked


def _xp(a):
    """The array module for an array, or `tensor_functions` for a Tensor."""
    return tensor_functions if isinstance(a, TensorBase) else backend.get_array_module(a)


class Op(Function):
    """A primitive of this package: its backward is written once and runs on arrays and on Tensors."""
    twice_differentiable = True


def _pair(a, b):
    """Two operands as Tensors; a Python scalar takes the other operand's dtype and device."""
    if isinstance(a, TensorBase):
        return a, as_tensor(b, like=a)
    b = as_tensor(b)
    return as_tensor(a, like=b), b


def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else normalize_axis_tuple(axis, ndim)


def _drop(shape, ax):
    return tuple(s for i, s in enumerate(shape) if i not in ax)


# ---- ONNX lowerings. Each op class says how it is written in ONNX in an `onnx(self, g, *inputs)` method
# beside its forward: `g` is the exporter's graph builder (tinygrad_s2s.onnx.graph.Builder; this layer
# never imports onnx), `inputs` are the names of the op's input values, and the method returns the name
# of its output (a tuple of names for several). `self` is the node as traced: its parameters and what its
# forward worked out (normalised axes, split bounds) are attributes. A method may return NotImplemented
# for an input it cannot write exactly: the exporter then writes the op's `reference` composition.
# These two make the common methods.
def onnx_unary(op_type: str):
    """The `onnx` method of an op that is one ONNX node of one input (Exp, Tanh, ...)."""
    def onnx(self, g, x):
        return g.op(op_type, x)
    onnx.__doc__ = f"ONNX: {op_type}."
    return onnx


def onnx_binary(op_type: str):
    """The `onnx` method of a broadcasting op of two inputs: both cast to the output's dtype where a
    Python scalar or a mixed pair left them apart (ONNX takes one type), then one node."""
    def onnx(self, g, a, b):
        dt = g.out_dtype()
        return g.op(op_type, g.cast(a, dt), g.cast(b, dt))
    onnx.__doc__ = f"ONNX: {op_type} (numpy broadcasting is ONNX's multidirectional broadcasting)."
    return onnx
