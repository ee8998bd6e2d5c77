"""Stateless-ish layers built from primitives: Embedding, Linear, Dropout, LayerNorm."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..backend.random import generator
from ..tensor import Tensor
from ..autograd import describe
from .module import Module, Parameter


def _randn(*shape, scale=1.0):
    return generator().standard_normal(shape) * scale


class Embedding(Module):
    """Rows of a (vocab_size, dim) table looked up by integer ids: (N, T) -> (N, T, dim).
    Rows start as normal noise of standard deviation `init_std` (the book's 0.01 by default)."""

    def __init__(self, vocab_size: int, dim: int, init_std: float = 0.01):
        super().__init__()
        self.vocab_size, self.dim = vocab_size, dim
        self.weight = Parameter(_randn(vocab_size, dim, scale=init_std))

    def forward(self, ids):
        arr = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        if arr.dtype.kind not in "iu":
            raise TypeError(describe("embedding", f"ids must be integers, got dtype {arr.dtype}",
                                     [arr.shape]))
        if arr.size:   # ids come from a vocabulary: a negative one is a data bug, never a row from the end
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(describe("embedding", f"token id {lo if lo < 0 else hi} is out of range "
                                          f"for vocab_size {self.vocab_size} (ids must lie in "
                                          f"[0, {self.vocab_size}))", [arr.shape]))
        return ops.getitem(self.weight, arr)

    def extra_repr(self):
        return f"{self.vocab_size}, {self.dim}"


class Linear(Module):
    """x @ W + b with W of shape (in_features, out_features), as in the book's Affine layer."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_randn(in_features, out_features, scale=1 / np.sqrt(in_features)))
        self.bias = Parameter(np.zeros(out_features)) if bias else None

    def forward(self, x):
        y = ops.matmul(x, self.weight)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Dropout(Module):
    """Drops activations with probability p while training; identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return ops.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class LayerNorm(Module):
    """Normalise the last dim to zero mean and unit variance, then scale and shift."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim))
        self.bias = Parameter(np.zeros(dim))

    def forward(self, x):
        xc = x - ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(xc * xc, axis=-1, keepdims=True)
        return xc / ops.sqrt(var + self.eps) * self.weight + self.bias

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"
