"""Batched decoding and exact-match scoring of trained models, and the book's ☑/☒ printout.

Shared by the Trainer (test accuracy after each epoch), `load_run(...).predict` and the `eval` /
`predict` commands."""
from __future__ import annotations

import inspect
import sys

import numpy as np

from ..models.contract import ContractError, check_generated, describe_value
from ..data.datasets import unpad
from ..models.registry import registered_name

__all__ = ["beam_batched", "evaluate", "exact_match", "example_rows", "format_examples", "generate_batched",
           "shown"]


def generate_batched(model, x, start_id: int, length: int, batch_size: int = 1000, sample: bool = False,
                     temperature: float = 1.0, should_stop=None, **options) -> np.ndarray:
    """Decode every row of `x` with `model.generate`, `batch_size` rows at a time.

    Args:
        model: a Seq2seqModel (put in eval mode while decoding, then restored).
        x: the questions, (n, T) ids.
        start_id: the start marker's id.
        length: how many ids to decode per question.
        batch_size: rows decoded at a time.
        sample: draw instead of taking the argmax.
        temperature: divides the logits before sampling.
        should_stop: a callable asked before each batch; True stops (a pending Ctrl-C).
        **options: `beam=`, `top_k=`, `top_p=`, passed to `generate` when set.

    Returns:
        numpy.ndarray: (n, length) int64 ids.

    Raises:
        KeyboardInterrupt: `should_stop()` said so.
        ValueError: an option the model's `generate` does not take.
        ContractError: the model's answer breaks the plugin contract (shape, dtype).
    """
    options = {k: v for k, v in options.items() if v is not None and not (k == "beam" and v == 1)}
    _check_decoding_options(model, options)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        out = []
        for i in range(0, len(x), batch_size):
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            kw = {"sample": True, "temperature": temperature} if sample else {}
            part = x[i:i + batch_size]
            out.append(check_generated(model.generate(part, start_id, length, **kw, **options), len(part),
                                       length, _name(model)))
        return np.concatenate(out) if out else np.zeros((0, length), dtype=np.int64)
    finally:
        if was_training:
            model.train()


def _name(model) -> str:
    return registered_name(model) or type(model).__name__


def _check_decoding_options(model, options) -> None:
    if not options:
        return
    params = inspect.signature(model.generate).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    missing = [k for k in options if k not in params]
    if missing:
        raise ValueError(f"model '{_name(model)}': its generate takes no {', '.join(missing)}; models built on "
                         "tinygrad_s2s.models.Seq2seqModel decode with beam search, top-k and top-p (see the README, "
                         "'Writing a model plugin')")


def beam_batched(model, x, start_id: int, length: int, beam: int = 5, nbest: int = 1, batch_size: int = 1000,
                 **options) -> tuple[np.ndarray, np.ndarray]:
    """`model.beam_search` over every row of `x`, `batch_size` rows at a time.

    Args:
        model: a Seq2seqModel.
        x: the questions, (n, T) ids.
        start_id: the start marker's id.
        length: how many ids to decode per question.
        beam: the beam width.
        nbest: hypotheses returned per question, in [1, beam].
        batch_size: rows decoded at a time.
        **options: `end_id=`, `length_penalty=` (see `Seq2seqModel.beam_search`).

    Returns:
        tuple[numpy.ndarray, numpy.ndarray]: ids (n, nbest, length) and scores (n, nbest), best first.

    Raises:
        ValueError: the model has no `beam_search` (subclass Seq2seqModel).
        ContractError: its answer breaks the plugin contract.
    """
    if not callable(getattr(model, "beam_search", None)):
        raise ValueError(f"model '{_name(model)}' has no beam_search: subclass tinygrad_s2s.models.Seq2seqModel and "
                         "define decode_start/decode_step (see the README, 'Writing a model plugin')")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        ids, scores = [np.zeros((0, nbest, length), dtype=np.int64)], [np.zeros((0, nbest))]
        for i in range(0, len(x), batch_size):
            part = x[i:i + batch_size]
            a, s = model.beam_search(part, start_id, length, beam=beam, nbest=nbest, **options)
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.shape != (len(part), nbest, length):
                raise ContractError("generate", f"beam_search ids {describe_value(a)} for N={len(part)}, "
                                    f"nbest={nbest}, length={length}", _name(model))
            ids.append(a)
            scores.append(np.asarray(s, dtype=np.float64))
        return np.concatenate(ids), np.concatenate(scores)
    finally:
        if was_training:
            model.train()


def exact_match(pred, t) -> np.ndarray:
    """Per example, whether the decoded answer equals the whole target.

    Args:
        pred: decoded ids, (n, L).
        t: the targets, (n, 1+L) with the start marker first.

    Returns:
        numpy.ndarray: (n,) booleans.
    """
    return np.all(np.asarray(pred) == np.asarray(t)[:, 1:], axis=1)


def evaluate(model, x, t, start_id: int, batch_size: int = 1000, beam: int = 1) -> float:
    """Exact-match accuracy of batched greedy decoding (or beam search's best) over `(x, t)`.

    Args:
        model: a Seq2seqModel.
        x: the questions, (n, T) ids.
        t: the answers, (n, 1+L) ids with the start marker first.
        start_id: the start marker's id.
        batch_size: rows decoded at a time.
        beam: the beam width; 1 (the default) is greedy.

    Returns:
        float: the fraction of answers right in every position, in [0, 1].

    Raises:
        ValueError: no examples.
    """
    if len(x) == 0:
        raise ValueError("evaluate: no examples")
    pred = generate_batched(model, x, start_id, t.shape[1] - 1, batch_size=batch_size, beam=beam)
    return float(exact_match(pred, t).mean())


def example_rows(dataset, x, t, pred) -> list[dict]:
    """One dict per example: question as typed, expected and predicted answers, and whether they match."""
    vocab = dataset.vocab
    return [{"question": q, "expected": unpad(e), "predicted": unpad(p), "correct": bool(ok)}
            for q, e, p, ok in zip(dataset.question_text(x), vocab.decode_batch(np.asarray(t)[:, 1:]),
                                   vocab.decode_batch(pred), exact_match(pred, t))]


def _mark_symbols(stream) -> tuple[str, str]:
    enc = getattr(stream, "encoding", None) or "utf-8"
    try:
        "☑☒".encode(enc)
        return "☑", "☒"
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[x]"


EMPTY_ANSWER = "(empty)"


def shown(answer: str) -> str:
    """An answer as printed for a person: one that is all padding shows as EMPTY_ANSWER, not as a blank
    that reads like a missing line (JSON output keeps the empty string)."""
    return answer or EMPTY_ANSWER


def format_examples(dataset, x, t, pred, stream=None) -> list[str]:
    """The book's printout: one line per example, ☑ right or ☒ wrong (then the expected answer)."""
    ok_mark, bad_mark = _mark_symbols(stream or sys.stdout)
    return [f"  {ok_mark} {r['question']} -> {shown(r['predicted'])}" if r["correct"] else
            f"  {bad_mark} {r['question']} -> {shown(r['predicted'])}  (expected {shown(r['expected'])})"
            for r in example_rows(dataset, x, t, pred)]
