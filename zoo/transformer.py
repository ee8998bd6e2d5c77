"""`transformer`: a minimal encoder-decoder Transformer (Vaswani et al., 2017) sized for a CPU.

Token embedding + sinusoidal positions, multi-head scaled dot-product attention (causal in the
decoder's self-attention), cross-attention to the encoder, a position-wise feed-forward block, and
residual connections around LayerNorm'd sub-layers. The norm sits before each sub-layer ("pre-LN",
with a final LayerNorm per stack): it trains at the book's fixed Adam learning rate without warm-up.
"""
from __future__ import annotations

import math

import numpy as np

import tinygrad_s2s as tg
from tinygrad_s2s import nn

from tinygrad_s2s.models import Seq2seqModel


def sinusoid_table(max_len: int, dim: int) -> np.ndarray:
    """(max_len, dim) positional encodings: sin on even features, cos on odd ones, wavelengths from
    2*pi to 10000*2*pi."""
    pos = np.arange(max_len)[:, None]
    freq = np.exp(-math.log(10000.0) * (np.arange(0, dim, 2) / dim))
    table = np.zeros((max_len, dim))
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq[: dim // 2])
    return table


class TokenEmbedding(nn.Module):
    """ids (N, L) -> (N, L, d_model): embedding (projected from wordvec_size to d_model when they
    differ), scaled by sqrt(d_model), plus fixed sinusoidal positions (a buffer, not trained).
    The table starts at standard deviation 1/sqrt(d_model), so scaled tokens start with unit
    variance, as large as the positions: with the book's 0.01 the tokens were a tenth of the
    positions and training on addition stalled for its first epochs."""

    def __init__(self, vocab_size: int, wordvec_size: int, d_model: int, max_len: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size, init_std=1 / math.sqrt(d_model))
        self.proj = nn.Linear(wordvec_size, d_model, bias=False) if wordvec_size != d_model else None
        self.scale = math.sqrt(d_model)
        self.max_len = max_len
        self.register_buffer("positions", sinusoid_table(max_len, d_model))   # takes the default dtype

    def forward(self, ids, offset: int = 0):
        """`offset` is the position of the first id (decoding one step at a time)."""
        end = offset + ids.shape[1]
        if end > self.max_len:
            raise ValueError(f"transformer: a sequence of {end} tokens is longer than max_len={self.max_len}; "
                             "build the model with a larger max_len")
        x = self.embed(ids)
        if self.proj is not None:
            x = self.proj(x)
        return x * self.scale + self.positions[offset:end]


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention in `heads` heads of d_model // heads features each.
    Queries (N, Lq, d), keys/values (N, Lk, d) and an optional boolean mask (Lq, Lk) (False = do not
    attend) -> (N, Lq, d). `last_weights` keeps the weights (N, heads, Lq, Lk) of the last call.
    `keys_values` and `attend` are the two halves of `forward`, so decoding can project the keys and
    values of each position once and reuse them."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.last_weights = None

    def _split(self, x):
        """(N, L, d) -> (N, heads, L, d // heads)."""
        N, L, d = x.shape
        return tg.transpose(tg.reshape(x, (N, L, self.heads, d // self.heads)), (0, 2, 1, 3))

    def keys_values(self, xkv):
        """Keys and values of (N, Lk, d), split into heads: two (N, heads, Lk, d // heads)."""
        return self._split(self.key(xkv)), self._split(self.value(xkv))

    def attend(self, xq, k, v, mask=None):
        N, Lq, d = xq.shape
        q = self._split(self.query(xq))
        scores = tg.matmul(q, tg.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(d // self.heads))
        if mask is not None:
            scores = tg.where(mask, scores, -1e9)     # exp(-1e9 - max) is exactly 0 after softmax
        a = tg.softmax(scores, axis=-1)
        self.last_weights = a.detach()
        return self.out(tg.reshape(tg.transpose(tg.matmul(a, v), (0, 2, 1, 3)), (N, Lq, d)))

    def forward(self, xq, xkv, mask=None):
        return self.attend(xq, *self.keys_values(xkv), mask)


class FeedForward(nn.Module):
    """Position-wise Linear -> ReLU -> Linear."""

    def __init__(self, d_model: int, ff: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, ff)
        self.fc2 = nn.Linear(ff, d_model)

    def forward(self, x):
        return self.fc2(tg.relu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """x + SelfAttention(LN(x)), then x + FeedForward(LN(x))."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, heads)
        self.norm2, self.ff = nn.LayerNorm(d_model), FeedForward(d_model, ff)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.dropout(self.self_attn(y, y))
        return x + self.dropout(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """x + causal SelfAttention(LN(x)), x + CrossAttention(LN(x), memory), x + FeedForward(LN(x))."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, heads)
        self.norm2, self.cross_attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, heads)
        self.norm3, self.ff = nn.LayerNorm(d_model), FeedForward(d_model, ff)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, memory, causal):
        y = self.norm1(x)
        x = x + self.dropout(self.self_attn(y, y, causal))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory))
        return x + self.dropout(self.ff(self.norm3(x)))

    def step(self, x, memory_kv, cache):
        """One new position x (N, 1, d) given the cross-attention keys/values of the memory and the
        self-attention keys/values (N, heads, j, d // heads) of the j earlier positions in `cache`
        (None for none): returns the output and the cache with this position added. The causal
        mask is implicit, since only earlier positions are cached."""
        y = self.norm1(x)
        keys, values = self.self_attn.keys_values(y)
        if cache is not None:
            keys, values = tg.concat([cache[0], keys], axis=2), tg.concat([cache[1], values], axis=2)
        x = x + self.dropout(self.self_attn.attend(y, keys, values))
        x = x + self.dropout(self.cross_attn.attend(self.norm2(x), *memory_kv))
        return x + self.dropout(self.ff(self.norm3(x))), (keys, values)


class TransformerEncoder(nn.Module):
    """Token embedding + positions -> `layers` EncoderLayers -> LayerNorm: ids (N, T) -> (N, T, d)."""

    def __init__(self, vocab_size, wordvec_size, d_model, heads, layers, ff, dropout, max_len):
        super().__init__()
        self.embed = TokenEmbedding(vocab_size, wordvec_size, d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, xs):
        x = self.dropout(self.embed(xs))
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class TransformerDecoder(nn.Module):
    """Token embedding + positions -> `layers` DecoderLayers -> LayerNorm -> Linear:
    ids (N, L) and the encoder's memory (N, T, d) -> logits (N, L, V). Step j sees steps <= j only."""

    def __init__(self, vocab_size, wordvec_size, d_model, heads, layers, ff, dropout, max_len):
        super().__init__()
        self.embed = TokenEmbedding(vocab_size, wordvec_size, d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(DecoderLayer(d_model, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.affine = nn.Linear(d_model, vocab_size)

    def forward(self, ids, memory):
        L = ids.shape[1]
        causal = np.tril(np.ones((L, L), dtype=bool))
        x = self.dropout(self.embed(ids))
        for layer in self.layers:
            x = layer(x, memory, causal)
        return self.affine(self.norm(x))

    def start(self, memory):
        """Decoding memory and state for `step`: each layer's cross-attention keys/values of the
        memory (computed once), and a state of no cached positions yet."""
        return ([layer.cross_attn.keys_values(memory) for layer in self.layers],
                {"caches": [None] * len(self.layers), "position": 0})

    def step(self, ids, memory_kv, state):
        """Logits (N, 1, V) of one new position ids (N, 1) and the state continuing `state`; the same
        values `forward` gives at that position."""
        x = self.dropout(self.embed(ids, offset=state["position"]))
        caches = []
        for layer, kv, cache in zip(self.layers, memory_kv, state["caches"]):
            x, cache = layer.step(x, kv, cache)
            caches.append(cache)
        return self.affine(self.norm(x)), {"caches": caches, "position": state["position"] + ids.shape[1]}

    def cross_attention(self):
        """Cross-attention weights of the top layer, averaged over heads: (N, L, T)."""
        return tg.mean(self.layers[-1].cross_attn.last_weights, axis=1)


@tg.register_model("transformer")
class Transformer(Seq2seqModel):
    """Minimal encoder-decoder Transformer. `hidden_size` is d_model; `heads` must divide it;
    `layers` encoder and `layers` decoder layers; `ff` is the feed-forward width (default
    2 * hidden_size); `dropout` applies to embeddings and sub-layer outputs while training;
    `max_len` bounds the sequence length. `attention_weights` holds the top decoder layer's
    cross-attention averaged over heads, (N, L, T)."""
    records_attention = True

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, heads: int = 4,
                 layers: int = 2, ff: int | None = None, dropout: float = 0.0, max_len: int = 256):
        ff = 2 * hidden_size if ff is None else ff
        for name, v in (("heads", heads), ("layers", layers), ("ff", ff), ("max_len", max_len)):
            if int(v) != v or v < 1:
                raise ValueError(f"transformer: {name} must be a positive int, got {v!r}")
        if hidden_size % heads:
            raise ValueError(f"transformer: hidden_size (d_model) {hidden_size} is not divisible by "
                             f"heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"transformer: dropout must be in [0, 1), got {dropout!r}")
        super().__init__(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size,
                         heads=int(heads), layers=int(layers), ff=int(ff), dropout=float(dropout),
                         max_len=int(max_len))
        args = (vocab_size, wordvec_size, hidden_size, int(heads), int(layers), int(ff), dropout, int(max_len))
        self.encoder = TransformerEncoder(*args)
        self.decoder = TransformerDecoder(*args)

    def logits(self, xs, ts_in):
        out = self.decoder(ts_in, self.encoder(xs))
        self._attention = self.decoder.cross_attention()
        return out

    def decode_start(self, xs):
        return self.decoder.start(self.encoder(xs))

    def decode_step(self, ids, memory_kv, state):
        logits, state = self.decoder.step(ids, memory_kv, state)
        return logits[:, 0], state, self.decoder.cross_attention()
