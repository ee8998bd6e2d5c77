"""The GRU layer (the book's appendix C, gates z, r, h~) over a batch of sequences, and its single
step GRUCell; the same conventions as nn.LSTM (see `Recurrent` for `bidirectional`)."""
from __future__ import annotations

from .. import ops
from ..ops.gru import gru_sequence, gru_sequence_reference
from ..autograd import describe
from .lstm import Recurrent, gate_weights
from .module import Module


class GRU(Recurrent):
    """(N, T, D) -> hs (N, T, H), or (N, T, 2H) with `bidirectional=True` (see `Recurrent`).

    After a call, `self.h` holds the last state. The initial state is, in order: the `h0` argument,
    the state given by `set_state`, or zeros; `stateful=True` carries it into the next call, as `LSTM`.

    Args:
        input_size: D, the features of each step's input.
        hidden_size: H, the size of the hidden state.
        stateful: carry each call's last state (detached) into the next call; default False.
        fused: run each layer and direction as one op (`gru_sequence`; the default) instead of
            building every step from primitives (slower; every gate shows in graph drawings).
        bidirectional: add a second set of weights (`Wx_reverse`, ...) that reads right to left;
            the outputs and states are then 2H wide, forward half first.

    Raises:
        ValueError: `stateful` and `bidirectional` together.
    """
    gates, state_names = 3, ("h",)

    def set_state(self, h) -> None:
        """Start the next call(s) from this state.

        Args:
            h: the hidden state, (N, H) (or (N, 2H) bidirectional).
        """
        self._start = {"h": h}

    def _layer(self, xs, starts, suffix):
        layer = gru_sequence if self.fused else gru_sequence_reference
        Wx, b, Wh = (getattr(self, n + suffix) for n in ("Wx", "b", "Wh"))
        return layer(xs, Wx, b, starts[0], Wh)

    def forward(self, xs, h0=None):
        """Run the layer over every time step.

        Args:
            xs: the inputs, (N, T, input_size).
            h0: the start state (N, H), or None (the `set_state` one, else zeros).

        Returns:
            Tensor: every step's hidden state, (N, T, H) ((N, T, 2H) bidirectional).
        """
        return self._run(xs, h=h0)


class GRUCell(Module):
    """One GRU step with the weights and gate order of `GRU`.

    Args:
        input_size: D, the features of the input.
        hidden_size: H, the size of the state.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        gate_weights(self, input_size, hidden_size, 3)

    def forward(self, x, h=None):
        """One step.

        Args:
            x: the input, (N, input_size).
            h: the hidden state (N, H), or None for zeros.

        Returns:
            Tensor: the new hidden state, (N, H).

        Raises:
            ValueError: `x` is not (N, input_size).
        """
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(describe("grucell", f"expected input (N, {self.input_size}), got {x.shape}", [x.shape]))
        hs, h = gru_sequence(ops.reshape(x, (x.shape[0], 1, self.input_size)), self.Wx, self.b, h, self.Wh)
        return h

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"
