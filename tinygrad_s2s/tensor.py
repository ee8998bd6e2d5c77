"""The engine: Tensor, Function (one node per primitive application) and the backward pass.

A Function's `forward` and `backward` work on raw arrays of the active backend; `Function.apply`
wraps them with Tensors, records the graph (only when a gradient is needed) and turns failures into
errors that name the op, the shapes, the module path and the user's file and line.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import sys
import weakref

import numpy as np

from . import backend

# ---------------------------------------------------------------- global state (one place)
_state = {"grad": True, "anomaly": False, "locations": False, "dtype": np.dtype(np.float32)}
_scope = [""]                   # module path stack; Module.__call__ pushes its dotted path
_seq = itertools.count()         # tie-breaker so the heap never compares Functions
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def _setting(key, value):
    old = _state[key]
    _state[key] = value
    try:
        yield
    finally:
        _state[key] = old


def no_grad():
    """Build no graph at all inside this block (inference, decoding, optimizer updates)."""
    return _setting("grad", False)


def enable_grad():
    """Re-enable graph building inside a `no_grad` block."""
    return _setting("grad", True)


def is_grad_enabled() -> bool:
    return _state["grad"]


def detect_anomaly():
    """Raise FloatingPointError at the first op (forward or backward) that produces NaN or Inf."""
    return _setting("anomaly", True)


def record_locations():
    """Record on each op the file:line that called it (`Function.location`), for graph drawings;
    off by default because walking the stack costs time on every op."""
    return _setting("locations", True)


def set_default_dtype(dtype) -> None:
    """Set the float dtype of new tensors and parameters (float32 unless changed)."""
    _state["dtype"] = _float_dtype(dtype)


def get_default_dtype() -> np.dtype:
    return _state["dtype"]


def default_dtype(dtype):
    """`with tg.default_dtype(np.float64):` creates float64 tensors and parameters inside."""
    return _setting("dtype", _float_dtype(dtype))


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    return dtype


@contextlib.contextmanager
def module_scope(name: str):
    """Push a module name; every node created inside records the dotted path."""
    parent = _scope[-1]
    _scope.append(f"{parent}.{name}" if parent and name else (name or parent))
    try:
        yield
    finally:
        _scope.pop()


def current_module_path() -> str:
    return _scope[-1]


def user_location() -> str:
    """'file:line' of the innermost caller outside this package (where the user wrote the op)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PKG_DIR + os.sep) and "contextlib" not in path:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def describe(op: str, reason: str, shapes=(), module: str | None = None) -> str:
    module = current_module_path() if module is None else module
    parts = [f"{op}: {reason}"]
    if shapes:
        parts.append("input shapes " + ", ".join(str(tuple(s)) for s in shapes))
    parts.append(f"in module '{module or '<top level>'}'")
    parts.append(f"at {user_location()}")
    return "; ".join(parts)


# ---------------------------------------------------------------- Function
class Function:
    """One primitive. Subclasses define `forward(*arrays)` and `backward(*grads)` on raw arrays.

    `backward` returns one gradient per input (None where no gradient flows). It may consult
    `self.needs_grad[i]` to skip work for inputs that do not require a gradient. A multi-output op
    whose outputs were not all used gets zeros for the unused ones, or None if it sets
    `takes_missing_grads` (and then skips that work itself).
    """
    name = None  # op name shown in errors and graphs; defaults to the lowercase class name
    takes_missing_grads = False

    def __init__(self, **params):
        self.__dict__.update(params)

    @property
    def op(self) -> str:
        return self.name or type(self).__name__.lower()

    @classmethod
    def apply(cls, *inputs: Tensor, **params):
        """Run the op on Tensors; returns a Tensor (or a tuple for multi-output ops)."""
        fn = cls(**params)
        arrays = [t.data for t in inputs]
        if len(arrays) > 1 and any(type(a) is not np.ndarray for a in arrays):   # host-only: skip
            _check_same_device(fn.op, arrays)
        need = _state["grad"] and any(t.requires_grad for t in inputs)
        fn.needs_grad = tuple(t.requires_grad for t in inputs) if need else ()
        try:
            ys = fn.forward(*arrays)
        except (ValueError, IndexError) as exc:
            raise ValueError(describe(fn.op, str(exc), [a.shape for a in arrays])) from None
        except TypeError as exc:
            raise TypeError(describe(fn.op, str(exc), [a.shape for a in arrays])) from None
        multi = isinstance(ys, tuple)
        ys = ys if multi else (ys,)
        ys = tuple(np.asarray(y) if isinstance(y, np.generic) else y for y in ys)  # 0-d ops give scalars
        if _state["anomaly"]:
            for y in ys:
                _check_finite(fn.op, "forward", y, current_module_path())
        outs = tuple(Tensor._wrap(y, need) for y in ys)
        if need:
            fn.inputs = inputs
            fn.module = current_module_path()
            fn.generation = max(t.generation for t in inputs)
            fn.outputs = tuple(weakref.ref(o) for o in outs)
            fn.out_meta = tuple((y.shape, y.dtype) for y in ys)
            fn.seq = next(_seq)
            if _state["locations"]:
                fn.location = user_location()
            for i, o in enumerate(outs):
                o.creator, o.out_index, o.generation = fn, i, fn.generation + 1
        return outs if multi else outs[0]

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self):
        """Drop inputs and saved arrays so the graph's memory is freed after backward."""
        keep = {"module", "generation", "out_meta", "seq", "outputs", "needs_grad"}
        for k in list(self.__dict__):
            if k not in keep:
                del self.__dict__[k]
        self.inputs = None

    def __repr__(self):
        return f"<Function {self.op} module='{getattr(self, 'module', '')}'>"


def _check_same_device(op, arrays):
    first = backend.device_of(arrays[0])
    for a in arrays[1:]:
        d = backend.device_of(a)
        if d != first:
            raise TypeError(describe(op, f"inputs live on different devices ({first} and {d}); "
                                         "move them with .to(device) first", [x.shape for x in arrays]))


def _check_finite(op, phase, y, module):
    xp = backend.get_array_module(y)
    if y.dtype.kind == "f" and not bool(xp.isfinite(y).all()):
        raise FloatingPointError(describe(op, f"{phase} produced NaN or Inf (detect_anomaly)",
                                          [y.shape], module=module))


def sum_to(g, shape):
    """Undo broadcasting: sum `g` down to `shape`."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


# ---------------------------------------------------------------- Tensor
def _is_backend_array(x) -> bool:
    return isinstance(x, np.ndarray) or backend.get_array_module(x) is not np


class Tensor:
    """An n-dimensional array that records the ops applied to it, for reverse-mode autodiff."""
    __slots__ = ("data", "requires_grad", "grad", "creator", "out_index", "generation", "name",
                 "__weakref__")
    __array_ufunc__ = None  # make `ndarray op Tensor` call Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if _is_backend_array(data):
            arr = data if dtype is None else data.astype(dtype, copy=False)
        else:
            arr = np.asarray(data, dtype=dtype)
            if dtype is None and arr.dtype == np.float64:
                arr = arr.astype(_state["dtype"])   # Python floats follow the default dtype
        self.data = arr
        self.grad = None
        self.creator = None
        self.out_index = 0
        self.generation = 0
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr, requires_grad: bool) -> Tensor:
        t = object.__new__(cls)
        t.data, t.grad, t.creator, t.out_index, t.generation, t.name = arr, None, None, 0, 0, None
        t.requires_grad = requires_grad and arr.dtype.kind in "fc"
        return t

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(f"Tensor of dtype {self.data.dtype} cannot require grad: only floating "
                            "point tensors can (integer ids, masks and counts never do)")
        self.requires_grad = flag
        return self

    # ---- properties
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self.creator is None)

    def __len__(self):
        return len(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only a one-element tensor converts to a Python scalar, "
                             f"this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def numpy(self) -> np.ndarray:
        """A host ndarray (sharing memory on the CPU)."""
        return backend.to_numpy(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut off from the graph."""
        return Tensor._wrap(self.data, False)

    def to(self, target) -> Tensor:
        """A copy on another device ('cpu', 'cuda') or with another dtype, as a new leaf that keeps
        `requires_grad` (use it for inputs and parameters, not inside a differentiable graph)."""
        if isinstance(target, str):
            arr = backend.to_device(self.data, target)
        else:
            arr = self.data.astype(target)
        out = Tensor._wrap(arr, False)
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
        if self.data.size != 1:
            raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    # ---- autograd
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires a gradient."""
        if not self.requires_grad:
            raise RuntimeError(describe("backward", "this tensor does not require grad (it was made "
                                        "from inputs with requires_grad=False or under no_grad())"))
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(describe("backward", "grad can be implied only for a scalar output; "
                                          "pass grad= of the same shape", [self.shape]))
            g = xp.ones(self.shape, dtype=self.dtype)
        else:
            g = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(describe("backward", f"grad shape {g.shape} does not match the "
                                          f"tensor's shape {self.shape}", [self.shape, g.shape]))
        run_backward(self, g, retain_graph)

    def _accumulate(self, g) -> None:
        if g.dtype != self.data.dtype:
            g = g.astype(self.data.dtype)
        if self.grad is None:
            self.grad = Tensor._wrap(np.array(g) if isinstance(g, np.generic) else g.copy(), False)   # copy: no aliasing between grads
        else:
            self.grad.data = self.grad.data + g

    def zero_grad(self) -> None:
        self.grad = None


def run_backward(root: Tensor, g, retain_graph: bool) -> None:
    """Reverse-topological walk with a heap (no recursion): deepest generation first."""
    fn = root.creator
    if fn is None:
        root._accumulate(g)
        return
    if fn.inputs is None:
        raise RuntimeError(describe("backward", "the graph was already freed by an earlier backward; "
                                    "pass retain_graph=True to the first call to backprop twice",
                                    module=fn.module))
    pending = {fn: [None] * len(fn.out_meta)}
    pending[fn][root.out_index] = g
    heap = [(-fn.generation, -fn.seq, fn)]
    anomaly = _state["anomaly"]
    while heap:
        fn = heapq.heappop(heap)[2]
        gys = pending.pop(fn)
        if fn.inputs is None:
            raise RuntimeError(describe("backward", f"graph freed at op '{fn.op}'; use retain_graph=True",
                                        module=fn.module))
        for i, gy in enumerate(gys):
            if gy is None and not fn.takes_missing_grads:   # an unused output of a multi-output op
                shape, dtype = fn.out_meta[i]
                gys[i] = backend.get_array_module(fn.inputs[0].data).zeros(shape, dtype)
        gxs = fn.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        for x, gx in zip(fn.inputs, gxs):
            if gx is None or not x.requires_grad:
                continue
            if anomaly:
                _check_finite(fn.op, "backward", gx, fn.module)
            c = x.creator
            if c is None:
                x._accumulate(gx)
                continue
            buf = pending.get(c)
            if buf is None:
                buf = pending[c] = [None] * len(c.out_meta)
                heapq.heappush(heap, (-c.generation, -c.seq, c))
            j = x.out_index
            if gx.dtype != x.data.dtype:
                gx = gx.astype(x.data.dtype)
            buf[j] = gx if buf[j] is None else buf[j] + gx
        if not retain_graph:
            fn.release()


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Tensors pass through; scalars and arrays become constants (on `like`'s device and dtype)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and not _is_backend_array(x):
        xp = backend.get_array_module(like.data)
        arr = np.asarray(x)
        dtype = like.dtype if (arr.dtype.kind in "fiub" and like.dtype.kind == "f") else None
        return Tensor._wrap(xp.asarray(arr, dtype=dtype), False)
    return Tensor(x)
