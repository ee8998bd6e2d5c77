"""`attention`: the book's seq2seq with attention (ch. 8). The encoder keeps every hidden state; at
each decoder step the attention weights over them give a context vector, which is concatenated with
the decoder's h before the Affine layer.

Its attention layers, as three modules: `AttentionWeight`, `WeightSum` and `Attention`,
which holds them as `weight` and `weight_sum`, so graph nodes record paths like
`decoder.attention.weight`.

One decoder state h (N, H) takes the book's route, from primitives only:
    a = softmax(sum(hs * repeat(h), axis=2))      (AttentionWeight)
    c = sum(hs * repeat(a), axis=1)               (WeightSum)
A whole decoder sequence (N, L, H) either repeats that per step (`fused=False`, the book's
TimeAttention) or computes the same dot products for all steps as batched matmuls (`fused=True`,
the default: fewer, larger ops). The tests check the two agree in values and gradients.
"""
from __future__ import annotations

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.models import Seq2seqModel

from .seq2seq import Encoder


class AttentionWeight(nn.Module):
    """Weights over the encoder states hs (N, T, H) for a decoder state h: (N, H) -> a (N, T),
    or for all steps at once: (N, L, H) -> a (N, L, T). Each row sums to 1."""

    def forward(self, hs, h):
        N, T, H = hs.shape
        if h.ndim == 2:
            hr = tg.repeat(tg.reshape(h, (N, 1, H)), T, axis=1)
            return tg.softmax(tg.sum(hs * hr, axis=2), axis=1)
        return tg.softmax(tg.matmul(h, tg.transpose(hs, (0, 2, 1))), axis=-1)


class WeightSum(nn.Module):
    """Context vectors: the encoder states hs (N, T, H) averaged with weights a (N, T) -> (N, H),
    or for all steps at once: a (N, L, T) -> (N, L, H)."""

    def forward(self, hs, a):
        N, T, H = hs.shape
        if a.ndim == 2:
            ar = tg.repeat(tg.reshape(a, (N, T, 1)), H, axis=2)
            return tg.sum(hs * ar, axis=1)
        return tg.matmul(a, hs)


class Attention(nn.Module):
    """Context vectors of decoder states h over encoder states hs (N, T, H).

    h (N, H) is one decoder step (returns (N, H)); h (N, L, H) is a whole decoder sequence (returns
    (N, L, H)). The weights of the last call are kept in `last_weights` ((N, T) or (N, L, T), no graph).
    """

    def __init__(self, fused: bool = True):
        super().__init__()
        self.fused = fused
        self.weight = AttentionWeight()
        self.weight_sum = WeightSum()
        self.last_weights = None

    def forward(self, hs, h):
        if hs.ndim != 3 or h.ndim not in (2, 3) or h.shape[0] != hs.shape[0] or h.shape[-1] != hs.shape[2]:
            raise ValueError(f"attention: encoder states must be (N, T, H) and decoder states (N, H) or "
                             f"(N, L, H) with the same N and H; got {hs.shape} and {h.shape}")
        if h.ndim == 2 or self.fused:
            a = self.weight(hs, h)
            c = self.weight_sum(hs, a)
        else:
            cs, weights = [], []
            for h_t in tg.unstack(h, axis=1):
                weights.append(self.weight(hs, h_t))
                cs.append(self.weight_sum(hs, weights[-1]))
            a, c = tg.stack(weights, axis=1), tg.stack(cs, axis=1)
        self.last_weights = a.detach()
        return c

    def extra_repr(self):
        return f"fused={self.fused}"


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
