"""Choosing the next ids from decoder scores: greedy, sampled (temperature, top-k, top-p) and beam
search, all batched. These helpers work on arrays and on the two decoding hooks of `Seq2seqModel`
(`decode_start`, `decode_step`); they never loop over examples in Python.
"""
from __future__ import annotations

import numpy as np

from ..backend import random
from ..tensor import Tensor


def log_softmax(logits) -> np.ndarray:
    """(R, V) scores (a Tensor or an array) -> float64 log-probabilities (R, V) on the host."""
    z = (logits.numpy() if isinstance(logits, Tensor) else np.asarray(logits)).astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sampling_probs(logits, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> np.ndarray:
    """(R, V) scores -> (R, V) float64 probabilities to draw the next id from: softmax(logits /
    temperature), then (as HuggingFace orders them) only the `top_k` most likely ids kept (ties go to
    the lower id, as argmax breaks them, so top_k=1 is greedy), then only the smallest set of most
    likely ids whose probability reaches `top_p`; the kept probabilities are renormalised."""
    p = np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))
    if top_k is None and top_p is None:
        return p
    order = np.argsort(-p, axis=1, kind="stable")            # most likely first, ties by lower id
    ranked = np.take_along_axis(p, order, axis=1)
    keep = np.ones_like(ranked, dtype=bool)
    if top_k is not None:
        keep[:, top_k:] = False
    if top_p is not None:
        before = np.cumsum(ranked, axis=1) - ranked           # mass of the more likely ids
        keep &= before < top_p * ranked.sum(axis=1, keepdims=True)
    kept = np.zeros_like(p)
    np.put_along_axis(kept, order, np.where(keep, ranked, 0.0), axis=1)
    return kept / kept.sum(axis=1, keepdims=True)


def pick_next(logits, sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
              top_p: float | None = None) -> np.ndarray:
    """(N, V) logits -> (N,) ids: the argmax, or a draw from `sampling_probs` using the global
    generator (so `tg.manual_seed` fixes the draws)."""
    if not sample:
        return (logits.numpy() if isinstance(logits, Tensor) else np.asarray(logits)).argmax(axis=1)
    scores = logits.numpy() if isinstance(logits, Tensor) else logits
    cdf = np.cumsum(sampling_probs(scores, temperature, top_k, top_p), axis=1)
    cdf /= cdf[:, -1:]                                        # exactly 1 at the end, whatever the round-off
    u = random.generator().random((len(cdf), 1))
    # inverse-CDF draw, one uniform in [0, 1) per row: the first id whose cumulative mass exceeds u,
    # so an id of probability 0 is never drawn
    return (cdf <= u).sum(axis=1)


def gather_rows(tree, index):
    """Every Tensor (or NumPy array) in a nested tuple/list/dict of decoder state, indexed by `index`
    along its first (batch) axis: one gather per array; anything else (None, ints) is kept."""
    if isinstance(tree, Tensor):
        return tree[index]
    if isinstance(tree, np.ndarray):
        return tree[index]
    if isinstance(tree, (tuple, list)):
        items = [gather_rows(t, index) for t in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)   # namedtuples too
    if isinstance(tree, dict):
        return {k: gather_rows(v, index) for k, v in tree.items()}
    return tree


def gnmt_penalty(length, alpha: float):
    """GNMT's length penalty ((5 + |Y|) / 6) ** alpha (Wu et al., 2016); 1 for alpha = 0."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


def split_step(result, where: str):
    """A `decode_step` result -> (logits, state, attention or None), or a clear contract error."""
    if isinstance(result, tuple) and len(result) in (2, 3):
        return result if len(result) == 3 else (*result, None)
    raise TypeError(f"{where}: decode_step must return (logits, state) or (logits, state, attention); "
                    f"got {type(result).__name__}")


class Beams:
    """The B hypotheses of each of N questions: their summed log-probabilities `raw` (N, B), which
    have ended at end_id (`done`) and their lengths |Y| (`size`, up to and including end_id)."""

    def __init__(self, n: int, beam: int, length: int, end_id, alpha: float):
        self.raw = np.zeros((n, beam))
        self.raw[:, 1:] = -np.inf                  # step 0 extends the first copy only
        self.done = np.zeros((n, beam), dtype=bool)
        self.size = np.full((n, beam), length)
        self.length, self.end_id, self.alpha = length, end_id, alpha

    def extend(self, logp: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Keep the B best of every hypothesis + id at step j from logp (N, B, V): returns the kept
        ones' parent hypotheses and ids, both (N, B)."""
        n, B, V = logp.shape
        end_id = self.end_id
        if end_id is not None:
            if end_id >= V:
                raise ValueError(f"end_id {end_id} is not an id of this model's {V}-id vocabulary")
            logp[self.done] = -np.inf                  # an ended hypothesis only repeats end_id, at no cost
            logp[self.done, end_id] = 0.0
        cand = (self.raw[:, :, None] + logp).reshape(n, B * V)
        # live hypotheses all have length j + 1 here; ended ones keep the length they ended at
        lp = gnmt_penalty(np.where(self.done, self.size, j + 1), self.alpha)
        top = np.argsort(-(cand / np.repeat(lp, V, axis=1)), axis=1, kind="stable")[:, :B]   # ties: lower first
        parent, tok = top // V, top % V
        self.raw = np.take_along_axis(cand, top, axis=1)
        was_done = np.take_along_axis(self.done, parent, axis=1)
        self.size = np.where(was_done, np.take_along_axis(self.size, parent, axis=1), self.length)
        if end_id is not None:
            ends_now = ~was_done & (tok == end_id)
            self.size = np.where(ends_now, j + 1, self.size)
            self.done = was_done | ends_now
        return parent, tok

    def scores(self) -> np.ndarray:
        """(N, B) final scores: summed log-probabilities over GNMT's length penalty."""
        return self.raw / gnmt_penalty(self.size, self.alpha)


def backtrack(tokens, parents, attention, order):
    """Follow the back-pointers of each step's kept (parent, id) from the final hypotheses `order`
    (N, K): ids (N, K, L), and the attention (N, L, T) of each question's first one (None without)."""
    n, L = len(order), len(tokens)
    out = np.zeros((n, order.shape[1], L), dtype=np.int64)
    best = np.zeros((n, L, attention[0].shape[2])) if attention else None
    cur = order
    for j in range(L - 1, -1, -1):
        out[:, :, j] = np.take_along_axis(tokens[j], cur, axis=1)
        cur = np.take_along_axis(parents[j], cur, axis=1)
        if attention:                               # step j's attention was computed by the parent
            best[:, j] = attention[j][np.arange(n), cur[:, 0]]
    return out, best


def beam_search(model, xs: np.ndarray, start_id: int, length: int, beam: int, nbest: int, end_id, alpha: float):
    """Batched beam search over all N x beam hypotheses of one chunk; see `Seq2seqModel.beam_search`.
    Returns ids (N, nbest, length), scores (N, nbest) and the attention (N, length, T) of the best
    hypothesis (None for a model that does not attend)."""
    n, B = len(xs), beam
    where = f"{type(model).__name__}.decode_step"
    memory, state = model.decode_start(xs)
    expand = np.repeat(np.arange(n), B)              # each question's memory and state, once per hypothesis
    memory, state = gather_rows(memory, expand), gather_rows(state, expand)
    beams = Beams(n, B, length, end_id, alpha)
    ids = np.full((n * B, 1), int(start_id), dtype=np.int64)
    tokens, parents, attention = [], [], []
    for j in range(length):
        logits, state, att = split_step(model.decode_step(ids, memory, state), where)
        parent, tok = beams.extend(log_softmax(logits).reshape(n, B, -1), j)
        tokens.append(tok)
        parents.append(parent)
        if att is not None:
            attention.append((att.numpy() if isinstance(att, Tensor) else np.asarray(att)).reshape(n, B, -1))
        ids = tok.reshape(-1, 1).astype(np.int64)
        if j + 1 < length:                           # the one gather of the step (per state array)
            state = gather_rows(state, (np.arange(n)[:, None] * B + parent).reshape(-1))
    score = beams.scores()
    order = np.argsort(-score, axis=1, kind="stable")[:, :nbest]
    out, best_attention = backtrack(tokens, parents, attention, order)
    return out, np.take_along_axis(score, order, axis=1), best_attention
