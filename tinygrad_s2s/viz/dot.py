"""Build a Graphviz drawing of a recorded graph: nested boxes (clusters) per module path, modules
collapsed into single boxes, nesting cut at a depth, deterministic DOT text."""
from __future__ import annotations

from collections import OrderedDict

from ..tensor import Tensor
from .graph import walk

# colours: ops blue, parameters orange, inputs grey, the requested outputs green; clusters shaded by depth
STYLE = {
    "graph": {"rankdir": "TB", "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
              "ranksep": "0.3"},
    "node": {"fontname": "Helvetica", "fontsize": "10"},
    "edge": {"arrowsize": "0.6", "color": "#555555"},
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#c9daf8", "color": "#3c78d8"},
    "tensor": {"shape": "ellipse", "style": "filled", "fillcolor": "#ffffff", "color": "#666666",
               "height": "0.3"},
    "param": {"fillcolor": "#fce5cd", "color": "#e69138"},
    "input": {"fillcolor": "#eeeeee"},
    "output": {"fillcolor": "#d9ead3", "color": "#6aa84f", "penwidth": "1.5"},
    "collapsed": {"shape": "box3d", "style": "filled", "fillcolor": "#d9d2e9", "color": "#674ea7"},
    "cluster_fill": ("#f7f7f7", "#eef3fb", "#fdf6ec", "#f1f8ee"),
}


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _prefixes(path: str):
    """'a.b.c' -> ['a', 'a.b', 'a.b.c'] (outermost first)."""
    parts = path.split(".") if path else []
    return [".".join(parts[:i + 1]) for i in range(len(parts))]


def _fmt_shape(shape) -> str:
    if shape and isinstance(shape[0], tuple):
        return " ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _fmt_value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _resolve_collapse(collapse, modules):
    """The module paths that the names in `collapse` pick (a name matches a path or its last parts)."""
    if collapse is None:
        return set()
    if isinstance(collapse, str):
        collapse = [collapse]
    picked = set()
    for name in collapse:
        hits = {p for p in modules if p == name or p.endswith("." + name)}
        if not hits:
            known = ", ".join(sorted(modules)) or "none (the graph has no module scopes)"
            raise ValueError(f"collapse: no module {name!r} in this graph; its modules are: {known}")
        picked |= hits
    return picked


def _box_of(path: str, picked) -> str | None:
    for p in _prefixes(path):       # outermost collapsed module wins
        if p in picked:
            return p
    return None


def _module_labels(module) -> dict:
    if module is None:
        return {}
    root_name = module.__dict__.get("_name", "")
    return {path: type(m).__name__ for path, m in module.named_modules(root_name)}


def to_dot(*outputs: Tensor, group_by_module: bool = True, collapse=None, depth: int | None = None,
           show_shapes: bool = True, module=None, title: str | None = None, rankdir: str = "TB"):
    """A `graphviz.Digraph` of the graph that produced `outputs`.

    Ops are blue rounded boxes; tensors are ellipses (parameters orange, other leaves grey, the
    requested outputs green), each drawn once however often it is used. With `group_by_module`,
    every module path becomes a nested cluster. `collapse` (a name or list of names; a name matches a
    module path or its trailing parts, so 'attention' matches 'decoder.attention') draws each such
    module as a single box; tensors that leave it stay visible. `depth` keeps at most that many levels
    of clusters (0: none). `module`, the Module that was called, adds class names to cluster labels.
    The DOT text depends only on the graph, so the same model gives the same text on every run.
    """
    import graphviz  # noqa: PLC0415 - keep `import tinygrad_s2s.viz` light

    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"to_dot: depth must be a non-negative integer or None, got {depth!r}")
    g = walk(*outputs)
    nodes = g.nodes
    all_modules = {p for n in nodes.values() for p in _prefixes(n.module)}
    picked = _resolve_collapse(collapse, all_modules)
    labels = _module_labels(module)

    # which collapsed box (if any) swallows each node; tensors that leave their box stay visible
    box = {nid: _box_of(n.module, picked) for nid, n in nodes.items()}
    readers: dict = {}
    for src, dst, _ in g.edges:
        if nodes[src].kind == "tensor":
            readers.setdefault(src, []).append(dst)
    hidden = {}
    for nid, n in nodes.items():
        b = box[nid]
        if b is None:
            continue
        if n.kind == "op" or (not n.is_output and all(box[r] == b for r in readers.get(nid, ()))):
            hidden[nid] = b
    box_ids = OrderedDict()
    for nid in nodes:
        if nid in hidden and hidden[nid] not in box_ids:
            box_ids[hidden[nid]] = f"m{len(box_ids)}"
    box_ops = {b: sum(1 for nid, bb in hidden.items() if bb == b and nodes[nid].kind == "op") for b in box_ids}

    def cluster_path(path: str) -> str:
        if not group_by_module:
            return ""
        if depth is not None:
            path = ".".join(path.split(".")[:depth]) if path else ""
        return path

    # place every drawn node (in id order) in its cluster
    members: OrderedDict[str, list] = OrderedDict()
    members[""] = []
    drawn = []
    for nid, n in nodes.items():
        if nid in hidden:
            b = hidden[nid]
            if box_ids[b] in drawn:
                continue
            drawn.append(box_ids[b])
            where = cluster_path(_parent(b))
            item = ("box", b)
        else:
            where = cluster_path(_parent(box[nid]) if box[nid] is not None else n.module)
            item = ("node", nid)
        for p in [""] + _prefixes(where):
            members.setdefault(p, [])
        members[where].append(item)

    dot = graphviz.Digraph(name="tinygrad_s2s")
    dot.attr("graph", **{**STYLE["graph"], "rankdir": rankdir})
    if title:
        dot.attr(label=title, labelloc="t", fontsize="14")
    dot.attr("node", **STYLE["node"])
    dot.attr("edge", **STYLE["edge"])

    def emit_items(target, path):
        for kind, ref in members[path]:
            if kind == "box":
                cls = labels.get(ref)
                head = f"{cls}\\n{ref}" if cls else ref
                n_ops = box_ops[ref]
                target.node(box_ids[ref], f"{head}\\n{n_ops} op{'s' if n_ops != 1 else ''}",
                            tooltip=ref, **STYLE["collapsed"])
            else:
                _emit_node(target, nodes[ref], show_shapes)
        for child in [p for p in members if p and _parent(p) == path]:
            with target.subgraph(name=f"cluster_{child}") as sub:
                cls = labels.get(child)
                fill = STYLE["cluster_fill"][child.count(".") % len(STYLE["cluster_fill"])]
                # left-aligned lines (\\l) keep the label clear of edges entering the box's middle
                sub.attr(label=f"{cls}\\l({child})\\l" if cls else f"{child}\\l", labeljust="l",
                         style="rounded,filled", fillcolor=fill, color="#999999", fontname="Helvetica",
                         fontsize="11", tooltip=child)
                emit_items(sub, child)

    emit_items(dot, "")
    rep = {nid: box_ids[hidden[nid]] if nid in hidden else nid for nid in nodes}
    seen = set()
    for src, dst, attrs in g.edges:
        a, b = rep[src], rep[dst]
        if a == b or (a, b) in seen:
            continue
        seen.add((a, b))
        uses = len(attrs.get("args", ()))
        extra = {"label": f"×{uses}", "fontsize": "8"} if uses > 1 else {}   # x*x reads x twice
        dot.edge(a, b, **extra)
    return dot


def _emit_node(target, n, show_shapes: bool) -> None:
    if n.kind == "op":
        target.node(n.id, n.op, tooltip=n.module or "(top level)", **STYLE["op"])
        return
    lines = []
    if n.name:
        lines.append(n.name)
    elif n.value is not None:
        lines.append(_fmt_value(n.value))
    if show_shapes and n.value is None:
        lines.append(_fmt_shape(n.shape))
    style = dict(STYLE["tensor"])
    if n.is_param:
        style.update(STYLE["param"])
    elif n.is_leaf:
        style.update(STYLE["input"])
    if n.is_output:
        style.update(STYLE["output"])
    target.node(n.id, "\\n".join(lines), tooltip=f"{n.dtype} {_fmt_shape(n.shape)}", **style)
