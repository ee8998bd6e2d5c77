"""The interactive view: one self-contained HTML file (scripts, styles, data and the Graphviz layout
engine inlined; it opens offline from disk) in which module boxes expand and collapse on click.

Python does the analysis once (`grouping.group`: module calls, folds of repeated calls, each node's
chain of groups); the page only decides which groups are open and lays the result out with Graphviz
compiled to WebAssembly (see vendor/README.md for why). For scripted checks the page reads
`#expand=PATH,PATH` (open those modules at load), marks each visible op node with the class `node`,
each visible module box (open or closed) with `cluster` and each tensor with `tensor`, and sets
`data-state="ready"` on <body> once drawn (`data-ready-ms`: milliseconds from navigation start).
"""
from __future__ import annotations

import json
import math
import os
import re
from importlib import resources

import numpy as np

from ..serialization import write_bytes as _write_bytes
from ..tensor import Tensor
from ..autograd import saved_input, saved_output
from .dot import closed_groups, module_classes
from .gradients import norm, tensor_gradient_norms
from .graph import walk
from .grouping import group, plan, which_call

VENDORED_GRAPHVIZ = "hpcc-js-wasm-graphviz-1.29.2.js"
MAX_OPS_AT_LOAD = 50          # the page opens at the deepest level that shows at most this many ops


def _fmt_shape(shape) -> str:
    if shape and isinstance(shape[0], tuple):
        return " ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _number(v):
    """A float for JSON; NaN and Inf become the text 'nan', 'inf', '-inf' (JSON has no such numbers)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    v = float(v)
    return v if math.isfinite(v) else str(v)


def _norm(array):
    """The 2-norm of an array (NumPy or CuPy) as a JSON number, or None when it has no numbers."""
    try:
        return _number(norm(array))
    except (TypeError, ValueError):
        return None


def _saved(fn) -> list:
    """What an op kept for backward, as [name, shape, dtype, norm]: the inputs and outputs its class
    declares (`x = saved_input(0)`, `y = saved_output(0)`) and the arrays it stored on itself."""
    found = {}
    if getattr(fn, "inputs", None) is not None:     # released after backward: nothing is kept
        for name in dir(type(fn)):
            if isinstance(getattr(type(fn), name, None), (saved_input, saved_output)):
                found[name] = getattr(fn, name)
    for name, value in vars(fn).items():
        if name not in _BOOKKEEPING and hasattr(value, "shape") and hasattr(value, "dtype"):
            found[name] = value
    out = []
    for name, value in sorted(found.items()):
        norm = _norm(value) if np.dtype(value.dtype).kind in "fiub" else None
        out.append([name, _fmt_shape(tuple(value.shape)), str(value.dtype), norm])
    return out


_BOOKKEEPING = {"inputs", "outputs", "saved_outputs", "needs_grad", "out_meta", "versions", "where"}


def graph_data(*outputs: Tensor, module=None, title: str | None = None) -> dict:
    """Everything the page needs, as JSON-ready data: nodes (ops with shapes, dtype, module path,
    file:line and what they saved for backward; tensors with shape, dtype and gradient norm), edges,
    the groups and each node's chain of groups, the fold aliases and the groups open at load."""
    g = walk(*outputs)
    grouping = group(g, module_classes(module))
    nodes = {}
    for nid, n in g.nodes.items():
        d = {"k": n.kind, "shape": _fmt_shape(n.shape), "dtype": n.dtype, "module": n.module,
             "chain": grouping.chains.get(nid, [])}
        if n.kind == "op":
            fn = n.ref
            d.update(op=n.op, loc=fn.location(), saved=_saved(fn),
                     ins=[_fmt_shape(tuple(x.shape)) for x in fn.inputs], bw=g.scopes.get(n.module))
        else:
            d.update(name=n.name, param=n.is_param, leaf=n.is_leaf, out=n.is_output,
                     value=_number(n.value), rg=n.requires_grad)
        nodes[nid] = d
    for nid, value in _gradient_norms(g, outputs).items():
        nodes[nid]["grad"] = _number(value)
    groups = {k: {"kind": grp.kind, "path": grp.path, "parent": grp.parent, "label": grp.label, "cls": grp.cls,
                  "count": grp.count, "ops": grp.ops, "recurrent": grp.recurrent, "which": which_call(grp),
                  "steps": grp.kind == "fold" and grouping.groups[grp.members[0]].step is not None,
                  "note": grp.note}
              for k, grp in grouping.groups.items()}
    alias = {}
    for (tid, fold), base in grouping.alias.items():
        alias.setdefault(tid, {})[fold] = base
    return {"title": title or "computation graph", "nodes": nodes, "edges": [list(e[:2]) for e in g.edges],
            "groups": groups, "alias": alias, "open": sorted(open_at_load(g, grouping)),
            "maxOps": MAX_OPS_AT_LOAD}


def _gradient_norms(g, outputs) -> dict:
    """Every tensor's gradient norm when a backward already ran over this retained graph (a leaf holds
    a .grad) and the first output is a scalar loss; {} otherwise."""
    ran = any(n.is_leaf and getattr(n.ref, "grad", None) is not None for n in g.nodes.values())
    out = outputs[0]
    if not ran or out.size != 1 or not out.requires_grad or out.creator is None:
        return {}
    return tensor_gradient_norms(g, out)


def open_at_load(g, grouping, max_ops: int = MAX_OPS_AT_LOAD) -> set:
    """The groups open at load: every call down to the deepest level at which at most `max_ops` ops
    are visible (folds stay folded)."""
    best = set()
    depth = 0
    while True:
        closed = closed_groups(grouping, depth=depth, roll=True)
        drawn = plan(g, grouping, closed)
        visible = sum(1 for nid, r in drawn.rep.items() if r == nid and g.nodes[nid].kind == "op")
        opened = {k for k in grouping.groups if k not in closed}
        if visible > max_ops and depth > 0:
            return best
        best = opened
        if not any(k in closed and grouping.groups[k].kind == "call" for k in grouping.groups):
            return best        # nothing deeper to open
        depth += 1


def _vendored_graphviz() -> str:
    code = resources.files("tinygrad_s2s.viz").joinpath("vendor", VENDORED_GRAPHVIZ).read_text("utf-8")
    m = re.search(r"export\s*\{([^}]*)\}\s*;?\s*(//# sourceMappingURL=\S*)?\s*$", code)
    if m is None:
        raise RuntimeError(f"vendor/{VENDORED_GRAPHVIZ}: its closing export statement was not found")
    names = {}
    for part in m.group(1).split(","):
        local, _, exported = part.strip().partition(" as ")
        names[(exported or local).strip()] = local.strip()
    if "Graphviz" not in names:
        raise RuntimeError(f"vendor/{VENDORED_GRAPHVIZ} exports no Graphviz")
    return code[:m.start()] + f"globalThis.TgGraphviz = {names['Graphviz']};\n"


def _asset(name: str) -> str:
    return resources.files("tinygrad_s2s.viz").joinpath(name).read_text("utf-8")


def _json_in_script(data) -> str:
    # "\u003c" is the same JSON string as "<": with no "<" at all, no name can close the <script>
    # ("</script") or switch the HTML parser into its script-escape states ("<!--<script>"); "&" and ">"
    # go the same way so the text reads the same to any HTML tool
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _code_in_script(name: str, code: str) -> str:
    if re.search(r"</script|<!--", code, re.IGNORECASE):
        raise RuntimeError(f"{name} holds '</script' or '<!--' and cannot be inlined in a <script>")
    return code


def to_html(outputs, path, *, module=None, title: str | None = None) -> str:
    """Write the interactive view of the graph that produced `outputs` to one self-contained HTML file.

    Module boxes expand and collapse on click (the page opens at the deepest level showing at most
    about 50 ops); repeated calls and identical blocks fold into a box marked xT that can be unrolled;
    shapes label the edges; hovering shows op, shapes, dtype, module path and the file:line that
    called it; a search box finds module paths and op names. The graph of a gradient
    (`backward(create_graph=True)`, `tg.grad`) draws each backward pass as a box `backwardN` and each
    op's backward in it as a box `grad(OP)`, its ops in red. After `backward(retain_graph=True)` every
    tensor's gradient norm can be overlaid, and an op's saved tensors are listed on hover. The page
    opens offline (nothing is fetched).

    Args:
        outputs: a Tensor or a sequence of Tensors.
        path: the `.html` file to write.
        module: the Module that was called; adds class names.
        title: the page's title.

    Returns:
        str: `path`.
    """
    page = html_page(outputs, module=module, title=title)
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    _write_bytes(path, page.encode("utf-8"))
    return path


def html_page(outputs, *, module=None, title: str | None = None) -> str:
    """The text of `to_html`'s page for the graph that produced `outputs`."""
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    outputs = tuple(outputs)
    data = graph_data(*outputs, module=module, title=title)
    parts = {"TITLE": _html_escape(data["title"]), "STYLE": _asset("html_view.css"),
             "DATA": _json_in_script(data), "GRAPHVIZ": _code_in_script(VENDORED_GRAPHVIZ, _vendored_graphviz()),
             "APP": _code_in_script("html_view.js", _asset("html_view.js"))}
    return re.sub(r"/\*(TITLE|STYLE|DATA|GRAPHVIZ|APP)\*/", lambda m: parts[m.group(1)], _asset("html_view.html"))


class HTMLView:
    """`to_html`'s page for a notebook: its `_repr_html_` is an <iframe> holding the whole page in
    `srcdoc` (the layout engine included, so it works offline and fetches nothing), sandboxed to
    scripts only: the page runs in an origin of its own, away from the notebook's cookies and DOM.
    `page` is the page's text, as `to_html` writes it."""

    def __init__(self, page: str, *, height: int = 600):
        if not isinstance(height, int) or isinstance(height, bool) or height <= 0:
            raise ValueError(f"show_html: height must be a positive number of pixels, got {height!r}")
        self.page, self.height = page, height

    def _repr_html_(self) -> str:
        # the page becomes one attribute value: with & < > " escaped nothing in it can end the attribute,
        # and the browser unescapes it back into the page's exact text
        srcdoc = _html_escape(self.page).replace('"', "&quot;")
        return (f'<iframe srcdoc="{srcdoc}" sandbox="allow-scripts" '
                f'style="width: 100%; height: {self.height}px; border: 1px solid #ccc"></iframe>')

    def __repr__(self) -> str:       # what a terminal shows; a notebook shows the page itself
        return f"<interactive graph view, {len(self.page) // 1024} KiB page: shown inline in a notebook>"


def show_html(outputs, *, module=None, title: str | None = None, height: int = 600) -> HTMLView:
    """The interactive view of `to_html`, shown inline when a notebook cell ends with it (sandboxed, offline).

    Args:
        outputs: a Tensor or a sequence of Tensors.
        module: the Module that was called; adds class names.
        title: the view's title.
        height: the frame's height in pixels.

    Returns:
        HTMLView: an object with `_repr_html_` (Jupyter displays it).

    Raises:
        ValueError: `height` is not a positive number.
    """
    return HTMLView(html_page(outputs, module=module, title=title), height=height)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
