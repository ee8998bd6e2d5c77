"""Names are data, never markup: a module, class or tensor name holding DOT escapes (`\\`, `\\n`), HTML
(`<b>x</b>`, `<!--<script>`), quotes or a port separator (`:`) is drawn as exactly those characters,
in DOT text, in the SVG of either layout program, and in the HTML page's data."""
from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from tinygrad_s2s import nn
from tinygrad_s2s.viz import render, to_dot
from tinygrad_s2s.viz.html import to_html

from small_models import NAMES, Block, Outer, crafted

SVG = "{http://www.w3.org/2000/svg}"


def _svg_texts(svg: str) -> list:
    """The lines of text an SVG shows (it must be well-formed XML)."""
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def _counts(svg: str) -> dict:
    """How many nodes, clusters and edges an SVG draws."""
    kinds = [g.get("class") for g in ET.fromstring(svg).iter(f"{SVG}g")]
    return {k: kinds.count(k) for k in ("node", "cluster", "edge")}


def _programs():
    yield "graphviz-pure"
    if shutil.which("dot"):
        yield "dot"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("program", list(_programs()))
@pytest.mark.parametrize("how", ["open", "closed", "rolled"])
def test_crafted_names_are_drawn_as_text_in_dot_and_svg(name, program, how, tmp_path, monkeypatch):
    if program == "graphviz-pure":
        monkeypatch.setenv("PATH", str(tmp_path))       # no system dot: the pip package lays it out
    def draw(name):
        loss, model = crafted(name)
        kwargs = {"open": {}, "closed": {"collapse": name}, "rolled": {"depth": 0, "roll": True}}[how]
        return open(render(to_dot(loss, module=model, title=name, **kwargs), tmp_path / "g.svg"), encoding="utf-8").read()

    svg = draw(name)
    texts = _svg_texts(svg)
    # no phantom boxes, nodes or arrows: the same drawing as for a plain name, shape for shape
    assert _counts(svg) == _counts(draw("inner")), (_counts(svg), _counts(draw("inner")))
    if how == "open":           # the cluster label: class, then (path); the input tensor's name
        assert texts.count(name) >= 3 and f"({name})" in texts and f"({name}.fc)" in texts, texts
    else:                       # the module drawn as one box: class, then path; the input's name
        assert texts.count(name) >= 4, texts


@pytest.mark.parametrize("name", NAMES)
def test_crafted_names_reach_the_html_page_as_data(name, tmp_path):
    loss, model = crafted(name)
    page = open(to_html(loss, tmp_path / "g.html", module=model, title=name), encoding="utf-8").read()
    script = re.search(r'<script id="tg-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in script                   # nothing in the data block can end or re-open a script
    data = json.loads(script)
    assert data["title"] == name
    assert {g["path"] for g in data["groups"].values()} == {name, f"{name}.fc"}
    assert name in {g["cls"] for g in data["groups"].values()}
    assert name in {n.get("name") for n in data["nodes"].values()}
    assert page.count("<script") == 3           # the data, the layout engine and the page's own code


def test_a_dot_in_a_module_name_is_refused_naming_it():
    # a path 'a.b' means module b inside module a: a name holding '.' drew a box for a module 'a'
    with pytest.raises(ValueError, match=r"Outer: sub-module name 'a\.b' contains '\.'"):
        Outer("a.b", "Block")
    # a module list's items keep their dotted paths ('layers.0'): those are levels, set by the list
    layers = nn.ModuleList([Block(2), Block(2)])
    layers._set_scope_name("layers")
    assert [m._name for m in layers] == ["layers.0", "layers.1"]
