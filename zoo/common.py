"""What every zoo model shares: checking the id arrays it is given, the book's LSTM encoder, the
choice of the next character (greedy or sampled), and `Seq2seqModel`, the base class that turns a
model's decoder logits into the registry's contract (`model(xs, ts)` is the loss, `generate` decodes).

Only `tinygrad_s2s`'s public API is used here, as in any outside plugin.
"""
from __future__ import annotations

import numpy as np

import tinygrad_s2s as tg
from tinygrad_s2s import nn


def as_ids(x, what: str) -> np.ndarray:
    """A 2-D integer id array from a numpy array, a list or a Tensor; anything else is a clear error."""
    arr = x.numpy() if isinstance(x, tg.Tensor) else np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer token ids, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (batch, time) array of ids, got shape {arr.shape}")
    return arr


def check_pair(xs, ts) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (questions, answers) batch: ts carries the start marker first, so it needs at
    least two columns, and both hold the same number of rows."""
    xs, ts = as_ids(xs, "xs"), as_ids(ts, "ts")
    if ts.shape[1] < 2:
        raise ValueError(f"ts must be (N, 1+L) with the start marker first and L >= 1, got shape {ts.shape}")
    if xs.shape[0] != ts.shape[0]:
        raise ValueError(f"xs has {xs.shape[0]} rows but ts has {ts.shape[0]}: one answer per question")
    if xs.shape[1] < 1:
        raise ValueError(f"xs must hold at least one time step, got shape {xs.shape}")
    return xs, ts


def pick_next(logits, sample: bool = False, temperature: float = 1.0) -> np.ndarray:
    """(N, V) logits -> (N,) ids: the argmax, or a draw from softmax(logits / temperature) using the
    global generator (so `tg.manual_seed` fixes the draws)."""
    scores = logits.numpy().astype(np.float64)
    if not sample:
        return scores.argmax(axis=1)
    z = scores / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    u = tg.random.generator().random((len(p), 1))
    # inverse-CDF draw, one uniform per row; the clip guards against round-off at the top end
    return np.minimum((p.cumsum(axis=1) < u).sum(axis=1), p.shape[1] - 1)


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


DECODE_CHUNK = 256
"""Rows decoded together by `generate`: larger batches are decoded in chunks of this size, whose
per-step arrays stay in the CPU cache (seq2seq, 5,000 questions: 139 ms in chunks of 256 against
172 ms in one batch; chunks of 128 to 1,024 are all within noise of each other)."""


class Seq2seqModel(nn.Module):
    """Base class of the zoo's models: the loss and batched decoding built from two hooks.

    A subclass defines
      * `logits(xs, ts_in)`: (N, L, V) scores of every decoder step under teacher forcing, and
      * `decoder_steps(xs)`: encodes xs once and returns `step(ids)`, which feeds the (N, 1) ids of
        one decoder step and returns (N, V) logits, or (logits, attention) with attention (N, 1, T).
    Models that attend set `records_attention = True`; they store their weights of the last call in
    `self._attention` (a Tensor (N, L, T)), readable as the numpy array `attention_weights`.
    """
    records_attention = False

    def __init__(self, **config):
        super().__init__()
        self.config = dict(config)      # JSON-able constructor kwargs: a checkpoint rebuilds the model
        self._attention = None

    @property
    def attention_weights(self):
        """Attention weights (N, L, T_src) of the last forward or generate, as a numpy array
        (None for a model without attention, or before the first call)."""
        return None if self._attention is None else self._attention.numpy()

    def logits(self, xs, ts_in):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define logits(xs, ts_in)")

    def decoder_steps(self, xs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define decoder_steps(xs)")

    def forward(self, xs, ts):
        """Mean softmax cross-entropy over every decoder step: read ts[:, :-1], predict ts[:, 1:]."""
        xs, ts = check_pair(xs, ts)
        return tg.softmax_cross_entropy(self.logits(xs, ts[:, :-1]), ts[:, 1:])

    def generate(self, xs, start_id: int, length: int, sample: bool = False,
                 temperature: float = 1.0) -> np.ndarray:
        """Decode all N questions at once, starting from `start_id` and feeding each chosen id back:
        returns (N, length) ids. `sample=True` draws from softmax(logits / temperature)."""
        xs = as_ids(xs, "xs")
        if not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        if sample and not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if len(xs) > DECODE_CHUNK:   # a step's working set of a few hundred rows stays in the CPU cache
            parts, weights = [], []
            for i in range(0, len(xs), DECODE_CHUNK):
                parts.append(self.generate(xs[i:i + DECODE_CHUNK], start_id, length, sample, temperature))
                weights.append(self._attention)
            if self.records_attention:
                self._attention = tg.concat(weights, axis=0)
            return np.concatenate(parts)
        n = len(xs)
        out = np.zeros((n, length), dtype=np.int64)
        attention = []
        with tg.no_grad():
            step = self.decoder_steps(xs)
            ids = np.full((n, 1), int(start_id), dtype=np.int64)
            for j in range(length):
                res = step(ids)
                logits, weights = res if isinstance(res, tuple) else (res, None)
                if weights is not None:
                    attention.append(weights)
                out[:, j] = pick_next(logits, sample, temperature)
                ids = out[:, j:j + 1]
            if self.records_attention:
                self._attention = (tg.concat(attention, axis=1) if attention
                                   else tg.Tensor(np.zeros((n, 0, xs.shape[1]))))
        return out
