"""The interactive HTML view: what the file holds (one self-contained page), the data it carries, and
how it behaves in a real headless Chromium (the OS package; CI installs it in .ci/run)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.viz import to_html
from tinygrad_s2s.viz.html import MAX_OPS_AT_LOAD, graph_data

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Browser, find_chromium  # noqa: E402
from small_models import Block, mlp_loss, registered  # noqa: E402

needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="no chromium on PATH (CI installs Debian's `chromium` in .ci/run)")


def stack_loss():
    return mlp_loss(input_grad=True)


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
    assert tanh["loc"].endswith(f"small_models.py:{Block.forward.__code__.co_firstlineno + 1}")
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
        # a real click on a closed module box opens it, and the box stays where it was on screen
        closed = _count(b, "g.cluster.closed")
        ref = b.eval("document.querySelector('#graph g.cluster.closed').dataset.ref")
        where = ("(() => { const el = [...document.querySelectorAll('#graph g[data-ref]')].find(e => e.dataset.ref === "
                 + json.dumps(ref) + "); const r = el.getBoundingClientRect(); return [r.left, r.top, el.getAttribute('class')]; })()")
        b.eval("document.querySelector('#graph g.cluster.closed').scrollIntoView({block: 'center', inline: 'center'})")
        x0, y0, cls0 = b.eval(where)
        b.click("#graph g.cluster.closed")
        assert b.eval("document.body.dataset.renders") == "2"
        assert _count(b, "g.node") > at_load and _count(b, "g.cluster.closed") != closed
        x1, y1, cls1 = b.eval(where)
        assert (cls0, cls1) == ("cluster closed", "cluster open")
        assert abs(x1 - x0) < 2 and abs(y1 - y0) < 2, ((x0, y0), (x1, y1))
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
def test_dump_dom_shows_what_is_on_screen(transformer_page, tmp_path):
    # the scripted check the page is built for: no DevTools, just chromium's own --dump-dom
    def dump(url, profile):
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--user-data-dir={tmp_path / profile}", "--virtual-time-budget=10000", "--dump-dom", url]
        dom = subprocess.run([find_chromium(), *flags], capture_output=True, text=True, timeout=120).stdout
        assert 'data-state="ready"' in dom
        return len(re.findall(r'<g [^>]*class="node"', dom)), len(re.findall(r'<g [^>]*class="cluster', dom))

    nodes, boxes = dump(transformer_page, "a")
    assert 0 < nodes <= MAX_OPS_AT_LOAD and boxes > 0
    assert dump(transformer_page + "#expand=encoder", "b")[0] > nodes


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
        edges = b.eval("[...document.querySelectorAll('#graph g.edge text')].map(t => t.textContent).join(' ')")
        assert "‖g‖" in edges                   # intermediate tensors (edge labels) have their norms too
        # the folded stack of identical blocks (the page opens with folds closed) unrolls on click
        assert "×3" in b.eval("document.getElementById('graph').textContent")
        before = _count(b, "g.node")
        b.click("#graph g.cluster.closed")
        assert _count(b, "g.node") == before + 3 * 3          # 3 blocks: matmul, add and tanh each
        assert "unrolled" in b.eval("document.getElementById('graph').textContent")
        assert b.console == []


def test_every_tensor_gets_its_gradient_norm_and_leaf_grads_stay_as_they_were():
    x = tg.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, name="x")
    a = x * 2.0
    loss = tg.sum(a ** 2)
    assert graph_data(loss)["nodes"] and all("grad" not in n for n in graph_data(loss)["nodes"].values())
    loss.backward(retain_graph=True)
    before = x.grad
    before_values = x.grad.numpy().copy()
    data = graph_data(loss)
    grads = {n["name"]: n.get("grad") for n in data["nodes"].values() if n["k"] == "tensor" and n["name"]}
    a_id = next(d for s, d in data["edges"] if s == "op0")          # op0 is x * 2, its output is a
    assert data["nodes"][a_id]["grad"] == pytest.approx(2 * np.linalg.norm(a.numpy()))   # d loss/d a = 2a
    assert grads["x"] == pytest.approx(np.linalg.norm(8 * x.numpy()))             # d loss/d x = 8x
    assert x.grad is before and np.array_equal(x.grad.numpy(), before_values)       # not accumulated twice


def test_graph_grads_flag(tmp_path, capsys):
    if not registered("attention"):
        pytest.skip("the zoo's 'attention' model is not registered")
    from tinygrad_s2s.cli import main

    out = tmp_path / "a.html"
    assert main(["graph", "attention", "--whole", "--format", "html", "--grads", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count('"grad":') > 10
    assert main(["graph", "attention", "--format", "html", "--grads", "--out", str(out)]) == 2
    assert "--grads: the drawing's output is (2, 4), not a scalar loss; add --whole" in capsys.readouterr().err
    assert main(["graph", "attention", "--whole", "--grads", "--out", str(tmp_path / "a.svg")]) == 2


def test_flags_of_the_other_kind_of_output_are_usage_errors(tmp_path, capsys):
    from tinygrad_s2s.cli import main

    assert main(["graph", "attention", "--format", "html", "--depth", "1", "--out", str(tmp_path / "a.html")]) == 2
    assert "shape static drawings" in capsys.readouterr().err
    assert main(["graph", "attention", "--roll", "--out", str(tmp_path / "a.html")]) == 2
    assert not list(tmp_path.iterdir())


@needs_chromium
def test_time_steps_fold_and_unroll_in_the_page(tmp_path):
    class Unrolled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, fused=False)

        def forward(self, xs):
            hs = self.lstm(xs)
            return tg.sum(hs[0] if isinstance(hs, tuple) else hs)

    model = Unrolled()
    loss = model(tg.Tensor(np.ones((2, 4, 3), np.float32)))
    page = "file://" + to_html(loss, tmp_path / "lstm.html", module=model)
    with Browser() as b:
        b.open(page)
        text = b.eval("document.getElementById('graph').textContent")
        assert "lstm steps" in text and "×4" in text and "next step" in text
        before = _count(b, "g.node")
        b.click("#graph g.cluster.closed")                  # unroll: four step boxes, each open
        assert _count(b, "g.node") == before + 4 * 12
        assert "lstm step 4" in b.eval("document.getElementById('graph').textContent")
        assert b.console == []
