"""`gru_attention`: a GRU encoder-decoder with dot-product attention, written as an outside plugin.

It subclasses `tinygrad_s2s.models.Seq2seqModel`, so it defines only three hooks and gets the loss, greedy and
sampled decoding, beam search and attention recording from the base:

- `logits(xs, ts_in)`: (N, L, V) scores of every decoder step under teacher forcing;
- `decode_start(xs)` -> (memory, state): the encoder's states (fixed while decoding) and the
  decoder's start state;
- `decode_step(ids, memory, state)` -> (logits (N, V), new state, attention (N, 1, T)).
"""
from __future__ import annotations

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.models import Seq2seqModel


def attend(enc_hs, dec_hs):
    """Dot-product attention of decoder states (N, L, H) over encoder states (N, T, H):
    context vectors (N, L, H) and weights (N, L, T)."""
    weights = tg.softmax(tg.matmul(dec_hs, tg.transpose(enc_hs, (0, 2, 1))), axis=-1)
    return tg.matmul(weights, enc_hs), weights


@tg.register_model("gru_attention")
class GRUAttention(Seq2seqModel):
    """Embedding -> GRU encoder; Embedding -> GRU decoder started from the encoder's last state ->
    attention over the encoder's states -> Linear(concat(context, h)). `attention_weights` is
    (N, L, T) after each call."""
    records_attention = True

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128):
        # the base keeps these keyword arguments as `self.config`: a saved run rebuilds this model
        super().__init__(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size)
        self.enc_embed = nn.Embedding(vocab_size, wordvec_size)
        self.encoder = nn.GRU(wordvec_size, hidden_size)
        self.dec_embed = nn.Embedding(vocab_size, wordvec_size)
        self.decoder = nn.GRU(wordvec_size, hidden_size)
        self.affine = nn.Linear(2 * hidden_size, vocab_size)

    def _decode(self, ids, enc_hs, h):
        dec_hs = self.decoder(self.dec_embed(ids), h0=h)
        context, weights = attend(enc_hs, dec_hs)
        self._attention = weights.detach()
        return self.affine(tg.concat([context, dec_hs], axis=2)), self.decoder.h

    def logits(self, xs, ts_in):
        enc_hs = self.encoder(self.enc_embed(xs))
        return self._decode(ts_in, enc_hs, self.encoder.h)[0]

    def decode_start(self, xs):
        enc_hs = self.encoder(self.enc_embed(xs))
        return enc_hs, self.encoder.h

    def decode_step(self, ids, enc_hs, h):
        logits, h = self._decode(ids, enc_hs, h)
        return logits[:, 0], h, self._attention
