"""`deep_lstm`: a small GNMT-style model (Wu et al., 2016). Stacked LSTMs on both sides with residual
connections from the second layer on, a bidirectional first encoder layer, and the book's attention
on top of the decoder stack.

Simplifications of GNMT, for a character task on a CPU: the two directions of the first encoder layer
are summed (so every layer has width H and the residuals line up from layer 2), each decoder layer
starts from the final state of the encoder layer at the same depth, and attention is read from the
top decoder layer (as in the book's attention model) rather than fed to every layer.
"""
from __future__ import annotations

import tinygrad_s2s as tg
from tinygrad_s2s import nn

from tinygrad_s2s.models import Seq2seqModel

from .attention import Attention


class DeepEncoder(nn.Module):
    """Embedding -> bidirectional LSTM (directions summed) -> (layers - 1) residual LSTMs.
    Returns the top states (N, T, H) and each layer's final (h, c); the first layer's are its
    forward direction's."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, layers: int, dropout: float):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(wordvec_size, hidden_size, bidirectional=True)
        self.layers = nn.ModuleList(nn.LSTM(hidden_size, hidden_size) for _ in range(layers - 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, xs):
        H = self.hidden_size
        both = self.lstm(self.embed(xs))             # (N, T, 2H): forward states, then backward ones
        x = both[:, :, :H] + both[:, :, H:]
        states = [(self.lstm.h[:, :H], self.lstm.c[:, :H])]
        for lstm in self.layers:
            x = x + lstm(self.dropout(x))
            states.append((lstm.h, lstm.c))
        return x, states


class DeepDecoder(nn.Module):
    """Embedding -> `layers` LSTMs (residual from layer 2) -> Attention -> concat(c, h) -> Linear.
    ids (N, L), encoder states (N, T, H) and one (h, c) per layer -> logits (N, L, V); afterwards
    `states` holds each layer's last (h, c) to continue from."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, layers: int, dropout: float,
                 fused: bool):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.layers = nn.ModuleList([nn.LSTM(wordvec_size, hidden_size)] +
                                    [nn.LSTM(hidden_size, hidden_size) for _ in range(layers - 1)])
        self.attention = Attention(fused=fused)
        self.dropout = nn.Dropout(dropout)
        self.affine = nn.Linear(hidden_size + hidden_size, vocab_size)
        self.states = None

    def forward(self, ids, enc_hs, states):
        x = self.embed(ids)
        new_states = []
        for i, (lstm, (h, c)) in enumerate(zip(self.layers, states)):
            y = lstm(x if i == 0 else self.dropout(x), h0=h, c0=c)
            x = y if i == 0 else x + y
            new_states.append((lstm.h, lstm.c))
        self.states = new_states
        context = self.attention(enc_hs, x)
        return self.affine(self.dropout(tg.concat([context, x], axis=2)))


@tg.register_model("deep_lstm")
class DeepLSTMSeq2seq(Seq2seqModel):
    """GNMT-style deep LSTM seq2seq with attention: `layers` encoder and `layers` decoder LSTMs
    (default 4 + 4), residual connections from layer 2 on, a bidirectional first encoder layer.
    `dropout` applies between layers and before the output layer while training; `fused` as in the
    attention model. `attention_weights` is (N, L, T) after each call."""
    records_attention = True

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, layers: int = 4,
                 dropout: float = 0.0, fused: bool = True):
        if int(layers) != layers or layers < 1:
            raise ValueError(f"deep_lstm: layers must be a positive int, got {layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"deep_lstm: dropout must be in [0, 1), got {dropout!r}")
        super().__init__(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size,
                         layers=int(layers), dropout=float(dropout), fused=bool(fused))
        self.encoder = DeepEncoder(vocab_size, wordvec_size, hidden_size, int(layers), dropout)
        self.decoder = DeepDecoder(vocab_size, wordvec_size, hidden_size, int(layers), dropout, fused)

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Also loads checkpoints saved before the first encoder layer became one bidirectional LSTM,
        when its directions were `encoder.lstm_fwd` and `encoder.lstm_bwd` (same weights, renamed)."""
        renamed = {}
        for name, value in state.items():
            for old, suffix in (("encoder.lstm_fwd.", ""), ("encoder.lstm_bwd.", "_reverse")):
                if name.startswith(old):
                    name = "encoder.lstm." + name[len(old):] + suffix
            renamed[name] = value
        super().load_state_dict(renamed, strict)

    def logits(self, xs, ts_in):
        enc_hs, states = self.encoder(xs)
        out = self.decoder(ts_in, enc_hs, states)
        self._attention = self.decoder.attention.last_weights
        return out

    def decode_start(self, xs):
        return self.encoder(xs)

    def decode_step(self, ids, enc_hs, states):
        logits = self.decoder(ids, enc_hs, states)
        return logits[:, 0], self.decoder.states, self.decoder.attention.last_weights
