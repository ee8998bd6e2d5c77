"""Shape ops: reshape (squeeze, expand_dims), transpose, broadcast_to, repeat, and joining and
splitting along an axis. Reshape, transpose, broadcast_to, split and unstack return views of their
input's data (`Function.views`): an in-place change through them reaches the tensor they view."""
from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from ..autograd import TensorBase, as_tensor, describe
from .base import Op, _axes, _drop, _xp, array_function, numpy_keywords


class Reshape(Op):
    views = True

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape {x.shape} ({x.size} elements) into {tuple(self.shape)}") from None

    def onnx(self, g, x):
        """ONNX: Reshape to `_onnx_shape`'s target, so a dynamic batch axis stays dynamic."""
        out = g.out_shape()
        return g.op("Reshape", x, g.ints(_onnx_shape(self.in_shape, out)), allowzero=int(0 in out))

    def backward(self, gy):
        return gy.reshape(self.in_shape)


def _onnx_shape(in_shape, out_shape) -> list:
    """The target of an ONNX Reshape from in_shape to out_shape that carries a dynamic axis through: the
    leading dims kept as they were are 0 (ONNX: copy the input's), and where the first dim changes (a
    batch merged with time, or split from it) it is -1 (what is left). Literal where any dim is 0. The
    exporter checks a dynamic batch axis by running the exported model at another batch size."""
    if 0 in out_shape or 0 in in_shape:
        return list(out_shape)
    target, same = [], True
    for i, d in enumerate(out_shape):
        same = same and i < len(in_shape) and in_shape[i] == d
        target.append(0 if same else d)
    if target and target[0] != 0:
        target[0] = -1
    return target


def reshape(x, *shape):
    """The same elements in a new shape, C order (`x.reshape(2, 3)`; PyTorch's `view` too).

    The result shares `x`'s data where NumPy can reshape without copying (an in-place change through
    it reaches `x`, and the version checks see it), and is a copy otherwise.

    Args:
        x: a Tensor, array or number.
        *shape: the new shape, as ints (`reshape(x, 2, 3)`) or one tuple (`reshape(x, (2, 3))`); one
            entry may be -1, inferred from the others.

    Returns:
        Tensor: `x`'s elements in `shape`, same dtype.

    Raises:
        ValueError: the shape does not hold exactly `x.size` elements (from the op, naming both shapes).
    """
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Reshape.apply(as_tensor(x), shape=shape)


@numpy_keywords
def squeeze(x, axis=None):
    """Drop axes of size 1: all of them, or those in `axis` (a reshape, sharing its gradient).

    Args:
        x: a Tensor, array or number.
        axis: None (every size-1 axis, the default), an int or a tuple of ints.

    Returns:
        Tensor: `x` without those axes, sharing its data.

    Raises:
        ValueError: an axis in `axis` does not have size 1.
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    x = as_tensor(x)
    ax = tuple(i for i, s in enumerate(x.shape) if s == 1) if axis is None else _axes(axis, x.ndim)
    bad = [i for i in ax if x.shape[i] != 1]
    if bad:
        raise ValueError(describe("squeeze", f"axis {bad[0]} has size {x.shape[bad[0]]}, not 1",
                                  [x.shape]))
    return reshape(x, _drop(x.shape, ax))


@numpy_keywords
def expand_dims(x, axis):
    """Insert axes of size 1 at `axis` (PyTorch's `unsqueeze`; a reshape).

    Args:
        x: a Tensor, array or number.
        axis: an int or a tuple of ints: positions in the result, negatives counted from its end
            (`expand_dims(x, -1)` appends an axis).

    Returns:
        Tensor: `x` with the new axes, sharing its data.

    Raises:
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    x = as_tensor(x)
    ax = normalize_axis_tuple(axis, x.ndim + (len(axis) if isinstance(axis, tuple) else 1))
    dims = iter(x.shape)
    return reshape(x, tuple(1 if i in ax else next(dims) for i in range(x.ndim + len(ax))))


class Transpose(Op):
    views = True

    def forward(self, x):
        axes = tuple(reversed(range(x.ndim))) if self.axes is None else self.axes
        if sorted(a % x.ndim if -x.ndim <= a < x.ndim else a for a in axes) != list(range(x.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {x.ndim} dims")
        self.perm = normalize_axis_tuple(axes, x.ndim)
        return x.transpose(self.perm)

    def onnx(self, g, x):
        """ONNX: Transpose (a 0-d tensor: Identity)."""
        return g.op("Transpose", x, perm=list(self.perm)) if self.perm else g.op("Identity", x)

    def backward(self, gy):
        return gy.transpose(tuple(int(i) for i in np.argsort(self.perm)))


def transpose(x, axes=None):
    """Permute the axes (NumPy's `transpose`: a full permutation, not PyTorch's swap of two).

    Args:
        x: a Tensor, array or number.
        axes: a permutation of `range(x.ndim)` (axis `i` of the result is axis `axes[i]` of `x`), or
            None (the default) to reverse them all, as `x.T`.

    Returns:
        Tensor: a view of `x`'s data with the axes permuted.

    Raises:
        ValueError: `axes` is not a permutation of `x`'s axes.
    """
    return Transpose.apply(as_tensor(x), axes=None if axes is None else tuple(axes))


class BroadcastTo(Op):
    views = True
    name = "broadcast_to"

    def forward(self, x):
        return _xp(x).broadcast_to(x, self.shape)

    def onnx(self, g, x):
        """ONNX: Expand, with 1 for each dim the input already has (Expand keeps it: a dynamic axis stays)."""
        ins = (1,) * (len(self.shape) - len(g.shape(x))) + tuple(g.shape(x))
        return g.op("Expand", x, g.ints([1 if i == d else d for i, d in zip(ins, self.shape)]))

    def backward(self, gy):
        return gy   # the engine sums it back to the input's shape


@array_function("broadcast_to")
def broadcast_to(x, shape):
    """Broadcast to `shape` with NumPy's rules (PyTorch's `expand`, every size given).

    The gradient is summed back over the broadcast axes.

    Args:
        x: a Tensor, array or number.
        shape: the target shape, a tuple of ints.

    Returns:
        Tensor: a read-only view of `x`'s data in `shape`.

    Raises:
        ValueError: `x`'s shape does not broadcast to `shape`.
    """
    return BroadcastTo.apply(as_tensor(x), shape=tuple(shape))


class Repeat(Op):
    def forward(self, x):
        if not isinstance(self.repeats, (int, np.integer)) or self.repeats < 0:
            raise TypeError(f"repeats must be a non-negative int, got {self.repeats!r}")
        self.in_shape = x.shape
        if self.axis is not None:
            self.axis = normalize_axis_index(self.axis, x.ndim)
        return _xp(x).repeat(x, self.repeats, axis=self.axis)

    def onnx(self, g, x):
        """ONNX: numpy.repeat as Unsqueeze after the axis, Expand it to `repeats`, Reshape the two dims into
        one (the whole tensor flattened first when axis is None)."""
        shape, a = tuple(self.in_shape), self.axis
        if a is None:
            x, shape, a = g.op("Reshape", x, g.ints([-1])), (int(np.prod(shape)),), 0
        grown = shape[:a + 1] + (self.repeats,) + shape[a + 1:]
        x = g.op("Expand", g.op("Unsqueeze", x, g.ints([a + 1])), g.ints([1] * (a + 1) + [self.repeats] + [1] * (len(shape) - a - 1)))
        out = shape[:a] + (shape[a] * self.repeats,) + shape[a + 1:]
        return g.op("Reshape", x, g.ints(_onnx_shape(grown, out)), allowzero=int(0 in out))

    def backward(self, gy):
        r, shape = int(self.repeats), self.in_shape
        if self.axis is None:
            return gy.reshape(-1, r).sum(axis=1).reshape(shape)
        a = self.axis
        return gy.reshape(shape[:a] + (shape[a], r) + shape[a + 1:]).sum(axis=a + 1)


@numpy_keywords
def repeat(x, repeats, axis=None):
    """NumPy's `repeat`: each element `repeats` times along `axis` (the book's Repeat node).

    Not PyTorch's `x.repeat(2, 3)`, which tiles the whole tensor (see docs/guide/from-pytorch.md).

    Args:
        x: a Tensor, array or number.
        repeats: how many times each element appears, a non-negative int.
        axis: the axis to repeat along; None (the default) flattens `x` first.

    Returns:
        Tensor: `x` with `axis` `repeats` times longer.

    Raises:
        TypeError: `repeats` is not a non-negative int, or PyTorch's `dim=` was given.
    """
    return Repeat.apply(as_tensor(x), repeats=repeats, axis=axis)


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


@array_function("swapaxes")
def _swapaxes(x, a, b):
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


@array_function("split")
def _split(x, sections, axis=0):
    return split(x, sections, axis)


@array_function("concatenate")
def _concatenate(xs, axis=0):
    return concat(list(xs), axis)
