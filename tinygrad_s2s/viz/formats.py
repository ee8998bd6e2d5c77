"""Every file format the drawing tools write, in one place (the CLI's choices, render's checks and
the messages all read these)."""
from __future__ import annotations

import os

LAID_OUT = ("svg", "png", "pdf")     # a Graphviz program lays the DOT out into these
PURE_LAID_OUT = ("svg", "png")       # the subset the pip-installed graphviz-pure writes
DOT = "dot"                          # the DOT text itself: no layout program needed
HTML = "html"                        # the interactive page (`to_html`): laid out in the browser
STATIC = (*LAID_OUT, DOT)            # what `render` writes from a drawing
ALL = (*STATIC, HTML)                # what `tinygrad-s2s graph --format` accepts


def extension(path) -> str:
    """The lower-case extension of `path` without its dot ('' when it has none)."""
    return os.path.splitext(os.fspath(path))[1].lower().lstrip(".")


def listed(formats) -> str:
    """'.svg, .png, .pdf' for messages."""
    return ", ".join("." + f for f in formats)
