"""The graph of a gradient: after backward(create_graph=True) / tg.grad(..., create_graph=True), tg.viz
draws it with each backward pass and each op's backward as a box (the book series' tanh pictures)."""
from __future__ import annotations

import os
import sys
from collections import Counter

import numpy as np

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.viz import render, to_dot, to_html, walk
from tinygrad_s2s.viz.html import graph_data

from small_models import tanh_derivatives
from svg import svg_nodes


def ops_by_box(t):
    """{drawn module path: Counter of op names} of the graph that produced `t`."""
    boxes: dict = {}
    for node in walk(t).nodes.values():
        if node.kind == "op":
            boxes.setdefault(node.module, Counter())[node.op] += 1
    return boxes


def test_tanh_derivative_values_are_exact_against_the_closed_forms():
    xs = np.linspace(-3, 3, 13)
    d1, d2, d3 = tanh_derivatives(tg.Tensor(xs, requires_grad=True), 3)
    y = np.tanh(xs)
    np.testing.assert_allclose(d1.numpy(), 1 - y ** 2, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(d2.numpy(), -2 * y * (1 - y ** 2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d3.numpy(), -2 * (1 - y ** 2) * (1 - 3 * y ** 2), rtol=1e-13, atol=1e-15)
    assert d1.requires_grad and d3.requires_grad          # each one can be differentiated again


def test_the_graphs_of_tanh_derivatives_are_grouped_by_pass_and_op():
    x = tg.Tensor(np.array(0.5), requires_grad=True, name="x")
    d1, d2, d3 = tanh_derivatives(x, 3)
    assert ops_by_box(d1) == {"": {"tanh": 1}, "backward1.grad(tanh)": {"mul": 2, "sub": 1},
                              "backward1": {"copy": 1}}             # gy * (1 - y*y), then handed out
    # d2 no longer needs pass 1's ops: pass 2 differentiated them (y*y -> two muls summed) and ran
    # tanh's backward again with the new upstream gradient
    assert ops_by_box(d2) == {"": {"tanh": 1}, "backward2.grad(mul)": {"mul": 2}, "backward2": {"add": 1, "copy": 1},
                              "backward2.grad(tanh)": {"mul": 2, "sub": 1}}
    boxes = ops_by_box(d3)
    per_pass = Counter()
    for b, ops in boxes.items():
        per_pass[b.split(".")[0]] += sum(ops.values())
    assert per_pass == {"": 1, "backward2": 5, "backward3": 14}     # pass 1's ops are all gone
    assert boxes["backward3.grad(tanh)"] == {"mul": 2, "sub": 1}
    assert boxes["backward3.grad(sub)"] == {"neg": 1}
    assert {b for b in boxes if b.startswith("backward3.grad(mul)")} == {
        "backward3.grad(mul)", "backward3.grad(mul)#2", "backward3.grad(mul)#3", "backward3.grad(mul)#4"}
    sizes_by_order = [sum(n.kind == "op" for n in walk(d).nodes.values()) for d in (d1, d2, d3)]
    assert sizes_by_order == [5, 8, 20]


def test_notes_say_whose_backward_and_where_and_the_text_does_not_depend_on_earlier_runs():
    x = tg.Tensor(np.array(0.5), requires_grad=True, name="x")
    y = tg.tanh(x); line = sys._getframe().f_lineno           # noqa: E702 - the forward's line
    y.backward(create_graph=True); back = sys._getframe().f_lineno   # noqa: E702
    g = walk(x.grad)
    here = os.path.basename(__file__)
    assert g.scopes["backward1.grad(tanh)"].startswith("the backward of tanh (tanh called at ")
    assert g.scopes["backward1.grad(tanh)"].endswith(f"{here}:{line})")
    assert g.scopes["backward1"].endswith(f"order 1, called at {__file__}:{back}")
    assert all(n.grad_of is None for n in g.nodes.values() if n.kind == "op" and n.op == "tanh")

    def drawing():
        x = tg.Tensor(np.array(0.5), requires_grad=True, name="x")
        tg.tanh(x).backward(create_graph=True)
        return to_dot(x.grad).source
    first = drawing()
    for _ in range(3):                                # more passes elsewhere in the process
        tanh_derivatives(tg.Tensor(np.array(1.0), requires_grad=True), 2)
    assert drawing() == first

def test_an_ops_backward_sits_under_its_module_and_a_reference_composition_nests():
    lin = nn.Linear(3, 2)
    lin._name = "lin"
    x = tg.Tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
    gx, = tg.grad(tg.sum(tg.tanh(lin(x))), x, create_graph=True)
    boxes = ops_by_box(gx)
    assert any(b.startswith("backward1.lin.grad(") for b in boxes), boxes
    # the fused LSTM cell is differentiated through its reference composition: that composition's
    # own ops and backwards are drawn inside the cell's backward box of the same pass
    a = tg.Tensor(np.random.default_rng(1).normal(size=(2, 8)), requires_grad=True)
    c = tg.Tensor(np.random.default_rng(2).normal(size=(2, 2)), requires_grad=True)
    h, c_next = tg.lstm_cell(a, c)
    ga, = tg.grad(tg.sum(h * c_next), a, create_graph=True)
    boxes = ops_by_box(ga)
    inner = [b for b in boxes if b.startswith("backward1.grad(lstm_cell).grad(")]
    assert inner and "backward1.grad(lstm_cell)" in boxes, boxes
    np.testing.assert_allclose(ga.numpy(), tg.grad(tg.sum(h * c_next), a)[0].numpy(), rtol=1e-6)


def test_the_drawing_of_a_gradient_renders_with_boxes_per_pass_and_op(tmp_path):
    x = tg.Tensor(np.array(0.5), requires_grad=True, name="x")
    d1, d2, d3 = tanh_derivatives(x, 3)
    nodes, clusters = svg_nodes(open(render(to_dot(d2), tmp_path / "d2.svg"), encoding="utf-8").read())
    assert sorted(clusters) == ["cluster_backward2", "cluster_backward2.grad(mul)", "cluster_backward2.grad(tanh)"]
    assert sum(n.startswith("op") for n in nodes) == 8
    svg = open(render(to_dot(d3, depth=0), tmp_path / "d3.svg"), encoding="utf-8").read()
    assert "backward2" in svg and "5 ops" in svg and "backward3" in svg and "14 ops" in svg
    assert open(render(to_dot(d3), tmp_path / "d3.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_html_view_of_a_gradient_builds_and_names_each_backward(tmp_path):
    x = tg.Tensor(np.array(0.5), requires_grad=True, name="x")
    y = tg.tanh(x)
    y.backward(create_graph=True)        # x.grad is a graph; x holds a .grad, so the page adds norms
    data = graph_data(x.grad)
    box = next(g for g in data["groups"].values() if g["path"] == "backward1.grad(tanh)")
    assert box["label"] == "grad(tanh)" and box["note"].startswith("the backward of tanh")
    ops = [n for n in data["nodes"].values() if n["k"] == "op"]
    assert [n["op"] for n in ops if n["bw"]] == ["mul", "sub", "mul", "copy"]
    page = to_html(x.grad, tmp_path / "grad.html")
    assert "grad(tanh)" in open(page, encoding="utf-8").read()


