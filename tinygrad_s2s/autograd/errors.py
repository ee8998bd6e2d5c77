"""Where an error points: the op, its input shapes, the module path and the user's own file and line
(the innermost frame outside this package), so a failure deep in a model names the line that caused it."""
from __future__ import annotations

import os
import sys

from .grad_mode import current_module_path

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tinygrad_s2s/, not autograd/

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


def _is_inside(filename: str) -> bool:
    """Whether a code file belongs to this package (cached per file name: checked on every node)."""
    path = os.path.abspath(filename)
    inside = _INSIDE[filename] = path.startswith(_PKG_DIR + os.sep) or "contextlib" in path
    return inside


_INSIDE: dict = {}


def describe(op: str, reason: str, shapes=(), module: str | None = None) -> str:
    module = current_module_path() if module is None else module
    parts = [f"{op}: {reason}"]
    if shapes:
        parts.append("input shapes " + ", ".join(str(tuple(s)) for s in shapes))
    parts.append(f"in module '{module or '<top level>'}'")
    parts.append(f"at {user_location()}")
    return "; ".join(parts)


def _node_error(fn, reason: str) -> str:
    """An error about node `fn` found during backward: op, module and the forward's file:line."""
    return (f"{fn.op}: {reason}; in module '{fn.module or '<top level>'}'; forward at {fn.location()}")


def _backward_error(fn, exc) -> Exception:
    """A failure inside fn.backward, re-raised like forward errors: op, module and file:line."""
    msg = _node_error(fn, f"{type(fn).__name__}.backward failed: {exc}")
    try:
        return type(exc)(msg)
    except Exception:
        return RuntimeError(msg)
