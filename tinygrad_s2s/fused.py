"""Composite ops with a hand-written backward, for speed. Each has a reference built from primitives
(same name + `_reference`); the test suite checks the two agree in forward and gradients, and graph
drawings can use the reference to show every primitive."""
from __future__ import annotations

from . import backend, ops
from .tensor import Function, as_tensor


class LSTMCell(Function):
    """One LSTM step from its pre-activation a = x@Wx + h@Wh + b (gates in the book's order f, g, i, o)."""
    name = "lstm_cell"

    def forward(self, a, c_prev):
        n4 = a.shape[-1]
        if n4 % 4 or c_prev.shape[:-1] != a.shape[:-1] or c_prev.shape[-1] * 4 != n4:
            raise ValueError(f"pre-activation {a.shape} needs 4*H columns for cell state {c_prev.shape}")
        xp = backend.get_array_module(a)
        H = n4 // 4
        sig = xp.tanh(a * 0.5) * 0.5 + 0.5          # sigmoid of all four blocks in one pass
        f, i, o = sig[..., :H], sig[..., 2 * H:3 * H], sig[..., 3 * H:]
        g = xp.tanh(a[..., H:2 * H])
        c = f * c_prev + g * i
        tc = xp.tanh(c)
        self.saved = (f, g, i, o, c_prev, tc)
        return o * tc, c

    def backward(self, gh, gc):
        f, g, i, o, c_prev, tc = self.saved
        xp = backend.get_array_module(gh)
        ds = gc + gh * o * (1 - tc * tc)
        da = xp.concatenate((ds * c_prev * f * (1 - f),
                             ds * i * (1 - g * g),
                             ds * g * i * (1 - i),
                             gh * tc * o * (1 - o)), axis=-1)
        return da, ds * f


def lstm_cell(a, c_prev):
    """Fused LSTM step: returns (h, c)."""
    return LSTMCell.apply(as_tensor(a), as_tensor(c_prev))


def lstm_cell_reference(a, c_prev):
    """The same step from primitives: split, sigmoid, tanh, mul, add."""
    f, g, i, o = ops.split(a, 4, axis=-1)
    c = ops.sigmoid(f) * c_prev + ops.tanh(g) * ops.sigmoid(i)
    return ops.sigmoid(o) * ops.tanh(c), c
