"""The data of a run: the fingerprint of its training file (path, size, SHA-256), the check that the
file is still the one it trained on, and the dataset encoded as the run saw it.

A run never silently switches data: resuming it, or evaluating it on its own split, refuses when its
training file is gone or holds other bytes. Evaluating on another file (`eval --dataset FILE`) is a
feature: that file is encoded with the run's vocabulary and padded to the run's widths.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.datasets import BUILTIN_TASKS, PAD, SPLIT_SEED, Dataset, Vocab, data_root, dataset_path, load_dataset

__all__ = ["DatasetChanged", "DoesNotFit", "dataset_of", "fingerprint", "fit_widths", "training_file"]


class DatasetChanged(ValueError):
    """A run's training file is missing or no longer holds the bytes the run trained on."""


class DoesNotFit(ValueError):
    """A dataset wider than the run was trained on (or narrower with nothing to pad it with)."""


def fingerprint(path) -> dict:
    """{"dataset_path": resolved path, "dataset_size": bytes, "dataset_sha256": hex digest} of a file."""
    path = Path(path).resolve()
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"dataset_path": str(path), "dataset_size": size, "dataset_sha256": digest.hexdigest()}


def _describe(fp: dict) -> str:
    return f"{fp['dataset_path']} ({fp['dataset_size']:,} bytes, sha256 {fp['dataset_sha256']})"


def training_file(config: dict) -> Path:
    """The file a run trained on, checked against its recorded fingerprint: the recorded path, or
    where it is missing the data root's file of the same name (a built-in task is regenerated there).
    Raises DatasetChanged naming both files and digests when the bytes differ or nothing is found."""
    recorded = {k: config.get(k) for k in ("dataset_path", "dataset_size", "dataset_sha256")}
    name = config.get("dataset") or Path(recorded["dataset_path"] or "").stem
    if not recorded["dataset_sha256"]:
        raise DatasetChanged(f"the run records no fingerprint of its training data {recorded['dataset_path']} "
                             "(it was written by an older version), so its data cannot be verified; evaluate "
                             "it on a file you choose with `eval --dataset FILE`, or train a new run")
    path = Path(recorded["dataset_path"])
    if not path.is_file():
        path = data_root() / f"{name}.txt"
        if name in BUILTIN_TASKS and not path.exists():
            dataset_path(name)          # regenerate the built-in task; the digest decides if it is the same
        if not path.is_file():
            raise DatasetChanged(f"the run's training data {_describe(recorded)} is gone, and {path} does not "
                                 "exist either; put the file back to resume or evaluate this run")
    found = fingerprint(path)
    if found["dataset_sha256"] != recorded["dataset_sha256"]:
        moved = "" if found["dataset_path"] == recorded["dataset_path"] else " is gone; its stand-in"
        raise DatasetChanged(f"the run trained on {_describe(recorded)}, which{moved or ' now'} differs: "
                             f"{_describe(found)}; refusing to continue or evaluate on other data (put the "
                             "original file back, or evaluate on a chosen file with `eval --dataset FILE`)")
    return path


def fit_widths(ds: Dataset, question_width: int, answer_width: int) -> Dataset:
    """`ds` padded to the widths a run was trained on (questions as `predict` pads them, reversed rows
    padded on the left); raises DoesNotFit when its questions or answers are wider than that."""
    if ds.question_width > question_width or ds.answer_width > answer_width:
        raise DoesNotFit(f"{ds.path}: questions of {ds.question_width} and answers of {ds.answer_width - 1} "
                         f"characters, wider than the run was trained on ({question_width} and "
                         f"{answer_width - 1}); it cannot answer them")
    dq, da = question_width - ds.question_width, answer_width - ds.answer_width
    if not dq and not da:
        return ds
    if PAD not in ds.vocab:
        raise DoesNotFit(f"{ds.path}: narrower than the run's widths ({question_width}, {answer_width}) and its "
                         "vocabulary has no space to pad with")
    pad = ds.vocab.char_to_id[PAD]

    def widen(a, n, left):
        block = np.full((len(a), n), pad, dtype=a.dtype)
        return np.ascontiguousarray(np.concatenate([block, a] if left else [a, block], axis=1))

    return replace(ds, x_train=widen(ds.x_train, dq, ds.reverse), x_test=widen(ds.x_test, dq, ds.reverse),
                   t_train=widen(ds.t_train, da, False), t_test=widen(ds.t_test, da, False),
                   question_width=question_width, answer_width=answer_width)


def dataset_of(config: dict, source=None) -> Dataset:
    """The dataset a run was trained on (verified against its fingerprint), or `source` instead
    (padded to the run's widths); encoded with the run's vocabulary, split and reversed as in training,
    and limited as in training."""
    if source is None:
        source = training_file(config)
    ds = load_dataset(source, reverse=config.get("reverse") or False, seed=config.get("split_seed") or SPLIT_SEED,
                      vocab=Vocab(config["vocab"]))
    if config.get("question_width"):
        ds = fit_widths(ds, int(config["question_width"]), int(config["answer_width"]))
    return ds.limit(config.get("limit"), config.get("test_limit"))
