"""Where an error points: the op, its input shapes, the module path and the user's own file and line
(the innermost frame outside this package), so a failure deep in a model names the line that caused it."""
from __future__ import annotations

import os
import sys

from .grad_mode import current_module_path

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tinygrad_s2s/, not autograd/

def user_location() -> str:
    """Where the user wrote the op: `file:line` of the innermost caller outside this package.

    Returns:
        str: `"path/to/script.py:12"`, or `"<unknown>"`.
    """
    frame = _user_frame(sys._getframe(1))
    return "<unknown>" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


USER, LIBRARY, ENGINE = 0, 1, 2
"""Kinds of code file: the user's (a script, a plugin), this package's code that uses the engine
(models, training, viz, the command line) and the engine itself with Python's own machinery."""


def _user_frame(frame):
    """The first frame from `frame` outward whose file is the user's; when the whole stack is this
    package's (the command line drawing a zoo model: the loss op in Seq2seqModel), the innermost frame
    of the library code that called the engine, rather than Python's runpy; None if there is neither."""
    library = None
    while frame is not None:
        name = frame.f_code.co_filename
        kind = _KIND.get(name)
        if kind is None:
            kind = _kind(name)
        if kind == USER:
            return frame
        if kind == LIBRARY and library is None:
            library = frame
        frame = frame.f_back
    return library


def _kind(filename: str) -> int:
    """USER, LIBRARY or ENGINE for a code file (cached per file name: asked on every recorded node)."""
    path = os.path.abspath(filename)
    if filename.startswith("<frozen ") or "contextlib" in path:
        kind = ENGINE
    elif not path.startswith(_PKG_DIR + os.sep):
        kind = USER
    else:
        top = os.path.relpath(path, _PKG_DIR).split(os.sep)[0]
        kind = ENGINE if top in _ENGINE_PARTS else LIBRARY
    _KIND[filename] = kind
    return kind


_ENGINE_PARTS = {"autograd", "ops", "backend", "nn", "tensor.py", "optim.py", "serialization.py", "__init__.py"}
_KIND: dict = {}


def describe(op: str, reason: str, shapes=(), module: str | None = None) -> str:
    """An error message in the library's form: the op, what is wrong, the shapes, the module, the line.

    Args:
        op: the op's name (`"matmul"`).
        reason: what is wrong, in words.
        shapes: the input shapes to show.
        module: the module path; default the current one (`current_module_path()`).

    Returns:
        str: `"op: reason; input shapes (2, 3), (4, 5); in module 'decoder'; at script.py:12"`.
    """
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
