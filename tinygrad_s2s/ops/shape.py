"""Shape ops: reshape (squeeze, expand_dims), transpose, broadcast_to, repeat (joining and splitting
along an axis are in `joins`). Reshape, transpose and broadcast_to return views of their input's data
(`Function.views`): an in-place change through them reaches the tensor they view."""
from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from ..autograd import as_tensor, describe
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


@array_function("swapaxes")
def _swapaxes(x, a, b):
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)
