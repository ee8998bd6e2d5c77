"""Save a drawing: DOT text always; laid out by Graphviz's own `dot` when it is on PATH, else by the
pip-installed `graphviz-pure` (a dependency of this package, so svg and png work on every machine).

The layout program is run as an argument list (never through a shell), reading DOT on stdin.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from typing import NamedTuple

from ..serialization import write_bytes as _write_bytes
from . import formats

SYSTEM_GRAPHVIZ = "graphviz"
PURE = "graphviz-pure"
GRAPHVIZ_HINT = "install Graphviz (Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install graphviz`)"


class GraphvizNotFoundError(RuntimeError):
    """No layout program can write the asked format; the `.dot` file was written instead.

    Args:
        message: what was asked and what to install.
        dot_path: the `.dot` file written in its place; None when the drawing was asked for in
            memory, as a notebook does.
    """

    def __init__(self, message: str, dot_path: str | None):
        super().__init__(message)
        self.dot_path = dot_path


class LayoutProgram(NamedTuple):
    """A program that lays out DOT: its path, its kind ('graphviz' or 'graphviz-pure') and the image
    formats it writes."""
    path: str
    kind: str

    @property
    def formats(self) -> tuple:
        return formats.LAID_OUT if self.kind == SYSTEM_GRAPHVIZ else formats.PURE_LAID_OUT


def _script_dirs() -> list[str]:
    """Where pip puts commands for this Python (found even when that folder is not on PATH)."""
    return list(dict.fromkeys(d for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)) if d))


def _find_pure() -> str | None:
    pure = shutil.which(PURE)
    if pure is None:    # installed into this environment but the environment is not on PATH
        for folder in _script_dirs():
            for name in (PURE, PURE + ".exe"):
                candidate = os.path.join(folder, name)
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                    return candidate
    return pure


def find_layout_program(fmt: str | None = None) -> LayoutProgram | None:
    """The program that will lay out DOT: Graphviz's `dot` on PATH first, else `graphviz-pure`.

    `graphviz-pure` (a dependency) is looked for on PATH or beside this Python.

    Args:
        fmt: the output format wanted (`"svg"`, `"png"`), or None for any.

    Returns:
        LayoutProgram | None: the program, or None when none can write `fmt`.
    """
    dot = shutil.which("dot")
    if dot:
        return LayoutProgram(dot, SYSTEM_GRAPHVIZ)
    pure = _find_pure()
    if pure and (fmt is None or fmt in formats.PURE_LAID_OUT):
        return LayoutProgram(pure, PURE)
    return None


def _source(graph) -> str:
    if isinstance(graph, str):
        return graph
    src = getattr(graph, "source", None)   # graphviz.Digraph / graphviz.Source
    if isinstance(src, str):
        return src
    raise TypeError(f"render: expected a graphviz.Digraph or DOT text, got {type(graph).__name__}")


def _why_not(fmt: str) -> str:
    """What is missing for `fmt`, and exactly what would make it work."""
    pure = _find_pure()
    if pure:       # only PDF gets here: graphviz-pure is installed, so never advise installing it
        return (f"graphviz-pure ({pure}) writes {formats.listed(formats.PURE_LAID_OUT)} but not .{fmt}, "
                f"and Graphviz's own `dot` is not on PATH. For .{fmt}, {GRAPHVIZ_HINT}; "
                f"or ask for {formats.listed(formats.PURE_LAID_OUT)}")
    return ("no layout program: Graphviz's `dot` is not on PATH and graphviz-pure (a dependency of "
            "tinygrad-s2s) is not installed in this environment. Reinstall it with "
            f"`{os.path.basename(sys.executable)} -m pip install graphviz-pure`, or {GRAPHVIZ_HINT}")


def render(graph, path, *, timeout: float = 120.0) -> str:
    """Save `graph` (a `graphviz.Digraph` or DOT text) to `path`; returns the path written.

    The format comes from the extension: .svg, .png, .pdf or .dot. Layout uses Graphviz's `dot` when
    it is on PATH, else graphviz-pure (installed with this package; svg and png). When no program can
    write the format, the DOT text is written next to `path` (same name, `.dot`) and
    GraphvizNotFoundError says what would make it work.
    """
    path = os.fspath(path)
    ext = formats.extension(path)
    if ext not in formats.STATIC:
        hint = " (an interactive page is written by `to_html`)" if ext == formats.HTML else ""
        raise ValueError(f"render: cannot tell the format of {path!r} from its extension; "
                         f"use one of {formats.listed(formats.STATIC)}{hint}")
    text = _source(graph)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if ext == formats.DOT:
        _write_text(path, text)
        return path
    try:
        data = lay_out(text, ext, timeout=timeout, what=path)
    except GraphvizNotFoundError as e:
        dot_path = os.path.splitext(path)[0] + ".dot"
        _write_text(dot_path, text)
        raise GraphvizNotFoundError(f"{e}. The graph was written as DOT text to {dot_path}", dot_path) from None
    _write_bytes(path, data)
    return path


def lay_out(graph, fmt: str, *, timeout: float = 120.0, what: str = "the drawing") -> bytes:
    """`graph` (a `graphviz.Digraph` or DOT text) laid out into `fmt` ('svg' or 'png'; 'pdf' needs
    Graphviz's own `dot`) by the program `render` uses, as bytes; `what` names the drawing in errors.
    GraphvizNotFoundError (its `dot_path` None: nothing was written) when no program can."""
    text = _source(graph)
    program = find_layout_program(fmt)
    if program is None:
        raise GraphvizNotFoundError(f"cannot write {what}: {_why_not(fmt)}", None)
    try:
        proc = subprocess.run([program.path, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"render: {program.path} took longer than {timeout:g} s to lay out {what}; "
                           "try depth=, roll=True or collapse= for a smaller drawing") from None
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode("utf-8", "replace").split())[:500]
        raise RuntimeError(f"render: {program.path} -T{fmt} failed (exit {proc.returncode}) for {what}: {err}")
    return proc.stdout


def _write_text(path: str, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))
