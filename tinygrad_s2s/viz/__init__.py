"""Pictures of the engine's graphs and of attention: networkx export, Graphviz drawings grouped by
module (closed by depth, folded when repeated), rendering without a shell, the interactive HTML view,
and the book's attention heatmap. In a notebook the drawing, the view (`show_html`) and the heatmap
show inline.

Importing this package is cheap: networkx, graphviz and matplotlib load when a function needs them.
"""
from .dot import to_dot
from .graph import GraphFreedError, to_networkx, walk
from .heatmap import attention_heatmap
from .html import show_html, to_html
from .render import GraphvizNotFoundError, find_layout_program, render

__all__ = ["to_networkx", "to_dot", "to_html", "show_html", "render", "attention_heatmap", "walk",
           "find_layout_program", "GraphvizNotFoundError", "GraphFreedError"]
