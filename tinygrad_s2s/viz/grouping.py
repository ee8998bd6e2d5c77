"""Which drawn node stands for which ops: module calls, folded repeats, and the boxes a drawing closes.

Every op belongs to a chain of groups, outermost first: one *call* group per enclosing module call
(`decoder@0`, `decoder.attention.weight@1` for the second call of that module), and a *fold* group in
front of the call of a module whose calls repeat identically under the same parent call (the time
steps of a recurrent module, or identical sibling blocks such as `layers.0`, `layers.1`). A drawing
chooses which groups are closed; an op is drawn as the first closed group of its chain (one box for
all its ops), or as itself when every group is open. A call is a maximal run of consecutive ops
(in creation order) inside one call of a module (the engine numbers calls, so a module called twice
back to back is two calls), so each box is an interval of a topological order and boxes of single
calls can never draw an arrow that leaves a box and comes back into it.

The static drawing (`to_dot`) and the interactive page (`to_html`) share this structure; the page
only decides in the browser which groups are open.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .graph import WalkedGraph
from .steps import find_steps


@dataclass
class Group:
    """A module call or a fold of repeated calls. `count` is the number of calls (1 for a call),
    `ops` the number of ops inside, `recurrent` whether one folded call reads another's output."""
    key: str
    kind: str                 # "call" or "fold"
    path: str                 # the module path (a fold: its first member's)
    parent: str | None        # the enclosing group's key (None at the top level)
    label: str                # the path as shown: 'decoder.attention', 'encoder.layers.0-1', 'grad(mul)'
    cls: str | None = None    # the module's class name, when known
    count: int = 1
    ops: int = 0
    recurrent: bool = False
    members: list = field(default_factory=list)   # a fold's call keys
    step: int | None = None   # a time step found inside a call (steps.py): its index from 0
    note: str | None = None   # a gradient's `grad(...)` box: the backward it holds (graph.walk)


@dataclass
class Grouping:
    """The groups (in first-op order), each node's chain of group keys, and for tensors that a fold
    produces in its later calls, the matching tensor of its first call (`alias[(tensor, fold)]`)."""
    groups: dict
    chains: dict
    alias: dict


def prefixes(path: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b', 'a.b.c'] (outermost first)."""
    parts = path.split(".") if path else []
    return [".".join(parts[:i + 1]) for i in range(len(parts))]


def level(path: str) -> int:
    """How deep a module path is: 'encoder' 1, 'encoder.lstm' 2 ('' is 0)."""
    return path.count(".") + 1 if path else 0


def _pattern(path: str) -> str:
    return re.sub(r"(^|\.)\d+$", r"\1#", path)      # 'layers.3' and 'layers.4' are the same kind


def which_call(grp: Group) -> str:
    """How a call is told apart from the other calls of its module: '' for the first call,
    ' (call 2)' for the second (keys count from 0: `query@1`), ' step 3' for a time step found inside
    a call."""
    if grp.step is not None:
        return f" step {grp.step + 1}"
    if grp.kind != "call":
        return ""                   # a fold is told apart by its count
    n = int(grp.key.rsplit("@", 1)[1])
    return "" if n == 0 else f" (call {n + 1})"


def _fold_label(paths: list[str]) -> str:
    first, last = paths[0], paths[-1]
    if first == last:
        return first
    return f"{first}-{last.rsplit('.', 1)[-1]}" if _pattern(first) == _pattern(last) else f"{first}, ..."


def _call_numbers(n) -> tuple:
    """Per level of an op's module path, the number of the module call it ran in (the engine's
    module_scope); () for ops a backward recorded, whose paths are made up (backward1.grad(mul))."""
    fn = n.ref
    calls = getattr(fn, "calls", ())
    return calls if getattr(fn, "grad_of", None) is None and len(calls) == level(n.module) else ()


def _calls(g: WalkedGraph, classes: dict):
    """The call groups, each op's chain of call keys, and each call's ops in order."""
    groups, chains, ops_of, counts = {}, {}, {}, {}
    prev: dict = {}          # path -> (call key, call number) of the previous op's enclosing calls
    for nid, n in g.nodes.items():
        if n.kind != "op":
            continue
        chain, current, parent = [], {}, None
        numbers = _call_numbers(n)
        for i, p in enumerate(prefixes(n.module)):
            number = numbers[i] if numbers else None
            key, was = prev.get(p, (None, None))
            if key is not None and number is not None and was is not None and was != number:
                key = None                      # the same module called again straight after: a new call
            if key is None:                     # the previous op was not inside p: a new call
                key = f"{p}@{counts.get(p, 0)}"
                counts[p] = counts.get(p, 0) + 1
                note = g.scopes.get(p)       # a gradient's box is labelled by its last part: grad(mul)#2
                groups[key] = Group(key, "call", p, parent, p.rsplit(".", 1)[-1] if note else p, classes.get(p),
                                    note=note)
                ops_of[key] = []
            ops_of[key].append(nid)
            groups[key].ops += 1
            current[p] = (key, number)
            parent = key
            chain.append(key)
        chains[nid] = chain
        prev = current
    return groups, chains, ops_of


def _split_steps(g: WalkedGraph, groups: dict, chains: dict, ops_of: dict) -> dict:
    """Give the time steps found inside each call (steps.py) a group of their own, between the call
    and its sub-calls; returns the groups in first-op order with the steps after their call."""
    made = {dst: (src, attrs["out_index"]) for src, dst, attrs in g.edges if g.nodes[src].kind == "op"}
    args: dict = {}           # op -> [(argument position, tensor)]: what it reads, in argument order
    for src, dst, attrs in g.edges:
        for a in attrs.get("args", ()):
            args.setdefault(dst, []).append((a, src))
    subcalls: dict = {}
    for key, grp in groups.items():
        if grp.parent is not None:
            subcalls.setdefault(grp.parent, []).append(key)
    ordered = {}
    for key, grp in groups.items():
        ordered[key] = grp
        ops = ops_of[key]
        pos = {o: i for i, o in enumerate(ops)}
        cut = len(grp.path)
        found = find_steps([(g.nodes[o].module[cut:], g.nodes[o].op) for o in ops],
                           [[_source(g, t, made, pos) for _, t in sorted(args.get(o, ()))] for o in ops])
        if found is None:
            continue
        start, period, count = found
        bounds = [(start + j * period, start + (j + 1) * period) for j in range(count)]
        step_of = {o: j for j, (lo, hi) in enumerate(bounds) for o in ops[lo:hi]}
        own = [{o for o in ops[lo:hi] if g.nodes[o].module == grp.path} for lo, hi in bounds]
        inside = {c: {step_of.get(o) for o in ops_of[c]} for c in subcalls.get(key, ())}
        if not all(own) or any(len(js) != 1 or None in js for js in inside.values() if js & set(step_of.values())):
            continue          # a step without the module's own ops, or a sub-call across a boundary
        for j, (lo, hi) in enumerate(bounds):
            skey = f"{key}/step{j}"
            ordered[skey] = Group(skey, "call", grp.path, key, grp.label, grp.cls, ops=hi - lo, step=j,
                                  note=grp.note)
            ops_of[skey] = ops[lo:hi]
            for o in ops[lo:hi]:
                c = chains[o]
                c.insert(c.index(key) + 1, skey)
        for c, js in inside.items():
            (j,) = js
            if j is not None:
                groups[c].parent = f"{key}/step{j}"
    return ordered


def _source(g: WalkedGraph, tensor: str, made: dict, pos: dict):
    """Where an argument comes from, as steps.find_steps reads it: an op of the call (its position and
    which output), a parameter (the same weights at every step), or None (anything else)."""
    if tensor in made and made[tensor][0] in pos:
        return ("op", pos[made[tensor][0]], made[tensor][1])
    return ("param", tensor) if g.nodes[tensor].is_param else None


def _signature(g: WalkedGraph, path: str, ops: list) -> tuple:
    cut = len(path)
    return tuple((g.nodes[o].module[cut:], g.nodes[o].op) for o in ops)


def _produced(g: WalkedGraph, ops: list) -> list:
    mine = set(ops)
    return [dst for src, dst, _ in g.edges if src in mine]


def group(g: WalkedGraph, classes: dict | None = None) -> Grouping:
    """Find the calls and folds of a walked graph; `classes` maps module paths to class names (used in
    labels and to keep blocks of different classes apart)."""
    classes = classes or {}
    groups, chains, ops_of = _calls(g, classes)
    groups = _split_steps(g, groups, chains, ops_of)
    children: dict = {}
    for key, grp in groups.items():
        children.setdefault(grp.parent, []).append(key)
    producer = {dst: src for src, dst, _ in g.edges if g.nodes[src].kind == "op"}
    alias, folds = {}, {}
    for parent, keys in children.items():
        similar: dict = {}
        for key in keys:
            grp = groups[key]
            sig = (_pattern(grp.path), grp.cls, _signature(g, grp.path, ops_of[key]))
            similar.setdefault(sig, []).append(key)
        for members in similar.values():
            if len(members) < 2:
                continue
            first = groups[members[0]]
            fkey = f"fold/{first.key}"
            label = _fold_label([groups[m].path for m in members]) + (" steps" if first.step is not None else "")
            folds[fkey] = Group(fkey, "fold", first.path, parent, label, first.cls, len(members),
                                sum(groups[m].ops for m in members), members=members)
            for m in members:
                groups[m].parent = fkey
            base = _produced(g, ops_of[members[0]])
            where = {}
            for i, m in enumerate(members):
                for o in ops_of[m]:
                    where[o] = i
                    c = chains[o]
                    c.insert(c.index(m), fkey)
                mine = _produced(g, ops_of[m])
                if len(mine) == len(base):
                    alias.update({(t, fkey): b for t, b in zip(mine, base)})
            folds[fkey].recurrent = any(producer.get(src) in where and dst in where
                                        and where[producer[src]] != where[dst] for src, dst, _ in g.edges)
            if first.step is None and folds[fkey].recurrent and len({groups[m].path for m in members}) == 1:
                folds[fkey].label += " steps"    # one module called again on its own output: time steps
    ordered = {}
    for key, grp in groups.items():       # a fold goes just before its first member
        fkey = f"fold/{key}"
        if fkey in folds:
            ordered[fkey] = folds[fkey]
        ordered[key] = grp
    _chain_tensors(g, chains, producer)
    return Grouping(ordered, chains, alias)


def _chain_tensors(g: WalkedGraph, chains: dict, producer: dict) -> None:
    """An op's output shares its op's chain; a leaf gets the common start of its readers' chains."""
    readers: dict = {}
    for src, dst, _ in g.edges:
        if g.nodes[src].kind == "tensor":
            readers.setdefault(src, []).append(dst)
    for nid, n in g.nodes.items():
        if n.kind != "tensor":
            continue
        if nid in producer:
            chains[nid] = chains[producer[nid]]
            continue
        common = None
        for r in readers.get(nid, ()):
            c = chains[r]
            common = list(c) if common is None else common[:_same(common, c)]
        chains[nid] = common or []


def _same(a: list, b: list) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class Plan:
    """What a drawing shows once some groups are closed: `rep` maps each node to the id drawn for it
    (a closed group's key, or itself), `hidden` the nodes swallowed by a closed group, `where` the open
    group each drawn item sits in (None: top level), `edges` the drawn (source, target, uses) once each,
    `loops` the closed folds whose calls feed each other."""
    rep: dict
    hidden: set
    where: dict
    edges: list
    loops: list


def plan(g: WalkedGraph, grouping: Grouping, closed, clusters: bool = True) -> Plan:
    """Lay out which nodes and boxes a drawing shows when the groups in `closed` are closed."""
    chains, groups = grouping.chains, grouping.groups

    def first_closed(chain):
        for i, key in enumerate(chain):
            if key in closed:
                return i
        return None

    rep, where, hidden = {}, {}, set()
    readers: dict = {}
    for src, dst, _ in g.edges:
        if g.nodes[src].kind == "tensor":
            readers.setdefault(src, []).append(dst)
    for nid, n in g.nodes.items():
        chain = chains.get(nid, [])
        i = first_closed(chain)
        if n.kind == "op":
            rep[nid] = chain[i] if i is not None else nid
            where[rep[nid]] = _open_parent(chain, i, groups, clusters)
    for nid, n in g.nodes.items():
        if n.kind != "tensor":
            continue
        chain = chains.get(nid, [])
        i = first_closed(chain)
        box = chain[i] if i is not None else None
        inside = box is not None and all(rep[r] == box for r in readers.get(nid, ()))
        swallowable = not n.is_leaf or n.is_param or (not n.requires_grad and n.name is None)
        if box is not None and inside and not n.is_output and swallowable:
            hidden.add(nid)
            rep[nid] = box
            continue
        fold = box if box is not None and groups[box].kind == "fold" else None
        rep[nid] = grouping.alias.get((nid, fold), nid) if fold else nid
        if rep[nid] == nid:
            where[nid] = _open_parent(chain, i, groups, clusters)
    for nid, r in list(rep.items()):
        if r != nid and r not in groups and r not in where:   # a fold's first-call tensor stands for all
            hidden.discard(r)
            rep[r] = r
            where[r] = _open_parent(chains[r], first_closed(chains[r]), groups, clusters)
    edges, seen, loops = [], set(), []
    for src, dst, attrs in g.edges:
        a, b = rep[src], rep[dst]
        if a == b or (a, b) in seen:
            continue
        if g.nodes[src].kind == "tensor" and not g.nodes[src].is_leaf and b in chains[src]:
            continue                  # a box reading what it produced itself: no arrow out and back in
        seen.add((a, b))
        edges.append((a, b, len(attrs.get("args", ()))))
    for key in dict.fromkeys(r for r in rep.values() if r in groups):
        if groups[key].kind == "fold" and groups[key].recurrent:
            loops.append(key)
    return Plan(rep, hidden, where, edges, loops)


def _open_parent(chain: list, first_closed: int | None, groups: dict, clusters: bool):
    """The innermost open call group before the first closed one (the cluster a node sits in)."""
    if not clusters:
        return None
    upto = chain if first_closed is None else chain[:first_closed]
    for key in reversed(upto):
        if groups[key].kind == "call":
            return key
    return None
