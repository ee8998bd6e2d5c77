"""`Function`: one primitive op, its forward and backward side by side, and `apply`, which runs it on
Tensors and records the graph node (only when a gradient is needed). Also the records of a backward
that is itself recorded (`create_graph=True`): which op's backward made a node, in which pass."""
from __future__ import annotations

import contextlib
import itertools
import sys
import weakref

import numpy as np

from .checks import _check_finite, _check_same_device, _clock, _default_float
from .errors import _user_frame, describe, user_location
from .grad_mode import _scope, _scope_calls, _state, _tracers, current_module_path
from .tensor_base import TensorBase, as_tensor, wrap

_seq = itertools.count()         # tie-breaker so the heap never compares Functions
_recording = [None]              # the GradOf under which a backward is being recorded (create_graph)

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

    Args:
        index: which input, counted from 0.
    """

    def __get__(self, fn, owner=None):
        if fn is None:
            return self
        return fn.inputs[self.index]._data    # apply normally stores the array on the node itself


class saved_output(_Saved):
    """`y = saved_output(0)` in a Function class: `self.y` in backward is output 0's array, kept by
    the node itself (a Tensor, node of the graph, while a recorded backward runs).

    Args:
        index: which output, counted from 0.
    """

    def __get__(self, fn, owner=None):
        if fn is None:
            return self
        raise AttributeError(f"{type(fn).__name__}.{self.name}: saved outputs exist only on a node "
                             "recorded for backward")


class BackwardPass:
    """One recorded backward run (`backward(create_graph=True)`, `tg.grad(..., create_graph=True)`).

    `order` is the order of the derivative it computes (1 + the highest order among the recorded ops
    it differentiates).

    Args:
        location: the `file:line` that called the backward.
    """
    __slots__ = ("location", "order")

    def __init__(self, location: str):
        self.location, self.order = location, 1


class GradOf:
    """What recorded a node during a BackwardPass (the node's `grad_of`).

    Args:
        op: the op whose backward made the node, or None for the pass's own work (summing gradients,
            handing them out).
        module: that op's module path.
        location: that op's forward `file:line`.
        of: that op's own GradOf when it was itself recorded in a backward, else None.
        pass_: the BackwardPass.
    """
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
    An op that can be exported to ONNX defines `onnx(self, g, *inputs)` (see tinygrad_s2s/ops/base.py).

    Args:
        **params: the op's constant parameters (`axis=1`, `shape=(2, 3)`), set as attributes of the
            node (`self.axis`); `apply` passes them through.
    """
    name = None  # op name shown in errors and graphs; defaults to the lowercase class name
    takes_missing_grads = False
    views = False        # outputs may be views of the first input's array (reshape, transpose, slicing)
    twice_differentiable = False   # backward runs on Tensors too (see "Gradients of gradients")
    reference = None     # optional method: the op rebuilt from twice-differentiable ops
    saved_inputs = ()    # indices of inputs read in backward (set from the saved_input attributes)
    saved_outputs = ()   # indices of outputs whose arrays backward reads (from the saved_output attributes
                         # and kept_views)
    kept_views = ()      # indices of outputs whose arrays the op keeps views of in its own state (the fused
                         # LSTM's hs, a view of its saved gates): version-checked as saved outputs, and never
                         # changed in place (zero_, fill_, +=) while in the graph
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
        outs = {i for _, i in cls._saved_out_attrs} | set(cls.kept_views)
        if outs:
            cls.saved_outputs = tuple(sorted(set(cls.saved_outputs) | outs))
        cls._checks_versions = bool(cls.saved_inputs or cls.saved_outputs)

    def __init__(self, **params):
        self.__dict__.update(params)

    @property
    def op(self) -> str:
        return self.name or type(self).__name__.lower()

    @classmethod
    def apply(cls, *inputs: TensorBase, **params):
        """Run the op on Tensors and record the graph node (only when an input requires a gradient).

        Args:
            *inputs: the Tensors the op reads (`as_tensor` converts numbers and arrays first).
            **params: the op's constant parameters, as attributes of the node.

        Returns:
            Tensor | tuple[Tensor, ...]: the output, or a tuple for a multi-output op.

        Raises:
            ValueError: `forward` raised ValueError or IndexError (the message gains the op, the input
                shapes, the module and the user's line), or the inputs are on different devices.
            TypeError: `forward` raised TypeError (the message gains the same).
            FloatingPointError: inside `detect_anomaly`, an output holds NaN or Inf.
        """
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
        outs = tuple(wrap(y, need) for y in ys)
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
        if _tracers:
            _tracers[-1].op(fn, inputs, outs)
        return outs if multi else outs[0]

    @classmethod
    def run(cls, *values, **params):
        """`apply` on Tensors, the bare forward on arrays.

        Lets one op's backward use another op on raw arrays (first order) and on Tensors (a differentiable
        backward) alike.

        Args:
            *values: arrays, or Tensors (then numbers and arrays among them become constants like the
                first Tensor).
            **params: the op's constant parameters.

        Returns:
            The forward's array(s), or `apply`'s Tensor(s).
        """
        if any(isinstance(v, TensorBase) for v in values):
            first = next(v for v in values if isinstance(v, TensorBase))
            return cls.apply(*(as_tensor(v, like=first) for v in values), **params)
        return cls(**params).forward(*values)

    def forward(self, *arrays):  # pragma: no cover - abstract
        """The op on raw arrays (NumPy or CuPy); subclasses define it.

        Args:
            *arrays: the inputs' arrays, in order.

        Returns:
            An array, or a tuple of arrays for a multi-output op.
        """
        raise NotImplementedError

    def backward(self, *grads):  # pragma: no cover - abstract
        """The gradients of the inputs from the outputs'; subclasses define it.

        Args:
            *grads: one gradient per output, of its shape (zeros, or None with `takes_missing_grads`,
                for an output that was not used).

        Returns:
            One gradient per input (a single value for a one-input op), None where no gradient flows.
        """
        raise NotImplementedError

    def release(self):
        """Drop inputs and saved arrays so the graph's memory is freed after backward."""
        d = self.__dict__
        kept = {k: d[k] for k in _KEEP_AFTER_RELEASE if k in d}
        d.clear()
        d.update(kept)
        self.inputs = None

    def location(self) -> str:
        """Where the user's code ran this op's forward.

        Returns:
            str: `"file:line"`.
        """
        return f"{self.call_site[0]}:{self.call_site[1]}"

    def __repr__(self):
        return f"<Function {self.op} module='{getattr(self, 'module', '')}'>"


_KEEP_AFTER_RELEASE = ("module", "calls", "call_site", "generation", "out_meta", "seq", "outputs", "needs_grad", "grad_of")
