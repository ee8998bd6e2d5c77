"""Recurrent layers unrolled over time for a batch of sequences: LSTM (the book's TimeLSTM) and its
single step LSTMCell. The GRU twins are in gru.py; `bidirectional` works the same way in both."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..ops.lstm import _zero_state, lstm_cell, lstm_sequence, lstm_sequence_reference
from ..autograd import describe
from .layers import _randn
from .module import Module, Parameter


def gate_weights(module, input_size: int, hidden_size: int, gates: int, suffix: str = "") -> None:
    """Wx (D, gates*H), Wh (H, gates*H) and b (gates*H,) as Parameters named with `suffix`, scaled
    by 1/sqrt(fan-in) as the book does."""
    setattr(module, "Wx" + suffix, Parameter(_randn(input_size, gates * hidden_size, scale=1 / np.sqrt(input_size))))
    setattr(module, "Wh" + suffix, Parameter(_randn(hidden_size, gates * hidden_size,
                                                    scale=1 / np.sqrt(hidden_size))))
    setattr(module, "b" + suffix, Parameter(np.zeros(gates * hidden_size)))


class Recurrent(Module):
    """What LSTM and GRU share: the weights (`Wx`, `Wh`, `b`, and with `bidirectional=True` a second
    set `Wx_reverse`, `Wh_reverse`, `b_reverse` that reads the sequence right to left), the input
    and state checks, the start state, and running both directions.

    Bidirectional layers return (N, T, 2H): at each position the forward direction's state, then the
    backward direction's (which has read the sequence from its end down to that position). Their
    states `h` (and `c`) are (N, 2H): the forward direction's last state, then the backward one's
    (its state after reading position 0); start states given to them are (N, 2H) in the same order.
    """
    gates = 0          # 4 for the LSTM, 3 for the GRU
    state_names = ()   # ("h", "c") or ("h",)

    def __init__(self, input_size: int, hidden_size: int, stateful: bool = False, fused: bool = True,
                 bidirectional: bool = False):
        super().__init__()
        if stateful and bidirectional:
            raise ValueError(f"{type(self).__name__.lower()}: stateful=True carries the state into the next "
                             "call, which a right-to-left direction cannot continue; use one or the other")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.stateful, self.fused, self.bidirectional = stateful, fused, bool(bidirectional)
        gate_weights(self, input_size, hidden_size, self.gates)
        if self.bidirectional:
            gate_weights(self, input_size, hidden_size, self.gates, "_reverse")
        self.reset_state()

    def reset_state(self) -> None:
        """Forget the state given by `set_state` and the one kept by `stateful`."""
        self._start = {name: None for name in self.state_names}
        for name in self.state_names:
            setattr(self, name, None)

    def _layer(self, xs, starts, suffix):  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self, xs, static=None, **given):
        op = type(self).__name__.lower()
        width_x = self.input_size
        extra = {}
        if static is not None:         # the first features of every step's input, the same at each step
            if static.ndim != 2 or xs.ndim != 3 or static.shape[0] != xs.shape[0] or not 0 < static.shape[1] < width_x:
                raise ValueError(describe(op, f"static input must be (N, S) with 0 < S < {width_x} and N that of "
                                          f"the input; got static {static.shape} beside input {xs.shape}",
                                          [xs.shape, static.shape]))
            width_x -= static.shape[1]
            extra["static"] = static
        if xs.ndim != 3 or xs.shape[2] != width_x:
            beside = f" beside static {static.shape}" if static is not None else ""
            raise ValueError(describe(op, f"expected input (N, T, {width_x}){beside}, got {xs.shape}", [xs.shape]))
        N, H = xs.shape[0], self.hidden_size
        width = 2 * H if self.bidirectional else H
        starts = []
        for name in self.state_names:   # None: a zero start state
            s = given[name] if given[name] is not None else self._start[name]
            if s is not None and s.shape != (N, width):
                raise ValueError(describe(op, f"state {name} has shape {s.shape}, expected {(N, width)}",
                                          [xs.shape, s.shape]))
            starts.append(s)
        if not self.bidirectional:
            hs, *last = self._layer(xs, starts, "", **extra)
        else:
            halves = [(None, None) if s is None else (s[:, :H], s[:, H:]) for s in starts]
            hs, *last = self._layer(xs, [f for f, _ in halves], "", **extra)
            hs_b, *last_b = self._layer(xs[:, ::-1], [b for _, b in halves], "_reverse", **extra)
            hs = ops.concat([hs, hs_b[:, ::-1]], axis=2)
            last = [ops.concat([f, b], axis=1) for f, b in zip(last, last_b)]
        for name, s in zip(self.state_names, last):
            setattr(self, name, s)
            if self.stateful:
                self._start[name] = s.detach()
        return hs

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, stateful={self.stateful}"
                + (", bidirectional=True" if self.bidirectional else ""))


class LSTM(Recurrent):
    """(N, T, D) -> hs (N, T, H), or (N, T, 2H) with `bidirectional=True` (see `Recurrent`).

    After a call, `self.h` and `self.c` hold the last states. The initial state is, in order: the
    `h0`/`c0` arguments, the state given by `set_state`, or zeros. With `stateful=True` each call also
    carries its last state (detached) into the next call, as the book's decoder does while generating
    one character at a time.

    Args:
        input_size: D, the features of each step's input.
        hidden_size: H, the size of the hidden state.
        stateful: carry each call's last state (detached) into the next call; default False.
        fused: run each layer and direction as one op (`lstm_sequence`; the default) instead of
            building every step from primitives (slower; every gate shows in graph drawings).
        bidirectional: add a second set of weights (`Wx_reverse`, ...) that reads right to left;
            the outputs and states are then 2H wide, forward half first.

    Raises:
        ValueError: `stateful` and `bidirectional` together.
    """
    gates, state_names = 4, ("h", "c")

    def set_state(self, h, c=None) -> None:
        """Start the next call(s) from these states (the encoder's last `h`, in the book's decoder).

        Args:
            h: the hidden state, (N, H) (or (N, 2H) bidirectional).
            c: the cell state of the same shape, or None for zeros.
        """
        self._start = {"h": h, "c": c}

    def _layer(self, xs, starts, suffix, static=None):
        layer = lstm_sequence if self.fused else lstm_sequence_reference
        Wx, b, Wh = (getattr(self, n + suffix) for n in ("Wx", "b", "Wh"))
        if static is not None and xs.shape[1] == 1:   # one step (decoding): the product is made once anyway
            xs = ops.concat([ops.expand_dims(static, 1), xs], axis=2)
        elif static is not None:
            S = static.shape[1]
            b = ops.matmul(static, Wx[:S]) + b     # (N, 4H)
            Wx = Wx[S:]
        return layer(xs, Wx, b, starts[0], starts[1], Wh)

    def forward(self, xs, h0=None, c0=None, static=None):
        """Run the layer over every time step.

        `static` (N, S), an input that is the same at every step (the peeky decoder's h), is read as the
        first S of the input_size features of every step, before `xs`: `lstm(xs, static=s)` computes
        `lstm(concat([repeat(s), xs], axis=2))`, but multiplies `s` by its rows of `Wx` once per sequence
        instead of once per step.

        Args:
            xs: the inputs, (N, T, input_size) (or (N, T, input_size - S) with `static`).
            h0: the start hidden state (N, H), or None (the `set_state` one, else zeros).
            c0: the start cell state (N, H), or None.
            static: None, or (N, S) features given to every step.

        Returns:
            Tensor: every step's hidden state, (N, T, H) ((N, T, 2H) bidirectional).
        """
        return self._run(xs, static=static, h=h0, c=c0)


class LSTMCell(Module):
    """One LSTM step with the weights and gate order of `LSTM`, for decoders that feed each output back in.

    Args:
        input_size: D, the features of the input.
        hidden_size: H, the size of the states.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        gate_weights(self, input_size, hidden_size, 4)

    def forward(self, x, h=None, c=None):
        """One step.

        Args:
            x: the input, (N, input_size).
            h: the hidden state (N, H), or None for zeros.
            c: the cell state (N, H), or None for zeros.

        Returns:
            tuple[Tensor, Tensor]: the new `(h, c)`, (N, H) each.

        Raises:
            ValueError: `x` is not (N, input_size).
        """
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(describe("lstmcell", f"expected input (N, {self.input_size}), got {x.shape}", [x.shape]))
        a = ops.matmul(x, self.Wx) + self.b
        if h is not None:
            a = a + ops.matmul(h, self.Wh)
        return lstm_cell(a, _zero_state(x, self.Wh) if c is None else c)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"
