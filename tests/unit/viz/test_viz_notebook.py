"""What a Jupyter notebook shows: the mime data of `to_dot`'s drawing (laid out without system
Graphviz), of `show_html`'s inline interactive view and of `attention_heatmap`'s Figure."""
from __future__ import annotations

import html
import importlib
import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.viz import GraphvizNotFoundError, attention_heatmap, render, show_html, to_dot, to_html, to_networkx

from small_models import empty_path, mlp_loss
from svg import svg_nodes

render_module = importlib.import_module("tinygrad_s2s.viz.render")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- to_dot inline
def test_a_drawing_shows_inline_as_svg_without_system_graphviz(tmp_path, monkeypatch):
    empty_path(monkeypatch, tmp_path)
    loss, model = mlp_loss()
    graph = to_dot(loss, module=model)
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]            # what Jupyter asks for by default
    nodes, clusters = svg_nodes(bundle["image/svg+xml"])   # parses as XML, draws every node
    assert set(nodes) == set(to_networkx(loss).nodes) and clusters
    assert graph._repr_svg_() == bundle["image/svg+xml"]
    png = graph._repr_mimebundle_(include=["image/png", "image/svg+xml"], exclude=["image/svg+xml"])
    assert list(png) == ["image/png"] and png["image/png"][:8] == PNG_MAGIC


def test_the_drawing_is_still_a_graphviz_digraph(tmp_path, monkeypatch):
    graphviz = pytest.importorskip("graphviz")
    empty_path(monkeypatch, tmp_path)
    x = tg.Tensor(np.ones(2), requires_grad=True, name="x")
    graph = to_dot(tg.exp(x), title="t")
    assert isinstance(graph, graphviz.Digraph) and graph.source.startswith("digraph tinygrad_s2s {")
    copy = graph.copy()
    assert copy.source == graph.source and type(copy) is type(graph)
    # the same program lays out the inline picture and the file
    svg = open(render(graph, tmp_path / "g.svg"), encoding="utf-8").read()
    assert ET.fromstring(svg).tag == ET.fromstring(graph._repr_image_svg_xml()).tag


def test_with_no_layout_program_the_inline_drawing_says_what_to_install(tmp_path, monkeypatch):
    empty = empty_path(monkeypatch, tmp_path)
    monkeypatch.setattr(render_module, "_script_dirs", lambda: [str(empty)])
    x = tg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(GraphvizNotFoundError, match="pip install graphviz-pure") as info:
        to_dot(tg.exp(x))._repr_mimebundle_()
    assert info.value.dot_path is None and not list(tmp_path.glob("*.dot"))


# ---------------------------------------------------------------- the interactive view inline
def test_the_interactive_view_shows_inline_as_a_sandboxed_self_contained_frame(tmp_path):
    loss, model = mlp_loss()
    view = show_html(loss, module=model, title='a "quoted" <stack> & co', height=420)
    shown = view._repr_html_()
    frame = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" style="([^"]*)"></iframe>', shown)
    assert frame, shown[:300]                    # one attribute holds the page: no quote left unescaped
    # the browser unescapes the attribute into exactly the page to_html writes: scripts, data and the
    # layout engine inlined, nothing fetched from a CDN or a file
    page = html.unescape(frame.group(1))
    assert page == view.page == open(to_html(loss, tmp_path / "g.html", module=model,
                                             title='a "quoted" <stack> & co'), encoding="utf-8").read()
    assert "globalThis.TgGraphviz = " in page and "<title>a \"quoted\" &lt;stack&gt; &amp; co</title>" in page
    assert not re.search(r"<script[^>]+src=|<link|@import|https?://[^\s\"']*\.(js|css|wasm)", page)
    assert "height: 420px" in frame.group(2)
    assert "interactive graph view" in repr(view)
    with pytest.raises(ValueError, match="height must be a positive number of pixels"):
        show_html(loss, height=0)


# ---------------------------------------------------------------- the heatmap inline
def test_with_no_path_the_heatmap_is_a_figure_a_notebook_shows_as_png(tmp_path):
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    w = np.random.default_rng(0).dirichlet(np.ones(6), size=4)      # (L=4, T=6), rows sum to 1
    fig = attention_heatmap(w, "abc de", "1994", title="t")
    assert isinstance(fig, Figure) and not list(tmp_path.iterdir())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "·", "d", "e"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "9", "9", "4"]
    png = fig._repr_png_()                     # what Jupyter puts in the cell's image/png output
    assert png[:8] == PNG_MAGIC
    width, height = fig.get_size_inches() * fig.dpi      # the whole figure, not a thumbnail
    assert np.allclose(imread(io.BytesIO(png)).shape[:2], (height, width), atol=1)
    # with a path it still writes the file and returns the path (the CLI's attention-map relies on it)
    assert attention_heatmap(w, "abc de", "1994", tmp_path / "m.png") == str(tmp_path / "m.png")
    with pytest.raises(ValueError, match="cannot tell the image format"):
        attention_heatmap(w, "abc de", "1994", tmp_path / "m.jpeg")
