"""Batched decoding and exact-match scoring of trained models, and the book's ☑/☒ printout.

Shared by the Trainer (test accuracy after each epoch), `load_run(...).predict` and the `eval` /
`predict` commands."""
from __future__ import annotations

import sys

import numpy as np

__all__ = ["evaluate", "exact_match", "example_rows", "format_examples", "generate_batched"]


def generate_batched(model, x, start_id: int, length: int, batch_size: int = 1000, sample: bool = False,
                     temperature: float = 1.0, should_stop=None) -> np.ndarray:
    """Decode every row of x with `model.generate`, `batch_size` rows at a time -> (n, length) ids.
    `should_stop()` is asked before each batch; True raises KeyboardInterrupt (a pending Ctrl-C)."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        out = []
        for i in range(0, len(x), batch_size):
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            kw = {"sample": True, "temperature": temperature} if sample else {}
            out.append(np.asarray(model.generate(x[i:i + batch_size], start_id, length, **kw)))
        return np.concatenate(out) if out else np.zeros((0, length), dtype=np.int64)
    finally:
        if was_training:
            model.train()


def exact_match(pred, t) -> np.ndarray:
    """Per example: does the decoded answer equal the whole target (t without its start marker)?"""
    return np.all(np.asarray(pred) == np.asarray(t)[:, 1:], axis=1)


def evaluate(model, x, t, start_id: int, batch_size: int = 1000) -> float:
    """Exact-match accuracy of batched greedy decoding over (x, t) (t starts with the marker)."""
    if len(x) == 0:
        raise ValueError("evaluate: no examples")
    pred = generate_batched(model, x, start_id, t.shape[1] - 1, batch_size=batch_size)
    return float(exact_match(pred, t).mean())


def example_rows(dataset, x, t, pred) -> list[dict]:
    """One dict per example: question as typed, expected and predicted answers, and whether they match."""
    vocab = dataset.vocab
    return [{"question": q, "expected": e.rstrip(), "predicted": p.rstrip(), "correct": bool(ok)}
            for q, e, p, ok in zip(dataset.question_text(x), vocab.decode_batch(np.asarray(t)[:, 1:]),
                                   vocab.decode_batch(pred), exact_match(pred, t))]


def _mark_symbols(stream) -> tuple[str, str]:
    enc = getattr(stream, "encoding", None) or "utf-8"
    try:
        "☑☒".encode(enc)
        return "☑", "☒"
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[x]"


def format_examples(dataset, x, t, pred, stream=None) -> list[str]:
    """The book's printout: one line per example, ☑ right or ☒ wrong (then the expected answer)."""
    ok_mark, bad_mark = _mark_symbols(stream or sys.stdout)
    return [f"  {ok_mark} {r['question']} -> {r['predicted']}" if r["correct"] else
            f"  {bad_mark} {r['question']} -> {r['predicted']}  (expected {r['expected']})"
            for r in example_rows(dataset, x, t, pred)]
