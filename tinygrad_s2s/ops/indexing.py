"""Indexing: x[index] (slices and integer-array gathers, the embedding lookup), take_along_axis, and
where. Index arrays are moved to the indexed tensor's device (a host mask must not index a GPU array)."""
from __future__ import annotations

import builtins

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from .. import backend
from ..autograd import TensorBase, as_tensor
from .base import Op, _pair, _xp, array_function, numpy_keywords


def _index_on_device(index, x):
    """Index arrays (and Tensors) moved to x's device: a host mask must not index a GPU array."""
    dev = x.device

    def conv(i):
        if isinstance(i, TensorBase):
            i = i.data
        if isinstance(i, list):
            i = np.asarray(i)
        if hasattr(i, "dtype") and hasattr(i, "shape"):
            return backend.to_device(i, dev)
        return i
    return tuple(conv(i) for i in index) if isinstance(index, tuple) else conv(index)


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

    def onnx(self, g, x):
        """ONNX: an integer array (alone, or with full slices before it) is a Gather along its axis;
        basic indexing is one Slice (full slices left out, so a dynamic axis stays dynamic), a Squeeze
        of the integer-indexed dims and an Unsqueeze for each None."""
        items = self.index if isinstance(self.index, tuple) else (self.index,)
        if self.advanced:
            k = len(items) - 1
            if getattr(items[-1], "dtype", None) is None or items[-1].dtype.kind not in "iu" or any(
                    i != slice(None) for i in items[:-1]):
                raise NotImplementedError("an index mixing arrays with anything but leading full slices "
                                          f"({_describe_index(self.index)})")
            return g.op("Gather", x, g.array(items[-1]), axis=k)
        return _onnx_basic_index(g, x, items, self.in_shape)

    def backward(self, gy):
        return SetItemGrad.run(gy, index=self.index, shape=self.in_shape, advanced=self.advanced)


def getitem(x, index):
    """`x[index]`: basic slicing and NumPy's integer-array and boolean indexing.

    An integer-array index is a gather (the embedding lookup `W[ids]`); its gradient adds up repeated
    indices. Basic slices return views of `x`'s data.

    Args:
        x: a Tensor, array or number.
        index: anything NumPy takes: ints, slices, `None`, `...`, integer or boolean arrays, lists
            or Tensors (their data is used; indices carry no gradient).

    Returns:
        Tensor: the selected elements, of NumPy's result shape.

    Raises:
        IndexError: an index out of range (naming the axis, the index and the size) or too many indices.
    """
    x = as_tensor(x)
    return GetItem.apply(x, index=_index_on_device(index, x))


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


def _describe_index(index) -> str:
    items = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(f"array {i.dtype} {i.shape}" if hasattr(i, "shape") else repr(i) for i in items) + "]"


def _onnx_basic_index(g, x, items, shape):
    n_real = builtins.sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + (slice(None),) * (len(shape) - n_real) + items[k + 1:]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = out = 0
    for i in items:
        if i is None:
            unsqueeze.append(out)
            out += 1
            continue
        n = shape[dim]
        if isinstance(i, slice):
            out += 1
            if i != slice(None):
                lo, hi, step = i.indices(n)
                starts.append(lo)
                ends.append(hi if hi >= 0 or step > 0 else -2 ** 63)   # ONNX reads -1 as n - 1
                axes.append(dim)
                steps.append(step)
        else:                                   # an int: a slice of one, squeezed
            starts.append(int(i) % n)
            ends.append(int(i) % n + 1)
            axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
        dim += 1
    if axes:
        x = g.op("Slice", x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps))
    if squeeze:
        x = g.op("Squeeze", x, g.ints(squeeze))
    if unsqueeze:
        x = g.op("Unsqueeze", x, g.ints(unsqueeze))
    return x if axes or squeeze or unsqueeze else g.op("Identity", x)


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

    def onnx(self, g, x):
        """ONNX: GatherElements (the indices as the forward made them, non-negative)."""
        return g.op("GatherElements", x, g.array(self.indices), axis=self.axis)

    def backward(self, gy):
        return AddAlongAxis.run(gy, indices=self.indices, axis=self.axis, shape=self.in_shape)


@numpy_keywords
def take_along_axis(x, indices, axis):
    """NumPy's `take_along_axis` (PyTorch's `gather`): pick `x`'s elements with `indices` along `axis`.

    Args:
        x: a Tensor, array or number.
        indices: integer indices with `x`'s number of axes (an array, list or Tensor; no gradient),
            broadcast against `x` off `axis`.
        axis: the axis to pick along.

    Returns:
        Tensor: of `indices`'s shape (broadcast), `x`'s dtype.

    Raises:
        TypeError: PyTorch's `dim=` was given (the message names `axis=`).
    """
    x = as_tensor(x)
    idx = indices.data if isinstance(indices, TensorBase) else indices
    idx = backend.to_device(np.asarray(idx) if not hasattr(idx, "dtype") else idx, x.device)
    return TakeAlongAxis.apply(x, indices=idx, axis=axis)


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

    def onnx(self, g, a, b):
        """ONNX: Where (the condition a constant, or the function's input it is)."""
        dt = g.out_dtype()
        return g.op("Where", g.array(self.cond), g.cast(a, dt), g.cast(b, dt))

    def backward(self, gy):
        xp = _xp(gy)
        return xp.where(self.cond, gy, 0), xp.where(self.cond, 0, gy)


@array_function("where")
def where(cond, a, b):
    """Elementwise choice: `a` where `cond` is true, else `b` (`numpy.where`, `torch.where`).

    Args:
        cond: a boolean array or Tensor (non-booleans are cast); it carries no gradient.
        a: a Tensor, array or number: the values where `cond` holds.
        b: a Tensor, array or number: the values elsewhere.

    Returns:
        Tensor: of the broadcast shape of `cond`, `a` and `b`; each of `a`, `b` gets the gradient where
            it was chosen.
    """
    a, b = _pair(a, b)
    c = cond.data if isinstance(cond, TensorBase) else cond
    c = backend.to_device(np.asarray(c) if not hasattr(c, "dtype") else c, a.device)
    return Where.apply(a, b, cond=c.astype(bool))


@array_function("take")
def _take(x, i, axis):
    return getitem(x, (slice(None),) * normalize_axis_index(axis, x.ndim) + (i,))
