"""Reductions and normalisers: sum, mean, max, logsumexp, softmax and log_softmax over any axes."""
from __future__ import annotations

import builtins

import numpy as np

from ..autograd import as_tensor, saved_input, saved_output
from .base import Op, _axes, _drop, _xp, numpy_keywords
from .elementwise import mul


class Sum(Op):
    def forward(self, x):
        self.shape = x.shape
        self.ax = _axes(self.axis, x.ndim)
        return x.sum(axis=self.ax, keepdims=self.keepdims)

    def onnx(self, g, x):
        """ONNX: ReduceSum (no axes: the input itself, as numpy's sum over ())."""
        return g.op("ReduceSum", x, g.ints(self.ax), keepdims=int(self.keepdims), noop_with_empty_axes=1)

    def backward(self, gy):
        if not self.keepdims:
            gy = gy.reshape([1 if i in self.ax else s for i, s in enumerate(self.shape)])
        return _xp(gy).broadcast_to(gy, self.shape)


@numpy_keywords
def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over `axis` (NumPy's `sum`; PyTorch's `dim=` is `axis=` here).

    Args:
        x: a Tensor, array or number.
        axis: None (every axis, the default), an int or a tuple of ints; negatives count from the end.
        keepdims: keep each reduced axis with size 1, so the result broadcasts against `x`.

    Returns:
        Tensor: `x`'s shape without the reduced axes (with them as 1s if `keepdims`); a 0-d tensor
            when every axis is reduced.

    Raises:
        TypeError: PyTorch's `dim=` or `keepdim=` was given (the message names `axis=`/`keepdims=`).
    """
    return Sum.apply(as_tensor(x), axis=axis, keepdims=keepdims)


@numpy_keywords
def mean(x, axis=None, keepdims=False):
    """Mean over `axis`: the sum divided by the number of elements reduced.

    Args:
        x: a Tensor, array or number.
        axis: None (every axis, the default), an int or a tuple of ints; negatives count from the end.
        keepdims: keep each reduced axis with size 1, so the result broadcasts against `x`.

    Returns:
        Tensor: `x`'s shape without the reduced axes (with them as 1s if `keepdims`); a 0-d tensor
            when every axis is reduced.

    Raises:
        TypeError: PyTorch's `dim=` or `keepdim=` was given (the message names `axis=`/`keepdims=`).
    """
    x = as_tensor(x)
    n = int(np.prod([x.shape[i] for i in _axes(axis, x.ndim)]))
    return mul(sum(x, axis, keepdims), 1.0 / builtins.max(n, 1))


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

    def onnx(self, g, x):
        """ONNX: ReduceMax (axes an attribute until opset 18)."""
        return g.op("ReduceMax", x, axes=list(self.ax), keepdims=int(self.keepdims)) if self.ax else g.op("Identity", x)

    def backward(self, gy):
        if not self.keepdims:
            gy = gy.reshape([1 if i in self.ax else s for i, s in enumerate(self.scale.shape)])
        return self.scale * gy


@numpy_keywords
def max(x, axis=None, keepdims=False):  # noqa: A001
    """Maximum over `axis` (a reduction; `maximum` is the elementwise one).

    Tied maxima share the gradient equally. For the indices, `x.argmax(axis)`.

    Args:
        x: a Tensor, array or number.
        axis: None (every axis, the default), an int or a tuple of ints; negatives count from the end.
        keepdims: keep each reduced axis with size 1, so the result broadcasts against `x`.

    Returns:
        Tensor: `x`'s shape without the reduced axes (with them as 1s if `keepdims`); a 0-d tensor
            when every axis is reduced.

    Raises:
        TypeError: PyTorch's `dim=` or `keepdim=` was given (the message names `axis=`/`keepdims=`).
    """
    return Max.apply(as_tensor(x), axis=axis, keepdims=keepdims)


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

    def onnx(self, g, x):
        """ONNX: shifted by the max as the forward is (ReduceLogSumExp's stability is the runtime's)."""
        if not self.ax:
            return g.op("Identity", x)
        axes = g.ints(self.ax)
        m = g.op("ReduceMax", x, axes=list(self.ax), keepdims=1)
        s = g.op("ReduceSum", g.op("Exp", g.op("Sub", x, m)), axes, keepdims=1)
        y = g.op("Add", g.op("Log", s), m)
        return y if self.keepdims else g.op("Squeeze", y, axes)

    def backward(self, gy):
        y = self.y
        if not self.keepdims:
            kept = [1 if i in self.ax else s for i, s in enumerate(self.x.shape)]
            y, gy = y.reshape(kept), gy.reshape(kept)
        return gy * _xp(y).exp(self.x - y)


@numpy_keywords
def logsumexp(x, axis=None, keepdims=False):
    """`log(sum(exp(x)))` over `axis`, shifted by the max so that it does not overflow.

    Its gradient is `softmax(x)` along the reduced axes.

    Args:
        x: a Tensor, array or number.
        axis: None (every axis, the default), an int or a tuple of ints; negatives count from the end.
        keepdims: keep each reduced axis with size 1, so the result broadcasts against `x`.

    Returns:
        Tensor: `x`'s shape without the reduced axes (with them as 1s if `keepdims`); a 0-d tensor
            when every axis is reduced.

    Raises:
        TypeError: PyTorch's `dim=` or `keepdim=` was given (the message names `axis=`/`keepdims=`).
    """
    return LogSumExp.apply(as_tensor(x), axis=axis, keepdims=keepdims)


class Softmax(Op):
    y = saved_output(0)

    def forward(self, x):
        xp = _xp(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def onnx(self, g, x):
        """ONNX: Softmax along the one axis (opset 13's meaning)."""
        return g.op("Softmax", x, axis=self.axis)

    def backward(self, gy):
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


@numpy_keywords
def softmax(x, axis=-1):
    """`exp(x) / sum(exp(x))` along `axis`, shifted by the max for stability.

    The default is the last axis, as PyTorch and NumPy users write it; DeZero's `F.softmax` defaults
    to `axis=1`, which is another axis on 3-D input (N, T, V): pass `axis=` there
    (docs/guide/from-pytorch.md).

    Args:
        x: a Tensor, array or number.
        axis: the one axis to normalise over; default -1, the last.

    Returns:
        Tensor: of `x`'s shape and dtype.

    Raises:
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    return Softmax.apply(as_tensor(x), axis=axis)


class LogSoftmax(Op):
    name = "log_softmax"
    y = saved_output(0)

    def forward(self, x):
        xp = _xp(x)
        z = x - x.max(axis=self.axis, keepdims=True)
        return z - xp.log(xp.exp(z).sum(axis=self.axis, keepdims=True))

    def onnx(self, g, x):
        """ONNX: LogSoftmax along the one axis."""
        return g.op("LogSoftmax", x, axis=self.axis)

    def backward(self, gy):
        return gy - _xp(gy).exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


@numpy_keywords
def log_softmax(x, axis=-1):
    """`log(softmax(x))` along `axis`, computed as `x - logsumexp(x)` without forming the softmax.

    The default is the last axis, as `softmax`.

    Args:
        x: a Tensor, array or number.
        axis: the one axis to normalise over; default -1, the last.

    Returns:
        Tensor: of `x`'s shape and dtype.

    Raises:
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    return LogSoftmax.apply(as_tensor(x), axis=axis)
