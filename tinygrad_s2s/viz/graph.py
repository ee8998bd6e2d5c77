"""Walk a recorded graph and export it to networkx: one node per tensor and per op application.

Node ids are stable: ops are numbered in the order they were created (`op0`, `op1`, ...) and tensors
in the order they are first met while reading the ops in that order (`t0`, `t1`, ...), so the same
program gives the same ids on every run (never `id()`), and drawings built on them can be diffed.

The graph of a gradient (`backward(create_graph=True)`, `tg.grad`) is drawn the same way: an op the
engine recorded during a backward pass (its `grad_of`) gets a path that names the pass and the op
whose backward made it (`backward1.encoder.grad(matmul)`, `backward2.grad(mul)#2`), so each pass and
each op's backward becomes a box (see `_BackwardPaths`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..tensor import Tensor


@dataclass
class GraphNode:
    """One node of a walked graph: a tensor (`kind='tensor'`) or an op application (`kind='op'`)."""
    id: str
    kind: str
    op: str | None
    shape: tuple
    dtype: str
    module: str
    name: str | None
    requires_grad: bool
    is_param: bool
    value: float | None = None        # the number of a one-element constant leaf (e.g. the 2 in x*2)
    is_output: bool = False            # one of the tensors the drawing was asked for
    is_leaf: bool = False              # a tensor no recorded op produced (input, constant, parameter)
    grad_of: object = None             # an op recorded inside a backward: the engine's GradOf
    ref: object = field(default=None, repr=False, compare=False)   # an op's Function; a leaf's Tensor


@dataclass
class WalkedGraph:
    """Nodes in id order, edges (source id, target id, attributes) in data-flow order, and for each
    `grad(...)` path of a gradient's graph, what it holds (the backward of which op, called where)."""
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    scopes: dict = field(default_factory=dict)


class GraphFreedError(RuntimeError):
    """The graph was released by a backward pass without `retain_graph=True`."""


def _collect_functions(outputs):
    """Every Function reachable from `outputs`, in creation order (which is a topological order)."""
    seen, stack = {}, [t.creator for t in outputs if t.creator is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        if fn.inputs is None:
            raise GraphFreedError(
                f"cannot draw the graph: op '{fn.op}' in module '{fn.module or '<top level>'}' was "
                "freed by backward(); draw before backward or call backward(retain_graph=True)")
        seen[id(fn)] = fn
        stack.extend(x.creator for x in fn.inputs if x.creator is not None and id(x.creator) not in seen)
    return sorted(seen.values(), key=lambda f: f.seq)


def _common_module(paths):
    """The deepest module path that contains every path in `paths` ('' when they share none)."""
    parts = [p.split(".") if p else [] for p in paths]
    common = []
    for level in zip(*parts):
        if any(c != level[0] for c in level):
            break
        common.append(level[0])
    return ".".join(common)


def walk(*outputs: Tensor) -> WalkedGraph:
    """Read the graph that produced `outputs` into plain nodes and edges (see the module docstring).

    A tensor used by several ops is one node. An op's outputs that nothing in the graph reads (and
    that were not asked for) are left out. A parameter, and an unnamed constant (a leaf that needs no
    gradient, such as a zero initial state), gets the deepest module that contains every op reading
    it; other leaves (the inputs) get module ''.

    Args:
        *outputs: the Tensors whose graph to read.

    Returns:
        WalkedGraph: the nodes and edges.

    Raises:
        ValueError: no output given.
        TypeError: an output that is not a Tensor.
        GraphFreedError: the graph was freed by a backward.
    """
    if not outputs:
        raise ValueError("walk: pass at least one Tensor whose graph should be drawn")
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"walk: output {i} is a {type(t).__name__}, expected a Tensor")
    fns = _collect_functions(outputs)
    out_keys = {_key(t) for t in outputs}
    consumed = {_key(x) for fn in fns for x in fn.inputs}
    g = WalkedGraph()
    backward_path = _BackwardPaths(g.scopes)
    tensor_ids: dict = {}
    leaf_readers: dict = {}

    def tensor_node(key, t, fn=None, index=0):
        if key in tensor_ids:
            return tensor_ids[key]
        tid = f"t{len(tensor_ids)}"
        tensor_ids[key] = tid
        if fn is None:      # a leaf: the Tensor object is alive (held by the op that reads it)
            value = t.data.reshape(()).item() if (t.size == 1 and not t.requires_grad and t.name is None
                                                  and t.dtype.kind in "fiub") else None
            g.nodes[tid] = GraphNode(tid, "tensor", None, tuple(t.shape), str(t.dtype), "", t.name,
                                     bool(t.requires_grad), bool(t.is_param), value, is_leaf=True, ref=t)
        else:               # an op's output: it may already be garbage, so read what the op recorded
            shape, dtype = fn.out_meta[index]
            alive = fn.outputs[index]()
            name = alive.name if alive is not None else None
            g.nodes[tid] = GraphNode(tid, "tensor", None, tuple(shape), str(np.dtype(dtype)), fn.module,
                                     name, np.dtype(dtype).kind == "f", False)
        g.nodes[tid].is_output = key in out_keys
        return tid

    for n, fn in enumerate(fns):
        oid = f"op{n}"
        metas = fn.out_meta
        shape = tuple(metas[0][0]) if len(metas) == 1 else tuple(tuple(s) for s, _ in metas)
        dtype = str(np.dtype(metas[0][1])) if len(metas) == 1 else ",".join(str(np.dtype(d)) for _, d in metas)
        in_ids = []
        for x in fn.inputs:
            key = _key(x)
            in_ids.append(tensor_node(key, x, x.creator, x.out_index))
            if x.creator is None:
                leaf_readers.setdefault(key, []).append(fn.module)
        module = fn.module if fn.grad_of is None else backward_path(fn.grad_of)
        g.nodes[oid] = GraphNode(oid, "op", fn.op, shape, dtype, module, None, True, False, ref=fn,
                                 grad_of=fn.grad_of)
        for tid in dict.fromkeys(in_ids):     # x*x is one edge that carries argument positions (0, 1)
            args = tuple(i for i, s in enumerate(in_ids) if s == tid)
            g.edges.append((tid, oid, {"args": args}))
        for i in range(len(metas)):
            key = (id(fn), i)
            if key in consumed or key in out_keys:
                g.edges.append((oid, tensor_node(key, None, fn, i), {"out_index": i}))
    for t in outputs:       # an output that is itself a leaf (nothing recorded)
        if t.creator is None:
            tensor_node(_key(t), t)
    for key, readers in leaf_readers.items():
        node = g.nodes[tensor_ids[key]]
        if node.is_param or (not node.requires_grad and node.name is None):
            node.module = _common_module(readers)
    return g


class _BackwardPaths:
    """The drawn module path of the ops a backward pass recorded (their GradOf): `backwardN` for the
    pass that computed an N-th derivative, then `grad(F)` for the backward of op F, under F's module
    path when F is an op of the forward (under the box of the op whose reference composition F
    belongs to, when that was differentiated in the same pass). Two different records that would
    share a path get `#2`, `#3`, ... in the order the drawing meets them, so the text never depends
    on what ran before; what each path holds is in `scopes`."""

    def __init__(self, scopes: dict):
        self.scopes = scopes          # path -> what it holds
        self.paths: dict = {}         # id(record) -> (full path, path inside its pass)

    def __call__(self, record) -> str:
        return self._place(record)[0]

    def _unique(self, prefix: str, base: str, segment: str) -> tuple[str, str]:
        inner, n = _join(base, segment), 1
        while _join(prefix, inner) in self.scopes:
            n += 1
            inner = _join(base, f"{segment}#{n}")
        return _join(prefix, inner), inner

    def _place(self, record) -> tuple[str, str]:
        known = self.paths.get(id(record))
        if known is not None:
            return known
        p = record.pass_
        top = self.paths.get(id(p))
        if top is None:
            top = self.paths[id(p)] = self._unique("", "", f"backward{p.order}")[0]
            self.scopes[top] = (f"the ops recorded by a backward pass computing a derivative of order "
                                f"{p.order}, called at {p.location}")
        if record.op is None:        # the pass's own work: sums of gradients, the handed-out copies
            place = (top, "")
        else:
            of = record.of
            nested = of is not None and of.pass_ is p     # a reference composition differentiated in p
            base = self._place(of)[1] if nested else record.module
            place = self._unique(top, base, f"grad({record.op})")
            if of is None:
                where = f" in module '{record.module}'" if record.module else ""
                note = f"the backward of {record.op}{where} ({record.op} called at {record.location})"
            else:
                note = (f"the backward of a {record.op} that {self._place(of)[0]} recorded "
                        f"(at {record.location})")
            self.scopes[place[0]] = note
        self.paths[id(record)] = place
        return place


def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a and b else a or b


def _key(t: Tensor):
    # an op's output is identified by (op, index) since the Tensor itself may be gone
    return (id(t.creator), t.out_index) if t.creator is not None else ("leaf", id(t))


def to_networkx(*outputs: Tensor):
    """The graph that produced `outputs` as a `networkx.DiGraph`.

    One node per tensor and per op application, with stable ids (`t0`, `op0`, ...), and attributes
    `kind` ('tensor' or 'op'), `op` (op name; None for tensors), `shape` (for a multi-output op, the
    tuple of its output shapes), `dtype`, `module` (dotted module path; for leaves see `walk`; for
    ops a backward pass recorded, the `backwardN. ... grad(OP)` path of the module docstring),
    `name`, `requires_grad` and `is_param`. Edges follow the data: tensor -> op (attribute `args`,
    the argument positions) and op -> tensor (attribute `out_index`). Works before backward or after
    `backward(retain_graph=True)`.

    Args:
        *outputs: the Tensors whose graph to read.

    Returns:
        networkx.DiGraph: the graph.
    """
    import networkx as nx  # noqa: PLC0415 - keep `import tinygrad_s2s.viz` light

    walked = walk(*outputs)
    G = nx.DiGraph()
    for node in walked.nodes.values():
        G.add_node(node.id, kind=node.kind, op=node.op, shape=node.shape, dtype=node.dtype,
                   module=node.module, name=node.name, requires_grad=node.requires_grad,
                   is_param=node.is_param)
    for src, dst, attrs in walked.edges:
        G.add_edge(src, dst, **attrs)
    return G
