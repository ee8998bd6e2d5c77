"""The GRU layer (the book's appendix C, gates z, r, h~) over a batch of sequences, and its single
step GRUCell; the same conventions as nn.LSTM (see `Recurrent` for `bidirectional`)."""
from __future__ import annotations

from .. import ops
from ..ops.gru import gru_sequence, gru_sequence_reference
from ..autograd import describe
from .lstm import Recurrent, gate_weights
from .module import Module


class GRU(Recurrent):
    """(N, T, D) -> hs (N, T, H), or (N, T, 2H) with `bidirectional=True`. After a call, `self.h`
    holds the last state. The initial state is the `h0` argument, the state given by `set_state`, or
    zeros; `stateful=True` carries the last state (detached) into the next call. One fused
    `gru_sequence` node per layer and direction; `fused=False` builds every step from primitives."""
    gates, state_names = 3, ("h",)

    def set_state(self, h) -> None:
        """Start the next call(s) from h."""
        self._start = {"h": h}

    def _layer(self, xs, starts, suffix):
        layer = gru_sequence if self.fused else gru_sequence_reference
        Wx, b, Wh = (getattr(self, n + suffix) for n in ("Wx", "b", "Wh"))
        return layer(xs, Wx, b, starts[0], Wh)

    def forward(self, xs, h0=None):
        return self._run(xs, h=h0)


class GRUCell(Module):
    """One GRU step (the weights and gate order of `GRU`): x (N, D), h (N, H) or None for zeros -> h'."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        gate_weights(self, input_size, hidden_size, 3)

    def forward(self, x, h=None):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(describe("grucell", f"expected input (N, {self.input_size}), got {x.shape}", [x.shape]))
        hs, h = gru_sequence(ops.reshape(x, (x.shape[0], 1, self.input_size)), self.Wx, self.b, h, self.Wh)
        return h

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"
