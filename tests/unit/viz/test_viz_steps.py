"""Steps are calls over time, nothing else: the branches of one cell call and the two directions of a
bidirectional layer repeat their op names but are not time steps; calls are numbered in call order
(`query`, `query (call 2)`) and drawn left to right in that order."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.viz import render, to_dot
from tinygrad_s2s.viz.dot import module_classes
from tinygrad_s2s.viz.graph import walk
from tinygrad_s2s.viz.grouping import group, which_call

from small_models import registered

SVG = "{http://www.w3.org/2000/svg}"


def _labels(loss, model) -> dict:
    """Each group's key -> the label a drawing shows for it."""
    grouping = group(walk(loss), module_classes(model))
    return {k: grp.label + (which_call(grp) if grp.kind == "call" else f"  ×{grp.count}")
            for k, grp in grouping.groups.items()}


class OneCellCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)

    def forward(self, x, h):
        return tg.sum(self.cell(x, h)[0])


def test_the_x_and_h_branches_of_one_cell_call_are_not_steps():
    model = OneCellCall()
    loss = model(tg.Tensor(np.ones((2, 3), np.float32)), tg.Tensor(np.ones((2, 4), np.float32)))
    labels = _labels(loss, model)
    assert list(labels.values()) == ["cell"], labels               # was: cell steps ×2, cell step 1, cell step 2
    assert "step" not in to_dot(loss, module=model, roll=True).source


class Bidirectional(nn.Module):
    def __init__(self, fused, cls=nn.LSTM):
        super().__init__()
        self.encoder = cls(3, 4, bidirectional=True, fused=fused)

    def forward(self, xs):
        hs = self.encoder(tg.tanh(xs))          # fed by an op, as an embedding feeds it
        return tg.sum(hs) + tg.sum(self.encoder.h)    # and its last state read, as deep_lstm's encoder does


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_the_two_directions_of_a_bidirectional_layer_are_not_steps(cls):
    model = Bidirectional(True, cls)
    loss = model(tg.Tensor(np.ones((2, 3, 3), np.float32), requires_grad=True))     # reversing it is an op
    labels = _labels(loss, model)
    assert list(labels.values()) == ["encoder"], labels       # was: encoder steps ×2, encoder step 1, 2
    # built from primitives, each direction's time steps are steps: T of them, each reading one
    # direction's weights (never one step per direction)
    model = Bidirectional(False, cls)
    loss = model(tg.Tensor(np.ones((2, 3, 3), np.float32)))
    grouping = group(walk(loss), module_classes(model))
    steps = [k for k, grp in grouping.groups.items() if grp.step is not None]
    assert len(steps) == 3, _labels(loss, model)
    g = walk(loss)
    for k in steps:
        ops = [n for n, c in grouping.chains.items() if k in c and g.nodes[n].kind == "op"]
        params = {g.nodes[src].name for src, dst, _ in g.edges if dst in ops and g.nodes[src].is_param}
        one_direction = all(p.endswith("_reverse") for p in params) or not any(p.endswith("_reverse") for p in params)
        assert params and one_direction, (k, params)


def test_the_zoos_bidirectional_encoder_draws_no_steps():
    if not registered("deep_lstm"):
        pytest.skip("the zoo's 'deep_lstm' model is not registered")
    from tinygrad_s2s.viz.model_graphs import model_graph

    drawn = model_graph("deep_lstm", whole=True)
    grouping = group(walk(*drawn.outputs), module_classes(drawn.module))
    assert [k for k in grouping.groups if k.startswith("encoder.lstm")] == ["encoder.lstm@0"]


def test_time_steps_of_an_unrolled_lstm_are_still_steps():
    model = Bidirectional(False)
    model.encoder = nn.LSTM(3, 4, fused=False)
    loss = model(tg.Tensor(np.ones((2, 4, 3), np.float32)))
    labels = _labels(loss, model)
    assert [v for v in labels.values() if "step" in v] == ["encoder steps  ×4"] + [f"encoder step {j}" for j in (1, 2, 3, 4)]


class TwoQueries(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(3, 3)

    def forward(self, a, b):
        qa = self.query(a)
        qb = self.query(b)
        return tg.sum(qb * qa)          # the consumer reads the second call first


def test_calls_are_numbered_and_drawn_left_to_right_in_call_order(tmp_path, monkeypatch):
    model = TwoQueries()
    loss = model(tg.Tensor(np.ones((2, 3), np.float32), name="a"), tg.Tensor(np.ones((2, 3), np.float32), name="b"))
    assert [v for k, v in _labels(loss, model).items() if k.startswith("query@")] == ["query", "query (call 2)"]
    monkeypatch.setenv("PATH", str(tmp_path))                    # graphviz-pure, what users have
    svg = open(render(to_dot(loss, module=model), tmp_path / "q.svg"), encoding="utf-8").read()
    left = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        if g.get("class") == "cluster":
            label = " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
            shape = g.find(f".//{SVG}path")
            points = shape.get("d") if shape is not None else g.find(f".//{SVG}polygon").get("points")
            left[label] = min(float(x) for x, _ in re.findall(r"(-?[\d.]+),(-?[\d.]+)", points))
    assert set(left) == {"Linear (query)", "Linear (query (call 2))"}, left
    assert left["Linear (query)"] < left["Linear (query (call 2))"], left
