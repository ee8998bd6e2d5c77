"""Save a drawing: DOT text always, laid out by Graphviz's `dot` (or the pip `graphviz-pure`) when present.

The layout program is run as an argument list (never through a shell), reading DOT on stdin.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

from ..serialization import write_bytes as _write_bytes

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install "
                "graphviz`) or the pure-Python-installable port (`pip install graphviz-pure`)")


class GraphvizNotFoundError(RuntimeError):
    """No layout program was found; the `.dot` file was written instead (its path is `dot_path`)."""

    def __init__(self, message: str, dot_path: str):
        super().__init__(message)
        self.dot_path = dot_path


def _script_dirs() -> list[str]:
    """Where pip puts commands for this Python (found even when that folder is not on PATH)."""
    return list(dict.fromkeys(d for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)) if d))


def find_layout_program() -> tuple[str, str] | None:
    """(path, kind) of the program that lays out DOT: Graphviz's `dot` on PATH ('graphviz'), else the
    `graphviz-pure` command on PATH or beside this Python ('graphviz-pure'); None when neither is."""
    dot = shutil.which("dot")
    if dot:
        return dot, "graphviz"
    pure = shutil.which("graphviz-pure")
    if pure is None:    # installed into this environment but the environment is not on PATH
        for folder in _script_dirs():
            candidate = os.path.join(folder, "graphviz-pure")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                pure = candidate
                break
    return (pure, "graphviz-pure") if pure else None


def _source(graph) -> str:
    if isinstance(graph, str):
        return graph
    src = getattr(graph, "source", None)   # graphviz.Digraph / graphviz.Source
    if isinstance(src, str):
        return src
    raise TypeError(f"render: expected a graphviz.Digraph or DOT text, got {type(graph).__name__}")


def render(graph, path, *, timeout: float = 120.0) -> str:
    """Save `graph` (a `graphviz.Digraph` or DOT text) to `path`; returns the path written.

    The format comes from the extension: .svg, .png, .pdf or .dot. Layout uses Graphviz's `dot` when
    it is on PATH, else the `graphviz-pure` command (no PDF output) if installed. With neither, the
    DOT text is written next to `path` (same name, `.dot`) and GraphvizNotFoundError says how to
    install either.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"render: cannot tell the format of {path!r} from its extension; "
                         f"use one of {', '.join('.' + f for f in FORMATS)}")
    text = _source(graph)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if ext == "dot":
        _write_text(path, text)
        return path
    found = find_layout_program()
    if found is not None and found[1] == "graphviz-pure" and ext == "pdf":
        found = None   # graphviz-pure has no PDF output yet
        why = "graphviz-pure cannot write PDF; install Graphviz for .pdf, or ask for .svg/.png"
    else:
        why = "no Graphviz `dot` on PATH and no `graphviz-pure` installed"
    if found is None:
        dot_path = os.path.splitext(path)[0] + ".dot"
        _write_text(dot_path, text)
        raise GraphvizNotFoundError(f"cannot write {path}: {why}; wrote the graph as DOT text to "
                                    f"{dot_path} instead. To render it, {INSTALL_HINT}", dot_path)
    program = found[0]
    try:
        proc = subprocess.run([program, f"-T{ext}"], input=text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"render: {program} took longer than {timeout:g} s to lay out {path}; "
                           "try collapse= or depth= for a smaller drawing") from None
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode("utf-8", "replace").split())[:500]
        raise RuntimeError(f"render: {program} -T{ext} failed (exit {proc.returncode}) for {path}: {err}")
    _write_bytes(path, proc.stdout)
    return path


def _write_text(path: str, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))

