"""`Tensor`: the engine's tensor (`autograd.TensorBase`: data, versions, gradients) with its operators
and op methods. It sits above the ops it calls; the engine makes every op's output a Tensor
(`set_tensor_class`), so `tg.exp(x).sum()` works on what any op returns.

This module is also `tg.tensor`, PyTorch's factory: calling it is `tinygrad_s2s.ops.factories.tensor`
(see `_TensorModule`)."""
from __future__ import annotations

import difflib
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

    Operators (`+ - * / ** @`, unary `-`, `abs`, indexing, `< <= > >=`) and the methods below are the
    ops of `tinygrad_s2s.ops`, recorded for `backward` when a gradient is needed. `tg.tensor(data)`
    makes one holding a copy (PyTorch's habit); `Tensor(ndarray)` shares the array.

    Args:
        data: an array (NumPy or CuPy; shared, not copied), a Tensor, a nested list or a number.
        requires_grad: make it a leaf that collects `.grad` (real floating point data only).
        dtype: a NumPy dtype to convert to; default: an array keeps its own, Python floats take the
            default float dtype (float32 unless `tg.set_default_dtype` changed it).
        name: a label that the graph drawings show.
    """
    __slots__ = ()
    is_param = False        # True on nn.Parameter: the drawings show parameters as such

    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires a gradient.

        Args:
            grad: the upstream gradient, of `self`'s shape (a Tensor or array); default 1, allowed only
                for a one-element tensor (a loss).
            retain_graph: keep this graph for another backward; defaults to `create_graph`.
            create_graph: record the backward pass itself, so each `.grad` is a Tensor with a graph that
                can be differentiated again (Hessian-vector products, gradient penalties).

        Raises:
            RuntimeError: this tensor does not require a gradient, the graph was freed by an earlier
                backward (pass `retain_graph=True` to the first), or a tensor saved for the backward
                was changed in place since.
            ValueError: no `grad` for a tensor of more than one element, or a `grad` of another shape.
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
        """Permute the axes: `t.transpose()` reverses them, `t.transpose(1, 0, 2)` or `t.transpose((1, 0, 2))` permutes.

        NumPy's meaning (a full permutation), not PyTorch's swap of two axes; `t.permute(...)` is the same.

        Args:
            *axes: nothing (reverse every axis, as `t.T`), or a permutation of `range(t.ndim)` as ints
                or one tuple.

        Returns:
            Tensor: a view of `t`'s data with the axes permuted.
        """
        return transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    @property
    def T(self):
        """The transpose: every axis reversed (`t.transpose()`)."""
        return transpose(self)

    @numpy_keywords
    def argmax(self, axis=None):
        """Indices of the maxima along `axis` (NumPy's `argmax`; the first one on ties).

        Args:
            axis: an int, or None (the default) for the index into the flattened tensor.

        Returns:
            Tensor: an int64 tensor without `axis`, with no gradient.
        """
        self._read("argmax()")
        return self._wrap(self.data.argmax(axis=axis), False)

    # ---- PyTorch's spellings where the meaning is the same: each calls the op above, none is a second op.
    # Other PyTorch names answer with ours (PYTORCH_NAMES, via __getattr__).
    unsqueeze = expand_dims

    def view(self, *shape):
        """PyTorch's spelling of `reshape` (see there): `x.view(2, 3)` or `x.view((2, 3))`, one -1 allowed.

        Unlike `torch.Tensor.view`, it never fails on a non-contiguous tensor: the result shares the
        data where NumPy can reshape without copying, and is a copy otherwise. The gradient is the same.

        Args:
            *shape: the new shape, as ints or one tuple; its product must equal `self.size`.

        Returns:
            Tensor: `self`'s elements in the new shape, same dtype.

        Raises:
            ValueError: the new shape does not hold exactly `self.size` elements.
        """
        return reshape(self, *shape)

    def permute(self, *axes):
        """PyTorch's spelling of `transpose` with every axis given: `x.permute(1, 0, 2)`.

        Args:
            *axes: a permutation of `range(self.ndim)`, as ints or one tuple; axis `i` of the result is
                axis `axes[i]` of `self`.

        Returns:
            Tensor: the permuted tensor (shape `[self.shape[a] for a in axes]`).

        Raises:
            TypeError: no axes given (`x.transpose()` and `x.T` reverse them all).
            ValueError: `axes` is not a permutation of the tensor's axes.
        """
        if not axes:
            raise TypeError(f"permute() takes the order of all {self.ndim} axes, e.g. x.permute"
                            f"{tuple(reversed(range(self.ndim)))}; x.transpose() and x.T reverse them")
        return self.transpose(*axes)

    def flatten(self):
        """All elements in one axis, C order: `reshape(self, -1)` (PyTorch's default `flatten()`).

        For part of the axes, write the shape: `x.reshape(x.shape[0], -1)`.

        Returns:
            Tensor: a 1-D tensor of `self.size` elements.
        """
        return reshape(self, -1)

    def numel(self) -> int:
        """The number of elements, PyTorch's spelling of `self.size` (NumPy's int).

        Returns:
            int: the product of `self.shape` (1 for a scalar).
        """
        return int(self.size)

    def dim(self) -> int:
        """The number of axes, PyTorch's spelling of `self.ndim`.

        Returns:
            int: `len(self.shape)`.
        """
        return self.ndim

    def t(self):
        """The transpose of a tensor of at most 2 axes, as `torch.Tensor.t` (1-D and 0-D: itself).

        Returns:
            Tensor: `self.T`.

        Raises:
            ValueError: `self` has more than 2 axes (use `transpose` with the order you mean).
        """
        if self.ndim > 2:
            raise ValueError(f"t() takes a tensor of at most 2 axes, not shape {self.shape}; "
                             "x.transpose(...) (or x.permute(...)) with every axis permutes more")
        return transpose(self)

    def __getattr__(self, name):
        # only what normal lookup did not find: a PyTorch habit gets our spelling, a typo a suggestion
        raise AttributeError(missing_attribute(name))


PYTORCH_NAMES = {
    "contiguous": "not needed here: every op takes any memory layout, and reshape/view copy where they must; "
                  "drop .contiguous()",
    "clone": "x + 0 is a copy that stays in the graph; x.detach().to(x.dtype) a copy cut off from it",
    "float": "x.to(np.float32): a new leaf, no gradient flows back through it (torch's x.float() records one)",
    "double": "x.to(np.float64): a new leaf, no gradient flows back through it (torch's x.double() records one)",
    "half": "x.to(np.float16): a new leaf, no gradient flows back through it",
    "long": "x.to(np.int64)",
    "int": "x.to(np.int32)",
    "cpu": "x.to('cpu'): a new leaf that keeps requires_grad (torch's x.cpu() records a copy)",
    "cuda": "x.to('cuda'): a new leaf that keeps requires_grad (torch's x.cuda() records a copy)",
    "type": "x.dtype to read the type, x.to(dtype) to convert",
    "expand": "x.broadcast_to(shape): NumPy's name, every size given (no -1)",
    "expand_as": "x.broadcast_to(y.shape)",
    "view_as": "x.reshape(y.shape)",
    "reshape_as": "x.reshape(y.shape)",
    "nelement": "x.size (NumPy's int) or x.numel()",
    "clamp": "x.clip(lo, hi): NumPy's name, positional bounds (either may be None)",
    "min": "-(-x).max(axis): there is no min reduction; tg.minimum(a, b) is the elementwise one",
    "argmin": "(-x).argmax(axis)",
    "amax": "x.max(axis)",
    "mm": "x @ y (tg.matmul)",
    "bmm": "x @ y (tg.matmul batches over the leading axes)",
    "dot": "x @ y (tg.matmul)",
    "square": "x ** 2",
    "rsqrt": "1 / x.sqrt()",
    "masked_fill": "tg.where(mask, value, x)",
    "gather": "tg.take_along_axis(x, index, axis)",
    "chunk": "tg.split(x, n, axis): NumPy's split, n equal parts",
    "grad_fn": "x.creator: the Function that made x (None for a leaf)",
    "retain_grad": "tg.grad(loss, [h]) for the gradient of an intermediate tensor h",
    "new_zeros": "tg.zeros(shape, dtype=x.dtype)",
    "new_ones": "tg.ones(shape, dtype=x.dtype)",
}
"""PyTorch tensor attributes that `Tensor` lacks or spells otherwise -> what to write here (the
AttributeError says it; docs/guide/from-pytorch.md lists them)."""


def missing_attribute(name: str) -> str:
    """The AttributeError message for `Tensor.<name>`: our spelling of a PyTorch name, the op function of
    that name (`x.add(y)` is `tg.add(x, y)`), or the nearest attribute names."""
    head = f"'Tensor' object has no attribute {name!r}"
    if name.startswith("_"):
        return head                      # protocol probes (__array_interface__, _repr_svg_, ...): no search
    if name in PYTORCH_NAMES:
        return f"{head}: PyTorch's x.{name} is {PYTORCH_NAMES[name]}"
    from . import ops
    if name in ops.__all__:
        return f"{head}: use the op function, tg.{name}(x, ...)"
    close = difflib.get_close_matches(name, [n for n in dir(Tensor) if not n.startswith("_")], n=3)
    return head + (f"; did you mean {' or '.join(map(repr, close))}?" if close else "")


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
