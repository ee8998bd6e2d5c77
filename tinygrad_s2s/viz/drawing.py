"""The object `to_dot` returns: a `graphviz.Digraph` that a notebook shows inline through the same
layout program as `render` (Graphviz's `dot` when on PATH, else the pip-installed graphviz-pure).

The graphviz package's own notebook display pipes to the `dot` binary and fails with
`ExecutableNotFound: dot` on a machine without system Graphviz; only the display is changed here, so
`.source`, `.render(...)`, `.pipe(...)` and `tg.viz.render(graph, path)` work as on any Digraph.
"""
from __future__ import annotations

import graphviz

from .render import lay_out

SVG, PNG = "image/svg+xml", "image/png"


class Drawing(graphviz.Digraph):
    """A `graphviz.Digraph` whose notebook display (SVG by default, PNG when asked) is laid out by
    `tg.viz.render`'s program."""

    def _repr_mimebundle_(self, include=None, exclude=None, **_):
        # same contract as graphviz's: `include` picks mimetypes (default SVG), `exclude` drops some
        wanted = set(include) if include is not None else {SVG}
        wanted -= set(exclude or ())
        shown = {SVG: self._repr_image_svg_xml, PNG: self._repr_image_png}
        return {mime: make() for mime, make in shown.items() if mime in wanted}

    def _repr_image_svg_xml(self) -> str:
        return lay_out(self, "svg", what="the drawing shown inline").decode("utf-8")

    def _repr_image_png(self) -> bytes:
        return lay_out(self, "png", what="the drawing shown inline")

    _repr_svg_ = _repr_image_svg_xml     # front ends that ask for SVG by the classic method name
