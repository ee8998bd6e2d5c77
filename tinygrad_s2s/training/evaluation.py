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
    """Decode every row of x with `model.generate`, `batch_size` rows at a time -> (n, length) ids.
    `should_stop()` is asked before each batch; True raises KeyboardInterrupt (a pending Ctrl-C).
    `options` (beam=, top_k=, top_p=) reach `generate` when set; a generate that does not take one is
    a clear error, and so is an answer that breaks the plugin contract."""
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
    """`model.beam_search` over every row of x, `batch_size` rows at a time -> ids (n, nbest, length)
    and scores (n, nbest), best first. `options`: end_id, length_penalty."""
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
    """Per example: does the decoded answer equal the whole target (t without its start marker)?"""
    return np.all(np.asarray(pred) == np.asarray(t)[:, 1:], axis=1)


def evaluate(model, x, t, start_id: int, batch_size: int = 1000, beam: int = 1) -> float:
    """Exact-match accuracy of batched greedy (or `beam` > 1: beam search's best) decoding over (x, t)
    (t starts with the marker)."""
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
