"""Graph visualisation: networkx export, DOT building (clusters, collapse, depth, determinism),
rendering with and without a layout program, the attention heatmap and the CLI commands."""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.viz import (GraphFreedError, GraphvizNotFoundError, attention_heatmap, find_layout_program, render,
                              to_dot, to_networkx)
from tinygrad_s2s.viz.model_graphs import attention_step, find_attention

from small_models import empty_path, mlp_loss, registered
from svg import svg_nodes

render_module = importlib.import_module("tinygrad_s2s.viz.render")   # the package's `render` is the function
SVG = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------- small graphs built from primitives
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.full((3,), 2.0))

    def forward(self, x):
        return x * self.w


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = Scale()

    def forward(self, x):
        return tg.sum(self.scale(x) + x)


class AttentionWeight(nn.Module):
    """The book's AttentionWeight (Fig. 8-16, left): dot products of h with every hs row, softmax."""

    def forward(self, hs, h):
        N, T, H = hs.shape
        hr = tg.repeat(tg.reshape(h, (N, 1, H)), T, axis=1)
        return tg.softmax(tg.sum(hs * hr, axis=2), axis=-1)


class WeightSum(nn.Module):
    """The book's WeightSum (Fig. 8-16, right): the a-weighted sum of the hs rows."""

    def forward(self, hs, a):
        N, T, H = hs.shape
        ar = tg.repeat(tg.reshape(a, (N, T, 1)), H, axis=2)
        return tg.sum(hs * ar, axis=1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = AttentionWeight()
        self.weight_sum = WeightSum()

    def forward(self, hs, h):
        return self.weight_sum(hs, self.weight(hs, h))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = Attention()


def book_attention_step():
    """(ModelGraph, module path) of one attention step of the book's Attention, as `graph` draws it."""
    path, attention = find_attention(Decoder())
    return attention_step(attention, seq_len=5, hidden_size=4), path


# ---------------------------------------------------------------- networkx export
def test_networkx_graph_of_a_small_expression_is_exact():
    net = Net()
    x = tg.Tensor(np.ones((2, 3), np.float32), name="x")
    loss = net(x)
    G = to_networkx(loss)

    f32 = "float32"
    expected_nodes = {
        "t0": dict(kind="tensor", op=None, shape=(2, 3), dtype=f32, module="", name="x",
                   requires_grad=False, is_param=False),
        "t1": dict(kind="tensor", op=None, shape=(3,), dtype=f32, module="scale", name="w",
                   requires_grad=True, is_param=True),
        "op0": dict(kind="op", op="mul", shape=(2, 3), dtype=f32, module="scale", name=None,
                    requires_grad=True, is_param=False),
        "t2": dict(kind="tensor", op=None, shape=(2, 3), dtype=f32, module="scale", name=None,
                   requires_grad=True, is_param=False),
        "op1": dict(kind="op", op="add", shape=(2, 3), dtype=f32, module="", name=None,
                    requires_grad=True, is_param=False),
        "t3": dict(kind="tensor", op=None, shape=(2, 3), dtype=f32, module="", name=None,
                   requires_grad=True, is_param=False),
        "op2": dict(kind="op", op="sum", shape=(), dtype=f32, module="", name=None,
                    requires_grad=True, is_param=False),
        "t4": dict(kind="tensor", op=None, shape=(), dtype=f32, module="", name=None,
                   requires_grad=True, is_param=False),
    }
    assert dict(G.nodes(data=True)) == expected_nodes
    expected_edges = {
        ("t0", "op0"): {"args": (0,)}, ("t1", "op0"): {"args": (1,)}, ("op0", "t2"): {"out_index": 0},
        ("t2", "op1"): {"args": (0,)}, ("t0", "op1"): {"args": (1,)}, ("op1", "t3"): {"out_index": 0},
        ("t3", "op2"): {"args": (0,)}, ("op2", "t4"): {"out_index": 0},
    }
    assert {(a, b): d for a, b, d in G.edges(data=True)} == expected_edges


def test_tensor_used_twice_is_one_node_and_ids_are_stable():
    def build():
        x = tg.Tensor(np.ones(3), requires_grad=True, name="x")
        y = x * x
        return to_networkx(tg.sum(y + x))

    G1, G2 = build(), build()
    assert [n for n, d in G1.nodes(data=True) if d["name"] == "x"] == ["t0"]
    assert G1.edges["t0", "op0"]["args"] == (0, 1)          # x*x: one edge, both argument slots
    assert list(G1.nodes(data=True)) == list(G2.nodes(data=True))
    assert list(G1.edges(data=True)) == list(G2.edges(data=True))


def test_multi_output_op_keeps_only_the_outputs_that_are_read():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    first, _, third = tg.split(x, 3, axis=1)
    G = to_networkx(first * third)
    split = [n for n, d in G.nodes(data=True) if d["op"] == "split"]
    assert len(split) == 1
    assert G.nodes[split[0]]["shape"] == ((2, 1), (2, 1), (2, 1))
    assert sorted(G.edges[split[0], t]["out_index"] for t in G.successors(split[0])) == [0, 2]


def test_graph_after_backward_needs_retain_graph():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    y = tg.sum(tg.exp(x))
    y.backward(retain_graph=True)
    assert to_networkx(y).number_of_nodes() == 5              # x, exp, e, sum, y
    y.backward()
    with pytest.raises(GraphFreedError, match=r"retain_graph=True"):
        to_networkx(y)


def test_walk_rejects_non_tensors():
    with pytest.raises(TypeError, match="output 0 is a ndarray"):
        to_networkx(np.ones(3))


# ---------------------------------------------------------------- DOT
def test_dot_groups_modules_in_labelled_nested_clusters():
    drawn, path = book_attention_step()
    assert path == "attention"
    src = to_dot(*drawn.outputs, module=drawn.module).source
    assert "subgraph cluster_attention {" in src
    assert 'subgraph "cluster_attention.weight" {' in src
    assert 'subgraph "cluster_attention.weight_sum" {' in src
    assert r'label="AttentionWeight\l(attention.weight)\l"' in src
    assert r'label="WeightSum\l(attention.weight_sum)\l"' in src
    G = to_networkx(*drawn.outputs)
    ops = [d["op"] for _, d in G.nodes(data=True) if d["kind"] == "op"]
    # the book's Fig. 8-16: repeat -> mul -> sum -> softmax, then repeat -> mul -> sum
    assert ops == ["reshape", "repeat", "mul", "sum", "softmax", "reshape", "repeat", "mul", "sum"]
    names = {d["name"] for _, d in G.nodes(data=True)}
    assert {"hs", "h", "a", "c"} <= names


def test_dot_text_is_byte_identical_across_runs(tmp_path):
    def once(i):
        tg.manual_seed(i)                 # different weights: the drawing must not depend on them
        drawn, _ = book_attention_step()
        return render(to_dot(*drawn.outputs, module=drawn.module, title=drawn.title),
                      tmp_path / f"run{i}.dot")

    a, b = once(1), once(2)
    assert open(a, "rb").read() == open(b, "rb").read()
    loss1, _ = mlp_loss()
    loss2, _ = mlp_loss()
    assert to_dot(loss1, collapse="layers.1", depth=2).source == to_dot(loss2, collapse="layers.1", depth=2).source


def test_collapse_turns_modules_into_boxes_and_depth_cuts_nesting():
    loss, model = mlp_loss(3)
    full = to_dot(loss, module=model).source
    assert 'subgraph "cluster_layers.0.fc"' in full
    collapsed = to_dot(loss, module=model, collapse=["layers"]).source
    assert "cluster_layers" not in collapsed
    assert r'label="ModuleList\nlayers\n9 ops"' in collapsed      # 3 x (matmul, add, tanh)
    def count(s):
        return sum(1 for line in s.splitlines() if line.startswith("\t") and "[label=" in line
                   and "->" not in line)
    assert count(collapsed) < count(full)
    # a name matches trailing path parts: 'fc' collapses every block's Linear
    assert full.count('subgraph "cluster_layers.') == 6 and to_dot(loss, collapse="fc").source.count("box3d") == 3
    one_level = to_dot(loss, depth=1).source
    assert "subgraph cluster_layers {" in one_level and "cluster_layers.0" not in one_level
    assert "subgraph" not in to_dot(loss, depth=0).source
    assert "subgraph" not in to_dot(loss, group_by_module=False).source
    with pytest.raises(ValueError, match=r"collapse: no module 'decoder'.*layers\.0\.fc"):
        to_dot(loss, collapse="decoder")
    with pytest.raises(ValueError, match="depth must be a non-negative integer"):
        to_dot(loss, depth=-1)


def _drawn_edges(outputs, module=None, **kw):
    """The drawn (source, target) pairs of `to_dot(*outputs, **kw)`, as the plan has them."""
    from tinygrad_s2s.viz.dot import closed_groups, module_classes
    from tinygrad_s2s.viz.graph import walk
    from tinygrad_s2s.viz.grouping import group, plan

    g = walk(*outputs)
    grouping = group(g, module_classes(module))
    drawn = plan(g, grouping, closed_groups(grouping, **kw))
    return [(a, b) for a, b, _ in drawn.edges], drawn, grouping


class Cell(nn.Module):
    """One recurrent step: h' = tanh(x W + h)."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, h):
        return tg.tanh(self.fc(x) + h)


class RNN(nn.Module):
    """Calls its cell once per time step (the pattern that piled every step into one box)."""
    def __init__(self):
        super().__init__()
        self.cell = Cell()

    def forward(self, xs):
        h = tg.Tensor(np.zeros((2, 3), np.float32))
        outs = []
        for x in tg.unstack(xs, axis=1):
            h = self.cell(x, h)
            outs.append(tg.sum(h))        # read outside the cell at every step
        return tg.stack(outs, axis=0)


def rnn_loss(steps=4):
    model = RNN()
    xs = tg.Tensor(np.ones((2, steps, 3), np.float32), name="xs")
    return tg.sum(model(xs)), model


def test_depth_merges_each_deeper_module_into_one_box():
    loss, model = mlp_loss(3)
    src = to_dot(loss, module=model, depth=1).source
    # level 1 ('layers', 'head') stays a box with its ops; each block below is one node of 3 ops
    assert "subgraph cluster_layers {" in src and "subgraph cluster_head {" in src
    assert src.count("box3d") == 3 and src.count(r"Block\nlayers.0\n3 ops") == 1
    assert "tanh" not in src and "matmul" in src           # head's own matmul is still drawn
    top = to_dot(loss, module=model, depth=0).source
    assert "subgraph" not in top and top.count("box3d") == 2  # 'layers' and 'head', one box each


def test_each_call_is_its_own_box_and_arrows_never_leave_and_reenter():
    loss, model = rnn_loss(4)
    edges, drawn, grouping = _drawn_edges([loss], model, collapse=["cell"])
    boxes = [k for k in dict.fromkeys(drawn.rep.values()) if k in grouping.groups]
    assert boxes == ["cell@0", "cell@1", "cell@2", "cell@3"]      # one box per time step
    import networkx as nx
    assert nx.is_directed_acyclic_graph(nx.DiGraph(edges))
    src = to_dot(loss, module=model, collapse="cell").source
    assert r"Cell\ncell (call 3)\n4 ops" in src


@pytest.mark.parametrize("name, extra", [("transformer", {}), ("attention", {"fused": False}),
                                         ("deep_lstm", {"layers": 3})])
def test_zoo_drawings_are_acyclic_at_every_depth(name, extra):
    if not registered(name):
        pytest.skip(f"the zoo's '{name}' model is not registered")
    import networkx as nx
    from tinygrad_s2s.viz.model_graphs import model_graph

    drawn_model = model_graph(name, whole=True, **extra)
    for depth in (None, 0, 1, 2, 3, 4):
        edges, _, _ = _drawn_edges(drawn_model.outputs, drawn_model.module, depth=depth)
        cycle = None if nx.is_directed_acyclic_graph(nx.DiGraph(edges)) else nx.find_cycle(nx.DiGraph(edges))
        assert cycle is None, f"{name} depth={depth}: {cycle}"


def test_roll_folds_time_steps_and_identical_blocks():
    loss, model = rnn_loss(5)
    edges, drawn, grouping = _drawn_edges([loss], model, roll=True)
    folds = [k for k in dict.fromkeys(drawn.rep.values()) if k in grouping.groups]
    assert folds == ["fold/cell@0"] and grouping.groups["fold/cell@0"].count == 5
    assert drawn.loops == ["fold/cell@0"]               # step t+1 reads step t's h
    src = to_dot(loss, module=model, roll=True).source
    assert r"Cell\ncell steps  ×5\n4 ops each" in src and 'label="next call"' in src
    # the steps' ops are inside the box; the per-step sums are top-level code, not a module: still drawn
    assert "tanh" not in src and src.count("label=sum") == 6
    mlp, mlp_model = mlp_loss(3)
    src = to_dot(mlp, module=mlp_model, roll=True).source
    assert r"Block\nlayers.0-2  ×3\n3 ops each" in src
    assert src.count("box3d") == 1 and "tanh" not in src
    unrolled = to_dot(mlp, module=mlp_model).source
    assert unrolled.count("tanh") == 3 and "box3d" not in unrolled


class CellLoop(nn.Module):
    """A loop calling a one-op cell (a fused GRU step) back to back, nothing in between."""
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(3, 4)

    def forward(self, x):
        h = None
        for xt in tg.unstack(x, 1):
            h = self.cell(xt, h)
        return tg.sum(h)


@pytest.mark.parametrize("steps", [2, 3, 4, 5, 7])
def test_back_to_back_calls_are_separate_calls_and_roll_to_their_count(steps):
    """The engine numbers module calls, so a module called again straight after itself is a new
    call: one box per call at any depth, and --roll folds them to exactly `steps` (a loop of one-op
    calls was folded in pairs, leaving one over)."""
    model = CellLoop()
    loss = model(tg.Tensor(np.ones((2, steps, 3), np.float32)))
    edges, drawn, grouping = _drawn_edges([loss], model, collapse=["cell"])
    boxes = [k for k in dict.fromkeys(drawn.rep.values()) if k in grouping.groups]
    assert boxes == [f"cell@{j}" for j in range(steps)]
    assert to_dot(loss, module=model, depth=0).source.count("box3d") == steps
    rolled = to_dot(loss, module=model, roll=True).source
    assert rf"GRUCell\ncell steps  ×{steps}\n1 op each" in rolled and "gru_sequence" not in rolled


class UnrolledLSTM(nn.Module):
    """An LSTM built step by step from primitives inside one module call (no sub-module per step)."""
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, fused=False)
        self.out = nn.Linear(4, 2)

    def forward(self, xs):
        hs = self.lstm(xs)
        return tg.sum(self.out(hs[0] if isinstance(hs, tuple) else hs))


def test_time_steps_inside_one_call_get_their_own_boxes_and_fold():
    import networkx as nx

    model = UnrolledLSTM()
    loss = model(tg.Tensor(np.ones((2, 5, 3), np.float32)))
    edges, drawn, grouping = _drawn_edges([loss], model)
    steps = [k for k, grp in grouping.groups.items() if grp.step is not None]
    assert steps == [f"lstm@0/step{j}" for j in range(5)]
    assert all(grouping.groups[k].ops == 12 for k in steps)       # matmul, add, split, 3 sigmoid, ...
    src = to_dot(loss, module=model).source
    assert 'subgraph "cluster_lstm@0/step4"' in src and r"LSTM\l(lstm step 5)\l" in src
    edges, drawn, grouping = _drawn_edges([loss], model, roll=True)
    assert drawn.loops == ["fold/lstm@0/step0"]
    rolled = to_dot(loss, module=model, roll=True).source
    assert r"LSTM\nlstm steps  ×5\n12 ops each" in rolled and 'label="next step"' in rolled
    assert "sigmoid" not in rolled and "unstack" in rolled and "stack" in rolled
    edges, _, _ = _drawn_edges([loss], model, collapse="lstm")
    assert nx.is_directed_acyclic_graph(nx.DiGraph(edges))


def test_steps_need_a_recurrence():
    from tinygrad_s2s.viz.steps import find_steps

    sig = ["a", "b", "c"] * 4
    chained = [[None]] + [[("op", i - 1, 0)] for i in range(1, 12)]     # each op reads the one before
    assert find_steps(sig, chained) == (0, 3, 4)
    independent = [[None]] * 12                                         # same ops, no data between steps
    assert find_steps(sig, independent) is None
    assert find_steps(["x", "y"] + sig, [[None], [("op", 0, 0)]] + [[("op", i + 1, 0)] for i in range(12)]) == (2, 3, 4)


def test_shapes_can_be_left_out():
    x = tg.Tensor(np.ones((2, 7), np.float32), requires_grad=True, name="x")
    assert "(2, 7)" in to_dot(tg.exp(x)).source
    assert "(2, 7)" not in to_dot(tg.exp(x), show_shapes=False).source.replace('tooltip="float32 (2, 7)"', "")


# ---------------------------------------------------------------- rendering
def test_svg_parses_and_holds_both_clusters_and_every_op(tmp_path):
    drawn, _ = book_attention_step()
    path = render(to_dot(*drawn.outputs, module=drawn.module), tmp_path / "out" / "attention.svg")
    nodes, clusters = svg_nodes(open(path, encoding="utf-8").read())
    assert {"cluster_attention.weight", "cluster_attention.weight_sum"} <= set(clusters)
    G = to_networkx(*drawn.outputs)
    assert set(G.nodes) == set(nodes)          # every op and tensor drawn, each exactly once
    assert len(nodes) == len(set(nodes))


def test_png_from_extension(tmp_path):
    x = tg.Tensor(np.ones(2), requires_grad=True)
    path = render(to_dot(tg.exp(x)), tmp_path / "g.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_layout_program_is_always_installed():
    # graphviz-pure is a dependency: every machine that ran the README's install can draw
    assert find_layout_program("svg") is not None and find_layout_program("png") is not None
    assert render_module._find_pure() is not None


def _no_layout_program(monkeypatch, tmp_path):
    empty = empty_path(monkeypatch, tmp_path)
    monkeypatch.setattr(render_module, "_script_dirs", lambda: [str(empty)])


def test_the_pip_engine_draws_clusters_and_png_without_system_graphviz(tmp_path, monkeypatch):
    empty_path(monkeypatch, tmp_path)        # the user's machine: no `dot`, only the pip dependency
    program = find_layout_program()
    assert program.kind == "graphviz-pure" and program.formats == ("svg", "png")
    drawn, _ = book_attention_step()
    graph = to_dot(*drawn.outputs, module=drawn.module)
    nodes, clusters = svg_nodes(open(render(graph, tmp_path / "a.svg"), encoding="utf-8").read())
    assert {"cluster_attention.weight", "cluster_attention.weight_sum"} <= set(clusters)
    assert set(nodes) == set(to_networkx(*drawn.outputs).nodes)
    assert open(render(graph, tmp_path / "a.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_pdf_without_system_graphviz_says_exactly_what_is_missing(tmp_path, monkeypatch):
    empty_path(monkeypatch, tmp_path)
    x = tg.Tensor(np.ones(2), requires_grad=True)
    graph = to_dot(tg.exp(x))
    with pytest.raises(GraphvizNotFoundError) as info:
        render(graph, tmp_path / "g.pdf")
    msg = str(info.value)
    assert "graphviz-pure (" in msg and "but not .pdf" in msg and "apt-get install graphviz" in msg
    assert "pip install" not in msg              # it is installed: never advise installing it
    assert open(info.value.dot_path, encoding="utf-8").read() == graph.source


def test_system_dot_is_preferred_and_runs_without_a_shell(tmp_path, monkeypatch):
    cat = shutil.which("cat")
    empty = empty_path(monkeypatch, tmp_path)
    fake = empty / "dot"
    # a stand-in Graphviz: echoes its arguments, then the DOT it was fed on stdin
    fake.write_text(f"#!/bin/sh\necho \"args: $*\"\nexec {cat}\n")
    fake.chmod(0o755)
    assert find_layout_program() == (str(fake), "graphviz")
    assert find_layout_program("pdf").formats == ("svg", "png", "pdf")
    x = tg.Tensor(np.ones(2), requires_grad=True)
    graph = to_dot(tg.exp(x))
    assert open(render(graph, tmp_path / "g.pdf"), encoding="utf-8").read() == "args: -Tpdf\n" + graph.source


def test_without_any_layout_program_writes_dot_and_says_how_to_reinstall(tmp_path, monkeypatch):
    _no_layout_program(monkeypatch, tmp_path)
    x = tg.Tensor(np.ones(2), requires_grad=True)
    graph = to_dot(tg.exp(x))
    with pytest.raises(GraphvizNotFoundError) as info:
        render(graph, tmp_path / "pics" / "g.svg")
    msg = str(info.value)
    assert "-m pip install graphviz-pure" in msg and "apt-get install graphviz" in msg
    assert info.value.dot_path == str(tmp_path / "pics" / "g.dot")
    assert open(info.value.dot_path, encoding="utf-8").read() == graph.source
    assert not (tmp_path / "pics" / "g.svg").exists()
    assert render(graph, tmp_path / "pics" / "plain.dot") == str(tmp_path / "pics" / "plain.dot")


def test_render_rejects_unknown_extensions(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf, \.dot"):
        render("digraph {}", tmp_path / "g.jpeg")
    with pytest.raises(TypeError, match="graphviz.Digraph or DOT text"):
        render(42, tmp_path / "g.svg")


# ---------------------------------------------------------------- heatmap
def test_attention_heatmap_writes_a_png(tmp_path):
    w = np.random.default_rng(0).dirichlet(np.ones(6), size=4)      # (L=4, T=6), rows sum to 1
    path = attention_heatmap(w, "abc de", ["1", "9", "9", "4"], tmp_path / "map.png", title="t")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="3 source tokens for 6 source positions"):
        attention_heatmap(w, "abc", "1994", tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"expected weights of shape \(L, T\)"):
        attention_heatmap(np.ones(3), "abc", "1", tmp_path / "bad.png")


# ---------------------------------------------------------------- zoo models and the CLI
def test_deep_lstm_whole_graph_renders_and_collapse_shrinks_it(tmp_path):
    if not registered("deep_lstm"):
        pytest.skip("the zoo's 'deep_lstm' model is not registered")
    from tinygrad_s2s.viz.model_graphs import model_graph

    drawn = model_graph("deep_lstm", whole=True, layers=4)      # its time: tests/machine/test_wall_clock.py
    full = render(to_dot(*drawn.outputs, module=drawn.module), tmp_path / "deep.svg")
    nodes_full, clusters = svg_nodes(open(full, encoding="utf-8").read())
    assert clusters
    small = render(to_dot(*drawn.outputs, module=drawn.module, collapse=["encoder", "decoder"]),
                   tmp_path / "deep-collapsed.svg")
    nodes_small, _ = svg_nodes(open(small, encoding="utf-8").read())
    assert len(nodes_small) < len(nodes_full)


def cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "tinygrad_s2s", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("path", ["as is", "without dot"])
def test_cli_graph_attention_draws_both_clusters(tmp_path, path):
    if not registered("attention"):
        pytest.skip("the zoo's 'attention' model is not registered")
    env = None
    if path == "without dot":       # the README's user: nothing on PATH, only what pip installed
        (tmp_path / "bin").mkdir()
        env = {**os.environ, "PATH": str(tmp_path / "bin")}
    proc = cli("graph", "attention", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "graphviz_out" / "attention.svg"
    assert proc.stdout.strip() == os.path.join("graphviz_out", "attention.svg")
    nodes, clusters = svg_nodes(out.read_text(encoding="utf-8"))
    assert any(c.endswith("attention.weight") for c in clusters)
    assert any(c.endswith("attention.weight_sum") for c in clusters)


def test_cli_usage_and_failures(tmp_path):
    from tinygrad_s2s.cli import main

    assert main(["graph", "--depth", "-1"]) == 2
    assert main(["graph", "--format", "jpeg"]) == 2
    assert main(["graph", "no-such-model", "--out", str(tmp_path / "g.svg")]) == 2    # usage error, as in train
    assert main(["graph", "attention", "--out", str(tmp_path / "g.gif")]) == 2
    assert main(["graph", "attention", "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["graph", "attention", "--out", str(tmp_path / "x.svg"), "--format", "png"]) == 2
    assert main(["graph", "attention", "--model-arg", "nokey"]) == 2
    assert main(["graph", "attention", "--collapse", "nosuch", "--out", str(tmp_path / "x.svg")]) == 2
    assert not list(tmp_path.iterdir())


def _save_run(run_dir, model_name: str, model, reverse: bool = True):
    """A run directory holding an (untrained) model's checkpoint, as the trainer writes it."""
    from tinygrad_s2s.training.runfiles import save_checkpoint

    chars = " ,-0123456789_abcdefghijklmnopqrstuvwxyz"
    config = {"model": model_name, "vocab": chars, "question_width": 20, "answer_width": 11,
              "reverse": reverse, "model_config": getattr(model, "config", None)}
    save_checkpoint(run_dir / "best.npz", model, None, {"config": config})
    return chars


def test_cli_attention_map_saves_a_heatmap(tmp_path):
    if not registered("attention"):
        pytest.skip("the zoo's 'attention' model is not registered")
    from tinygrad_s2s.cli import main

    chars = " ,-0123456789_abcdefghijklmnopqrstuvwxyz"
    model = tg.create_model("attention", len(chars), wordvec_size=4, hidden_size=8)
    _save_run(tmp_path, "attention", model)
    out = tmp_path / "map.png"
    assert main(["attention-map", str(tmp_path), "september 27, 1994", "--out", str(out)]) == 0
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure is sized per cell: 20 question characters across, 10 answer steps down
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    expected = ((0.38 * 20 + 1.8) * 120, (0.38 * 10 + 1.4) * 120)      # 1128 x 624 at 120 dpi
    # matplotlib rounds a figure's size to pixels its own way (3.8 gives 623 rows, 3.10 624)
    assert all(abs(got - want) <= 1 for got, want in zip((width, height), expected)), (width, height)
    # a character outside the vocabulary is a failure with a message, not a traceback
    assert main(["attention-map", str(tmp_path), "SEPTEMBER", "--out", str(out)]) == 1


def test_attention_map_needs_an_attention_model(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(os.path.abspath(__file__)))
    import tiny_model  # noqa: F401 - registers 'tiny-s2s', a model without attention
    from tinygrad_s2s.cli import main

    chars = " ,-0123456789_abcdefghijklmnopqrstuvwxyz"
    _save_run(tmp_path, "tiny-s2s", tg.create_model("tiny-s2s", len(chars)))
    assert main(["attention-map", str(tmp_path), "september 27, 1994", "--out",
                 str(tmp_path / "map.png")]) == 1
    assert "records no attention weights" in capsys.readouterr().err


def test_parsing_the_commands_imports_no_drawing_library():
    code = ("import argparse, sys; from tinygrad_s2s.cli.graph import add_subparsers; "
            "p = argparse.ArgumentParser(); add_subparsers(p.add_subparsers()); "
            "a = p.parse_args(['graph', 'attention', '--collapse', 'encoder,decoder', '--depth', '2']); "
            "print(sorted(m for m in ('networkx', 'graphviz', 'matplotlib') if m in sys.modules), "
            "a.collapse, a.depth, a.func.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "['encoder,decoder']", "2", "cmd_graph"]


def test_graph_of_a_model_without_attention_is_the_whole_loss(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(os.path.dirname(os.path.abspath(__file__)))
    import tiny_model  # noqa: F401 - registers 'tiny-s2s' (no attention module)
    from tinygrad_s2s.cli import main
    from tinygrad_s2s.viz.model_graphs import model_graph

    drawn = model_graph("tiny-s2s")
    assert drawn.outputs[0].name == "loss" and drawn.title.startswith("tiny-s2s: whole model")
    G = to_networkx(*drawn.outputs)
    modules = {d["module"] for _, d in G.nodes(data=True)}
    assert {"encoder", "decoder", "out"} <= modules
    assert "softmax_cross_entropy" in {d["op"] for _, d in G.nodes(data=True)}
    assert main(["graph", "tiny-s2s", "--format", "dot", "--out", str(tmp_path / "g"),
                 "--collapse", "encoder", "--collapse", "decoder,out"]) == 0
    path = tmp_path / "g.dot"
    assert capsys.readouterr().out.strip() == str(path)
    text = path.read_text(encoding="utf-8")
    assert text.count("box3d") == 3 and "cluster_enc_embed" in text and "cluster_encoder" not in text


def test_graph_takes_model_args_and_says_when_it_draws_the_whole_model(tmp_path, capsys):
    if not registered("transformer"):
        pytest.skip("the zoo's 'transformer' model is not registered")
    from tinygrad_s2s.cli import main

    sizes = {}
    for layers in (1, 2):
        out = tmp_path / f"t{layers}.dot"
        assert main(["graph", "transformer", "--model-arg", f"layers={layers}", "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert "note: drawing the whole model instead of one attention step: model 'transformer' has no " \
               "module of class Attention" in err
        sizes[layers] = out.read_text(encoding="utf-8").count("->")
    assert sizes[1] < sizes[2]
    assert main(["graph", "transformer", "--model-arg", "colour=3", "--out", str(tmp_path / "x.svg")]) == 2
    assert "--model-arg: model 'transformer' takes no argument 'colour' (its own arguments: heads, layers, ff" \
        in capsys.readouterr().err


def test_attention_is_found_by_class_not_by_child_names():
    class Attention(nn.Module):            # the class name is what counts, whatever its children
        def __init__(self):
            super().__init__()
            self.score = nn.Linear(4, 1)

    class MyAttention(Attention):          # a subclass counts too
        pass

    class LooksLikeIt(nn.Module):          # children named like the book's, but not an Attention
        def __init__(self):
            super().__init__()
            self.weight, self.weight_sum = AttentionWeight(), WeightSum()

    class Model(nn.Module):
        def __init__(self, att):
            super().__init__()
            self.other = LooksLikeIt()
            self.dec = att

    assert find_attention(Model(MyAttention()))[0] == "dec"
    assert find_attention(Model(Attention()))[0] == "dec"
    assert find_attention(Model(nn.Linear(2, 2))) is None


def test_attention_map_length_is_bounded_by_the_trained_answer(tmp_path, capsys):
    if not registered("attention"):
        pytest.skip("the zoo's 'attention' model is not registered")
    from tinygrad_s2s.cli import main

    chars = _save_run(tmp_path, "attention", tg.create_model("attention", 40, wordvec_size=4, hidden_size=8))
    assert len(chars) == 40
    assert main(["attention-map", str(tmp_path), "september 27, 1994", "--length", "100000",
                 "--out", str(tmp_path / "map.png")]) == 2       # refused before decoding a step
    assert "--length 100000: this run was trained on answers of 10 characters" in capsys.readouterr().err
    assert not (tmp_path / "map.png").exists()
    assert main(["attention-map", str(tmp_path), "september 27, 1994", "--length", "4",
                 "--out", str(tmp_path / "map.png")]) == 0
