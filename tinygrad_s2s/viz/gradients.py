"""Gradient norms of every tensor of a retained graph, for the HTML view's overlay.

The engine keeps `.grad` on leaves only (as PyTorch does); the gradient of an intermediate tensor is
what flows into its op's backward. After `backward(retain_graph=True)` the graph is still there, so
one more backward pass from the scalar output, watching what each op's backward receives, gives
every tensor's gradient. The leaves' `.grad` are put back exactly as they were.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from ..autograd import run_backward
from .graph import WalkedGraph


def tensor_gradient_norms(g: WalkedGraph, output: Tensor) -> dict:
    """tensor id -> the 2-norm of d(output)/d(tensor), for every tensor of `g` on a path to `output`
    (a scalar that requires grad; its graph retained). Leaves report their fresh gradient too."""
    if output.size != 1 or not output.requires_grad or output.creator is None:
        raise ValueError("tensor_gradient_norms: the output must be a scalar computed from tensors "
                         "that require grad")
    ops = [n for n in g.nodes.values() if n.kind == "op"]
    leaves = [n for n in g.nodes.values() if n.kind == "tensor" and n.is_leaf and n.ref is not None]
    out_tensor = {}           # (op id, output index) -> tensor id
    for src, dst, attrs in g.edges:
        if "out_index" in attrs:
            out_tensor[(src, attrs["out_index"])] = dst
    norms: dict = {}
    saved = {id(n.ref): n.ref.grad for n in leaves}

    def watch(node, backward):
        def wrapped(*gys):
            for i, gy in enumerate(gys):
                tid = out_tensor.get((node.id, i))
                if tid is not None and gy is not None:
                    norms[tid] = norm(gy)
            return backward(*gys)
        return wrapped

    try:
        for n in leaves:
            n.ref.grad = None
        for n in ops:
            n.ref.backward = watch(n, n.ref.backward)     # an instance attribute: this pass only
        seed = backend.get_array_module(output.data).ones(output.shape, dtype=output.dtype)
        run_backward([output], [seed], retain_graph=True)
        for n in leaves:
            if n.ref.grad is not None:
                norms[n.id] = norm(n.ref.grad.data)
    finally:
        for n in ops:
            n.ref.__dict__.pop("backward", None)
        for n in leaves:
            n.ref.grad = saved[id(n.ref)]
    return norms


def norm(array) -> float:
    """The 2-norm of a NumPy or CuPy array, in float64 (NaN or Inf when the array holds them)."""
    a = array.get() if hasattr(array, "get") else array      # CuPy -> host
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.sum(a * a)))
