"""An LSTM layer unrolled over time for a batch of sequences (the book's TimeLSTM)."""
from __future__ import annotations

import numpy as np

from ..fused import lstm_sequence, lstm_sequence_reference
from ..tensor import describe
from .layers import _randn
from .module import Module, Parameter


class LSTM(Module):
    """(N, T, D) -> hs (N, T, H). After a call, `self.h` and `self.c` hold the last states.

    The initial state is, in order: the `h0`/`c0` arguments, the state given by `set_state`, or zeros.
    With `stateful=True` each call also carries its last state (detached) into the next call, as the
    book's decoder does while generating one character at a time. `fused=False` builds every step from
    primitives (slower; every gate shows in graph drawings).
    """

    def __init__(self, input_size: int, hidden_size: int, stateful: bool = False, fused: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.stateful, self.fused = stateful, fused
        self.Wx = Parameter(_randn(input_size, 4 * hidden_size, scale=1 / np.sqrt(input_size)))
        self.Wh = Parameter(_randn(hidden_size, 4 * hidden_size, scale=1 / np.sqrt(hidden_size)))
        self.b = Parameter(np.zeros(4 * hidden_size))
        self.h = self.c = None
        self._h0 = self._c0 = None

    def set_state(self, h, c=None) -> None:
        """Start the next call(s) from h (and c; zeros when None)."""
        self._h0, self._c0 = h, c

    def reset_state(self) -> None:
        self._h0 = self._c0 = None
        self.h = self.c = None

    def forward(self, xs, h0=None, c0=None):
        if xs.ndim != 3 or xs.shape[2] != self.input_size:
            raise ValueError(describe("lstm", f"expected input (N, T, {self.input_size}), got {xs.shape}",
                                      [xs.shape]))
        N, T, _ = xs.shape
        H = self.hidden_size
        h = h0 if h0 is not None else self._h0
        c = c0 if c0 is not None else self._c0
        for name, s in (("h", h), ("c", c)):   # None: a zero start state
            if s is not None and s.shape != (N, H):
                raise ValueError(describe("lstm", f"state {name} has shape {s.shape}, expected {(N, H)}",
                                          [xs.shape, s.shape]))
        layer = lstm_sequence if self.fused else lstm_sequence_reference
        hs, h, c = layer(xs, self.Wx, self.b, h, c, self.Wh)
        self.h, self.c = h, c
        if self.stateful:
            self._h0, self._c0 = h.detach(), c.detach()
        return hs

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, stateful={self.stateful}"
