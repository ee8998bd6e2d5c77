"""Tensor factories that follow the default dtype (float32 unless changed), as `torch.zeros` does:
`tg.Tensor(np.zeros(...))` keeps NumPy's float64 and silently turns a float32 model into a float64 one.
With PyTorch's names and keywords: `tensor` (a copy of its data), and `randn`, `rand`, `randint`, which
draw from the library's one generator (`tg.manual_seed` fixes them). None of them is an op: each makes a
new leaf, with no gradient of its own."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import TensorBase, get_default_dtype
from ..autograd.tensor_base import new_tensor
from ..backend.random import generator

__all__ = ["arange", "full", "ones", "ones_like", "rand", "randint", "randn", "tensor", "zeros", "zeros_like"]


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _make(fill, shape, dtype, requires_grad, device):
    xp = backend.module_for(device)
    arr = xp.full(shape, fill, dtype=get_default_dtype() if dtype is None else np.dtype(dtype))
    return new_tensor(arr, requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """Zeros of `shape`, in the default float dtype unless `dtype` is given (`torch.zeros`).

    Args:
        *shape: the shape, as ints (`f(2, 3)`) or one tuple (`f((2, 3))`).
        dtype: a NumPy dtype (`np.float64`, not `torch.float64`); default the default float dtype
            (float32 unless `tg.set_default_dtype` changed it).
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` (NumPy) or `"cuda"` (CuPy, the `gpu` extra).

    Returns:
        Tensor: a new leaf.
    """
    return _make(0, _shape(shape), dtype, requires_grad, device)


def ones(*shape, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """Ones of `shape`, in the default float dtype unless `dtype` is given (`torch.ones`).

    Args:
        *shape: the shape, as ints (`f(2, 3)`) or one tuple (`f((2, 3))`).
        dtype: a NumPy dtype (`np.float64`, not `torch.float64`); default the default float dtype
            (float32 unless `tg.set_default_dtype` changed it).
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` (NumPy) or `"cuda"` (CuPy, the `gpu` extra).

    Returns:
        Tensor: a new leaf.
    """
    return _make(1, _shape(shape), dtype, requires_grad, device)


def full(shape, fill_value, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """`fill_value` everywhere in `shape` (`torch.full`).

    Args:
        shape: an int or a tuple of ints.
        fill_value: the value. Without `dtype`, a Python float takes the default float dtype, an int
            int64 and a bool bool (torch's rule).
        dtype: a NumPy dtype (`np.float64`, not `torch.float64`); default from `fill_value`.
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` (NumPy) or `"cuda"` (CuPy, the `gpu` extra).

    Returns:
        Tensor: a new leaf.
    """
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = np.int64
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _make(fill_value, shape, dtype, requires_grad, device)


def _like(t, fill, dtype, requires_grad):
    arr = t.data if isinstance(t, TensorBase) else np.asarray(t)
    xp = backend.get_array_module(arr)
    out = xp.full(arr.shape, fill, dtype=arr.dtype if dtype is None else np.dtype(dtype))
    return new_tensor(out, requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False) -> TensorBase:
    """Zeros with `t`'s shape, dtype and device (`torch.zeros_like`).

    Args:
        t: a Tensor or array.
        dtype: a NumPy dtype instead of `t`'s.
        requires_grad: make the result a leaf that collects `.grad`.

    Returns:
        Tensor: a new leaf.
    """
    return _like(t, 0, dtype, requires_grad)


def ones_like(t, dtype=None, requires_grad=False) -> TensorBase:
    """Ones with `t`'s shape, dtype and device (`torch.ones_like`).

    Args:
        t: a Tensor or array.
        dtype: a NumPy dtype instead of `t`'s.
        requires_grad: make the result a leaf that collects `.grad`.

    Returns:
        Tensor: a new leaf.
    """
    return _like(t, 1, dtype, requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """Evenly spaced values in `[start, stop)` (`numpy.arange`, `torch.arange`).

    Args:
        start: the first value; with `stop` None, the end (`arange(5)` is 0..4).
        stop: the end, excluded.
        step: the spacing; default 1.
        dtype: a NumPy dtype (`np.float64`, not `torch.float64`); default int64 when start,
            stop and step are all ints, else the default float dtype.
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` (NumPy) or `"cuda"` (CuPy, the `gpu` extra).

    Returns:
        Tensor: a new leaf.
    """
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        whole = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if whole else get_default_dtype()
    xp = backend.module_for(device)
    return new_tensor(xp.arange(start, stop, step, dtype=np.dtype(dtype)), requires_grad=requires_grad)


def tensor(data, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """A new leaf holding a copy of `data` (`torch.tensor`; `tg.tensor(...)` calls this).

    `Tensor(ndarray)` shares the array instead, as `torch.from_numpy` does.

    Args:
        data: a nested list, a number, a NumPy/CuPy array or a Tensor (its data is copied, its graph
            is not).
        dtype: a NumPy dtype. Default: Python floats take the default float dtype (float32), ints
            int64, an array keeps its own (float64 stays float64, as in torch).
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` or `"cuda"`.

    Returns:
        Tensor: a new leaf that shares no memory with `data`.

    Raises:
        TypeError: `data` is not numeric (strings, objects, complex numbers).
    """
    src = data.data if isinstance(data, TensorBase) else data
    arr = new_tensor(src, dtype=dtype).data
    if arr is src or arr.base is not None:    # shared: an array of the right dtype, a view of another library's
        arr = arr.copy()
    t = new_tensor(backend.to_device(arr, device))
    return t.requires_grad_(True) if requires_grad else t


def _float_dtype(dtype, name):
    dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}(): dtype {dtype} is not float32 or float64; draw floats and convert "
                        "(tg.randint draws integers)")
    return dtype


def _drawn(arr, requires_grad, device):
    t = new_tensor(backend.to_device(arr, device))
    return t.requires_grad_(True) if requires_grad else t


def randn(*shape, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """Standard normal samples of `shape` from the library's generator (`torch.randn`).

    `tg.manual_seed(seed)` makes the draws repeatable.

    Args:
        *shape: the shape, as ints (`f(2, 3)`) or one tuple (`f((2, 3))`).
        dtype: float32 or float64 (`np.float64`, not `torch.float64`); default the default float dtype
            (float32 unless `tg.set_default_dtype` changed it).
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` (NumPy) or `"cuda"` (CuPy, the `gpu` extra).

    Returns:
        Tensor: a new leaf.

    Raises:
        TypeError: `dtype` is not float32 or float64.
    """
    arr = generator().standard_normal(_shape(shape), dtype=_float_dtype(dtype, "randn"))
    return _drawn(arr, requires_grad, device)


def rand(*shape, dtype=None, requires_grad=False, device="cpu") -> TensorBase:
    """Uniform samples in `[0, 1)` of `shape` from the library's generator (`torch.rand`).

    Args:
        *shape: the shape, as ints (`f(2, 3)`) or one tuple (`f((2, 3))`).
        dtype: float32 or float64 (`np.float64`, not `torch.float64`); default the default float dtype
            (float32 unless `tg.set_default_dtype` changed it).
        requires_grad: make the result a leaf that collects `.grad`.
        device: `"cpu"` (NumPy) or `"cuda"` (CuPy, the `gpu` extra).

    Returns:
        Tensor: a new leaf.

    Raises:
        TypeError: `dtype` is not float32 or float64.
    """
    arr = generator().random(_shape(shape), dtype=_float_dtype(dtype, "rand"))
    return _drawn(arr, requires_grad, device)


def randint(low, high=None, size=None, *, dtype=None, device="cpu") -> TensorBase:
    """Integers in `[low, high)` of shape `size` from the library's generator (`torch.randint`).

    `randint(high, size)` draws from `[0, high)`.

    Args:
        low: the lowest value (or `high`, when `size` is given second).
        high: one past the highest value.
        size: the shape, an int or a tuple.
        dtype: an integer NumPy dtype; default int64.
        device: `"cpu"` or `"cuda"`.

    Returns:
        Tensor: a new integer tensor (no gradient).

    Raises:
        TypeError: no `size`, or `dtype` is not an integer dtype.
    """
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint() needs a size: randint(low, high, size) or randint(high, size), as torch.randint")
    dtype = np.dtype(np.int64 if dtype is None else dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"randint(): dtype {dtype} is not an integer dtype")
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _drawn(generator().integers(low, high, size=size, dtype=dtype), False, device)
