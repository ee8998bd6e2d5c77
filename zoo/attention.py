"""`attention`: the book's seq2seq with attention (ch. 8). The encoder keeps every hidden state; at
each decoder step the attention weights over them give a context vector, which is concatenated with
the decoder's h before the Affine layer."""
from __future__ import annotations

import tinygrad_s2s as tg
from tinygrad_s2s import nn

from .attention_layers import Attention
from .common import Encoder, Seq2seqModel


class AttentionDecoder(nn.Module):
    """Embedding -> LSTM -> Attention over the encoder states -> concat(c, h) -> Linear.
    ids (N, L), encoder states hs (N, T, H), start state h (N, H) -> logits (N, L, V)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, fused: bool = True):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = nn.LSTM(wordvec_size, hidden_size)
        self.attention = Attention(fused=fused)
        self.affine = nn.Linear(hidden_size + hidden_size, vocab_size)

    def forward(self, ids, enc_hs, h, c=None):
        dec_hs = self.lstm(self.embed(ids), h0=h, c0=c)
        context = self.attention(enc_hs, dec_hs)
        return self.affine(tg.concat([context, dec_hs], axis=2))


@tg.register_model("attention")
class AttentionSeq2seq(Seq2seqModel):
    """Attention seq2seq (Deep Learning from Scratch 2, section 8.2). `fused=False` computes the
    attention step by step from repeat/sum/softmax (the book's TimeAttention); the default batches
    the same dot products over all decoder steps. `attention_weights` is (N, L, T) after each call."""
    records_attention = True

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, fused: bool = True):
        super().__init__(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size,
                         fused=bool(fused))
        self.encoder = Encoder(vocab_size, wordvec_size, hidden_size)
        self.decoder = AttentionDecoder(vocab_size, wordvec_size, hidden_size, fused=fused)

    def logits(self, xs, ts_in):
        enc_hs, h = self.encoder(xs)
        out = self.decoder(ts_in, enc_hs, h)
        self._attention = self.decoder.attention.last_weights
        return out

    def decode_start(self, xs):
        enc_hs, h = self.encoder(xs)
        return enc_hs, (h, None)

    def decode_step(self, ids, enc_hs, state):
        logits = self.decoder(ids, enc_hs, *state)
        return logits[:, 0], (self.decoder.lstm.h, self.decoder.lstm.c), self.decoder.attention.last_weights
