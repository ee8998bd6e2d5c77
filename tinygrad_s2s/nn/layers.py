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

    Args:
        vocab_size: the number of rows (ids are in `[0, vocab_size)`).
        dim: the size of each row (the book's D).
        init_std: the standard deviation of the rows' normal start values; default 0.01 (the book's).
    """

    def __init__(self, vocab_size: int, dim: int, init_std: float = 0.01):
        super().__init__()
        self.vocab_size, self.dim = vocab_size, dim
        self.weight = Parameter(_randn(vocab_size, dim, scale=init_std))

    def forward(self, ids):
        """Look up each id's row.

        Args:
            ids: integer ids of any shape (an array, list or Tensor), each in `[0, vocab_size)`.

        Returns:
            Tensor: shape `ids.shape + (dim,)`; the table's gradient adds up repeated ids.

        Raises:
            TypeError: the ids are not integers.
            ValueError: an id is negative or not below `vocab_size` (never a row from the end).
        """
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
    """`x @ W + b` with `W` of shape (in_features, out_features), as the book's Affine layer.

    PyTorch's `nn.Linear` keeps (out, in) and computes `x @ W.T`: transpose a PyTorch weight to load
    it. `W` starts as normal noise scaled by `1/sqrt(in_features)`, `b` as zeros.

    Args:
        in_features: the size of the input's last axis.
        out_features: the size of the output's last axis.
        bias: add a bias `b` of shape (out_features,); default True.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_randn(in_features, out_features, scale=1 / np.sqrt(in_features)))
        self.bias = Parameter(np.zeros(out_features)) if bias else None

    def forward(self, x):
        """Apply the layer to the last axis.

        Args:
            x: a Tensor of shape (..., in_features).

        Returns:
            Tensor: of shape (..., out_features).
        """
        y = ops.matmul(x, self.weight)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Dropout(Module):
    """Drops activations with probability `p` while training (inverted dropout); identity in eval mode.

    Args:
        p: the probability of zeroing each element, in [0, 1); default 0.5.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        """`ops.dropout(x, p, training=self.training)`.

        Args:
            x: a Tensor.

        Returns:
            Tensor: of `x`'s shape; `x` itself in eval mode.
        """
        return ops.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class LayerNorm(Module):
    """Normalise the last axis to zero mean and unit variance, then scale by `weight` and shift by `bias`.

    Args:
        dim: the size of the last axis; `weight` (ones) and `bias` (zeros) have this shape.
        eps: added to the variance before the square root; default 1e-5 (PyTorch's).
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim))
        self.bias = Parameter(np.zeros(dim))

    def forward(self, x):
        """Normalise `x` over its last axis (the biased variance, as PyTorch's).

        Args:
            x: a Tensor of shape (..., dim).

        Returns:
            Tensor: of `x`'s shape.
        """
        xc = x - ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(xc * xc, axis=-1, keepdims=True)
        return xc / ops.sqrt(var + self.eps) * self.weight + self.bias

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"
