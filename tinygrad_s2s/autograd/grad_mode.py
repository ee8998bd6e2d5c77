"""The engine's global settings, in one place: whether a graph is recorded (`no_grad`), anomaly
detection, the default float dtype, and the module path (and call number) each new node records."""
from __future__ import annotations

import contextlib
import itertools

import numpy as np

_state = {"grad": True, "anomaly": False, "dtype": np.dtype(np.float32)}


_tracers = []                   # a tracer (tinygrad_s2s.onnx's export) sees every op run and every value read;
                                # see `tracing`


_scope = [""]                   # module path stack; Module.__call__ pushes its dotted path


_scope_calls = [()]             # per path level, which call of that module (a number); see module_scope


_call_numbers = itertools.count(1)


@contextlib.contextmanager
def _setting(key, value):
    old = _state[key]
    _state[key] = value
    try:
        yield
    finally:
        _state[key] = old


def no_grad():
    """Build no graph inside this block: inference, decoding, optimizer updates (`torch.no_grad`).

    Returns:
        A context manager (`with tg.no_grad():`); it also decorates a function (`@tg.no_grad()`).
    """
    return _setting("grad", False)


def enable_grad():
    """Build the graph again inside a `no_grad` block (`torch.enable_grad`).

    Returns:
        A context manager (`with tg.enable_grad():`); it also decorates a function (`@tg.enable_grad()`).
    """
    return _setting("grad", True)


def is_grad_enabled() -> bool:
    """Whether ops record a graph here (False inside `no_grad`).

    Returns:
        bool: the current setting.
    """
    return _state["grad"]


def detect_anomaly():
    """Raise FloatingPointError at the first op, forward or backward, that produces NaN or Inf.

    The error names the op, its module and the line that called it; slower (every output is checked).

    Returns:
        A context manager (`with tg.detect_anomaly():`); it also decorates a function (`@tg.detect_anomaly()`).
    """
    return _setting("anomaly", True)


def set_default_dtype(dtype) -> None:
    """Set the float dtype of new tensors and parameters from Python floats (float32 unless changed).

    Args:
        dtype: a float NumPy dtype (`np.float64`, `np.float32`).

    Raises:
        TypeError: `dtype` is not a floating point dtype.
    """
    _state["dtype"] = _float_dtype(dtype)


def get_default_dtype() -> np.dtype:
    """The float dtype new tensors and parameters take.

    Returns:
        numpy.dtype: float32 unless `set_default_dtype` or `default_dtype` changed it.
    """
    return _state["dtype"]


def default_dtype(dtype):
    """Use another default float dtype inside a block: `with tg.default_dtype(np.float64):`.

    Args:
        dtype: a float NumPy dtype.

    Returns:
        A context manager that restores the previous default on exit.

    Raises:
        TypeError: `dtype` is not a floating point dtype.
    """
    return _setting("dtype", _float_dtype(dtype))


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    return dtype


@contextlib.contextmanager
def module_scope(name: str):
    """Push a module name for the nodes created inside (what calling a Module does).

    Every node records the dotted path and, per level of it, a number that tells one call of that
    module from the next (two calls back to back are two calls in a drawing). A dotted name
    (`layers.0`, a ModuleList's child) adds levels its call does not own: they keep the enclosing
    call's number.

    Args:
        name: the module's name; empty keeps the enclosing path.

    Yields:
        None: the block runs with the path pushed.
    """
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
    """The dotted module path new nodes record (`decoder.lstm`; empty at top level).

    Returns:
        str: the innermost `module_scope`'s path.
    """
    return _scope[-1]


@contextlib.contextmanager
def tracing(tracer):
    """Inside this block every op that runs calls `tracer.op(fn, inputs, outputs)` (whether or not a graph
    is recorded for backward), and every read of a tensor's values into Python (`bool(t)`, `t.item()`,
    `t.numpy()`, a comparison) calls `tracer.read(tensor, what)`: how `tinygrad_s2s.onnx` records a
    function's graph and notices data-dependent control flow. Blocks nest: the innermost tracer is called.

    Args:
        tracer: an object with `op(fn, inputs, outputs)` and `read(tensor, what)` methods.

    Yields:
        `tracer` itself, removed again when the block ends (also on an error).
    """
    _tracers.append(tracer)
    try:
        yield tracer
    finally:
        _tracers.pop()
