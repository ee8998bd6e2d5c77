"""TrainConfig: every setting of a training run with its default, and every key of a run's config.json.

The Trainer, resume, `build_model` and the `train` command's help all read their defaults here, so a
default is written once. Settings left at None take the task's book value from TASK_DEFAULTS.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

__all__ = ["CHANGEABLE_ON_RESUME", "RUN_FORMAT", "TASK_DEFAULTS", "TrainConfig"]

RUN_FORMAT = "tinygrad-s2s run"
"""The `format` key of every config.json this tool writes: how a run directory is recognised."""

TASK_DEFAULTS = {
    "addition": {"wordvec": 16, "hidden": 128, "epochs": 25, "reverse": False},
    "date": {"wordvec": 16, "hidden": 256, "epochs": 10, "reverse": True},
}
"""Per-task settings that reproduce the book (chapters 7.3 and 8.4); any other file gets addition's."""

CHANGEABLE_ON_RESUME = ("epochs", "device", "save_every")
"""The settings a resumed run may change; every other setting is the run's own."""


@dataclass
class TrainConfig:
    """A run's settings and what the Trainer records about its data and model, as config.json holds them.

    Args:
        model: the registered model name.
        dataset: a built-in task (`"addition"`, `"date"`), a file in the data root, or a path.
        reverse: reverse each question (the book's 7.3.2); None: the task's book value.
        epochs: total epochs; None: the task's book value (25 addition, 10 date).
        wordvec: the embedding size D; None: the task's book value (16).
        hidden: the hidden size H; None: the task's book value (128 addition, 256 date).
        batch_size: examples per update.
        lr: Adam's learning rate.
        lr_schedule: a name in `optim.LR_SCHEDULES` (`"constant"`, `"cosine"`).
        max_grad: clip the global gradient norm to this; 0 (or None) turns clipping off.
        seed: of the initial weights and the batch order (the command line seeds with it; a Trainer
            made in Python uses the generator as it finds it: call `tg.manual_seed(seed)` before
            building the model).
        model_args: extra keywords for the model's constructor.
        limit: use only the first N training examples.
        test_limit: evaluate on only the first N test examples.
        device: `"cpu"` or `"cuda"`.
        save_every: seconds of training between checkpoints inside an epoch (a kill loses at most
            this much work); 0: at the end of each epoch only.
        format: recorded: `RUN_FORMAT`, how a run directory is recognised.
        dataset_path: recorded: the training file.
        dataset_size: recorded: its size in bytes.
        dataset_sha256: recorded: its SHA-256 (resume refuses a changed file).
        vocab: recorded: the vocabulary's characters, in id order.
        question_width: recorded: the padded question length.
        answer_width: recorded: the padded answer length, start marker included.
        split_seed: recorded: the seed of the train/test split.
        train_examples: recorded: the number of training examples used.
        test_examples: recorded: the number of test examples used.
        model_config: recorded: the model's own `config` (its constructor's keywords).
    """
    model: str | None = None
    dataset: str = "addition"
    reverse: bool | None = None
    epochs: int | None = None
    wordvec: int | None = None
    hidden: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"
    max_grad: float | None = 5.0
    seed: int = 0
    model_args: dict = field(default_factory=dict)
    limit: int | None = None
    test_limit: int | None = None
    device: str = "cpu"
    save_every: float = 60.0
    # recorded by the Trainer: the data (with its fingerprint) and the model it built
    format: str = RUN_FORMAT
    dataset_path: str | None = None
    dataset_size: int | None = None
    dataset_sha256: str | None = None
    vocab: str | None = None
    question_width: int | None = None
    answer_width: int | None = None
    split_seed: int | None = None
    train_examples: int | None = None
    test_examples: int | None = None
    model_config: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config.json (or checkpoint meta) dict as a TrainConfig.

        Keys it does not know are left out, so runs written by older versions load.

        Args:
            d: the dict.

        Returns:
            TrainConfig: the config.
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        """The JSON-able dict config.json holds.

        Returns:
            dict: every field by name.
        """
        return asdict(self)

    def task_defaults(self) -> dict:
        """The book's settings for this config's task (addition's for any other file).

        Returns:
            dict: `TASK_DEFAULTS[task]`: wordvec, hidden, epochs and reverse.
        """
        name = self.dataset if self.dataset in TASK_DEFAULTS else _stem(self.dataset)
        return TASK_DEFAULTS.get(name, TASK_DEFAULTS["addition"])

    def resolved(self) -> TrainConfig:
        """This config with every setting left at None filled from the task's book values.

        Returns:
            TrainConfig: a new config.
        """
        book = self.task_defaults()
        return replace(self, **{k: v for k, v in book.items() if getattr(self, k) is None})

    def check(self) -> TrainConfig:
        """Check every setting's range.

        Returns:
            TrainConfig: this config.

        Raises:
            ValueError: naming the first setting out of range (a non-positive size, a negative seed,
                a non-finite lr, an unknown schedule, ...).
        """
        from ..optim import LR_SCHEDULES  # noqa: PLC0415 - optim pulls in the backend
        positive = {"batch_size": self.batch_size, "epochs": self.epochs, "wordvec": self.wordvec,
                    "hidden": self.hidden, "limit": self.limit, "test_limit": self.test_limit}
        for name, value in positive.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if self.max_grad is not None and not (isinstance(self.max_grad, (int, float))
                                              and math.isfinite(self.max_grad) and self.max_grad >= 0):
            raise ValueError(f"max_grad must be 0 (off) or a positive finite number, got {self.max_grad!r}")
        if not (isinstance(self.save_every, (int, float)) and math.isfinite(self.save_every)
                and self.save_every >= 0):
            raise ValueError(f"save_every must be 0 (epoch ends only) or a positive number of seconds, "
                             f"got {self.save_every!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        return self

    def differences(self, given: dict) -> list[tuple[str, object, object]]:
        """The settings of `given` that differ from this run's and may not change on resume.

        Args:
            given: setting name -> value, as asked for (`--lr 0.01` on `--resume`).

        Returns:
            list[tuple[str, object, object]]: `(name, given value, this run's value)` for each.
        """
        return [(k, v, getattr(self, k)) for k, v in given.items()
                if k not in CHANGEABLE_ON_RESUME and v != getattr(self, k)]


def _stem(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".txt") else name


def agreeing_data(cfg: TrainConfig, mc, dataset):
    """One value, one source: a setting the model or the dataset already fixes must agree with it
    (ValueError naming both), else config.json would describe another run than the one trained. A
    limit the dataset does not have yet is applied to it."""
    for setting, key in (("wordvec", "wordvec_size"), ("hidden", "hidden_size")):
        built = (mc or {}).get(key)
        if getattr(cfg, setting) is not None and built is not None and getattr(cfg, setting) != built:
            raise ValueError(f"Trainer: {setting}={getattr(cfg, setting)} but the model was built with {key}="
                             f"{built}; leave {setting} unset (it is read from the model) or build the model with it")
    if cfg.reverse is not None and cfg.reverse != dataset.reverse:
        raise ValueError(f"Trainer: reverse={cfg.reverse} but the dataset was loaded with reverse={dataset.reverse}")
    for setting, has in (("limit", dataset.train_limit), ("test_limit", dataset.test_limit)):
        want = getattr(cfg, setting)
        if want is not None and has is not None and want != has:
            raise ValueError(f"Trainer: {setting}={want} but the dataset was limited to {has} examples")
    if (cfg.limit, cfg.test_limit) != (dataset.train_limit, dataset.test_limit):
        dataset = dataset.limit(cfg.limit, cfg.test_limit)
    return dataset
