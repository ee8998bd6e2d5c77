"""The interactive HTML view: what the file holds (one self-contained page), the data it carries, and
how it behaves in a real headless Chromium (the OS package; CI installs it in .ci/run)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.viz import record_locations, to_html
from tinygrad_s2s.viz.html import MAX_OPS_AT_LOAD, graph_data

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Browser, find_chromium  # noqa: E402

needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="no chromium on PATH (CI installs Debian's `chromium` in .ci/run)")


def registered(name: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return name in tg.available_models()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return tg.tanh(self.fc(x))


class Stack(nn.Module):
    def __init__(self, n=3):
        super().__init__()
        self.layers = nn.ModuleList([Block() for _ in range(n)])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.layers:
            x = block(x)
        return tg.mean(self.head(x) ** 2)


def stack_loss():
    model = Stack()
    with record_locations():
        loss = model(tg.Tensor(np.arange(8.0).reshape(2, 4) / 8, requires_grad=True, name="x"))
    return loss, model


def test_the_page_is_one_self_contained_file(tmp_path):
    loss, model = stack_loss()
    path = to_html(loss, tmp_path / "pics" / "g.html", module=model, title="a <small> stack")
    assert os.listdir(tmp_path / "pics") == ["g.html"]
    page = open(path, encoding="utf-8").read()
    # nothing is fetched: no external script, style, image or font, no network or file URL
    assert not re.search(r"<script[^>]+src=|<link|@import|url\(|https?://[^\s\"']*\.(js|css|wasm)", page)
    assert "globalThis.TgGraphviz = " in page and "a &lt;small&gt; stack" in page
    assert page.count("</script>") == 3          # data, layout engine, app: each closed once


def test_page_data_carries_shapes_locations_saved_tensors_and_gradients(tmp_path):
    loss, model = stack_loss()
    loss.backward(retain_graph=True)
    data = graph_data(loss, module=model)
    ops = {k: n for k, n in data["nodes"].items() if n["k"] == "op"}
    tanh = next(n for n in ops.values() if n["op"] == "tanh")
    assert tanh["module"] == "layers.0" and tanh["shape"] == "(2, 4)" and tanh["dtype"] == "float64"
    assert tanh["loc"].endswith(f"{os.path.basename(__file__)}:{Block.forward.__code__.co_firstlineno + 1}")
    assert any(name for name, *_ in tanh["saved"])             # what tanh kept for its backward
    grads = {n["name"] or n["module"]: n["grad"] for n in data["nodes"].values() if "grad" in n}
    assert grads["x"] == pytest.approx(float(np.linalg.norm(_leaf(loss, "x").grad.numpy())))
    assert sum(1 for n in data["nodes"].values() if n.get("param") and "grad" in n) == 8   # 4 Linears
    folds = [g for g in data["groups"].values() if g["kind"] == "fold"]
    assert [(f["label"], f["count"], f["recurrent"]) for f in folds] == [("layers.0-2", 3, True)]


def _leaf(out, name):
    stack, seen = [out], set()
    while stack:
        t = stack.pop()
        if t.name == name:
            return t
        if t.creator is not None and id(t.creator) not in seen:
            seen.add(id(t.creator))
            stack.extend(t.creator.inputs)
    raise LookupError(name)


def test_the_page_opens_at_the_deepest_level_with_few_ops():
    if not registered("transformer"):
        pytest.skip("the zoo's 'transformer' model is not registered")
    from tinygrad_s2s.viz.model_graphs import model_graph

    drawn = model_graph("transformer", whole=True)
    data = graph_data(*drawn.outputs, module=drawn.module)
    opened = set(data["open"])

    def visible(open_set):
        return sum(1 for n in data["nodes"].values()
                   if n["k"] == "op" and all(k in open_set for k in n["chain"]))

    assert 0 < visible(opened) <= MAX_OPS_AT_LOAD
    deeper = opened | {k for k, g in data["groups"].items()
                       if g["kind"] == "call" and g["parent"] in opened | {None}}
    # one level more would show too many, or every module call is open already (only folds are closed)
    assert visible(deeper) > MAX_OPS_AT_LOAD or deeper == opened
    assert all(g["kind"] == "fold" for k, g in data["groups"].items() if k not in opened) or deeper != opened


def _count(b, selector):
    return b.eval(f"document.querySelectorAll('#graph {selector}').length")


@pytest.fixture(scope="module")
def transformer_page():
    if not registered("transformer"):
        pytest.skip("the zoo's 'transformer' model is not registered")
    folder = tempfile.mkdtemp(prefix="tg-html-")
    out = os.path.join(folder, "transformer.html")
    proc = subprocess.run([sys.executable, "-m", "tinygrad_s2s", "graph", "transformer", "--whole", "--format",
                           "html", "--out", out], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == out
    return "file://" + out


@needs_chromium
def test_transformer_page_in_chromium(transformer_page):
    with Browser() as b:
        b.open(transformer_page)
        assert b.eval("document.body.dataset.state") == "ready", b.eval("document.getElementById('status').textContent")
        assert b.console == []
        ready_ms = int(b.eval("document.body.dataset.readyMs"))
        assert ready_ms < 2000, f"the whole-transformer page took {ready_ms} ms to become interactive"
        at_load = _count(b, "g.node")
        assert 0 < at_load <= MAX_OPS_AT_LOAD
        assert _count(b, "g.cluster") > 0 and _count(b, "g.tensor") > 0
        assert b.eval("document.querySelector('#graph g.edge text').textContent").startswith("(")   # shapes
        # a real click on a closed module box opens it
        closed = _count(b, "g.cluster.closed")
        b.click("#graph g.cluster.closed")
        assert b.eval("document.body.dataset.renders") == "2"
        assert _count(b, "g.node") > at_load and _count(b, "g.cluster.closed") != closed
        # hovering an op shows its op, shapes, dtype, module and the line of zoo code that called it
        b.eval("document.querySelector('#graph g.node').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))")
        info = b.eval("document.getElementById('info').textContent")
        assert info.startswith("op ") and "module" in info and "float32" in info
        assert re.search(r"called at.*zoo/\w+\.py:\d+", info), info
        # the search box finds module paths
        b.eval("const s = document.getElementById('search'); s.value = 'cross_attn'; "
               "s.dispatchEvent(new Event('input'))")
        assert "cross_attn" in b.eval("document.getElementById('results').textContent")
        assert b.console == []
        b.open(transformer_page + "#expand=encoder")
        assert _count(b, "g.node") > at_load
        assert b.console == []


@needs_chromium
def test_gradient_overlay_and_unknown_expand_paths(tmp_path):
    loss, model = stack_loss()
    loss.backward(retain_graph=True)
    page = "file://" + to_html(loss, tmp_path / "g.html", module=model)
    with Browser() as b:
        b.open(page + "#expand=nosuchmodule")
        assert b.eval("document.body.dataset.state") == "ready"
        assert "#expand: no module nosuchmodule" in b.eval("document.getElementById('status').textContent")
        assert b.eval("document.getElementById('grads').disabled") is False
        b.click("#grads")
        labels = b.eval("[...document.querySelectorAll('#graph g.tensor text')].map(t => t.textContent).join(' ')")
        assert "‖g‖" in labels
        # the folded stack of identical blocks (the page opens with folds closed) unrolls on click
        assert "×3" in b.eval("document.getElementById('graph').textContent")
        before = _count(b, "g.node")
        b.click("#graph g.cluster.closed")
        assert _count(b, "g.node") == before + 3 * 3          # 3 blocks: matmul, add and tanh each
        assert "unrolled" in b.eval("document.getElementById('graph').textContent")
        assert b.console == []
