"""The engine's tensor: data, versions and gradient bookkeeping. The public `tinygrad_s2s.Tensor`
subclasses it with the operators and op methods (defined above the ops, which it calls), and registers
itself here, so that every tensor an op returns is a `tinygrad_s2s.Tensor` (as PyTorch's engine makes
`torch.Tensor`s)."""
from __future__ import annotations

import operator

import numpy as np

from .. import backend
from .checks import _clock
from .grad_mode import _state, _tracers

_tensor_class: list = [None]     # the class every tensor the engine makes is of (set_tensor_class)


def set_tensor_class(cls) -> None:
    """Make `cls` (a TensorBase subclass: `tinygrad_s2s.Tensor`) the class of every tensor ops return."""
    _tensor_class[0] = cls


def wrap(arr, requires_grad: bool):
    """A tensor around a backend array, without the constructor's checks (the engine's outputs)."""
    t = object.__new__(_tensor_class[0] or TensorBase)
    t._data, t._version, t.grad, t.creator, t.out_index, t.generation, t.name = arr, 0, None, None, 0, 0, None
    t._base = None
    t.requires_grad = requires_grad and arr.dtype.kind == "f"
    return t


def _check_kind(dtype, where: str) -> None:
    """A Tensor holds booleans, integers or real floats: no complex (the ops' gradients are those of
    real functions), nothing that is not a number."""
    if dtype.kind not in "biuf":
        raise TypeError(f"{where}: data of dtype {dtype} is {'complex' if dtype.kind == 'c' else 'not numeric'}; "
                        "a Tensor holds booleans, integers or real floating point numbers")


def new_tensor(data, requires_grad: bool = False, dtype=None):
    """`Tensor(data, requires_grad, dtype)` for the layers below `tinygrad_s2s.Tensor` (the factories)."""
    return (_tensor_class[0] or TensorBase)(data, requires_grad=requires_grad, dtype=dtype)


def _is_backend_array(x) -> bool:
    return isinstance(x, np.ndarray) or backend.get_array_module(x) is not np


class _NumPySize(int):
    """`t.size`: NumPy's meaning, the number of elements, as an int that is an int everywhere (arithmetic,
    comparisons, json, NumPy shapes, f-strings). Only calling it, PyTorch's `x.size()` (the shape), is
    refused with our spelling instead of "'int' object is not callable"."""
    __slots__ = ()

    def __call__(self, *dim):
        raise TypeError(f"size is an int (NumPy); use .shape: Tensor.size is the number of elements ({int(self)}), "
                        "torch's x.size() is x.shape here and x.size(d) is x.shape[d]")

    def __reduce__(self):
        return int, (int(self),)     # pickles (and copies) as the plain int it is


class TensorBase:
    """What the engine needs of a tensor: one backend array, `requires_grad`, `grad`, the Function that
    made it (`creator`) and its in-place versions. `tinygrad_s2s.Tensor` adds the operators and the op
    methods; every tensor the engine makes is of that class (`set_tensor_class`).

    Args:
        data: an array (NumPy or CuPy; shared, not copied), a Tensor (its data, shared), a nested
            list or a number.
        requires_grad: make it a leaf that collects `.grad` (real floating point data only).
        dtype: a NumPy dtype to convert to; default: an array keeps its own, Python floats take the
            default float dtype (float32 unless `tg.set_default_dtype` changed it).
        name: a label that the graph drawings show.

    Raises:
        ValueError: ragged nested lists.
        TypeError: data that is not numbers (or complex numbers); `requires_grad` on non-float data.
    """
    __slots__ = ("_data", "_version", "_stamp", "requires_grad", "grad", "creator", "out_index", "generation",
                 "name", "_base", "__weakref__")
    __array_ufunc__ = None  # make `ndarray op Tensor` call Tensor's reflected operator

    def _set_data(self, arr):
        self._data = arr
        self.bump_version()

    data = property(operator.attrgetter("_data"), _set_data, doc=(
        "The backend array itself. Assigning it (`t.data = a`, also `t.data -= u`, which assigns) "
        "counts as an in-place change: it bumps `t.version`, and a backward that saved `t` then "
        "raises instead of computing a wrong gradient. Writing into the array (`t.data[...] = v`) is "
        "the escape hatch, as PyTorch's `.data` is: nothing sees it (call `t.bump_version()` after it "
        "to make saved-for-backward checks see it)."))

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self._base = None
        if isinstance(data, TensorBase):
            self._base, data = data, data.data
        if _is_backend_array(data):
            arr = data if dtype is None else data.astype(dtype, copy=False)
        else:
            try:
                arr = np.asarray(data, dtype=dtype)
            except (ValueError, TypeError) as exc:   # ragged lists, strings for a numeric dtype
                raise type(exc)(f"Tensor: cannot make a numeric array of {type(data).__name__} data "
                                f"({exc}); pass a rectangular array of numbers") from None
            if dtype is None and arr.dtype == np.float64:
                arr = arr.astype(_state["dtype"])   # Python floats follow the default dtype
        _check_kind(arr.dtype, "Tensor")
        if self._base is not None and arr is not self._base._data:
            self._base = None        # a converted copy: its own data
        self._data = arr
        self._version = 0
        self.grad = None
        self.creator = None
        self.out_index = 0
        self.generation = 0
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    _wrap = staticmethod(wrap)

    def requires_grad_(self, flag: bool = True) -> TensorBase:
        """Mark this tensor as a leaf that collects `.grad` (or unmark it), in place.

        Args:
            flag: True (the default) to require a gradient, False to stop.

        Returns:
            Tensor: this tensor, for chaining (`tg.zeros(3).requires_grad_()`).

        Raises:
            RuntimeError: `flag=False` on a tensor an op made (use `detach()`).
            TypeError: `flag=True` on a tensor whose dtype is not a real float.
        """
        if not flag and self.requires_grad and self.creator is not None:
            raise RuntimeError("requires_grad_(False) on a tensor an op made would cut its gradient out of "
                               "the graph silently; use t.detach() for a tensor that needs no gradient")
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor of dtype {self.data.dtype} cannot require grad: only real floating "
                            "point tensors can (integer ids, masks and counts never do; the ops' gradients "
                            "are those of real functions, so complex ones are refused)")
        self.requires_grad = flag
        return self

    # ---- properties
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: _NumPySize(self._data.size), doc="The number of elements (NumPy's size, an int; "
                    "calling it as torch's x.size() raises a TypeError that says to use .shape).")
    device = property(lambda self: backend.device_of(self._data))
    is_leaf = property(lambda self: self.creator is None)
    version = property(lambda self: self._version, doc="How many in-place changes this tensor has seen.")

    def bump_version(self) -> TensorBase:
        """Record an in-place change made by writing into `.data[...]` (see `data`).

        A view (a reshape, transpose or slice of another tensor) passes the change on to what it views,
        whose data it is.

        Returns:
            Tensor: this tensor.
        """
        _clock[0] += 1           # the stamp says when: a node checks only inputs stamped after it
        t = self
        while t is not None:
            t._version += 1
            t._stamp = _clock[0]
            t = t._base
        return self

    def zero_(self) -> TensorBase:
        """Set every element to 0 in place (a version bump: a saved-for-backward use then raises).

        Returns:
            Tensor: this tensor.

        Raises:
            RuntimeError: this is a view an op made while recording (change a copy instead).
        """
        self._check_in_place("zero_()")
        self._data[...] = 0
        return self.bump_version()

    def fill_(self, value) -> TensorBase:
        """Set every element to `value` in place (a version bump, as `zero_`).

        Args:
            value: a Python number (cast to this tensor's dtype).

        Returns:
            Tensor: this tensor.

        Raises:
            RuntimeError: this is a view an op made while recording (change a copy instead).
        """
        self._check_in_place("fill_()")
        self._data[...] = value
        return self.bump_version()

    def _check_in_place(self, what: str) -> None:
        """Refuse an in-place change of a view an op made while recording (a slice, reshape or transpose:
        `_base`), or of an output whose array the op that made it keeps views of (`Function.kept_views`,
        the fused LSTM's hs): the change would reach data a backward reads, behind the graph's back."""
        fn = self.creator
        if fn is not None and (self._base is not None or self.out_index in fn.kept_views):
            raise RuntimeError(f"{what} on a tensor that op '{fn.op}' made as a view of another tensor's data: the "
                               "change would reach that tensor unseen, and a backward that saved it would compute a "
                               "wrong gradient; change a copy instead (t = t * 1)")

    def __len__(self):
        return len(self.data)

    def _read(self, what: str) -> None:
        """A read of this tensor's values into Python: a tracer (tg.onnx.export) is told, since what the
        values decide is baked into the trace."""
        if _tracers:
            _tracers[-1].read(self, what)

    def item(self):
        """The value of a one-element tensor as a Python number (`float(t)` and `int(t)` use it).

        Returns:
            float | int | bool: the element, as Python's type for the dtype.

        Raises:
            ValueError: the tensor has more than one element.
        """
        self._read("item()")
        if self.data.size != 1:
            raise ValueError(f"item(): only a one-element tensor converts to a Python scalar, "
                             f"this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t), plt.plot(t): the host array (without this NumPy walked the tensor by
        __len__ and __getitem__, one element at a time, and failed past the end)."""
        arr = self.numpy()
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    def numpy(self) -> np.ndarray:
        """The data as a host NumPy array (the array itself on the CPU: shared, not copied).

        Returns:
            numpy.ndarray: a CPU tensor's own array, or a copy of a GPU tensor's.
        """
        self._read("numpy()")
        return backend.to_numpy(self.data)

    def tolist(self):
        """The data as nested Python lists (a number for a 0-d tensor).

        Returns:
            list | float | int | bool: `t.numpy().tolist()`.
        """
        return self.numpy().tolist()

    def detach(self) -> TensorBase:
        """A new leaf sharing this tensor's data, cut off from the graph.

        An in-place change of it is a change of this tensor: the version checks see it.

        Returns:
            Tensor: `requires_grad=False`, the same array.
        """
        t = wrap(self.data, False)
        t._base = self
        return t

    def to(self, target) -> TensorBase:
        """A copy on another device or with another dtype, as a new leaf.

        The copy keeps `requires_grad` (a float result): use it for inputs and parameters, not inside a
        differentiable graph, since no gradient flows back through it.

        Args:
            target: a device, `"cpu"` or `"cuda"`, or a NumPy dtype (`np.float64`).

        Returns:
            Tensor: the new leaf.

        Raises:
            TypeError: a dtype that is not a bool, integer or real float.
        """
        if isinstance(target, str):
            arr = backend.to_device(self.data, target)
        else:
            _check_kind(np.dtype(target), f"Tensor.to({np.dtype(target).name})")
            arr = self.data.astype(target)
        out = wrap(arr, False)
        if self.requires_grad and arr.dtype.kind == "f":
            out.requires_grad = True
        return out

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = np.array2string(self.numpy(), separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{dev}{extra})"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        self._read("bool()")
        if self.data.size != 1:
            raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def zero_grad(self) -> None:
        """Forget this tensor's gradient: `.grad` becomes None (as PyTorch's `set_to_none`)."""
        self.grad = None


def as_tensor(x, like: TensorBase | None = None) -> TensorBase:
    """`x` as a Tensor: Tensors pass through; numbers and arrays become constants (no gradient).

    Args:
        x: a Tensor, array, nested list or number.
        like: a Tensor whose device, and float dtype, a number or list takes (`x * 2.0` keeps float64
            for a float64 `x`); None for the default dtype.

    Returns:
        Tensor: `x` itself, or a new constant tensor.
    """
    if isinstance(x, TensorBase):
        return x
    if like is not None and not _is_backend_array(x):
        xp = backend.get_array_module(like.data)
        arr = np.asarray(x)
        _check_kind(arr.dtype, "Tensor")
        dtype = (like.dtype if (arr.dtype.kind in "fiub" and like.dtype.kind == "f") else
                 _state["dtype"] if arr.dtype == np.float64 and not isinstance(x, np.ndarray) else None)
        return wrap(xp.asarray(arr, dtype=dtype), False)
    return new_tensor(x)
