"""The backward pass: a reverse-topological walk with a heap (no recursion: a 100,000-op chain works),
gradients accumulated per output and handed to the leaves' `.grad` (or to `grad`'s caller), the graph
freed as it goes unless kept, and backward recorded as ops itself for `create_graph=True`."""
from __future__ import annotations

import heapq

import numpy as np

from .. import backend
from .checks import _check_finite, _check_grad, _check_versions, _clock
from .errors import _backward_error, _node_error, describe
from .function import Function, _backward_pass, _grad_of, _recorded
from .grad_mode import _setting, _state
from .tensor_base import TensorBase, as_tensor, wrap


def backward(t, grad=None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """`t.backward(...)`: accumulate d(t)/d(leaf) into every leaf's `.grad` that requires a gradient."""
    if not t.requires_grad:
        raise RuntimeError(describe("backward", "this tensor does not require grad (it was made "
                                    "from inputs with requires_grad=False or under no_grad())"))
    g = _seed_grad("backward", t, grad, create_graph)
    keep = create_graph if retain_graph is None else retain_graph
    with _backward_pass(create_graph):
        run_backward([t], [g], keep, create_graph)


def _seed_grad(op, t, grad, create_graph):
    """The upstream gradient of `t`: ones for a one-element tensor, else `grad` (checked)."""
    xp = backend.get_array_module(t.data)
    if grad is None:
        if t.data.size != 1:
            raise ValueError(describe(op, "grad can be implied only for a scalar output; "
                                      "pass grad= of the same shape", [t.shape]))
        g = xp.ones(t.shape, dtype=t.dtype)
    elif isinstance(grad, TensorBase):
        g = grad if create_graph else grad.data
    else:
        g = xp.asarray(grad, dtype=t.dtype)
    if g.shape != t.shape:
        raise ValueError(describe(op, f"grad shape {tuple(g.shape)} does not match the "
                                  f"tensor's shape {t.shape}", [t.shape, g.shape]))
    return _as_node(g) if create_graph else g


def _as_node(g):
    """A gradient as a Tensor (arrays become constants) while the backward is being recorded."""
    return g if isinstance(g, TensorBase) else wrap(g, False)


class Copy(Function):
    """The identity with a copied array: a recorded gradient handed out as a `.grad` (or by `grad`)
    is a Tensor of its own, so no two share one object or array (clip_grad_norm scales in place)."""
    twice_differentiable = True

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def _fresh(g: TensorBase) -> TensorBase:
    with _setting("grad", True):
        return Copy.apply(g)


def run_backward(roots, grads, retain_graph: bool, create_graph: bool = False, wanted=None) -> None:
    """The backward walk behind `Tensor.backward` and `tg.grad`: reverse-topological, with a heap (no recursion).

    Nodes run deepest generation first. Gradients go into the leaves' `.grad`, or, when `wanted` is
    a dict (`tg.grad`), only into its entries: keyed by the Tensor for a leaf, by
    `(creator, out_index)` otherwise.

    Args:
        roots: the tensors to differentiate (or one tensor).
        grads: their upstream gradients, one per root (or one).
        retain_graph: keep the nodes' saved values for another backward.
        create_graph: make every gradient a Tensor and record each backward as ops (call it inside
            a `_backward_pass`).
        wanted: None (fill the leaves' `.grad`), or a dict whose entries receive the gradients.

    Raises:
        RuntimeError: the graph was freed by an earlier backward, a saved tensor was changed in place
            since the forward, an op cannot be differentiated twice, or an op's backward failed (the
            message names the op, its module and its forward's line).
    """
    if isinstance(roots, TensorBase):
        roots, grads = [roots], [grads]
    pending, heap = {}, []
    needed = None if wanted is None else _nodes_leading_to(roots, wanted)
    for root, g in zip(roots, grads):
        if root.creator is None:
            _deliver(root, g, create_graph, wanted)
        elif root.creator.inputs is None:
            raise RuntimeError(describe("backward", "the graph was already freed by an earlier backward; "
                                        "pass retain_graph=True to the first call to backprop twice",
                                        module=root.creator.module))
        else:
            _push(pending, heap, root, g)
    anomaly = _state["anomaly"]
    while heap:
        fn = heapq.heappop(heap)[2]
        gys = pending.pop(fn)
        if wanted is not None:
            for j, gy in enumerate(gys):
                if (fn, j) in wanted and gy is not None:
                    wanted[fn, j] = gy if wanted[fn, j] is None else wanted[fn, j] + gy
            if fn not in needed:
                continue
        if fn.inputs is None:
            raise RuntimeError(describe("backward", f"graph freed at op '{fn.op}'; use retain_graph=True",
                                        module=fn.module))
        if fn._checks_versions and fn._clock != _clock[0]:
            _check_versions(fn)
        for i, gy in enumerate(gys):
            if gy is None and not fn.takes_missing_grads:   # an unused output of a multi-output op
                shape, dtype = fn.out_meta[i]
                gys[i] = backend.get_array_module(fn.inputs[0].data).zeros(shape, dtype)
                if create_graph:
                    gys[i] = wrap(gys[i], False)
        if create_graph:
            gxs = _call_graph_backward(fn, gys)
        else:
            try:
                gxs = fn.backward(*gys)
            except Exception as exc:
                raise _backward_error(fn, exc) from exc
            if type(gxs) is not tuple:
                gxs = (gxs,)
            if len(gxs) != len(fn.inputs):
                gxs = _as_grad_tuple(fn, gxs)
        i = -1
        for x, gx in zip(fn.inputs, gxs):
            i += 1
            if gx is None or not x.requires_grad:
                continue
            xd = x._data
            if getattr(gx, "shape", None) != xd.shape or gx.dtype != xd.dtype:
                gx = _check_grad(fn, i, gx, x, create_graph)
            if anomaly:
                _check_finite(fn.op, "backward", gx.data if create_graph else gx, fn.module)
            c = x.creator
            if c is None:
                _deliver(x, gx, create_graph, wanted)
                continue
            if needed is None or c in needed or (c, x.out_index) in wanted:
                _push(pending, heap, x, gx)
        if not retain_graph:
            fn.release()


def _deliver(leaf, g, create_graph, wanted):
    """A leaf's gradient: accumulated into .grad, or kept for `tg.grad` if it asked for this leaf."""
    if wanted is None:
        accumulate(leaf, g, create_graph)
    elif leaf in wanted:
        wanted[leaf] = g if wanted[leaf] is None else wanted[leaf] + g


def accumulate(leaf, g, create_graph: bool = False) -> None:
    """Add g to leaf.grad (a copy the first time: no two .grads share an array)."""
    if create_graph:
        g = _fresh(g)
        leaf.grad = g if leaf.grad is None else leaf.grad + g
        return
    if g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if leaf.grad is None:
        leaf.grad = wrap(np.array(g) if isinstance(g, np.generic) else g.copy(), False)   # copy: no aliasing between grads
    elif leaf.grad.creator is not None:     # a graph from create_graph: leave it intact
        leaf.grad = wrap(leaf.grad._data + g, False)
    else:   # a new array, not an in-place change: nothing saved can see it, so no version bump
        leaf.grad._data = leaf.grad._data + g


def _push(pending, heap, t, g):
    """Add g to the gradient buffer of t's node, scheduling the node on its first gradient."""
    fn = t.creator
    buf = pending.get(fn)
    if buf is None:
        buf = pending[fn] = [None] * len(fn.out_meta)
        heapq.heappush(heap, (-fn.generation, -fn.seq, fn))
    j = t.out_index
    buf[j] = g if buf[j] is None else buf[j] + g


def _nodes_leading_to(roots, wanted) -> set:
    """The nodes whose backward must run for `tg.grad`: those with a path down to a wanted tensor."""
    seen, stack = {}, [r.creator for r in roots if r.creator is not None]
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen[fn] = None
        if fn.inputs is None:
            continue
        stack.extend(x.creator for x in fn.inputs if x.creator is not None and x.creator not in seen)
    needed = set()
    for fn in sorted(seen, key=lambda f: f.seq):     # creation order: inputs' nodes come first
        if fn.inputs is not None and any(
                (x in wanted) if x.creator is None else
                (x.creator in needed or (x.creator, x.out_index) in wanted) for x in fn.inputs):
            needed.add(fn)
    return needed


def _call_graph_backward(fn, gys) -> tuple:
    """fn's backward recorded as ops (on Tensors, or through the op's reference composition), with
    broadcasting undone inside the same record, so every op it adds is drawn as part of fn's backward."""
    with _setting("grad", True), _recorded(_grad_of(fn)):
        if fn.twice_differentiable:
            d = fn.__dict__
            arrays = {name: d[name] for name, _ in fn._saved_in_attrs + fn._saved_out_attrs}
            for name, i in fn._saved_in_attrs:
                d[name] = fn.inputs[i]
            for name, i in fn._saved_out_attrs:     # the output again, as a node: y = op(inputs)
                t = d[name] = wrap(arrays[name], True)
                t.creator, t.out_index, t.generation = fn, i, fn.generation + 1
            try:
                gxs = fn.backward(*gys)
            except Exception as exc:
                raise _backward_error(fn, exc) from exc
            finally:
                d.update(arrays)
            gxs = _as_grad_tuple(fn, gxs)
        elif fn.reference is not None:
            gxs = _reference_vjp(fn, gys)
        else:
            raise RuntimeError(_node_error(fn, (
                f"{type(fn).__name__}.backward runs on arrays only, so create_graph=True cannot "
                "differentiate it; set twice_differentiable = True once its backward runs on Tensors "
                "(saved_input/saved_output for what it reads), or give it a reference(*inputs) built "
                "from ops")))
        gxs = tuple(None if g is None else _as_node(g) for g in gxs)
        return tuple(g if g is None or not x.requires_grad or (g.shape == x.shape and g.dtype.kind == "f")
                     else _check_grad(fn, i, g, x, True) for i, (x, g) in enumerate(zip(fn.inputs, gxs)))


def _reference_vjp(fn, gys) -> tuple:
    """The vector-Jacobian product of fn computed through its reference composition, recorded."""
    outs = fn.reference(*fn.inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    _check_reference(fn, outs)
    pairs = [(o, g) for o, g in zip(outs, gys) if g is not None and o.requires_grad]
    targets = [x for x, need in zip(fn.inputs, fn.needs_grad) if need]
    got = iter(grad([o for o, _ in pairs], targets, [g for _, g in pairs], create_graph=True,
                    allow_unused=True) if pairs and targets else [None] * len(targets))
    return tuple(next(got) if need else None for need in fn.needs_grad)


# How far a reference's output may be from the forward's: round-off of another order of operations
_REFERENCE_RTOL = {2: 1e-2, 4: 1e-3, 8: 1e-8}     # by itemsize: float16, float32, float64


def _check_reference(fn, outs) -> None:
    """A reference that computes something other than the forward would make every gradient of
    create_graph=True silently wrong: compare it with the forward's outputs that are still as the
    forward left them (version 0)."""
    if len(outs) != len(fn.outputs):
        raise RuntimeError(_node_error(fn, f"{type(fn).__name__}.reference returned {len(outs)} outputs, "
                                           f"forward {len(fn.outputs)}"))
    for i, (ref, w) in enumerate(zip(outs, fn.outputs)):
        y = w()
        if y is None or y._version:         # gone, or changed in place since: nothing to compare with
            continue
        got, want = as_tensor(ref).data, y._data
        if got.shape != want.shape:
            raise RuntimeError(_node_error(fn, f"{type(fn).__name__}.reference gives output {i} of shape "
                                               f"{got.shape}, forward {want.shape}"))
        if not want.size:
            continue
        xp = backend.get_array_module(want)     # compared where the arrays live: one number comes back
        rtol = _REFERENCE_RTOL.get(np.dtype(want.dtype).itemsize, 1e-3)
        scale = max(float(backend.to_numpy(xp.max(xp.abs(want)))), 1.0)
        bad = ~xp.isclose(got, want, rtol=rtol, atol=rtol * scale, equal_nan=True)
        if bool(backend.to_numpy(bad.any())):
            got, want, bad = (backend.to_numpy(a) for a in (got, want, bad))
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise RuntimeError(_node_error(fn, (
                f"{type(fn).__name__}.reference does not compute what its forward computed: output {i} at "
                f"element {idx} is {float(got[idx]):.8g}, the forward gave {float(want[idx]):.8g} ({int(bad.sum())} of {bad.size} "
                "differ); create_graph=True differentiates reference, so its gradients would be wrong")))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, as `torch.autograd.grad` (`.grad` untouched).

    Args:
        outputs: a Tensor or a sequence of them.
        inputs: a Tensor or a sequence of them that require a gradient (intermediate tensors too).
        grad_outputs: the upstream gradients, one per output (a Tensor, array or number; or one for
            one output); default 1 for one-element outputs.
        retain_graph: keep the graph for another backward; defaults to `create_graph`.
        create_graph: return gradients that carry their own graph, to differentiate again
            (Hessian-vector products, gradient penalties).
        allow_unused: give None for an input the outputs do not depend on, instead of raising.

    Returns:
        tuple[Tensor | None, ...]: one gradient per input, of its shape.

    Raises:
        ValueError: `grad_outputs` does not have one gradient per output, or one of another shape.
        RuntimeError: an input or output does not require a gradient, or an input is unused (without
            `allow_unused`); and what `Tensor.backward` raises.
    """
    outputs = [outputs] if isinstance(outputs, TensorBase) else list(outputs)
    inputs = [inputs] if isinstance(inputs, TensorBase) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):   # one Tensor, array or number: the one output's
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(describe("grad", f"{len(grad_outputs)} grad_outputs for {len(outputs)} outputs"))
    for k, t in enumerate(inputs):
        if not isinstance(t, TensorBase) or not t.requires_grad:
            raise RuntimeError(describe("grad", f"input {k} does not require grad, so it has no gradient"))
    pairs = []
    for k, (o, g) in enumerate(zip(outputs, grad_outputs)):
        if not o.requires_grad:
            raise RuntimeError(describe("grad", f"output {k} does not require grad (made from inputs "
                                        "with requires_grad=False or under no_grad())"))
        pairs.append((o, _seed_grad("grad", o, g, create_graph)))
    wanted = {(t if t.creator is None else (t.creator, t.out_index)): None for t in inputs}
    keep = create_graph if retain_graph is None else retain_graph
    result = []
    with _backward_pass(create_graph):
        run_backward([o for o, _ in pairs], [g for _, g in pairs], keep, create_graph, wanted)
        for k, t in enumerate(inputs):
            g = wanted[t if t.creator is None else (t.creator, t.out_index)]
            if g is None and not allow_unused:
                raise RuntimeError(describe("grad", f"input {k} (shape {t.shape}) is not used by the "
                                            "outputs' graph; pass allow_unused=True to get None for it"))
            if g is not None:
                g = _fresh(g) if isinstance(g, TensorBase) else wrap(
                    backend.get_array_module(g).asarray(g).astype(t.dtype, copy=True), False)
            result.append(g)
    return tuple(result)


def _as_grad_tuple(fn, gxs) -> tuple:
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if len(gxs) != len(fn.inputs):
        raise ValueError(_node_error(fn, f"{type(fn).__name__}.backward returned {len(gxs)} gradients "
                                         f"for {len(fn.inputs)} inputs"))
    return gxs
