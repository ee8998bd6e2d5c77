"""Matrix products (batched, broadcasting as numpy.matmul), each GEMM through BLAS at the thread count
`backend.blas_threads` chose for its shape."""
from __future__ import annotations

import numpy as np

from ..autograd import saved_input, sum_to
from ..backend import blas_threads
from .base import Op, _pair, _xp, onnx_binary


def _strides(v):
    """An array's layout, which picks BLAS's kernel as much as its shape does (a Tensor under
    create_graph: none, nothing is chosen for it)."""
    return getattr(v, "strides", None)


class MatMul(Op):
    a, b = saved_input(0), saved_input(1)
    onnx = onnx_binary("MatMul")     # ONNX's MatMul has numpy.matmul's rules, 1-d operands included

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul does not take 0-d operands; use mul")
        k_a, k_b = a.shape[-1], (b.shape[0] if b.ndim == 1 else b.shape[-2])
        if k_a != k_b:
            raise ValueError(f"shapes {a.shape} and {b.shape} are not aligned: "
                             f"{k_a} (last dim of a) != {k_b} ({'dim 0' if b.ndim == 1 else 'dim -2'} of b)")
        if b.ndim == 2 and a.ndim >= 2:    # one 2-D GEMM, on the BLAS thread count chosen for its shape;
            def product():                 # (N,T,D)@(D,H) too, as NumPy would loop over N
                return (a.reshape(-1, k_a) @ b).reshape(a.shape[:-1] + b.shape[1:])
            return blas_threads.gemm(a.size // k_a, b.shape[1], k_a, _xp(a), product, (_strides(a), _strides(b)))
        return a @ b

    def backward(self, gy):
        a, b = self.a, self.b
        xp = _xp(a)
        if a.ndim > 2 and b.ndim == 2:
            g2 = gy.reshape(-1, b.shape[1])
            return blas_threads.gemm(g2.shape[0], b.shape[1], b.shape[0], xp, lambda: (
                (g2 @ b.T).reshape(a.shape) if self.needs_grad[0] else None,
                a.reshape(-1, b.shape[0]).T @ g2 if self.needs_grad[1] else None), ("backward", _strides(a), _strides(b)))
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        gy = gy.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))

        def grads():             # batch dims are summed here: a 1-d operand is not a broadcast of its 2-d form
            return (sum_to(gy @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape) if self.needs_grad[0] else None,
                    sum_to(xp.swapaxes(a2, -1, -2) @ gy, b2.shape).reshape(b.shape) if self.needs_grad[1] else None)
        if a.ndim == 2 and b.ndim == 2:
            return blas_threads.gemm(a.shape[0], b.shape[1], a.shape[1], xp, grads, ("backward", _strides(a), _strides(b)))
        return grads()


def matmul(a, b):
    """Matrix product with NumPy's rules (the operator `@`).

    1-D operands are vectors (a dot product, a matrix-vector product); from 3 axes on, the leading
    axes are batch axes that broadcast. `Linear` computes `x @ W` with `W` of shape (in, out).

    Args:
        a: a Tensor or array of at least 1 axis, shape (..., n, k) or (k,).
        b: a Tensor or array of at least 1 axis, shape (..., k, m) or (k,).

    Returns:
        Tensor: shape (..., n, m), without the vector axes of 1-D operands.

    Raises:
        ValueError: a 0-d operand (use `mul`), or inner sizes that do not match (from the op, naming
            both shapes).
    """
    return MatMul.apply(*_pair(a, b))
