"""Pictures of the engine's graphs and of attention: networkx export, Graphviz drawings grouped by
module (closed by depth, folded when repeated), rendering without a shell, the interactive HTML view,
and the book's attention heatmap.

Importing this package is cheap: networkx, graphviz and matplotlib load when a function needs them.
"""
from .dot import to_dot
from .graph import GraphFreedError, to_networkx, walk
from .heatmap import attention_heatmap
from .html import to_html
from .render import GraphvizNotFoundError, find_layout_program, render

__all__ = ["to_networkx", "to_dot", "to_html", "render", "attention_heatmap", "walk", "find_layout_program",
           "GraphvizNotFoundError", "GraphFreedError"]
