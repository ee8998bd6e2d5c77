"""The engine: Tensor, Function (one node per primitive application) and the backward pass.

A Function's `forward` and `backward` work on raw arrays of the active backend; `Function.apply`
wraps them with Tensors, records the graph (only when a gradient is needed) and turns failures into
errors that name the op, the shapes, the module path and the user's file and line.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import operator
import os
import sys
import weakref

import numpy as np

from . import backend

# ---------------------------------------------------------------- global state (one place)
_state = {"grad": True, "anomaly": False, "dtype": np.dtype(np.float32)}
_scope = [""]                   # module path stack; Module.__call__ pushes its dotted path
_scope_calls = [()]             # per path level, which call of that module (a number); see module_scope
_call_numbers = itertools.count(1)
_seq = itertools.count()         # tie-breaker so the heap never compares Functions
_recording = [None]              # the GradOf under which a backward is being recorded (create_graph)
_clock = [0]                     # counts in-place changes; a backward checks versions only if it moved
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
    """Push a module name; every node created inside records the dotted path and, per level of it,
    a number that tells one call of that module from the next (two calls back to back are two calls
    in a drawing). A dotted name (`layers.0`, a ModuleList's child) adds levels its call does not own:
    they keep the enclosing call's number."""
    parent = _scope[-1]
    path = f"{parent}.{name}" if parent and name else (name or parent)
    calls = _scope_calls[-1]
    added = (path.count(".") + 1 if path else 0) - (parent.count(".") + 1 if parent else 0)
    if added > 0:
        calls = calls + (calls[-1] if calls else 0,) * (added - 1) + (next(_call_numbers),)
    _scope.append(path)
    _scope_calls.append(calls)
    try:
        yield
    finally:
        _scope.pop()
        _scope_calls.pop()


def current_module_path() -> str:
    return _scope[-1]


def user_location() -> str:
    """'file:line' of the innermost caller outside this package (where the user wrote the op)."""
    frame = _user_frame(sys._getframe(1))
    return "<unknown>" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _user_frame(frame):
    """The first frame from `frame` outward whose file is outside this package (None if there is none)."""
    while frame is not None:
        name = frame.f_code.co_filename
        inside = _INSIDE.get(name)
        if inside is None:
            inside = _is_inside(name)
        if not inside:
            return frame
        frame = frame.f_back
    return None


def describe(op: str, reason: str, shapes=(), module: str | None = None) -> str:
    module = current_module_path() if module is None else module
    parts = [f"{op}: {reason}"]
    if shapes:
        parts.append("input shapes " + ", ".join(str(tuple(s)) for s in shapes))
    parts.append(f"in module '{module or '<top level>'}'")
    parts.append(f"at {user_location()}")
    return "; ".join(parts)


# ---------------------------------------------------------------- Function
class _Saved:
    def __init__(self, index: int):
        self.index = index

    def __set_name__(self, owner, name):
        self.name = name


class saved_input(_Saved):
    """`x = saved_input(0)` in a Function class: `self.x` in backward is input 0's array (a Tensor
    while a recorded backward runs, create_graph=True).

    The engine refuses a backward after such an input was changed in place (an optimizer step,
    `t.data = ...`), instead of computing with the new values.
    """

    def __get__(self, fn, owner=None):
        if fn is None:
            return self
        return fn.inputs[self.index]._data    # apply normally stores the array on the node itself


class saved_output(_Saved):
    """`y = saved_output(0)` in a Function class: `self.y` in backward is output 0's array, kept by
    the node itself (a Tensor, node of the graph, while a recorded backward runs)."""

    def __get__(self, fn, owner=None):
        if fn is None:
            return self
        raise AttributeError(f"{type(fn).__name__}.{self.name}: saved outputs exist only on a node "
                             "recorded for backward")


class BackwardPass:
    """One recorded backward run (`backward(create_graph=True)`, `tg.grad(..., create_graph=True)`):
    the file:line that called it and the order of the derivative it computes (1 + the highest order
    among the recorded ops it differentiates)."""
    __slots__ = ("location", "order")

    def __init__(self, location: str):
        self.location, self.order = location, 1


class GradOf:
    """What recorded a node during a BackwardPass (the node's `grad_of`): the backward of op `op`
    (its module path and forward file:line; `of` is that op's own GradOf when it was itself recorded
    in a backward), or with `op` None the pass's own work (summing gradients, handing them out)."""
    __slots__ = ("op", "module", "location", "of", "pass_")

    def __init__(self, op, module: str, location: str, of, pass_: BackwardPass):
        self.op, self.module, self.location, self.of, self.pass_ = op, module, location, of, pass_


@contextlib.contextmanager
def _recorded(record):
    """Ops created inside get `grad_of = record`."""
    _recording.append(record)
    try:
        yield
    finally:
        _recording.pop()


def _backward_pass(create_graph: bool):
    """The context of one public backward call: a new BackwardPass when it records a graph and is not
    already inside one (a reference composition differentiated within a pass stays in that pass)."""
    if not create_graph or _recording[-1] is not None:
        return contextlib.nullcontext()
    return _recorded(GradOf(None, current_module_path(), user_location(), None, BackwardPass(user_location())))


def _grad_of(fn) -> GradOf:
    """The record for fn's backward in the pass being recorded; raises that pass's order to one more
    than the order of the pass that made fn."""
    current = _recording[-1].pass_
    made = fn.grad_of.pass_ if fn.grad_of is not None else None
    if made is not current:
        current.order = max(current.order, (made.order if made is not None else 0) + 1)
    return GradOf(fn.op, fn.module, fn.location(), fn.grad_of, current)


class Function:
    """One primitive. Subclasses define `forward(*arrays)` and `backward(*grads)` on raw arrays.

    `backward` returns one gradient per input (None where no gradient flows), each of the shape of
    the op's broadcast result or of the input itself: the engine sums broadcast dims back, checks the
    shape and dtype and names this class in any error. Inputs and outputs that backward reads are
    declared as class attributes `x = saved_input(0)` / `y = saved_output(0)`: the engine then keeps
    them and refuses a backward after such an input was changed in place. It may consult
    `self.needs_grad[i]` to skip work for inputs that do not require a gradient. A multi-output op
    whose outputs were not all used gets zeros for the unused ones, or None if it sets
    `takes_missing_grads` (and then skips that work itself).

    Gradients of gradients (`backward(create_graph=True)`, `tg.grad`): a class that sets
    `twice_differentiable = True` promises that its backward also runs on Tensors, i.e. it uses only
    operators, Tensor methods, `_xp(...)` functions and other ops' `run`, and reads inputs and outputs
    only through `saved_input`/`saved_output` (what else it saves is constant: masks, shapes, ids).
    The engine then calls it with Tensor gradients and Tensor saved values, so the gradient it returns
    is itself a graph. A class with a `reference(self, *inputs)` method (the op rebuilt from such ops)
    is differentiated through that instead; any other op refuses create_graph=True with a clear error.
    A node made while a backward is recorded has `grad_of` (a GradOf: which op's backward, which pass).
    """
    name = None  # op name shown in errors and graphs; defaults to the lowercase class name
    takes_missing_grads = False
    views = False        # outputs may be views of the first input's array (reshape, transpose, slicing)
    twice_differentiable = False   # backward runs on Tensors too (see "Gradients of gradients")
    reference = None     # optional method: the op rebuilt from twice-differentiable ops
    saved_inputs = ()    # indices of inputs read in backward (set from the saved_input attributes)
    saved_outputs = ()   # indices of outputs whose arrays backward reads (from saved_output attributes;
                         # a fused op that keeps views of its outputs in its own state lists them itself)
    needs_grad = ()      # per input, whether it needs a gradient; () when no graph is recorded
    _saved_in_attrs = _saved_out_attrs = ()   # (attribute name, index) of the descriptors
    grad_of = None       # a GradOf on nodes recorded during backward(create_graph=True)
    calls = ()           # per level of `module`, the number of that module's call (module_scope)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        attrs = [v for k in dir(cls) for v in (getattr(cls, k, None),)]
        cls._saved_in_attrs = tuple((a.name, a.index) for a in attrs if isinstance(a, saved_input))
        cls._saved_out_attrs = tuple((a.name, a.index) for a in attrs if isinstance(a, saved_output))
        cls._saves = bool(cls._saved_in_attrs or cls._saved_out_attrs)
        ins = {i for _, i in cls._saved_in_attrs}
        if ins:
            cls.saved_inputs = tuple(sorted(set(cls.saved_inputs) | ins))
        outs = {i for _, i in cls._saved_out_attrs}
        if outs:
            cls.saved_outputs = tuple(sorted(set(cls.saved_outputs) | outs))
        cls._checks_versions = bool(cls.saved_inputs or cls.saved_outputs)

    def __init__(self, **params):
        self.__dict__.update(params)

    @property
    def op(self) -> str:
        return self.name or type(self).__name__.lower()

    @classmethod
    def apply(cls, *inputs: Tensor, **params):
        """Run the op on Tensors; returns a Tensor (or a tuple for multi-output ops)."""
        fn = cls(**params)
        arrays = [t._data for t in inputs]
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
        if ys[0].dtype == np.float64 and _state["dtype"] != np.float64 and not any(
                a.dtype == np.float64 for a in arrays):
            ys = _default_float(ys)
        if _state["anomaly"]:
            for y in ys:
                _check_finite(fn.op, "forward", y, current_module_path())
        outs = tuple(Tensor._wrap(y, need) for y in ys)
        if cls.views:              # outputs that are the first input's data: they share its versions
            first = inputs[0]._data
            for o, y in zip(outs, ys):
                if y is first or (getattr(y, "base", None) is not None
                                  and (type(y) is not np.ndarray or np.may_share_memory(y, first))):
                    o._base = inputs[0]
        if need:
            fn.inputs = inputs
            fn.module, fn.calls = _scope[-1], _scope_calls[-1]
            f = _user_frame(sys._getframe(1))   # the user's line
            fn.call_site = ("<unknown>", 0) if f is None else (f.f_code.co_filename, f.f_lineno)
            if cls._checks_versions:
                fn._clock = _clock[0]
            if cls._saves:         # saved values as plain attributes: backward reads them at full speed
                d = fn.__dict__
                for name, i in cls._saved_in_attrs:
                    d[name] = arrays[i]
                for name, i in cls._saved_out_attrs:
                    d[name] = ys[i]
            fn.generation = max(t.generation for t in inputs)
            fn.outputs = tuple(weakref.ref(o) for o in outs)
            fn.out_meta = tuple((y.shape, y.dtype) for y in ys)
            fn.seq = next(_seq)
            if _recording[-1] is not None:
                fn.grad_of = _recording[-1]
            for i, o in enumerate(outs):
                o.creator, o.out_index, o.generation = fn, i, fn.generation + 1
        return outs if multi else outs[0]

    @classmethod
    def run(cls, *values, **params):
        """`apply` on Tensors, the bare forward on arrays: lets one op's backward use another op on
        raw arrays (first order) and on Tensors (a differentiable backward) alike."""
        if any(isinstance(v, Tensor) for v in values):
            first = next(v for v in values if isinstance(v, Tensor))
            return cls.apply(*(as_tensor(v, like=first) for v in values), **params)
        return cls(**params).forward(*values)

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self):
        """Drop inputs and saved arrays so the graph's memory is freed after backward."""
        d = self.__dict__
        kept = {k: d[k] for k in _KEEP_AFTER_RELEASE if k in d}
        d.clear()
        d.update(kept)
        self.inputs = None

    def location(self) -> str:
        """'file:line' of the user's code that ran this op's forward."""
        return f"{self.call_site[0]}:{self.call_site[1]}"

    def __repr__(self):
        return f"<Function {self.op} module='{getattr(self, 'module', '')}'>"


_KEEP_AFTER_RELEASE = ("module", "calls", "call_site", "generation", "out_meta", "seq", "outputs", "needs_grad", "grad_of")


def _is_inside(filename: str) -> bool:
    """Whether a code file belongs to this package (cached per file name: checked on every node)."""
    path = os.path.abspath(filename)
    inside = _INSIDE[filename] = path.startswith(_PKG_DIR + os.sep) or "contextlib" in path
    return inside


_INSIDE: dict = {}


def _node_error(fn, reason: str) -> str:
    """An error about node `fn` found during backward: op, module and the forward's file:line."""
    return (f"{fn.op}: {reason}; in module '{fn.module or '<top level>'}'; forward at {fn.location()}")


def _stamp(t) -> int:
    """When t's data last changed in place: through t, or through a view of the tensor t views (a
    reshape of a parameter that an optimizer step then changed)."""
    stamp = getattr(t, "_stamp", 0)
    base = t._base
    while base is not None:
        stamp = max(stamp, getattr(base, "_stamp", 0))
        base = base._base
    return stamp


def _describe_tensor(t) -> str:
    if getattr(t, "is_param", False):
        return f"parameter '{t.name}'"
    return f"tensor '{t.name}'" if t.name else f"a tensor of shape {t.shape}"


def _check_versions(fn) -> None:
    for i in fn.saved_inputs:
        t = fn.inputs[i]
        if _stamp(t) > fn._clock:
            changed = t
            while getattr(changed, "_stamp", 0) <= fn._clock and changed._base is not None:
                changed = changed._base          # a view: the tensor it views was changed
            what = _describe_tensor(t) + ("" if changed is t else f", a view of {_describe_tensor(changed)}")
            raise RuntimeError(_node_error(fn, (
                f"input {i} ({what}), saved for backward, was modified in place after the forward "
                f"(its version is now {changed._version}), so its gradient would be wrong. Call backward before "
                "optimizer.step() (or before assigning .data / loading a state dict), or run the "
                "forward again")))
    for i in fn.saved_outputs:
        t = fn.outputs[i]()          # gone: nobody can have changed it since
        if t is not None and _stamp(t) > fn._clock:
            raise RuntimeError(_node_error(fn, (
                f"output {i} (a tensor of shape {t.shape}), which its backward reads, was modified in place "
                f"after the forward (its version is now {t._version}), so the gradient would be wrong. Change "
                "a copy instead (y = y * 1 before the in-place change), or modify it after backward")))


def _check_grad(fn, i, gx, x, create_graph=False):
    """The engine's one check of a returned gradient of another shape or dtype than its input: undo
    broadcasting, refuse other shapes and non-float dtypes, cast to the input's float dtype."""
    shape = x._data.shape
    try:
        kind, gshape = gx.dtype.kind, gx.shape
    except AttributeError:
        raise TypeError(_node_error(fn, f"{type(fn).__name__}.backward returned a {type(gx).__name__} "
                                        f"for input {i}; expected an array of shape {shape}")) from None
    if kind not in "fc":
        raise TypeError(_node_error(fn, f"{type(fn).__name__}.backward returned dtype {gx.dtype} for "
                                        f"input {i}; gradients must be floating point"))
    if gshape != shape:
        if not _broadcasts_to(shape, gshape):
            raise ValueError(_node_error(fn, f"{type(fn).__name__}.backward returned a gradient of shape "
                                             f"{tuple(gx.shape)} for input {i}, expected {tuple(shape)} "
                                             "(or a shape it broadcasts to)"))
        gx = _sum_to(gx, shape)
    if not create_graph and gx.dtype != x._data.dtype:
        gx = gx.astype(x._data.dtype)
    return gx


def _broadcasts_to(shape, target) -> bool:
    lead = len(target) - len(shape)
    if lead < 0:
        return False
    for s, t in zip(shape, target[lead:]):
        if s != t and s != 1:
            return False
    return True


def _default_float(ys) -> tuple:
    """NumPy makes float64 from integers (tanh, mean, division, int64 * float32); floats made from
    inputs that held no float64 take the default dtype instead, as floats written in Python do (and
    as in PyTorch)."""
    return tuple(y.astype(_state["dtype"]) if y.dtype == np.float64 else y for y in ys)


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
    """Undo broadcasting: sum `g` down to `shape`; a shape that `g` is not a broadcast of raises."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    if not _broadcasts_to(shape, g.shape):
        raise ValueError(f"sum_to: a gradient of shape {tuple(g.shape)} is not a broadcast of {shape}")
    return _sum_to(g, shape)


def _sum_to(g, shape):
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
        if isinstance(data, Tensor):
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
        if arr.dtype.kind not in backend.NUMERIC_KINDS:
            raise TypeError(f"Tensor: data of dtype {arr.dtype} is not numeric; a Tensor holds booleans, "
                            "integers or floating point numbers")
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

    @classmethod
    def _wrap(cls, arr, requires_grad: bool) -> Tensor:
        t = object.__new__(cls)
        t._data, t._version, t.grad, t.creator, t.out_index, t.generation, t.name = arr, 0, None, None, 0, 0, None
        t._base = None
        t.requires_grad = requires_grad and arr.dtype.kind == "f"
        return t

    def requires_grad_(self, flag: bool = True) -> Tensor:
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
    size = property(lambda self: self._data.size)
    device = property(lambda self: backend.device_of(self._data))
    is_leaf = property(lambda self: self.creator is None)
    version = property(lambda self: self._version, doc="How many in-place changes this tensor has seen.")

    def bump_version(self) -> Tensor:
        """Record an in-place change made by writing into `.data[...]` (see `data`). A view (a
        reshape, transpose or slice of another tensor: `_base`) passes the change on to what it views,
        whose data it is."""
        _clock[0] += 1           # the stamp says when: a node checks only inputs stamped after it
        t = self
        while t is not None:
            t._version += 1
            t._stamp = _clock[0]
            t = t._base
        return self

    def zero_(self) -> Tensor:
        """Set every element to 0 in place (a version bump: a saved-for-backward use then raises)."""
        self.check_writable("zero_()")
        self._data[...] = 0
        return self.bump_version()

    def fill_(self, value) -> Tensor:
        """Set every element to `value` in place (a version bump, as `zero_`)."""
        self.check_writable("fill_()")
        self._data[...] = value
        return self.bump_version()

    def check_writable(self, what: str) -> None:
        """Refuse an in-place change of a tensor whose array is another tensor's data (a view an op
        made, as slicing, reshape and transpose do, or an input passed through): the version check
        would not see the change reach that tensor, and a backward that saved it would be wrong."""
        fn = self.creator
        if fn is None:
            return
        arr = self._data
        if getattr(arr, "base", None) is not None or (fn.inputs is not None and any(x._data is arr for x in fn.inputs)):
            raise RuntimeError(f"{what} on a tensor that op '{fn.op}' made as a view of another tensor's data: the "
                               "change would reach that tensor unseen, and a backward that saved it would compute a "
                               "wrong gradient; change a copy instead (t = t * 1)")

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
        """A new leaf sharing this tensor's data, cut off from the graph (an in-place change of it is
        a change of this tensor: the version checks see it)."""
        t = Tensor._wrap(self.data, False)
        t._base = self
        return t

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
    def backward(self, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires a gradient.

        `grad`: the upstream gradient (implied 1 for a one-element tensor). `create_graph=True`
        records the backward pass itself, so each `.grad` is a Tensor with a graph that can be
        differentiated again (Hessian-vector products, gradient penalties). `retain_graph` keeps
        this graph for another backward; it defaults to `create_graph`.
        """
        if not self.requires_grad:
            raise RuntimeError(describe("backward", "this tensor does not require grad (it was made "
                                        "from inputs with requires_grad=False or under no_grad())"))
        g = _seed_grad("backward", self, grad, create_graph)
        keep = create_graph if retain_graph is None else retain_graph
        with _backward_pass(create_graph):
            run_backward([self], [g], keep, create_graph)

    def _accumulate(self, g, create_graph: bool = False) -> None:
        if create_graph:
            g = _fresh(g)
            self.grad = g if self.grad is None else self.grad + g
            return
        if g.dtype != self.data.dtype:
            g = g.astype(self.data.dtype)
        if self.grad is None:
            self.grad = Tensor._wrap(np.array(g) if isinstance(g, np.generic) else g.copy(), False)   # copy: no aliasing between grads
        elif self.grad.creator is not None:     # a graph from create_graph: leave it intact
            self.grad = Tensor._wrap(self.grad._data + g, False)
        else:   # a new array, not an in-place change: nothing saved can see it, so no version bump
            self.grad._data = self.grad._data + g

    def zero_grad(self) -> None:
        self.grad = None


def _seed_grad(op, t, grad, create_graph):
    """The upstream gradient of `t`: ones for a one-element tensor, else `grad` (checked)."""
    xp = backend.get_array_module(t.data)
    if grad is None:
        if t.data.size != 1:
            raise ValueError(describe(op, "grad can be implied only for a scalar output; "
                                      "pass grad= of the same shape", [t.shape]))
        g = xp.ones(t.shape, dtype=t.dtype)
    elif isinstance(grad, Tensor):
        g = grad if create_graph else grad.data
    else:
        g = xp.asarray(grad, dtype=t.dtype)
    if g.shape != t.shape:
        raise ValueError(describe(op, f"grad shape {tuple(g.shape)} does not match the "
                                  f"tensor's shape {t.shape}", [t.shape, g.shape]))
    return _as_node(g) if create_graph else g


def _as_node(g):
    """A gradient as a Tensor (arrays become constants) while the backward is being recorded."""
    return g if isinstance(g, Tensor) else Tensor._wrap(g, False)


class Copy(Function):
    """The identity with a copied array: a recorded gradient handed out as a `.grad` (or by `grad`)
    is a Tensor of its own, so no two share one object or array (clip_grad_norm scales in place)."""
    twice_differentiable = True

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def _fresh(g: Tensor) -> Tensor:
    with _setting("grad", True):
        return Copy.apply(g)


def run_backward(roots, grads, retain_graph: bool, create_graph: bool = False, wanted=None) -> None:
    """Reverse-topological walk with a heap (no recursion): deepest generation first.

    Gradients go into the leaves' `.grad`, or, when `wanted` is a dict (`tg.grad`), only into its
    entries: keyed by the Tensor for a leaf, by (creator, out_index) otherwise. With `create_graph`
    every gradient is a Tensor and each backward is recorded as ops (call it inside a `_backward_pass`).
    `roots` and `grads` may also be one tensor and its gradient.
    """
    if isinstance(roots, Tensor):
        roots, grads = [roots], [grads]
    pending, heap = {}, []
    needed = None if wanted is None else _nodes_leading_to(roots, wanted)
    for root, g in zip(roots, grads):
        if root.creator is None:
            _deliver(root, g, create_graph, wanted)
        elif root.creator.inputs is None:
            raise RuntimeError(describe("backward", "the graph was already freed by an earlier backward; "
                                        "pass retain_graph=True to the first call to backprop twice",
                                        module=root.creator.module))
        else:
            _push(pending, heap, root, g)
    anomaly = _state["anomaly"]
    while heap:
        fn = heapq.heappop(heap)[2]
        gys = pending.pop(fn)
        if wanted is not None:
            for j, gy in enumerate(gys):
                if (fn, j) in wanted and gy is not None:
                    wanted[fn, j] = gy if wanted[fn, j] is None else wanted[fn, j] + gy
            if fn not in needed:
                continue
        if fn.inputs is None:
            raise RuntimeError(describe("backward", f"graph freed at op '{fn.op}'; use retain_graph=True",
                                        module=fn.module))
        if fn._checks_versions and fn._clock != _clock[0]:
            _check_versions(fn)
        for i, gy in enumerate(gys):
            if gy is None and not fn.takes_missing_grads:   # an unused output of a multi-output op
                shape, dtype = fn.out_meta[i]
                gys[i] = backend.get_array_module(fn.inputs[0].data).zeros(shape, dtype)
                if create_graph:
                    gys[i] = Tensor._wrap(gys[i], False)
        if create_graph:
            gxs = _call_graph_backward(fn, gys)
        else:
            try:
                gxs = fn.backward(*gys)
            except Exception as exc:
                raise _backward_error(fn, exc) from exc
            if type(gxs) is not tuple:
                gxs = (gxs,)
            if len(gxs) != len(fn.inputs):
                gxs = _as_grad_tuple(fn, gxs)
        i = -1
        for x, gx in zip(fn.inputs, gxs):
            i += 1
            if gx is None or not x.requires_grad:
                continue
            xd = x._data
            if getattr(gx, "shape", None) != xd.shape or gx.dtype != xd.dtype:
                gx = _check_grad(fn, i, gx, x, create_graph)
            if anomaly:
                _check_finite(fn.op, "backward", gx.data if create_graph else gx, fn.module)
            c = x.creator
            if c is None:
                _deliver(x, gx, create_graph, wanted)
                continue
            if needed is None or c in needed or (c, x.out_index) in wanted:
                _push(pending, heap, x, gx)
        if not retain_graph:
            fn.release()


def _deliver(leaf, g, create_graph, wanted):
    """A leaf's gradient: accumulated into .grad, or kept for `tg.grad` if it asked for this leaf."""
    if wanted is None:
        leaf._accumulate(g, create_graph)
    elif leaf in wanted:
        wanted[leaf] = g if wanted[leaf] is None else wanted[leaf] + g


def _push(pending, heap, t, g):
    """Add g to the gradient buffer of t's node, scheduling the node on its first gradient."""
    fn = t.creator
    buf = pending.get(fn)
    if buf is None:
        buf = pending[fn] = [None] * len(fn.out_meta)
        heapq.heappush(heap, (-fn.generation, -fn.seq, fn))
    j = t.out_index
    buf[j] = g if buf[j] is None else buf[j] + g


def _nodes_leading_to(roots, wanted) -> set:
    """The nodes whose backward must run for `tg.grad`: those with a path down to a wanted tensor."""
    seen, stack = {}, [r.creator for r in roots if r.creator is not None]
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen[fn] = None
        if fn.inputs is None:
            continue
        stack.extend(x.creator for x in fn.inputs if x.creator is not None and x.creator not in seen)
    needed = set()
    for fn in sorted(seen, key=lambda f: f.seq):     # creation order: inputs' nodes come first
        if fn.inputs is not None and any(
                (x in wanted) if x.creator is None else
                (x.creator in needed or (x.creator, x.out_index) in wanted) for x in fn.inputs):
            needed.add(fn)
    return needed


def _call_graph_backward(fn, gys) -> tuple:
    """fn's backward recorded as ops (on Tensors, or through the op's reference composition), with
    broadcasting undone inside the same record, so every op it adds is drawn as part of fn's backward."""
    with _setting("grad", True), _recorded(_grad_of(fn)):
        if fn.twice_differentiable:
            d = fn.__dict__
            arrays = {name: d[name] for name, _ in fn._saved_in_attrs + fn._saved_out_attrs}
            for name, i in fn._saved_in_attrs:
                d[name] = fn.inputs[i]
            for name, i in fn._saved_out_attrs:     # the output again, as a node: y = op(inputs)
                t = d[name] = Tensor._wrap(arrays[name], True)
                t.creator, t.out_index, t.generation = fn, i, fn.generation + 1
            try:
                gxs = fn.backward(*gys)
            except Exception as exc:
                raise _backward_error(fn, exc) from exc
            finally:
                d.update(arrays)
            gxs = _as_grad_tuple(fn, gxs)
        elif fn.reference is not None:
            gxs = _reference_vjp(fn, gys)
        else:
            raise RuntimeError(_node_error(fn, (
                f"{type(fn).__name__}.backward runs on arrays only, so create_graph=True cannot "
                "differentiate it; set twice_differentiable = True once its backward runs on Tensors "
                "(saved_input/saved_output for what it reads), or give it a reference(*inputs) built "
                "from ops")))
        gxs = tuple(None if g is None else _as_node(g) for g in gxs)
        return tuple(g if g is None or not x.requires_grad or (g.shape == x.shape and g.dtype.kind == "f")
                     else _check_grad(fn, i, g, x, True) for i, (x, g) in enumerate(zip(fn.inputs, gxs)))


def _reference_vjp(fn, gys) -> tuple:
    """The vector-Jacobian product of fn computed through its reference composition, recorded."""
    outs = fn.reference(*fn.inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    _check_reference(fn, outs)
    pairs = [(o, g) for o, g in zip(outs, gys) if g is not None and o.requires_grad]
    targets = [x for x, need in zip(fn.inputs, fn.needs_grad) if need]
    got = iter(grad([o for o, _ in pairs], targets, [g for _, g in pairs], create_graph=True,
                    allow_unused=True) if pairs and targets else [None] * len(targets))
    return tuple(next(got) if need else None for need in fn.needs_grad)


# How far a reference's output may be from the forward's: round-off of another order of operations
_REFERENCE_RTOL = {2: 1e-2, 4: 1e-3, 8: 1e-8}     # by itemsize: float16, float32, float64


def _check_reference(fn, outs) -> None:
    """A reference that computes something other than the forward would make every gradient of
    create_graph=True silently wrong: compare it with the forward's outputs that are still as the
    forward left them (version 0)."""
    if len(outs) != len(fn.outputs):
        raise RuntimeError(_node_error(fn, f"{type(fn).__name__}.reference returned {len(outs)} outputs, "
                                           f"forward {len(fn.outputs)}"))
    for i, (ref, w) in enumerate(zip(outs, fn.outputs)):
        y = w()
        if y is None or y._version:         # gone, or changed in place since: nothing to compare with
            continue
        got, want = as_tensor(ref).data, y._data
        if got.shape != want.shape:
            raise RuntimeError(_node_error(fn, f"{type(fn).__name__}.reference gives output {i} of shape "
                                               f"{got.shape}, forward {want.shape}"))
        if not want.size:
            continue
        xp = backend.get_array_module(want)     # compared where the arrays live: one number comes back
        rtol = _REFERENCE_RTOL.get(np.dtype(want.dtype).itemsize, 1e-3)
        scale = max(float(backend.to_numpy(xp.max(xp.abs(want)))), 1.0)
        bad = ~xp.isclose(got, want, rtol=rtol, atol=rtol * scale, equal_nan=True)
        if bool(backend.to_numpy(bad.any())):
            got, want, bad = (backend.to_numpy(a) for a in (got, want, bad))
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise RuntimeError(_node_error(fn, (
                f"{type(fn).__name__}.reference does not compute what its forward computed: output {i} at "
                f"element {idx} is {float(got[idx]):.8g}, the forward gave {float(want[idx]):.8g} ({int(bad.sum())} of {bad.size} "
                "differ); create_graph=True differentiates reference, so its gradients would be wrong")))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, as a tuple of Tensors (`.grad` untouched).

    outputs, inputs: a Tensor or a sequence of them (inputs may be intermediate tensors);
    grad_outputs: the upstream gradients (implied 1 for one-element outputs). `create_graph=True`
    returns gradients that carry their own graph, to differentiate again (Hessian-vector products,
    gradient penalties); `retain_graph` defaults to `create_graph`. An input the outputs do not depend
    on raises, unless `allow_unused=True` (then its gradient is None). As `torch.autograd.grad`.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(describe("grad", f"{len(grad_outputs)} grad_outputs for {len(outputs)} outputs"))
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(describe("grad", f"input {k} does not require grad, so it has no gradient"))
    pairs = []
    for k, (o, g) in enumerate(zip(outputs, grad_outputs)):
        if not o.requires_grad:
            raise RuntimeError(describe("grad", f"output {k} does not require grad (made from inputs "
                                        "with requires_grad=False or under no_grad())"))
        pairs.append((o, _seed_grad("grad", o, g, create_graph)))
    wanted = {(t if t.creator is None else (t.creator, t.out_index)): None for t in inputs}
    keep = create_graph if retain_graph is None else retain_graph
    result = []
    with _backward_pass(create_graph):
        run_backward([o for o, _ in pairs], [g for _, g in pairs], keep, create_graph, wanted)
        for k, t in enumerate(inputs):
            g = wanted[t if t.creator is None else (t.creator, t.out_index)]
            if g is None and not allow_unused:
                raise RuntimeError(describe("grad", f"input {k} (shape {t.shape}) is not used by the "
                                            "outputs' graph; pass allow_unused=True to get None for it"))
            if g is not None:
                g = _fresh(g) if isinstance(g, Tensor) else Tensor._wrap(
                    backend.get_array_module(g).asarray(g).astype(t.dtype, copy=True), False)
            result.append(g)
    return tuple(result)


def _backward_error(fn, exc) -> Exception:
    """A failure inside fn.backward, re-raised like forward errors: op, module and file:line."""
    msg = _node_error(fn, f"{type(fn).__name__}.backward failed: {exc}")
    try:
        return type(exc)(msg)
    except Exception:
        return RuntimeError(msg)


def _as_grad_tuple(fn, gxs) -> tuple:
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if len(gxs) != len(fn.inputs):
        raise ValueError(_node_error(fn, f"{type(fn).__name__}.backward returned {len(gxs)} gradients "
                                         f"for {len(fn.inputs)} inputs"))
    return gxs


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Tensors pass through; scalars and arrays become constants (on `like`'s device and dtype)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and not _is_backend_array(x):
        xp = backend.get_array_module(like.data)
        arr = np.asarray(x)
        dtype = (like.dtype if (arr.dtype.kind in "fiub" and like.dtype.kind == "f") else
                 _state["dtype"] if arr.dtype == np.float64 and not isinstance(x, np.ndarray) else None)
        return Tensor._wrap(xp.asarray(arr, dtype=dtype), False)
    return Tensor(x)
