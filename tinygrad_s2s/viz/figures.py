"""A matplotlib Figure that a notebook shows with no pyplot and no backend set up.

A bare `Figure` shows as the text `<Figure size ...>` unless pyplot's inline backend was loaded first
(it registers the PNG formatter); figures here are drawn on the Agg canvas without pyplot (no GUI
window, no global state), so they carry their own PNG display.
"""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class InlineFigure(Figure):
    """A Figure on an Agg canvas whose notebook display is its PNG."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()
