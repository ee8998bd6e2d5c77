"""The engine's checks of what flows through the graph: versions of saved tensors (an in-place change
after the forward is refused at backward), gradients of the wrong shape or dtype, broadcasting undone
(`sum_to`), NaN/Inf under `detect_anomaly`, and inputs on different devices."""
from __future__ import annotations

import numpy as np

from .. import backend
from .errors import _node_error, describe
from .grad_mode import _state

_clock = [0]                     # counts in-place changes; a backward checks versions only if it moved

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
    """Undo broadcasting: sum `g` down to `shape` (what the engine does to each input's gradient).

    Args:
        g: an array or Tensor, of a shape that `shape` broadcasts to.
        shape: the target shape.

    Returns:
        The sum of `g` over the broadcast axes, of `shape` (`g` itself when the shapes are equal).

    Raises:
        ValueError: `g`'s shape is not a broadcast of `shape` (a backward returned a wrong shape).
    """
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
