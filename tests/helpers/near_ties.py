"""The premise of an exact-answer comparison with another library: two implementations whose logits
agree within `tol` must pick the same greedy token wherever our best token leads the runner-up by more
than 2 * tol. Where it does not (a near-tie), another library's kernels may round to the other token,
and that is no error; those rows are left out of the exact comparison, and said so."""
from __future__ import annotations

import numpy as np

import tinygrad_s2s as tg


def _fed(ids: np.ndarray, start_id: int) -> np.ndarray:
    """The decoder's inputs that produce `ids` step by step: the start id, then each id but the last."""
    return np.concatenate([np.full((len(ids), 1), start_id, ids.dtype), ids[:, :-1]], axis=1)


def decisive_rows(model, xs, start_id: int, length: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Our greedy ids (n, length), and per row whether every step's best logit leads by more than 2 * tol
    (the logits taken along our own greedy path, as decoding feeds them)."""
    with tg.no_grad():
        ids = np.asarray(model.generate(xs, start_id, length))
        logits = np.asarray(model.logits(xs, _fed(ids, start_id)).numpy(), dtype=np.float64)
    top = np.sort(logits, axis=-1)[..., -2:]
    return ids, np.all(top[..., 1] - top[..., 0] > 2 * tol, axis=1)


def assert_same_answers(ours: np.ndarray, theirs: np.ndarray, decisive: np.ndarray, what: str) -> None:
    """Rows where our decoding is decisive are equal; at least half the rows must be decisive, so the
    check never becomes vacuous."""
    assert decisive.mean() >= 0.5, f"{what}: only {decisive.sum()} of {len(decisive)} rows without a near-tie"
    np.testing.assert_array_equal(np.asarray(theirs)[decisive], np.asarray(ours)[decisive], err_msg=what)


def sequence_scores(model, xs, start_id: int, ids) -> np.ndarray:
    """Our model's log-likelihood of answering each question with `ids` (n, length): the score beam search
    gives a hypothesis (no length penalty), so another library's best beam can be scored by ours."""
    ids = np.asarray(ids)
    with tg.no_grad():
        logits = np.asarray(model.logits(xs, _fed(ids, start_id)).numpy(), dtype=np.float64)
    top = logits.max(axis=-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return np.take_along_axis(logp, ids[..., None], axis=-1)[..., 0].sum(axis=1)
