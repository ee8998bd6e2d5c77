"""Build a Graphviz drawing of a recorded graph: nested boxes (clusters) per module call, modules
closed into single boxes (by name or below a depth), repeated calls folded (`roll`), deterministic
DOT text. The phases: walk and group the graph (`grouping.group`), choose the closed groups, plan
what is drawn (`grouping.plan`), emit DOT."""
from __future__ import annotations

from ..tensor import Tensor
from .graph import walk
from .grouping import group, level, plan, which_call

# colours: ops blue (ops a backward pass recorded: red), parameters orange, inputs grey, the requested
# outputs green; clusters shaded by depth
STYLE = {
    "graph": {"rankdir": "TB", "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
              "ranksep": "0.3"},
    "node": {"fontname": "Helvetica", "fontsize": "10"},
    "edge": {"arrowsize": "0.6", "color": "#555555", "fontname": "Helvetica"},
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#c9daf8", "color": "#3c78d8"},
    "grad_op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#f4cccc", "color": "#cc4125"},
    "tensor": {"shape": "ellipse", "style": "filled", "fillcolor": "#ffffff", "color": "#666666",
               "height": "0.3"},
    "param": {"fillcolor": "#fce5cd", "color": "#e69138"},
    "input": {"fillcolor": "#eeeeee"},
    "output": {"fillcolor": "#d9ead3", "color": "#6aa84f", "penwidth": "1.5"},
    "collapsed": {"shape": "box3d", "style": "filled", "fillcolor": "#d9d2e9", "color": "#674ea7"},
    "folded": {"shape": "box3d", "style": "filled,bold", "fillcolor": "#ead1dc", "color": "#a64d79"},
    "loop": {"style": "dashed", "color": "#a64d79", "fontsize": "8"},
    "cluster_fill": ("#f7f7f7", "#eef3fb", "#fdf6ec", "#f1f8ee"),
}


def _fmt_shape(shape) -> str:
    if shape and isinstance(shape[0], tuple):
        return " ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _fmt_value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _text(*lines, end: str = "\\n"):
    """Names and numbers as DOT text, never markup: backslashes doubled (so a name's `\\n`, `\\l` or
    final backslash stays a character; Graphviz reads these as escapes), `&` written `&amp;` (Graphviz
    decodes entities: a name `&lt;` would show as `<`), lines joined by `end` (a DOT line break) and the
    whole marked as no HTML (a name shaped like `<b>x</b>` is no HTML label)."""
    import graphviz  # noqa: PLC0415

    return graphviz.nohtml(end.join(str(line).replace("\\", "\\\\").replace("&", "&amp;") for line in lines))


def module_classes(module) -> dict:
    """Module path -> class name for `module` and everything below it ({} for None)."""
    if module is None:
        return {}
    root_name = module.__dict__.get("_name", "")
    return {path: type(m).__name__ for path, m in module.named_modules(root_name)}


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


def closed_groups(grouping, collapse=None, depth: int | None = None, roll: bool = False) -> set:
    """The groups a static drawing closes: calls of the `collapse` modules, calls deeper than `depth`
    levels, and with `roll` every fold of repeated calls."""
    modules = {grp.path for grp in grouping.groups.values()}
    picked = _resolve_collapse(collapse, modules)
    closed = set()
    for key, grp in grouping.groups.items():
        if grp.kind == "fold":
            if roll:
                closed.add(key)
        elif grp.path in picked or (depth is not None and level(grp.path) > depth):
            closed.add(key)
    return closed


def to_dot(*outputs: Tensor, group_by_module: bool = True, collapse=None, depth: int | None = None,
           roll: bool = False, show_shapes: bool = True, module=None, title: str | None = None,
           rankdir: str = "TB"):
    """A `graphviz.Digraph` (a `Drawing`) of the graph that produced `outputs`.

    Ops are blue rounded boxes; tensors are ellipses (parameters orange, other leaves grey, the
    requested outputs green), each drawn once however often it is used. A box never draws an arrow
    out of itself and back in. The DOT text depends only on the graph, so the same model gives the
    same text every run. In a notebook it shows inline as SVG, laid out as `render` does (no system
    Graphviz needed).

    Args:
        *outputs: the Tensors whose graph to draw (a loss, a model's outputs).
        group_by_module: draw every module call as a nested cluster.
        collapse: a name or list of names of modules to draw as single boxes (a name matches a module
            path or its trailing parts: 'attention' matches 'decoder.attention'); tensors that leave
            them stay visible.
        depth: keep that many levels of clusters and draw each call one level deeper as a single
            box (0: top-level modules are boxes); None keeps every level.
        roll: fold repeated identical calls of a module (time steps) and runs of identical sibling
            blocks (`layers.0`, `layers.1`, ...) into one box marked xT.
        show_shapes: label tensors with their shapes.
        module: the Module that was called; adds class names to labels.
        title: a title drawn above the graph.
        rankdir: Graphviz's direction, `"TB"` (top to bottom) or `"LR"`.

    Returns:
        Drawing: a `graphviz.Digraph`; `.source` is the DOT text, `tg.viz.render(drawing, path)` writes a picture.

    Raises:
        ValueError: a `collapse` name that is no module of the graph, or a negative `depth`.
        GraphFreedError: the graph was freed by a backward (draw before it, or pass `retain_graph=True`).
    """
    from .drawing import Drawing  # noqa: PLC0415 - keep `import tinygrad_s2s.viz` light (graphviz loads here)

    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"to_dot: depth must be a non-negative integer or None, got {depth!r}")
    g = walk(*outputs)
    grouping = group(g, module_classes(module))
    closed = closed_groups(grouping, collapse, depth, roll) if group_by_module or collapse or roll else set()
    drawn = plan(g, grouping, closed, clusters=group_by_module)
    dot = Drawing(name="tinygrad_s2s")
    dot.attr("graph", **{**STYLE["graph"], "rankdir": rankdir})
    if title:
        dot.attr(label=_text(title), labelloc="t", fontsize="14")
    dot.attr("node", **STYLE["node"])
    dot.attr("edge", **STYLE["edge"])
    # a box's DOT id is its place among the groups, not its key: a module path may hold any
    # character, and the graphviz package reads `a:b` in an edge as node a, port b
    ids = {key: f"box{i}" for i, key in enumerate(grouping.groups)}
    _emit_clusters(dot, g, grouping, drawn, show_shapes, ids)
    _emit_edges(dot, drawn, grouping, ids)
    return dot


def _cluster_name(grp) -> str:
    return _text("cluster_" + (grp.path if grp.key.endswith("@0") else grp.key))


def _emit_clusters(dot, g, grouping, drawn, show_shapes: bool, ids: dict) -> None:
    """Every drawn node and box inside the nested clusters of the open calls that hold them."""
    groups = grouping.groups
    items: dict = {None: []}
    for ref, where in drawn.where.items():
        items.setdefault(where, []).append(ref)
        while where is not None:          # the open calls around it are drawn too
            where = _open_call(groups, groups[where].parent)
            items.setdefault(where, [])
    children: dict = {}
    for key in items:
        if key is not None:
            children.setdefault(_open_call(groups, groups[key].parent), []).append(key)

    def emit(target, key):
        for ref in items[key]:
            if ref in groups:
                _emit_box(target, groups[ref], ids[ref])
            else:
                _emit_node(target, g.nodes[ref], show_shapes)
        for child in children.get(key, ()):
            grp = groups[child]
            with target.subgraph(name=_cluster_name(grp)) as sub:
                fill = STYLE["cluster_fill"][grp.path.count(".") % len(STYLE["cluster_fill"])]
                where = grp.label + which_call(grp)
                # left-aligned lines (\\l) keep the label clear of edges entering the box's middle
                lines = [grp.cls, f"({where})", ""] if grp.cls else [where, ""]
                sub.attr(label=_text(*lines, end="\\l"), labeljust="l", style="rounded,filled", fillcolor=fill,
                         color="#999999", fontname="Helvetica", fontsize="11", tooltip=_text(grp.note or grp.path))
                emit(sub, child)

    emit(dot, None)


def _open_call(groups, key):
    """`key` itself when it is a call, else the nearest enclosing call (folds draw no cluster here)."""
    while key is not None and groups[key].kind != "call":
        key = groups[key].parent
    return key


def _emit_box(target, grp, box_id: str) -> None:
    head = [grp.cls] if grp.cls else []
    if grp.kind == "fold":
        each = grp.ops // grp.count
        target.node(box_id, _text(*head, f"{grp.label}  ×{grp.count}", f"{each} op{'s' if each != 1 else ''} each"),
                    tooltip=_text(f"{grp.label}: {grp.count} identical calls folded"), **STYLE["folded"])
        return
    target.node(box_id, _text(*head, grp.label + which_call(grp), f"{grp.ops} op{'s' if grp.ops != 1 else ''}"),
                tooltip=_text(grp.note or grp.path), **STYLE["collapsed"])


def _emit_edges(dot, drawn, grouping, ids: dict) -> None:
    for a, b, uses in drawn.edges:
        extra = {"label": f"×{uses}", "fontsize": "8"} if uses > 1 else {}   # x*x reads x twice
        dot.edge(ids.get(a, a), ids.get(b, b), **extra)
    for key in drawn.loops:       # a folded recurrence: each call reads the previous one's output
        first = grouping.groups[grouping.groups[key].members[0]]
        dot.edge(ids[key], ids[key], label="next step" if first.step is not None else "next call", **STYLE["loop"])


def _emit_node(target, n, show_shapes: bool) -> None:
    if n.kind == "op":
        style = STYLE["op"] if n.grad_of is None else STYLE["grad_op"]
        target.node(n.id, _text(n.op), tooltip=_text(n.module or "(top level)"), **style)
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
    target.node(n.id, _text(*lines), tooltip=_text(f"{n.dtype} {_fmt_shape(n.shape)}"), **style)
