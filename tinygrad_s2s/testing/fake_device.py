"""A strict stand-in for CuPy, so the GPU code path is exercised on machines without a GPU.

Its arrays behave like CuPy's where it matters for bugs: they refuse implicit conversion to NumPy
(`np.asarray(a)` raises), refuse to mix with host ndarrays in arithmetic, indexing or function calls,
and must be moved explicitly (`asarray` in, `asnumpy` out). Code that runs cleanly on this device does
not silently pull GPU arrays to the host or push host masks into device arrays.
"""
from __future__ import annotations

import contextlib
import operator

import numpy as np

from .. import backend

_MSG = ("fake device: {what}; a device array cannot mix with a host numpy array "
        "(move it explicitly with asarray/asnumpy)")


def _unwrap(x, what="argument"):
    """Device arrays -> their storage; host ndarrays are rejected; containers are walked."""
    if isinstance(x, FakeArray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(_MSG.format(what=f"got a host numpy array as {what}"))
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(i, what) for i in x)
    return x


def _wrap(y):
    if isinstance(y, (np.ndarray, np.generic)):   # CuPy returns 0-d arrays where NumPy gives scalars
        return FakeArray(np.asarray(y))
    if isinstance(y, tuple):
        return tuple(_wrap(i) for i in y)
    if isinstance(y, list):
        return [_wrap(i) for i in y]
    return y


class FakeArray:
    """A device array: wraps an ndarray but never converts implicitly."""
    __slots__ = ("_a",)

    def __init__(self, a: np.ndarray):
        self._a = a

    def __array__(self, *args, **kwargs):
        raise TypeError("fake device: implicit conversion to a NumPy array is not allowed; "
                        "use asnumpy() (as CuPy requires)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = _unwrap(inputs, f"input of numpy ufunc {ufunc.__name__}")
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], "out=")
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        return _wrap(func(*_unwrap(args, f"argument of numpy.{func.__name__}"),
                          **{k: _unwrap(v) for k, v in kwargs.items()}))

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    T = property(lambda self: FakeArray(self._a.T))

    def __getattr__(self, name):
        if name.startswith("__"):   # no __array_interface__ / __array_struct__ / buffer leaks
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args, f"argument of .{name}()"),
                              **{k: _unwrap(v) for k, v in kwargs.items()}))
        return method

    def __getitem__(self, idx):
        return _wrap(self._a[_unwrap(idx, "an index")])

    def __setitem__(self, idx, value):
        self._a[_unwrap(idx, "an index")] = _unwrap(value, "assigned value")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(r) for r in self._a)

    def __bool__(self):
        return bool(self._a)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __index__(self):
        return operator.index(self._a)

    def __repr__(self):
        return f"FakeArray({self._a!r})"


def _binary(op):
    return lambda self, other: _wrap(op(self._a, _unwrap(other, f"operand of {op.__name__}")))


def _reflected(op):
    return lambda self, other: _wrap(op(_unwrap(other, f"operand of {op.__name__}"), self._a))


def _inplace(op):
    def f(self, other):
        op(self._a, _unwrap(other, f"operand of {op.__name__}"))
        return self
    return f


for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("floordiv", operator.floordiv), ("pow", operator.pow),
                   ("matmul", operator.matmul), ("mod", operator.mod), ("and", operator.and_),
                   ("or", operator.or_), ("xor", operator.xor)):
    setattr(FakeArray, f"__{_name}__", _binary(_op))
    setattr(FakeArray, f"__r{_name}__", _reflected(_op))
    setattr(FakeArray, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}")))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(FakeArray, f"__{_name}__", _binary(getattr(operator, _name)))
FakeArray.__neg__ = lambda self: FakeArray(-self._a)
FakeArray.__invert__ = lambda self: FakeArray(~self._a)
FakeArray.__hash__ = None


class FakeCupy:
    """The module side: numpy's functions with strict argument checks, plus CuPy's transfer API."""
    ndarray = FakeArray

    def __getattr__(self, name):
        f = getattr(np, name)
        if not callable(f) or isinstance(f, type):
            return f        # dtypes, constants

        def fn(*args, **kwargs):
            return _wrap(f(*_unwrap(args, f"argument of {name}()"),
                           **{k: _unwrap(v) for k, v in kwargs.items()}))
        return fn

    @staticmethod
    def asarray(a, dtype=None):
        """Host -> device (or a device array, converted to dtype)."""
        if isinstance(a, FakeArray):
            return a if dtype is None else FakeArray(a._a.astype(dtype, copy=False))
        return FakeArray(np.array(a, dtype=dtype))

    array = asarray

    @staticmethod
    def asnumpy(a):
        """Device -> host copy (CuPy's cupy.asnumpy)."""
        return a._a.copy() if isinstance(a, FakeArray) else np.asarray(a)

    @staticmethod
    def scatter_add(target, indices, values):
        np.add.at(target._a, _unwrap(indices, "an index"), _unwrap(values, "values"))

    @staticmethod
    def is_available():
        return True


@contextlib.contextmanager
def fake_device(name: str = "fakegpu"):
    """Register the strict fake device under `name` for the duration of the block."""
    backend.register_device(name, FakeCupy())
    try:
        yield name
    finally:
        backend.unregister_device(name)
