"""The interactive HTML view: what the file holds (one self-contained page), the data it carries, and
how it behaves in a real headless Chromium (the OS package; CI installs it in .ci/run)."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.viz import to_html
from tinygrad_s2s.viz.html import MAX_OPS_AT_LOAD, graph_data

from small_models import Block, mlp_loss, registered


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


