"""Every primitive op: one Function class (forward and backward side by side) and its lowercase function.

Adding an op here is half the job; the other half is one entry in `tinygrad_s2s.testing.op_table`,
which makes the gradient, reference, dtype and error tests cover it.
"""
from __future__ import annotations

import builtins

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from . import backend, blas_threads
from .tensor import Function, Tensor, as_tensor, describe, is_grad_enabled, saved_input, saved_output, sum_to
from . import random as _random


def _xp(a):
    """The array module for an array, or `TensorMath` for a Tensor: backward code calls
    `_xp(v).exp(v)` and runs on arrays (first order) and on Tensors (create_graph) alike."""
    return TensorMath if isinstance(a, Tensor) else backend.get_array_module(a)


class Op(Function):
    """A primitive of this module: its backward is written once and runs on arrays and on Tensors."""
    twice_differentiable = True


def _pair(a, b):
    """Two operands as Tensors; a Python scalar takes the other operand's dtype and device."""
    if isinstance(a, Tensor):
        return a, as_tensor(b, like=a)
    b = as_tensor(b)
    return as_tensor(a, like=b), b


# ---------------------------------------------------------------- elementwise arithmetic
# Backward returns gradients of the broadcast result's shape: the engine sums them back to each input.
class Add(Op):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Op):
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, -gy


class Mul(Op):
    a, b = saved_input(0), saved_input(1)

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        return (gy * self.b if self.needs_grad[0] else None,
                gy * self.a if self.needs_grad[1] else None)


class Div(Op):
    a, b = saved_input(0), saved_input(1)

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.a, self.b
        return (gy / b if self.needs_grad[0] else None,
                -gy * a / (b * b) if self.needs_grad[1] else None)


class Neg(Op):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Op):
    a, b, y = saved_input(0), saved_input(1), saved_output(0)

    def forward(self, a, b):
        return a ** b

    def backward(self, gy):
        a, b = self.a, self.b
        return (gy * b * a ** (b - 1) if self.needs_grad[0] else None,
                gy * self.y * _xp(a).log(a) if self.needs_grad[1] else None)


class Exp(Op):
    y = saved_output(0)

    def forward(self, x):
        return _xp(x).exp(x)

    def backward(self, gy):
        return gy * self.y


class Log(Op):
    x = saved_input(0)

    def forward(self, x):
        return _xp(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Op):
    y = saved_output(0)

    def forward(self, x):
        return _xp(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.y)


class Sigmoid(Op):
    y = saved_output(0)

    def forward(self, x):
        return _xp(x).tanh(x * 0.5) * 0.5 + 0.5   # the tanh form never overflows in exp

    def backward(self, gy):
        y = self.y
        return gy * y * (1 - y)


class Tanh(Op):
    y = saved_output(0)

    def forward(self, x):
        return _xp(x).tanh(x)

    def backward(self, gy):
        y = self.y
        return gy * (1 - y * y)


class ReLU(Op):
    """The subgradient at 0 is 0 (as PyTorch's)."""
    name = "relu"

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class Abs(Op):
    """The subgradient at 0 is 0 (sign(0), as PyTorch's)."""

    def forward(self, x):
        if self.needs_grad:        # masks only when a backward will read them
            self.sign = _xp(x).sign(x)
        return _xp(x).abs(x)

    def backward(self, gy):
        return gy * self.sign


def _tie_weights(win, tie):
    """Gradient shares of one operand of maximum/minimum: 1 where it wins, 1/2 on ties (as PyTorch)."""
    return win + tie * 0.5


class Maximum(Op):
    """Elementwise max of two tensors; tied elements split the gradient equally."""

    def forward(self, a, b):
        if self.needs_grad:
            tie = (a == b).astype(a.dtype)
            self.wa, self.wb = _tie_weights(a > b, tie), _tie_weights(a < b, tie)
        return _xp(a).maximum(a, b)

    def backward(self, gy):
        return gy * self.wa, gy * self.wb


class Minimum(Op):
    """Elementwise min of two tensors; tied elements split the gradient equally."""

    def forward(self, a, b):
        if self.needs_grad:
            tie = (a == b).astype(a.dtype)
            self.wa, self.wb = _tie_weights(a < b, tie), _tie_weights(a > b, tie)
        return _xp(a).minimum(a, b)

    def backward(self, gy):
        return gy * self.wa, gy * self.wb


class Clip(Op):
    """Clamp into [lo, hi] (either may be None); the gradient passes where lo <= x <= hi, bounds
    included (as PyTorch's clamp)."""

    def forward(self, x):
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"clip: lo={lo} is above hi={hi}")
        inside = _xp(x).ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        self.inside = inside
        return _xp(x).clip(x, lo, hi)

    def backward(self, gy):
        return gy * self.inside


# ---------------------------------------------------------------- matmul
def _strides(v):
    """An array's layout, which picks BLAS's kernel as much as its shape does (a Tensor under
    create_graph: none, nothing is chosen for it)."""
    return getattr(v, "strides", None)


class MatMul(Op):
    a, b = saved_input(0), saved_input(1)

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul does not take 0-d operands; use mul")
        k_a, k_b = a.shape[-1], (b.shape[0] if b.ndim == 1 else b.shape[-2])
        if k_a != k_b:
            raise ValueError(f"shapes {a.shape} and {b.shape} are not aligned: "
                             f"{k_a} (last dim of a) != {k_b} ({'dim 0' if b.ndim == 1 else 'dim -2'} of b)")
        if b.ndim == 2 and a.ndim >= 2:    # one 2-D GEMM, on the BLAS thread count chosen for its shape;
            def product():                 # (N,T,D)@(D,H) too, as NumPy would loop over N
                return (a.reshape(-1, k_a) @ b).reshape(a.shape[:-1] + b.shape[1:])
            return blas_threads.gemm(a.size // k_a, b.shape[1], k_a, _xp(a), product, (_strides(a), _strides(b)))
        return a @ b

    def backward(self, gy):
        a, b = self.a, self.b
        xp = _xp(a)
        if a.ndim > 2 and b.ndim == 2:
            g2 = gy.reshape(-1, b.shape[1])
            return blas_threads.gemm(g2.shape[0], b.shape[1], b.shape[0], xp, lambda: (
                (g2 @ b.T).reshape(a.shape) if self.needs_grad[0] else None,
                a.reshape(-1, b.shape[0]).T @ g2 if self.needs_grad[1] else None), ("backward", _strides(a), _strides(b)))
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        gy = gy.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))

        def grads():             # batch dims are summed here: a 1-d operand is not a broadcast of its 2-d form
            return (sum_to(gy @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if self.needs_grad[0] else None,
                    sum_to(xp.swapaxes(a2, -1, -2) @ gy, b2.shape).reshape(b.shape) if self.needs_grad[1] else None)
        if a.ndim == 2 and b.ndim == 2:
            return blas_threads.gemm(a.shape[0], b.shape[1], a.shape[1], xp, grads, ("backward", _strides(a), _strides(b)))
        return grads()


# ---------------------------------------------------------------- reductions and normalisers
def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else normalize_axis_tuple(axis, ndim)


class Sum(Op):
    def forward(self, x):
        self.shape = x.shape
        self.ax = _axes(self.axis, x.ndim)
        return x.sum(axis=self.ax, keepdims=self.keepdims)

    def backward(self, gy):
        if not self.keepdims:
            gy = gy.reshape([1 if i in self.ax else s for i, s in enumerate(self.shape)])
        return _xp(gy).broadcast_to(gy, self.shape)


class Max(Op):
    def forward(self, x):
        ax = _axes(self.axis, x.ndim)
        if x.size == 0:
            raise ValueError("max of an empty tensor")
        y = x.max(axis=ax, keepdims=True)
        if self.needs_grad:        # the tie-sharing scale only when a backward will read it
            mask = x == y
            count = mask.sum(axis=ax, keepdims=True)
            if not count.all():     # a NaN maximum equals nothing: its NaNs take the gradient (as in PyTorch)
                xp = _xp(x)
                mask |= xp.isnan(x) & xp.isnan(y)
                count = mask.sum(axis=ax, keepdims=True)
            self.scale = mask / count                               # ties share the gradient
        self.ax = ax
        return y if self.keepdims else y.reshape([s for i, s in enumerate(x.shape) if i not in ax])

    def backward(self, gy):
        if not self.keepdims:
            gy = gy.reshape([1 if i in self.ax else s for i, s in enumerate(self.scale.shape)])
        return self.scale * gy


class LogSumExp(Op):
    """log(sum(exp(x))) over `axis`, shifted by the max: the gradient is the softmax."""
    name = "logsumexp"
    x, y = saved_input(0), saved_output(0)

    def forward(self, x):
        xp = _xp(x)
        self.ax = _axes(self.axis, x.ndim)
        if x.size == 0:
            raise ValueError("logsumexp of an empty tensor")
        m = x.max(axis=self.ax, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        y = xp.log(xp.exp(x - m).sum(axis=self.ax, keepdims=True)) + m
        return y if self.keepdims else y.reshape(_drop(x.shape, self.ax))

    def backward(self, gy):
        y = self.y
        if not self.keepdims:
            kept = [1 if i in self.ax else s for i, s in enumerate(self.x.shape)]
            y, gy = y.reshape(kept), gy.reshape(kept)
        return gy * _xp(y).exp(self.x - y)


def _drop(shape, ax):
    return tuple(s for i, s in enumerate(shape) if i not in ax)


class Softmax(Op):
    y = saved_output(0)

    def forward(self, x):
        xp = _xp(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Op):
    name = "log_softmax"
    y = saved_output(0)

    def forward(self, x):
        xp = _xp(x)
        z = x - x.max(axis=self.axis, keepdims=True)
        return z - xp.log(xp.exp(z).sum(axis=self.axis, keepdims=True))

    def backward(self, gy):
        return gy - _xp(gy).exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


# ---------------------------------------------------------------- shape ops
class Reshape(Op):
    views = True

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape {x.shape} ({x.size} elements) into {tuple(self.shape)}") from None

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Op):
    views = True

    def forward(self, x):
        axes = tuple(reversed(range(x.ndim))) if self.axes is None else self.axes
        if sorted(a % x.ndim if -x.ndim <= a < x.ndim else a for a in axes) != list(range(x.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {x.ndim} dims")
        self.perm = normalize_axis_tuple(axes, x.ndim)
        return x.transpose(self.perm)

    def backward(self, gy):
        return gy.transpose(tuple(int(i) for i in np.argsort(self.perm)))


class BroadcastTo(Op):
    views = True
    name = "broadcast_to"

    def forward(self, x):
        return _xp(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return gy   # the engine sums it back to the input's shape


class Repeat(Op):
    def forward(self, x):
        if not isinstance(self.repeats, (int, np.integer)) or self.repeats < 0:
            raise TypeError(f"repeats must be a non-negative int, got {self.repeats!r}")
        self.in_shape = x.shape
        if self.axis is not None:
            self.axis = normalize_axis_index(self.axis, x.ndim)
        return _xp(x).repeat(x, self.repeats, axis=self.axis)

    def backward(self, gy):
        r, shape = int(self.repeats), self.in_shape
        if self.axis is None:
            return gy.reshape(-1, r).sum(axis=1).reshape(shape)
        a = self.axis
        return gy.reshape(shape[:a] + (shape[a], r) + shape[a + 1:]).sum(axis=a + 1)


class Concat(Op):
    def forward(self, *xs):
        xp = _xp(xs[0])
        ref = xs[0]
        self.axis = normalize_axis_index(self.axis, ref.ndim)
        for i, x in enumerate(xs[1:], 1):
            if x.ndim != ref.ndim or any(s != r for d, (s, r) in enumerate(zip(x.shape, ref.shape))
                                         if d != self.axis):
                raise ValueError(f"input {i} has shape {x.shape}, which does not match input 0 "
                                 f"{ref.shape} outside axis {self.axis}")
        self.bounds = [int(b) for b in np.cumsum([x.shape[self.axis] for x in xs])[:-1]]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        return tuple(_xp(gy).split(gy, self.bounds, axis=self.axis))


class Stack(Op):
    def forward(self, *xs):
        for i, x in enumerate(xs[1:], 1):
            if x.shape != xs[0].shape:
                raise ValueError(f"input {i} has shape {x.shape}, input 0 has {xs[0].shape}: stack "
                                 "needs equal shapes")
        self.axis = normalize_axis_index(self.axis, xs[0].ndim + 1)
        return _xp(xs[0]).stack(xs, axis=self.axis)

    def backward(self, gy):
        xp = _xp(gy)
        return tuple(xp.take(gy, i, axis=self.axis) for i in range(gy.shape[self.axis]))


class Split(Op):
    """Multi-output inverse of concat: one op (and one gradient buffer) instead of many slices."""
    views = True

    def forward(self, x):
        self.axis = normalize_axis_index(self.axis, x.ndim)
        n = x.shape[self.axis]
        if isinstance(self.sections, (int, np.integer)):
            if self.sections <= 0 or n % self.sections:
                raise ValueError(f"axis {self.axis} of size {n} does not split into {self.sections} "
                                 "equal parts")
        self.in_shape = x.shape
        return tuple(_xp(x).split(x, self.sections, axis=self.axis))

    def backward(self, *gys):
        return _xp(gys[0]).concatenate(gys, axis=self.axis)


class Unstack(Op):
    """Multi-output inverse of stack: the T time steps of a sequence as T tensors."""
    views = True

    def forward(self, x):
        self.axis = normalize_axis_index(self.axis, x.ndim)
        xp = _xp(x)
        return tuple(xp.take(x, i, axis=self.axis) for i in range(x.shape[self.axis]))

    def backward(self, *gys):
        return _xp(gys[0]).stack(gys, axis=self.axis)


class GetItem(Op):
    views = True
    name = "getitem"

    def forward(self, x):
        self.in_shape, self.in_dtype = x.shape, x.dtype
        self.advanced = _is_advanced(self.index)
        if self.advanced:
            _check_bounds(self.index, x.shape)
            if getattr(self.index, "dtype", None) is not None and self.index.dtype.kind in "iu":
                return _xp(x).take(x, self.index, axis=0)   # embedding lookups: 3x faster than x[ids]
        return x[self.index]

    def backward(self, gy):
        return SetItemGrad.run(gy, index=self.index, shape=self.in_shape, advanced=self.advanced)


class SetItemGrad(Op):
    """The gradient of getitem: zeros with gy added at the indexed places (an op of its own, so that
    the gradient can be differentiated again: its own gradient is getitem)."""
    name = "getitem_grad"

    def forward(self, gy):
        gx = _xp(gy).zeros(self.shape, dtype=gy.dtype)
        if self.advanced:
            backend.scatter_add(gx, self.index, gy)   # repeated ids (embeddings) must add up
        else:
            gx[self.index] = gy
        return gx

    def backward(self, g):
        return GetItem.run(g, index=self.index)


def _is_advanced(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(not (i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))) for i in items)


def _check_bounds(index, shape):
    """Integer-array indices out of range raise a message naming the axis, the id and the size."""
    items = index if isinstance(index, tuple) else (index,)
    dim = 0
    for i in items:
        if i is None:
            continue
        if i is Ellipsis:
            dim = len(shape) - builtins.sum(1 for j in items if j is not None and j is not Ellipsis
                                   and getattr(j, "dtype", None) != np.bool_) + dim
            continue
        if dim >= len(shape):
            raise IndexError(f"too many indices for a tensor of shape {shape}")
        if hasattr(i, "dtype") and i.dtype.kind in "iu" and i.size:
            lo, hi = int(i.min()), int(i.max())
            n = shape[dim]
            if hi >= n or lo < -n:
                bad = hi if hi >= n else lo
                raise IndexError(f"index {bad} is out of range for axis {dim} of size {n} "
                                 f"(valid ids are {-n}..{n - 1})")
        dim += getattr(i, "ndim", 1) if getattr(i, "dtype", None) == np.bool_ else 1


class TakeAlongAxis(Op):
    """numpy.take_along_axis: x's elements picked by integer `indices` along `axis` (beam search,
    gathering the target's log-probability); repeated picks add up in the gradient."""
    name = "take_along_axis"

    def forward(self, x):
        idx, xp = self.indices, _xp(x)
        if getattr(idx, "dtype", None) is None or idx.dtype.kind not in "iu":
            got = f"a {idx.dtype} array" if getattr(idx, "dtype", None) is not None else type(idx).__name__
            raise TypeError(f"indices must be an integer array, got {got}")
        if idx.ndim != x.ndim:
            raise ValueError(f"indices have {idx.ndim} dims, x has {x.ndim}: they must match")
        self.axis = normalize_axis_index(self.axis, x.ndim)
        n = x.shape[self.axis]
        lo, hi = (int(idx.min()), int(idx.max())) if idx.size else (0, -1)
        if lo < -n or hi >= n:
            raise IndexError(f"index {hi if hi >= n else lo} is out of range for axis {self.axis} of size {n}")
        self.indices = xp.where(idx < 0, idx + n, idx)
        self.in_shape = x.shape
        return xp.take_along_axis(x, self.indices, axis=self.axis)

    def backward(self, gy):
        return AddAlongAxis.run(gy, indices=self.indices, axis=self.axis, shape=self.in_shape)


class AddAlongAxis(Op):
    """The gradient of take_along_axis: zeros of `shape` with gy added at the picked places (a
    primitive of its own so that the gradient can be differentiated again)."""
    name = "add_along_axis"

    def forward(self, gy):
        xp, ax = _xp(gy), self.axis
        idx = xp.moveaxis(self.indices, ax, -1)       # rows of picks along the last axis
        n, k = self.shape[ax], idx.shape[-1]
        rows = int(np.prod(idx.shape[:-1]))
        flat = (xp.arange(rows)[:, None] * n + idx.reshape(rows, k)).reshape(-1)
        gx = xp.zeros((rows * n, 1), dtype=gy.dtype)
        backend.scatter_add(gx, flat, xp.moveaxis(gy, ax, -1).reshape(-1, 1))
        return xp.moveaxis(gx.reshape(idx.shape[:-1] + (n,)), -1, ax)

    def backward(self, g):
        return TakeAlongAxis.run(g, indices=self.indices, axis=self.axis)


class Where(Op):
    def forward(self, a, b):
        return _xp(a).where(self.cond, a, b)

    def backward(self, gy):
        xp = _xp(gy)
        return xp.where(self.cond, gy, 0), xp.where(self.cond, 0, gy)


class Dropout(Op):
    def forward(self, x):
        keep = _random.generator().random(x.shape) >= self.p
        mask = backend.to_device(keep, backend.device_of(x))
        self.mask = mask.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


class SoftmaxCrossEntropy(Function):
    """Fused: its backward runs on arrays; create_graph differentiates `reference` instead."""
    name = "softmax_cross_entropy"

    def forward(self, logits):
        xp = _xp(logits)
        t = self.targets
        if t.shape != logits.shape[:-1]:
            raise ValueError(f"targets of shape {t.shape} do not match logits {logits.shape}: "
                             f"expected {logits.shape[:-1]}")
        v = logits.shape[-1]
        x = logits.reshape(-1, v)
        t = t.reshape(-1)
        valid = xp.ones(t.shape, dtype=bool) if self.ignore_index is None else t != self.ignore_index
        tv = xp.where(valid, t, 0)
        if tv.size and (int(tv.min()) < 0 or int(tv.max()) >= v):
            bad = int(tv.min()) if int(tv.min()) < 0 else int(tv.max())
            raise ValueError(f"target id {bad} is out of range for {v} classes")
        z = x - x.max(axis=1, keepdims=True)
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = xp.arange(len(tv))
        logp = z[rows, tv] - xp.log(s[:, 0])
        self.count = builtins.max(int(valid.sum()), 1)
        self.p, self.tv, self.valid, self.rows = e / s, tv, valid, rows
        self.shape = logits.shape
        return (-(logp * valid).sum() / self.count).astype(logits.dtype)

    def reference(self, logits):
        v = logits.shape[-1]
        logp = log_softmax(reshape(logits, (-1, v)), axis=-1)
        picked = getitem(logp, (self.rows, self.tv))
        return mul(sum(mul(picked, self.valid.astype(logits.dtype))), -1.0 / self.count)

    def backward(self, gy):
        g = self.p.copy()
        g[self.rows, self.tv] -= 1
        g *= (self.valid[:, None] * (gy / self.count)).astype(g.dtype)
        return g.reshape(self.shape)


# ---------------------------------------------------------------- the public functions
def add(a, b):
    """a + b with broadcasting."""
    return Add.apply(*_pair(a, b))


def sub(a, b):
    """a - b with broadcasting."""
    return Sub.apply(*_pair(a, b))


def mul(a, b):
    """a * b with broadcasting."""
    return Mul.apply(*_pair(a, b))


def div(a, b):
    """a / b with broadcasting."""
    return Div.apply(*_pair(a, b))


def neg(x):
    """-x."""
    return Neg.apply(as_tensor(x))


def pow(a, b):  # noqa: A001 - the public name mirrors numpy/torch
    """a ** b (b a scalar or a Tensor; its gradient needs a > 0)."""
    return Pow.apply(*_pair(a, b))


def exp(x):
    """e ** x."""
    return Exp.apply(as_tensor(x))


def log(x):
    """Natural logarithm."""
    return Log.apply(as_tensor(x))


def sqrt(x):
    """Square root."""
    return Sqrt.apply(as_tensor(x))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow."""
    return Sigmoid.apply(as_tensor(x))


def tanh(x):
    """Hyperbolic tangent."""
    return Tanh.apply(as_tensor(x))


def relu(x):
    """max(x, 0)."""
    return ReLU.apply(as_tensor(x))


def abs(x):  # noqa: A001
    """|x|; the gradient at 0 is 0."""
    return Abs.apply(as_tensor(x))


def maximum(a, b):
    """Elementwise max with broadcasting; ties split the gradient equally."""
    return Maximum.apply(*_pair(a, b))


def minimum(a, b):
    """Elementwise min with broadcasting; ties split the gradient equally."""
    return Minimum.apply(*_pair(a, b))


def clip(x, lo=None, hi=None):
    """Clamp into [lo, hi] (scalars; either may be None); the gradient passes inside, bounds included."""
    if lo is None and hi is None:
        raise ValueError(describe("clip", "give lo, hi or both"))
    return Clip.apply(as_tensor(x), lo=lo, hi=hi)


def matmul(a, b):
    """Matrix product with numpy's rules (1-d operands, batched broadcasting)."""
    return MatMul.apply(*_pair(a, b))


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over `axis` (None: all; int or tuple, negatives allowed)."""
    return Sum.apply(as_tensor(x), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over `axis`; a sum scaled by the count, so it shares Sum's gradient."""
    x = as_tensor(x)
    n = int(np.prod([x.shape[i] for i in _axes(axis, x.ndim)]))
    return mul(sum(x, axis, keepdims), 1.0 / builtins.max(n, 1))


def max(x, axis=None, keepdims=False):  # noqa: A001
    """Maximum over `axis`; tied maxima share the gradient equally."""
    return Max.apply(as_tensor(x), axis=axis, keepdims=keepdims)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over `axis` without overflow; its gradient is softmax(x)."""
    return LogSumExp.apply(as_tensor(x), axis=axis, keepdims=keepdims)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`, shifted by the max for stability."""
    return Softmax.apply(as_tensor(x), axis=axis)


def log_softmax(x, axis=-1):
    """log(softmax(x)) without forming the softmax."""
    return LogSoftmax.apply(as_tensor(x), axis=axis)


def reshape(x, *shape):
    """Reshape (one -1 allowed); `reshape(x, (2, 3))` and `reshape(x, 2, 3)` both work."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Reshape.apply(as_tensor(x), shape=shape)


def squeeze(x, axis=None):
    """Drop size-1 dims (all of them, or those in `axis`): a reshape, so it shares Reshape's gradient."""
    x = as_tensor(x)
    ax = tuple(i for i, s in enumerate(x.shape) if s == 1) if axis is None else _axes(axis, x.ndim)
    bad = [i for i in ax if x.shape[i] != 1]
    if bad:
        raise ValueError(describe("squeeze", f"axis {bad[0]} has size {x.shape[bad[0]]}, not 1",
                                  [x.shape]))
    return reshape(x, _drop(x.shape, ax))


def expand_dims(x, axis):
    """Insert size-1 dims at `axis` (int or tuple, positions in the result): a reshape."""
    x = as_tensor(x)
    ax = normalize_axis_tuple(axis, x.ndim + (len(axis) if isinstance(axis, tuple) else 1))
    dims = iter(x.shape)
    return reshape(x, tuple(1 if i in ax else next(dims) for i in range(x.ndim + len(ax))))


def transpose(x, axes=None):
    """Permute dims (reverse them when axes is None)."""
    return Transpose.apply(as_tensor(x), axes=None if axes is None else tuple(axes))


def broadcast_to(x, shape):
    """Broadcast to `shape`; the gradient is summed back."""
    return BroadcastTo.apply(as_tensor(x), shape=tuple(shape))


def repeat(x, repeats, axis=None):
    """numpy.repeat: each element `repeats` times along `axis` (the book's Repeat node)."""
    return Repeat.apply(as_tensor(x), repeats=repeats, axis=axis)


def concat(xs, axis=0):
    """Join tensors along an existing axis."""
    xs = _seq_of_tensors("concat", xs)
    return Concat.apply(*xs, axis=axis)


def stack(xs, axis=0):
    """Join equal-shaped tensors along a new axis."""
    xs = _seq_of_tensors("stack", xs)
    return Stack.apply(*xs, axis=axis)


def split(x, sections, axis=0):
    """numpy.split: `sections` equal parts, or the parts between the given indices; a tuple."""
    secs = sections if isinstance(sections, (int, np.integer)) else tuple(sections)
    return Split.apply(as_tensor(x), sections=secs, axis=axis)


def unstack(x, axis=0):
    """The slices along `axis` as a tuple of tensors (the inverse of stack)."""
    return Unstack.apply(as_tensor(x), axis=axis)


def _seq_of_tensors(op, xs):
    if isinstance(xs, Tensor) or not len(xs):
        raise ValueError(describe(op, "expected a non-empty list of tensors"))
    first = next((x for x in xs if isinstance(x, Tensor)), None)
    return [as_tensor(x, like=first) for x in xs]


def getitem(x, index):
    """x[index]: basic slicing and integer-array gather (the embedding lookup)."""
    x = as_tensor(x)
    return GetItem.apply(x, index=_index_on_device(index, x))


def _index_on_device(index, x):
    """Index arrays (and Tensors) moved to x's device: a host mask must not index a GPU array."""
    dev = x.device

    def conv(i):
        if isinstance(i, Tensor):
            i = i.data
        if isinstance(i, list):
            i = np.asarray(i)
        if hasattr(i, "dtype") and hasattr(i, "shape"):
            return backend.to_device(i, dev)
        return i
    return tuple(conv(i) for i in index) if isinstance(index, tuple) else conv(index)


def take_along_axis(x, indices, axis):
    """numpy.take_along_axis: pick x's elements with integer `indices` (same ndim as x) along `axis`."""
    x = as_tensor(x)
    idx = indices.data if isinstance(indices, Tensor) else indices
    idx = backend.to_device(np.asarray(idx) if not hasattr(idx, "dtype") else idx, x.device)
    return TakeAlongAxis.apply(x, indices=idx, axis=axis)


def where(cond, a, b):
    """Elementwise choice: a where cond is true, else b (cond carries no gradient)."""
    a, b = _pair(a, b)
    c = cond.data if isinstance(cond, Tensor) else cond
    c = backend.to_device(np.asarray(c) if not hasattr(c, "dtype") else c, a.device)
    return Where.apply(a, b, cond=c.astype(bool))


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity when not training."""
    if not 0.0 <= p < 1.0:
        raise ValueError(describe("dropout", f"p must be in [0, 1), got {p}"))
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=p)


def softmax_cross_entropy(logits, targets, ignore_index=None):
    """Mean cross-entropy of softmax(logits) against integer targets, fused and stable.

    logits: (..., V); targets: (...) ints. Entries equal to `ignore_index` count neither in the
    sum nor in the mean's denominator.
    """
    logits = as_tensor(logits)
    t = targets.data if isinstance(targets, Tensor) else targets
    t = backend.to_device(np.asarray(t) if not hasattr(t, "dtype") else t, logits.device)
    if t.dtype.kind not in "iu":
        raise TypeError(describe("softmax_cross_entropy", f"targets must be integer ids, got {t.dtype}",
                                 [logits.shape, t.shape]))
    return SoftmaxCrossEntropy.apply(logits, targets=t, ignore_index=ignore_index)


class TensorMath:
    """The array-module functions that backward code calls (`_xp(v).exp(v)`), on Tensors."""
    exp, log, where, broadcast_to, stack = (staticmethod(f) for f in (exp, log, where, broadcast_to, stack))

    @staticmethod
    def swapaxes(x, a, b):
        perm = list(range(x.ndim))
        perm[a], perm[b] = perm[b], perm[a]
        return transpose(x, perm)

    @staticmethod
    def split(x, sections, axis=0):
        return split(x, sections, axis)

    @staticmethod
    def concatenate(xs, axis=0):
        return concat(list(xs), axis)

    @staticmethod
    def take(x, i, axis):
        return getitem(x, (slice(None),) * normalize_axis_index(axis, x.ndim) + (i,))


# ---------------------------------------------------------------- Tensor operators and methods
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
    t.check_writable(sym)
    u = other.data if isinstance(other, Tensor) else other
    try:
        getattr(backend.get_array_module(t.data), ufunc)(t.data, u, out=t.data)
    except (ValueError, TypeError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError   # NumPy's own types need more arguments
        raise kind(f"{sym} in place on a tensor of shape {t.shape} and dtype {t.dtype}: {exc}") from None
    t.bump_version()
    return t


def _install():
    T = Tensor
    T.__add__ = lambda s, o: add(s, o)
    T.__radd__ = lambda s, o: add(o, s)
    T.__sub__ = lambda s, o: sub(s, o)
    T.__rsub__ = lambda s, o: sub(o, s)
    T.__mul__ = lambda s, o: mul(s, o)
    T.__rmul__ = lambda s, o: mul(o, s)
    T.__truediv__ = lambda s, o: div(s, o)
    T.__rtruediv__ = lambda s, o: div(o, s)
    T.__pow__ = lambda s, o: pow(s, o)
    T.__rpow__ = lambda s, o: pow(o, s)
    T.__matmul__ = lambda s, o: matmul(s, o)
    T.__rmatmul__ = lambda s, o: matmul(o, s)
    for name, f, sym, ufunc in (("__iadd__", add, "+=", "add"), ("__isub__", sub, "-=", "subtract"),
                                ("__imul__", mul, "*=", "multiply"), ("__itruediv__", div, "/=", "divide")):
        setattr(T, name, lambda s, o, f=f, sym=sym, ufunc=ufunc: _in_place(s, o, f, sym, ufunc))
    T.__neg__ = lambda s: neg(s)
    T.__abs__ = lambda s: abs(s)
    T.__getitem__ = lambda s, i: getitem(s, i)
    for name, f in (("__lt__", np.less), ("__le__", np.less_equal), ("__gt__", np.greater),
                    ("__ge__", np.greater_equal)):
        setattr(T, name, lambda s, o, f=f: Tensor._wrap(
            f(s.data, o.data if isinstance(o, Tensor) else o), False))
    for f in (exp, log, sqrt, sigmoid, tanh, relu, softmax, log_softmax, sum, mean, max,
              repeat, broadcast_to, matmul, abs, clip, squeeze, expand_dims, logsumexp):
        setattr(T, f.__name__, f)
    T.reshape = reshape
    T.transpose = lambda s, *axes: transpose(s, axes[0] if len(axes) == 1 and isinstance(
        axes[0], (tuple, list)) else (axes or None))
    T.T = property(lambda s: transpose(s))
    T.argmax = lambda s, axis=None: Tensor._wrap(s.data.argmax(axis=axis), False)


_install()
