"""`Tensor`: the engine's tensor (`autograd.TensorBase`: data, versions, gradients) with its operators
and op methods. It sits above the ops it calls; the engine makes every op's output a Tensor
(`set_tensor_class`), so `tg.exp(x).sum()` works on what any op returns.

This module is also `tg.tensor`, PyTorch's factory: calling it is `tinygrad_s2s.ops.factories.tensor`
(see `_TensorModule`)."""
from __future__ import annotations

import sys
import types

import numpy as np

from . import backend
from .autograd import TensorBase, is_grad_enabled, set_tensor_class
from .autograd.engine import backward as _backward
from .ops import factories as _factories
from .ops.base import numpy_keywords
from .ops import (abs, add, broadcast_to, clip, div, exp, expand_dims, getitem, log, log_softmax, logsumexp,
                  matmul, max, mean, mul, neg, pow, relu, repeat, reshape, sigmoid, softmax, sqrt, squeeze, sub,
                  sum, tanh, transpose)


class Tensor(TensorBase):
    """An n-dimensional array that records the ops applied to it, for reverse-mode autodiff.

    `Tensor(data, requires_grad=False, dtype=None, name=None)`: `data` is an array, a nested list or a
    number (Python floats take the default dtype, float32 unless `tg.set_default_dtype` changed it);
    a NumPy array is shared, not copied. Operators (`+ - * / ** @`, unary `-`, `abs`, indexing) and the
    methods below are the ops of `tinygrad_s2s.ops`, recorded for `backward` when a gradient is needed.
    """
    __slots__ = ()

    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires a gradient.

        `grad`: the upstream gradient (implied 1 for a one-element tensor). `create_graph=True`
        records the backward pass itself, so each `.grad` is a Tensor with a graph that can be
        differentiated again (Hessian-vector products, gradient penalties). `retain_graph` keeps
        this graph for another backward; it defaults to `create_graph`.
        """
        _backward(self, grad, retain_graph, create_graph)

    # ---- operators: the ops of the same name
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __pow__(self, other):
        return pow(self, other)

    def __rpow__(self, other):
        return pow(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return neg(self)

    def __abs__(self):
        return abs(self)

    def __getitem__(self, index):
        return getitem(self, index)

    # ---- in place, as in PyTorch (see _in_place)
    def __iadd__(self, other):
        return _in_place(self, other, add, "+=", "add")

    def __isub__(self, other):
        return _in_place(self, other, sub, "-=", "subtract")

    def __imul__(self, other):
        return _in_place(self, other, mul, "*=", "multiply")

    def __itruediv__(self, other):
        return _in_place(self, other, div, "/=", "divide")

    # ---- comparisons: constant boolean tensors (no gradient flows through a comparison)
    def __lt__(self, other):
        return _compare(np.less, self, other)

    def __le__(self, other):
        return _compare(np.less_equal, self, other)

    def __gt__(self, other):
        return _compare(np.greater, self, other)

    def __ge__(self, other):
        return _compare(np.greater_equal, self, other)

    # ---- op methods: `t.exp()` is `tg.exp(t)`, `t.sum(axis=1)` is `tg.sum(t, axis=1)` (the same functions)
    exp = exp
    log = log
    sqrt = sqrt
    sigmoid = sigmoid
    tanh = tanh
    relu = relu
    abs = abs
    clip = clip
    sum = sum
    mean = mean
    max = max
    logsumexp = logsumexp
    softmax = softmax
    log_softmax = log_softmax
    reshape = reshape
    squeeze = squeeze
    expand_dims = expand_dims
    broadcast_to = broadcast_to
    repeat = repeat
    matmul = matmul

    def transpose(self, *axes):
        """`t.transpose()` reverses the axes; `t.transpose(1, 0, 2)` or `t.transpose((1, 0, 2))` permutes."""
        return transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    @property
    def T(self):
        """The transpose (all axes reversed)."""
        return transpose(self)

    @numpy_keywords
    def argmax(self, axis=None):
        """Indices of the maxima along `axis` (a constant integer tensor)."""
        self._read("argmax()")
        return self._wrap(self.data.argmax(axis=axis), False)


def _compare(ufunc, t, other):
    t._read(f"a comparison ({ufunc.__name__})")
    return t._wrap(ufunc(t.data, other.data if isinstance(other, TensorBase) else other), False)


def _in_place(t, other, op, sym, ufunc):
    """`t += u` and the like, as in PyTorch: in place on t's array (a version bump) where nothing
    records it (no_grad, or a tensor that needs no gradient), which is what a hand-written update
    `p -= lr * p.grad` means; a new graph node for a tensor an op made (`loss += l`); refused on a leaf
    that requires grad while recording, where an in-place change would be lost to the graph."""
    if is_grad_enabled() and t.requires_grad:
        if t.creator is None:
            raise RuntimeError(f"{sym} on a leaf tensor that requires grad (shape {t.shape}) while the graph is "
                               "recorded: do the update under tg.no_grad() (as an optimizer step does), or write "
                               f"t = t {sym[0]} ... for a new tensor")
        return op(t, other)
    t._check_in_place(sym)
    u = other.data if isinstance(other, TensorBase) else other
    try:
        getattr(backend.get_array_module(t.data), ufunc)(t.data, u, out=t.data)
    except (ValueError, TypeError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError   # NumPy's own types need more arguments
        raise kind(f"{sym} in place on a tensor of shape {t.shape} and dtype {t.dtype}: {exc}") from None
    t.bump_version()
    return t


set_tensor_class(Tensor)


class _TensorModule(types.ModuleType):
    """`tg.tensor([1., 2.], requires_grad=True)` is PyTorch's factory (a copy of the data), and
    `tinygrad_s2s.tensor` is the module of `Tensor`: the package attribute `tensor` can be only one
    object, so this module is callable. A plain function there would break `import tinygrad_s2s.tensor
    as m` and `tinygrad_s2s.tensor.Tensor`, which look the attribute up before `sys.modules`."""

    def __call__(self, *args, **kwargs):
        """`tinygrad_s2s.ops.factories.tensor` (its arguments and defaults): a new leaf holding a copy of `data`."""
        return _factories.tensor(*args, **kwargs)


sys.modules[__name__].__class__ = _TensorModule


def __getattr__(name):
    # the engine's names this module held before the package was split into layers (kept until 0.2)
    from . import autograd
    if name in autograd.__all__:
        from ._compat import moved_name
        return moved_name(__name__, name, "tinygrad_s2s.autograd")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
