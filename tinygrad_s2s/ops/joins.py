"""Joining and splitting along an axis: concat, stack, split, unstack. Split and unstack return views
of their input's data (`Function.views`): an in-place change through them reaches the tensor they view."""
from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..autograd import TensorBase, as_tensor, describe
from .base import Op, _xp, array_function, numpy_keywords


def _seq_of_tensors(op, xs):
    if isinstance(xs, TensorBase) or not len(xs):
        raise ValueError(describe(op, "expected a non-empty list of tensors"))
    first = next((x for x in xs if isinstance(x, TensorBase)), None)
    return [as_tensor(x, like=first) for x in xs]


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

    def onnx(self, g, *xs):
        """ONNX: Concat (inputs cast to the output's dtype, as numpy promotes them)."""
        return g.op("Concat", *(g.cast(x, g.out_dtype()) for x in xs), axis=self.axis)

    def backward(self, gy):
        return tuple(_xp(gy).split(gy, self.bounds, axis=self.axis))


@numpy_keywords
def concat(xs, axis=0):
    """Join tensors along an existing axis (NumPy's `concatenate`; `tg.cat` is this function).

    Args:
        xs: a non-empty list or tuple of Tensors (arrays and numbers are converted like the first
            Tensor), equal in every axis but `axis`.
        axis: the axis to join along; default 0.

    Returns:
        Tensor: the joined tensor; each input's gradient is its slice of the output's.

    Raises:
        ValueError: `xs` is empty or is one Tensor instead of a list, or the shapes differ off `axis`.
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    xs = _seq_of_tensors("concat", xs)
    return Concat.apply(*xs, axis=axis)


class Stack(Op):
    def forward(self, *xs):
        for i, x in enumerate(xs[1:], 1):
            if x.shape != xs[0].shape:
                raise ValueError(f"input {i} has shape {x.shape}, input 0 has {xs[0].shape}: stack "
                                 "needs equal shapes")
        self.axis = normalize_axis_index(self.axis, xs[0].ndim + 1)
        return _xp(xs[0]).stack(xs, axis=self.axis)

    def onnx(self, g, *xs):
        """ONNX: each input Unsqueezed at the axis, then Concat."""
        axis = g.ints([self.axis])
        return g.op("Concat", *(g.op("Unsqueeze", g.cast(x, g.out_dtype()), axis) for x in xs), axis=self.axis)

    def backward(self, gy):
        xp = _xp(gy)
        return tuple(xp.take(gy, i, axis=self.axis) for i in range(gy.shape[self.axis]))


@numpy_keywords
@array_function("stack")
def stack(xs, axis=0):
    """Join equal-shaped tensors along a new axis (`concat` joins along an existing one).

    Args:
        xs: a non-empty list or tuple of Tensors of one shape.
        axis: the position of the new axis in the result; default 0.

    Returns:
        Tensor: of shape `xs[0].shape` with `len(xs)` inserted at `axis`.

    Raises:
        ValueError: `xs` is empty or is one Tensor instead of a list, or the shapes differ.
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    xs = _seq_of_tensors("stack", xs)
    return Stack.apply(*xs, axis=axis)


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

    def onnx(self, g, x):
        """ONNX: Split with the parts' sizes (an empty part is a Slice: Split refuses size 0)."""
        sizes = [s[self.axis] for s in g.out_shapes()]
        if 0 in sizes or len(sizes) == 1:
            bounds = np.cumsum([0] + sizes)
            return tuple(g.op("Slice", x, g.ints([lo]), g.ints([hi]), g.ints([self.axis]))
                         for lo, hi in zip(bounds[:-1], bounds[1:]))
        return g.op("Split", x, g.ints(sizes), axis=self.axis, outputs=len(sizes))

    def backward(self, *gys):
        return _xp(gys[0]).concatenate(gys, axis=self.axis)


@numpy_keywords
def split(x, sections, axis=0):
    """NumPy's `split`: `x` cut into parts along `axis` (PyTorch's `chunk` with equal parts).

    Args:
        x: a Tensor, array or number.
        sections: an int n (n equal parts; the axis must divide evenly) or a sequence of indices
            where to cut.
        axis: the axis to cut along; default 0.

    Returns:
        tuple[Tensor, ...]: the parts, views of `x`'s data.

    Raises:
        ValueError: `sections` does not divide the axis evenly.
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    secs = sections if isinstance(sections, (int, np.integer)) else tuple(sections)
    return Split.apply(as_tensor(x), sections=secs, axis=axis)


class Unstack(Op):
    """Multi-output inverse of stack: the T time steps of a sequence as T tensors."""
    views = True

    def forward(self, x):
        self.axis = normalize_axis_index(self.axis, x.ndim)
        xp = _xp(x)
        return tuple(xp.take(x, i, axis=self.axis) for i in range(x.shape[self.axis]))

    def onnx(self, g, x):
        """ONNX: Split into slices of one, each Squeezed."""
        n, axis = g.shape(x)[self.axis], g.ints([self.axis])
        parts = (g.op("Split", x, g.ints([1] * n), axis=self.axis, outputs=n) if n > 1 else (x,)) if n else ()
        parts = parts if isinstance(parts, tuple) else (parts,)
        return tuple(g.op("Squeeze", p, axis) for p in parts)

    def backward(self, *gys):
        return _xp(gys[0]).stack(gys, axis=self.axis)


@numpy_keywords
def unstack(x, axis=0):
    """The slices of `x` along `axis`, as a tuple (the inverse of `stack`).

    Args:
        x: a Tensor, array or number.
        axis: the axis to take the slices along; default 0.

    Returns:
        tuple[Tensor, ...]: `x.shape[axis]` tensors, each without that axis, views of `x`'s data.

    Raises:
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    return Unstack.apply(as_tensor(x), axis=axis)


@array_function("split")
def _split(x, sections, axis=0):
    return split(x, sections, axis)


@array_function("concatenate")
def _concatenate(xs, axis=0):
    return concat(list(xs), axis)
