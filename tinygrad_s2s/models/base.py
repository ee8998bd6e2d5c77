"""What every model plugin shares: checking the id arrays it is given, and `Seq2seqModel`, the base class that turns a model's decoder logits into the registry's contract
(`model(xs, ts)` is the loss; `generate` and `beam_search` decode, see `decoding.py`).

Plugins, the zoo's and outside ones alike, subclass `tinygrad_s2s.models.Seq2seqModel`.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..ops import concat, softmax_cross_entropy
from ..tensor import Tensor
from . import decoding


def as_ids(x, what: str) -> np.ndarray:
    """A 2-D integer id array from a NumPy array, a list or a Tensor; anything else is a clear error.

    Args:
        x: the ids.
        what: their name in an error message (`"xs"`, `"ts"`).

    Returns:
        numpy.ndarray: the ids, (N, T), of their integer dtype.

    Raises:
        TypeError: the ids are not integers.
        ValueError: the array is not 2-D.
    """
    arr = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer token ids, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (batch, time) array of ids, got shape {arr.shape}")
    return arr


def check_pair(xs, ts) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (questions, answers) batch for the loss.

    Args:
        xs: the questions, (N, T) integer ids (an array, list or Tensor).
        ts: the answers, (N, 1+L) integer ids with the start marker first, L >= 1.

    Returns:
        tuple[numpy.ndarray, numpy.ndarray]: `(xs, ts)` as id arrays.

    Raises:
        TypeError: ids that are not integers.
        ValueError: not 2-D, `ts` without an answer after the start marker, another number of rows
            in `xs` and `ts`, or `xs` without a time step.
    """
    xs, ts = as_ids(xs, "xs"), as_ids(ts, "ts")
    if ts.shape[1] < 2:
        raise ValueError(f"ts must be (N, 1+L) with the start marker first and L >= 1, got shape {ts.shape}")
    if xs.shape[0] != ts.shape[0]:
        raise ValueError(f"xs has {xs.shape[0]} rows but ts has {ts.shape[0]}: one answer per question")
    if xs.shape[1] < 1:
        raise ValueError(f"xs must hold at least one time step, got shape {xs.shape}")
    return xs, ts


DECODE_CHUNK = 256
"""Decoder rows advanced together by `generate` and `beam_search` (questions x beam): larger batches
are decoded in chunks of this many rows, whose per-step arrays stay in the CPU cache (seq2seq, 5,000
questions: 139 ms in chunks of 256 against 172 ms in one batch; chunks of 128 to 1,024 are all within
noise of each other)."""


def _check_decode_args(length, sample, temperature, top_k, top_p, beam):
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    if not isinstance(beam, (int, np.integer)) or beam < 1:
        raise ValueError(f"beam must be a positive int, got {beam!r}")
    if sample and not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if (top_k is not None or top_p is not None) and not sample:
        raise ValueError("top_k and top_p filter sampling: pass sample=True with them")
    if sample and beam > 1:
        raise ValueError("sample=True draws one answer; it cannot be combined with beam > 1")


def check_finite_parameters(model, where: str) -> None:
    """A parameter holding NaN or Inf (a diverged run) makes every decoded answer meaningless: argmax
    of NaN scores is id 0 and beam scores are NaN, silently. Say so, naming the parameter."""
    for name, p in model.named_parameters():
        data = p.numpy()
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            bad = int((~np.isfinite(data)).sum())
            raise FloatingPointError(f"{where}: the model holds NaN or Inf in parameter '{name}' ({bad} of "
                                     f"{data.size} values); its answers would be meaningless (did "
                                     "training diverge?)")


class Seq2seqModel(nn.Module):
    """Base class of the zoo's models: the loss and batched decoding built from three hooks.

    A subclass defines
      * `logits(xs, ts_in)`: (N, L, V) scores of every decoder step under teacher forcing;
      * `decode_start(xs)`: encodes xs once and returns `(memory, state)`: `memory` holds what stays
        fixed while decoding (encoder states), `state` what each step updates. Both are Tensors or
        nested tuples/lists/dicts of Tensors whose first axis is the batch (None and ints allowed);
      * `decode_step(ids, memory, state)`: feeds the (N, 1) ids of one step and returns
        `(logits (N, V), new_state)`, or `(logits, new_state, attention (N, 1, T))`.
    Beam search copies memory and state once per hypothesis and reorders the state rows after each
    step, so the hooks must not keep decoding state anywhere else.
    Models that attend set `records_attention = True`; they store their weights of the last call in
    `self._attention` (a Tensor (N, L, T)), readable as the numpy array `attention_weights`.

    Args:
        **config: the constructor's JSON-able keyword arguments, kept as `self.config` so that a
            checkpoint rebuilds the same model.
    """
    records_attention = False

    def __init__(self, **config):
        super().__init__()
        self.config = dict(config)      # JSON-able constructor kwargs: a checkpoint rebuilds the model
        self._attention = None

    @property
    def attention_weights(self):
        """Attention weights (N, L, T_src) of the last forward or decode (for beam search, of the best
        hypothesis), as a numpy array (None for a model without attention, or before the first call)."""
        return None if self._attention is None else self._attention.numpy()

    def logits(self, xs, ts_in):  # pragma: no cover - abstract
        """The scores of every decoder step under teacher forcing (a hook: subclasses define it).

        Args:
            xs: the questions, (N, T) integer ids (an array, list or Tensor).
            ts_in: the decoder's inputs, (N, L): the answers without their last id (start marker first).

        Returns:
            Tensor: (N, L, V) unnormalised scores over the V-id vocabulary.
        """
        raise NotImplementedError(f"{type(self).__name__} must define logits(xs, ts_in)")

    def decode_start(self, xs):  # pragma: no cover - abstract
        """Encode the questions once before decoding (a hook: subclasses define it).

        Args:
            xs: the questions, (N, T) integer ids (an array, list or Tensor).

        Returns:
            tuple: `(memory, state)`: what stays fixed while decoding (encoder states) and what each step
                updates; Tensors or nested tuples/lists/dicts of them whose first axis is the batch.
        """
        raise NotImplementedError(f"{type(self).__name__} must define decode_start(xs) -> (memory, state) "
                                  "and decode_step(ids, memory, state) to decode")

    def decode_step(self, ids, memory, state):  # pragma: no cover - abstract
        """One decoding step (a hook: subclasses define it).

        Args:
            ids: the (N, 1) ids fed in at this step.
            memory: `decode_start`'s memory, unchanged (rows reordered by beam search).
            state: the previous step's state.

        Returns:
            tuple: `(logits (N, V), new_state)`, or `(logits, new_state, attention (N, 1, T))`.
        """
        raise NotImplementedError(f"{type(self).__name__} must define decode_step(ids, memory, state)")

    def forward(self, xs, ts):
        """The mean softmax cross-entropy over every decoder step: read `ts[:, :-1]`, predict `ts[:, 1:]`.

        Args:
            xs: the questions, (N, T) integer ids (an array, list or Tensor).
            ts: the answers, (N, 1+L) integer ids with the start marker first.

        Returns:
            Tensor: the 0-d mean loss.

        Raises:
            TypeError: ids that are not integers.
            ValueError: shapes that do not fit (see `check_pair`).
        """
        xs, ts = check_pair(xs, ts)
        return softmax_cross_entropy(self.logits(xs, ts[:, :-1]), ts[:, 1:])

    def generate(self, xs, start_id: int, length: int, *, sample: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, beam: int = 1) -> np.ndarray:
        """Decode all N questions at once, starting from `start_id` and feeding each chosen id back.

        Greedy by default; `sample=True` draws from `softmax(logits / temperature)`, restricted to the
        `top_k` most likely ids and/or the smallest set reaching probability `top_p`; `beam > 1` returns
        the best hypothesis of `beam_search`. Runs under `no_grad`, in chunks of `DECODE_CHUNK` rows.

        Args:
            xs: the questions, (N, T) integer ids (an array, list or Tensor).
            start_id: the id of the start marker (`vocab.start_id`).
            length: how many ids to decode (the answer width).
            sample: draw instead of taking the argmax.
            temperature: divides the logits before sampling; > 0.
            top_k: sample among the k most likely ids only.
            top_p: sample among the smallest set of ids whose probability reaches p, in (0, 1].
            beam: the beam width; 1 (the default) is greedy or sampled decoding.

        Returns:
            numpy.ndarray: (N, length) int64 ids.

        Raises:
            ValueError: a bad length, beam, temperature, top_k or top_p, top_k/top_p without `sample`,
                or `sample` with `beam > 1`.
            FloatingPointError: the model holds NaN or Inf (did training diverge?).
        """
        xs = as_ids(xs, "xs")
        _check_decode_args(length, sample, temperature, top_k, top_p, beam)
        if beam > 1:
            return self.beam_search(xs, start_id, length, beam=beam)[0][:, 0]
        check_finite_parameters(self, f"{type(self).__name__}.generate")
        out, weights = [], []
        for i in range(0, max(len(xs), 1), DECODE_CHUNK):
            out.append(self._decode_chunk(xs[i:i + DECODE_CHUNK], start_id, length, sample, temperature,
                                          top_k, top_p))
            weights.append(self._attention)
        if self.records_attention:
            self._attention = concat(weights, axis=0) if len(weights) > 1 else weights[0]
        return np.concatenate(out)

    def _decode_chunk(self, xs, start_id, length, sample, temperature, top_k, top_p):
        n = len(xs)
        out = np.zeros((n, length), dtype=np.int64)
        attention = []
        where = f"{type(self).__name__}.decode_step"
        with no_grad():
            memory, state = self.decode_start(xs)
            ids = np.full((n, 1), int(start_id), dtype=np.int64)
            for j in range(length):
                logits, state, weights = decoding.split_step(self.decode_step(ids, memory, state), where)
                if weights is not None:
                    attention.append(weights)
                out[:, j] = decoding.pick_next(logits, sample, temperature, top_k, top_p)
                ids = out[:, j:j + 1]
            if self.records_attention:
                self._attention = (concat(attention, axis=1) if attention
                                   else Tensor(np.zeros((n, 0, xs.shape[1]))))
        return out

    def beam_search(self, xs, start_id: int, length: int, beam: int = 5, nbest: int = 1, end_id: int | None = None,
                    length_penalty: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Beam search: the `beam` best hypotheses of each question are extended by every id, the `beam` best kept.

        A score is the sum of the chosen ids' log-probabilities divided by GNMT's length penalty
        `((5 + |Y|) / 6) ** length_penalty` (1 when `length_penalty=0`). With `end_id`, a hypothesis ends
        at its first `end_id` (|Y| counts it; the positions after it repeat `end_id` and add nothing);
        without, |Y| = length. Where fewer than `nbest` distinct answers exist, the missing ones score
        -inf. All N x beam hypotheses advance as one batch (in chunks of `DECODE_CHUNK` rows).
        `attention_weights` then holds the best hypothesis' attention.

        Args:
            xs: the questions, (N, T) integer ids (an array, list or Tensor).
            start_id: the id of the start marker.
            length: how many ids to decode.
            beam: the beam width; default 5.
            nbest: how many hypotheses to return per question, in [1, beam].
            end_id: an id that ends a hypothesis, or None.
            length_penalty: GNMT's alpha, >= 0; 0 (the default) compares plain sums.

        Returns:
            tuple[numpy.ndarray, numpy.ndarray]: `(ids (N, nbest, length) int64, scores (N, nbest) float64)`,
                best first.

        Raises:
            ValueError: a bad length, beam, nbest, end_id or length_penalty.
        """
        xs = as_ids(xs, "xs")
        _check_decode_args(length, False, 1.0, None, None, beam)
        if not isinstance(nbest, (int, np.integer)) or not 1 <= nbest <= beam:
            raise ValueError(f"nbest must be an int in [1, beam={beam}], got {nbest!r}")
        if end_id is not None and (not isinstance(end_id, (int, np.integer)) or end_id < 0):
            raise ValueError(f"end_id must be a non-negative int id or None, got {end_id!r}")
        if not length_penalty >= 0:
            raise ValueError(f"length_penalty must be >= 0, got {length_penalty!r}")
        check_finite_parameters(self, f"{type(self).__name__}.beam_search")
        step = max(1, DECODE_CHUNK // beam)
        ids = [np.zeros((0, nbest, length), dtype=np.int64)]     # an empty batch decodes to nothing
        scores, weights = [np.zeros((0, nbest))], [np.zeros((0, length, xs.shape[1]))]
        with no_grad():
            for i in range(0, len(xs), step):
                part = xs[i:i + step]
                out, score, att = decoding.beam_search(self, part, start_id, length, beam, nbest, end_id,
                                                       float(length_penalty))
                ids.append(out)
                scores.append(score)
                weights.append(att if att is not None else np.zeros((len(part), length, xs.shape[1])))
        if self.records_attention:
            self._attention = Tensor(np.concatenate(weights))
        return np.concatenate(ids), np.concatenate(scores)
