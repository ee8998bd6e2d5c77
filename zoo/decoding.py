"""Choosing the next ids from decoder scores: greedy, sampled (temperature, top-k, top-p) and beam
search, all batched. These helpers work on arrays and on the two decoding hooks of `Seq2seqModel`
(`decode_start`, `decode_step`); they never loop over examples in Python.
"""
from __future__ import annotations

import numpy as np

import tinygrad_s2s as tg


def log_softmax(logits) -> np.ndarray:
    """(R, V) scores (a Tensor or an array) -> float64 log-probabilities (R, V) on the host."""
    z = (logits.numpy() if isinstance(logits, tg.Tensor) else np.asarray(logits)).astype(np.float64)
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
        return (logits.numpy() if isinstance(logits, tg.Tensor) else np.asarray(logits)).argmax(axis=1)
    scores = logits.numpy() if isinstance(logits, tg.Tensor) else logits
    cdf = np.cumsum(sampling_probs(scores, temperature, top_k, top_p), axis=1)
    cdf /= cdf[:, -1:]                                        # exactly 1 at the end, whatever the round-off
    u = tg.random.generator().random((len(cdf), 1))
    # inverse-CDF draw, one uniform in [0, 1) per row: the first id whose cumulative mass exceeds u,
    # so an id of probability 0 is never drawn
    return (cdf <= u).sum(axis=1)


def gather_rows(tree, index):
    """Every Tensor (or NumPy array) in a nested tuple/list/dict of decoder state, indexed by `index`
    along its first (batch) axis: one gather per array; anything else (None, ints) is kept."""
    if isinstance(tree, tg.Tensor):
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


def beam_search(model, xs: np.ndarray, start_id: int, length: int, beam: int, nbest: int, end_id, alpha: float):
    """Batched beam search over all N x beam hypotheses of one chunk; see `Seq2seqModel.beam_search`.
    Returns ids (N, nbest, length), scores (N, nbest) and the attention (N, length, T) of the best
    hypothesis (None for a model that does not attend)."""
    n, B = len(xs), beam
    where = f"{type(model).__name__}.decode_step"
    memory, state = model.decode_start(xs)
    expand = np.repeat(np.arange(n), B)                        # each question's state copied per hypothesis
    memory, state = gather_rows(memory, expand), gather_rows(state, expand)
    raw = np.zeros((n, B))
    raw[:, 1:] = -np.inf                                       # step 0 expands the first copy only
    done = np.zeros((n, B), dtype=bool)
    size = np.full((n, B), length)                             # |Y|: up to and including end_id
    ids = np.full((n * B, 1), int(start_id), dtype=np.int64)
    tokens, parents, attention = [], [], []
    base = (np.arange(n) * B)[:, None]
    for j in range(length):
        logits, state, att = split_step(model.decode_step(ids, memory, state), where)
        logp = log_softmax(logits).reshape(n, B, -1)
        V = logp.shape[2]
        if end_id is not None and end_id >= V:
            raise ValueError(f"end_id {end_id} is not an id of this model's {V}-id vocabulary")
        if end_id is not None:                                 # an ended hypothesis only repeats end_id, at no cost
            logp[done] = -np.inf
            logp[done, end_id] = 0.0
        cand = (raw[:, :, None] + logp).reshape(n, B * V)
        # live hypotheses all have length j + 1 here; ended ones keep the length they ended at
        lp = gnmt_penalty(np.where(done, size, j + 1), alpha)
        rank = cand / np.repeat(lp, V, axis=1)
        top = np.argsort(-rank, axis=1, kind="stable")[:, :B]  # ties: lower hypothesis, then lower id
        parent, tok = top // V, top % V
        raw = np.take_along_axis(cand, top, axis=1)
        was_done = np.take_along_axis(done, parent, axis=1)
        size = np.where(was_done, np.take_along_axis(size, parent, axis=1), length)
        if end_id is not None:
            ends_now = ~was_done & (tok == end_id)
            size = np.where(ends_now, j + 1, size)
            done = was_done | ends_now
        rows = (base + parent).reshape(-1)
        tokens.append(tok)
        parents.append(parent)
        if att is not None:
            a = att.numpy() if isinstance(att, tg.Tensor) else np.asarray(att)
            attention.append(a.reshape(n, B, -1))
        ids = tok.reshape(-1, 1).astype(np.int64)
        if j + 1 < length:
            state = gather_rows(state, rows)
    score = raw / gnmt_penalty(size, alpha)
    order = np.argsort(-score, axis=1, kind="stable")[:, :nbest]
    out = np.zeros((n, nbest, length), dtype=np.int64)
    best_att = np.zeros((n, length, attention[0].shape[2])) if attention else None
    cur = order
    for j in range(length - 1, -1, -1):                        # follow the back-pointers
        out[:, :, j] = np.take_along_axis(tokens[j], cur, axis=1)
        cur = np.take_along_axis(parents[j], cur, axis=1)
        if attention:
            best_att[:, j] = attention[j][np.arange(n), cur[:, 0]]
    return out, np.take_along_axis(score, order, axis=1), best_att
