"""Tiny training runs for the tracking tests: the tiny model on a few hundred generated addition
examples (5 steps an epoch), trained in this process with the loggers a test gives; and run
directories written directly (config.json, metrics.csv) with the accuracies a compare test wants."""
from __future__ import annotations

import io
from pathlib import Path

import tinygrad_s2s as tg
from tinygrad_s2s.data import generators, load_dataset
from tinygrad_s2s.training import Trainer
from tinygrad_s2s.training.config import TrainConfig
from tinygrad_s2s.training.runfiles import write_config, write_metrics

import tiny_model  # noqa: F401 - registers tiny-s2s

BATCH = 64
STEPS_PER_EPOCH = 5       # 300 examples, 64 a batch


def tiny_dataset(folder: Path, reverse: bool = False):
    path = Path(folder) / "add.txt"
    if not path.is_file():
        generators.write_task("addition", path, n=300, seed=1)
    return load_dataset(path, reverse=reverse)


def tiny_trainer(folder: Path, name: str = "run", loggers=None, model: str = "tiny-s2s", reverse: bool = False,
                 hidden: int = 8, **settings) -> Trainer:
    """A new Trainer of the tiny model on 300 examples (40 tested) in folder/name."""
    ds = tiny_dataset(folder, reverse).limit(None, 40)
    tg.manual_seed(0)
    model_obj = tg.create_model(model, len(ds.vocab), wordvec_size=4, hidden_size=hidden)
    return Trainer(model_obj, ds, run_dir=Path(folder) / name, config={"seed": 0, "batch_size": BATCH, **settings},
                   log=io.StringIO(), progress=False, loggers=loggers)


def fake_run(folder, name, accuracies, dataset="addition", sha="a" * 64, epochs=None, **settings):
    """A run directory as train leaves it (config.json, metrics.csv), with the given accuracies."""
    run = folder / name
    run.mkdir()
    cfg = TrainConfig(model=settings.pop("model", "seq2seq"), dataset=dataset, dataset_sha256=sha,
                      epochs=epochs or len(accuracies), vocab="0123456789+ _", question_width=7, answer_width=5,
                      **settings)
    write_config(run, cfg)
    write_metrics(run, [{"epoch": e + 1, "step": 10 * (e + 1), "train_loss": 2.0 / (e + 1), "test_accuracy": a,
                         "best_accuracy": max(accuracies[:e + 1]), "seconds": 30.0, "examples_per_second": 1.0}
                        for e, a in enumerate(accuracies)])
    return run
