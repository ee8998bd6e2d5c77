"""Losses: the fused, numerically stable softmax cross-entropy with an ignored index."""
from __future__ import annotations

import builtins

import numpy as np

from .. import backend
from ..autograd import Function, TensorBase, as_tensor, describe
from .base import _xp
from .elementwise import mul
from .indexing import getitem
from .reductions import log_softmax, sum
from .shape import reshape


class SoftmaxCrossEntropy(Function):
    """Fused: its backward runs on arrays; create_graph differentiates `reference` instead."""
    name = "softmax_cross_entropy"

    def forward(self, logits):
        xp = _xp(logits)
        t = self.targets
        if t.shape != logits.shape[:-1]:
            raise ValueError(f"targets of shape {t.shape} do not match logits {logits.shape}: "
                             f"expected {logits.shape[:-1]}")
        v = logits.shape[-1]
        x = logits.reshape(-1, v)
        t = t.reshape(-1)
        valid = xp.ones(t.shape, dtype=bool) if self.ignore_index is None else t != self.ignore_index
        tv = xp.where(valid, t, 0)
        if tv.size and (int(tv.min()) < 0 or int(tv.max()) >= v):
            bad = int(tv.min()) if int(tv.min()) < 0 else int(tv.max())
            raise ValueError(f"target id {bad} is out of range for {v} classes")
        z = x - x.max(axis=1, keepdims=True)
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = xp.arange(len(tv))
        logp = z[rows, tv] - xp.log(s[:, 0])
        self.count = builtins.max(int(valid.sum()), 1)
        self.p, self.tv, self.valid, self.rows = e / s, tv, valid, rows
        self.shape = logits.shape
        return (-(logp * valid).sum() / self.count).astype(logits.dtype)

    def onnx(self, g, logits):
        """ONNX: LogSoftmax of the (M, V) rows, the targets' entries picked by GatherElements, ignored
        ones masked out of the sum and of the count (at least 1, as the forward's)."""
        dt = g.dtype(logits)
        logp = g.op("LogSoftmax", g.op("Reshape", logits, g.ints([-1, self.shape[-1]])), axis=1)
        t = g.op("Reshape", g.array(self.targets), g.ints([-1, 1]))
        if self.ignore_index is None:
            valid = g.op("Cast", g.op("Equal", t, t), to=dt)
            picked = g.op("GatherElements", logp, t, axis=1)
        else:
            keep = g.op("Not", g.op("Equal", t, g.const(self.ignore_index, self.targets.dtype)))
            valid = g.op("Cast", keep, to=dt)
            picked = g.op("GatherElements", logp, g.op("Where", keep, t, g.const(0, self.targets.dtype)), axis=1)
        total = g.op("ReduceSum", g.op("Mul", picked, valid), keepdims=0)
        count = g.op("Max", g.op("ReduceSum", valid, keepdims=0), g.const(1, dt))
        return g.op("Neg", g.op("Div", total, count))

    def reference(self, logits):
        v = logits.shape[-1]
        logp = log_softmax(reshape(logits, (-1, v)), axis=-1)
        picked = getitem(logp, (self.rows, self.tv))
        return mul(sum(mul(picked, self.valid.astype(logits.dtype))), -1.0 / self.count)

    def backward(self, gy):
        g = self.p.copy()
        g[self.rows, self.tv] -= 1
        g *= (self.valid[:, None] * (gy / self.count)).astype(g.dtype)
        return g.reshape(self.shape)


def softmax_cross_entropy(logits, targets, ignore_index=None):
    """Mean cross-entropy of `softmax(logits)` against integer targets, fused and stable.

    The same as `-log_softmax(logits)[..., target]` averaged, in one op: its gradient is
    `(softmax(logits) - onehot(targets)) / count`, computed without forming either.

    Args:
        logits: a float Tensor of shape (..., V): unnormalised scores over V classes (a vocabulary).
        targets: integer class ids of shape (...) (an array, list or Tensor), each in `[0, V)`.
        ignore_index: a target value (the padding id) whose entries count neither in the sum nor in
            the mean's denominator; None counts every entry.

    Returns:
        Tensor: a 0-d tensor of `logits`' dtype (0 when every entry is ignored).

    Raises:
        TypeError: `targets` are not integers.
    """
    logits = as_tensor(logits)
    t = targets.data if isinstance(targets, TensorBase) else targets
    t = backend.to_device(np.asarray(t) if not hasattr(t, "dtype") else t, logits.device)
    if t.dtype.kind not in "iu":
        raise TypeError(describe("softmax_cross_entropy", f"targets must be integer ids, got {t.dtype}",
                                 [logits.shape, t.shape]))
    return SoftmaxCrossEntropy.apply(logits, targets=t, ignore_index=ignore_index)
