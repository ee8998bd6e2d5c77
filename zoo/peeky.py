"""`peeky`: the seq2seq whose decoder "peeks" at the encoder's summary h at every step (book
section 7.4.2): h is concatenated to each step's LSTM input and to the Affine layer's input."""
from __future__ import annotations

import tinygrad_s2s as tg
from tinygrad_s2s import nn

from .common import Encoder, Seq2seqModel


class PeekyDecoder(nn.Module):
    """Embedding -> concat(h, x) -> LSTM (started from h) -> concat(h, hs) -> Linear:
    ids (N, L) and the encoder's h (N, H) -> logits (N, L, V)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(hidden_size + wordvec_size, hidden_size)
        self.affine = nn.Linear(hidden_size + hidden_size, vocab_size)

    def forward(self, ids, h_enc, h=None, c=None):
        N, L = ids.shape
        H = h_enc.shape[1]
        # the LSTM reads concat(h, x) at every step: `static` makes h's product once per sequence
        hs = self.lstm(self.embed(ids), h0=h_enc if h is None else h, c0=c, static=h_enc)
        hr = tg.repeat(tg.reshape(h_enc, (N, 1, H)), L, axis=1)      # the same h beside every step
        return self.affine(tg.concat([hr, hs], axis=2))


@tg.register_model("peeky")
class PeekySeq2seq(Seq2seqModel):
    """LSTM encoder -> h, which starts the decoder and is fed to all its LSTM and Affine steps."""

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128):
        super().__init__(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size)
        self.encoder = Encoder(vocab_size, wordvec_size, hidden_size)
        self.decoder = PeekyDecoder(vocab_size, wordvec_size, hidden_size)

    def logits(self, xs, ts_in):
        _, h = self.encoder(xs)
        return self.decoder(ts_in, h)

    def decode_start(self, xs):
        _, h_enc = self.encoder(xs)
        return h_enc, (h_enc, None)

    def decode_step(self, ids, h_enc, state):
        logits = self.decoder(ids, h_enc, *state)
        return logits[:, 0], (self.decoder.lstm.h, self.decoder.lstm.c)
