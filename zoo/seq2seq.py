"""`seq2seq`: the book's plain encoder-decoder (ch. 7). The encoder's last hidden state h starts the
decoder's LSTM; the decoder then reads the answer one character at a time and scores the next one."""
from __future__ import annotations

import tinygrad_s2s as tg
from tinygrad_s2s import nn

from tinygrad_s2s.models import Seq2seqModel


class Encoder(nn.Module):
    """The book's encoder: Embedding -> LSTM over the question. Returns every hidden state (N, T, H)
    and the last one (N, H)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(wordvec_size, hidden_size)

    def forward(self, xs):
        hs = self.lstm(self.embed(xs))
        return hs, self.lstm.h


class Decoder(nn.Module):
    """Embedding -> LSTM (started from the encoder's h) -> Linear: ids (N, L) -> logits (N, L, V).
    After a call, `lstm.h` / `lstm.c` hold the state to continue from."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(wordvec_size, hidden_size)
        self.affine = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, h, c=None):
        return self.affine(self.lstm(self.embed(ids), h0=h, c0=c))


@tg.register_model("seq2seq")
class Seq2seq(Seq2seqModel):
    """LSTM encoder -> last h -> LSTM decoder -> Affine (Deep Learning from Scratch 2, section 7.3).
    A subclass swaps the decoder by setting `decoder_class` (peeky does)."""
    decoder_class = Decoder

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128):
        super().__init__(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size)
        self.encoder = Encoder(vocab_size, wordvec_size, hidden_size)
        self.decoder = self.decoder_class(vocab_size, wordvec_size, hidden_size)

    def logits(self, xs, ts_in):
        _, h = self.encoder(xs)
        return self.decoder(ts_in, h)

    def decode_start(self, xs):
        _, h = self.encoder(xs)
        return None, (h, None)

    def decode_step(self, ids, memory, state):
        logits = self.decoder(ids, *state)
        return logits[:, 0], (self.decoder.lstm.h, self.decoder.lstm.c)
