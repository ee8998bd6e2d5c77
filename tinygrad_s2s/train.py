"""Training and evaluation: the Trainer (Adam, gradient clipping, mini-batches, per-epoch progress
bar, test accuracy with the book's ☑/☒ examples), batched greedy evaluation, and resumable runs.

Nothing is ever lost: the run directory gets a checkpoint before the first step and after every
epoch; Ctrl-C stops at the next step boundary and saves where it stopped (resume is then exact,
RNG state included); a NaN/Inf loss or gradient stops training before it touches the weights and
keeps the last good checkpoint.
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import optim, random
from .contract import ContractError, check_generated, check_loss, describe_value
from .data import SPLIT_SEED, Dataset, Vocab, batch_indices, load_dataset
from .runfiles import (BEST, LAST, Run, build_model, load_checkpoint, load_run, plot_learning_curve,
                       save_checkpoint, write_config, write_metrics)

__all__ = ["BOOK_DEFAULTS", "Trainer", "TrainingDiverged", "TrainingInterrupted", "beam_batched", "evaluate",
           "exact_match", "generate_batched", "load_run", "Run"]

LR_SCHEDULES = ("constant", "cosine")

BOOK_DEFAULTS = {
    "addition": {"wordvec": 16, "hidden": 128, "epochs": 25, "reverse": False},
    "date": {"wordvec": 16, "hidden": 256, "epochs": 10, "reverse": True},
}
"""Per-task defaults that reproduce the book (chapters 7.3 and 8.4); other files get addition's."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during `fit`: the position reached was saved to `checkpoint` (None without a run dir)."""

    def __init__(self, checkpoint, epoch: int, batch: int, step: int):
        self.checkpoint, self.epoch, self.batch, self.step = checkpoint, epoch, batch, step
        where = f"epoch {epoch + 1}, after batch {batch}, step {step}"
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no run directory, nothing saved"
        super().__init__(f"interrupted at {where}; {saved}")


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN/Inf; the weights were not updated with it."""

    def __init__(self, what: str, value: float, step: int, epoch: int, batch: int, checkpoint):
        self.step, self.epoch, self.batch, self.checkpoint = step, epoch, batch, checkpoint
        kept = (f"the last good checkpoint is {checkpoint}" if checkpoint
                else "no run directory, nothing saved")
        super().__init__(f"training stopped: the {what} is {value} at step {step} (epoch {epoch + 1}, "
                         f"batch {batch + 1}); {kept}; try a smaller --lr or --max-grad")


# ---------------------------------------------------------------- evaluation
def generate_batched(model, x, start_id: int, length: int, batch_size: int = 1000, sample: bool = False,
                     temperature: float = 1.0, should_stop=None, **options) -> np.ndarray:
    """Decode every row of x with `model.generate`, `batch_size` rows at a time -> (n, length) ids.
    `options` (beam=, top_k=, top_p=) reach `generate` when set; a model whose generate does not take
    one is a clear error."""
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
            out.append(check_generated(model.generate(part, start_id, length, **kw, **options), len(part), length,
                                       type(model).__name__))
        return np.concatenate(out) if out else np.zeros((0, length), dtype=np.int64)
    finally:
        if was_training:
            model.train()


def _check_decoding_options(model, options) -> None:
    import inspect  # noqa: PLC0415
    if not options:
        return
    params = inspect.signature(model.generate).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    missing = [k for k in options if k not in params]
    if missing:
        raise ValueError(f"model {type(model).__name__}: its generate takes no {', '.join(missing)}; models "
                         "built on zoo.common.Seq2seqModel decode with beam search, top-k and top-p (see the "
                         "README, 'Writing a model plugin')")


def beam_batched(model, x, start_id: int, length: int, beam: int = 5, nbest: int = 1, batch_size: int = 1000,
                 **options) -> tuple[np.ndarray, np.ndarray]:
    """`model.beam_search` over every row of x, `batch_size` rows at a time -> ids (n, nbest, length)
    and scores (n, nbest), best first. `options`: end_id, length_penalty."""
    if not callable(getattr(model, "beam_search", None)):
        raise ValueError(f"model {type(model).__name__} has no beam_search: subclass zoo.common.Seq2seqModel "
                         "and define decode_start/decode_step (see the README, 'Writing a model plugin')")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        ids, scores = [np.zeros((0, nbest, length), dtype=np.int64)], [np.zeros((0, nbest))]
        for i in range(0, len(x), batch_size):
            part = x[i:i + batch_size]
            a, s = model.beam_search(part, start_id, length, beam=beam, nbest=nbest, **options)
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.shape != (len(part), nbest, length):
                raise ContractError("generate", f"beam_search ids {describe_value(a)} for N={len(part)}, "
                                    f"nbest={nbest}, length={length}", type(model).__name__)
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


def _mark_symbols(stream) -> tuple[str, str]:
    enc = getattr(stream, "encoding", None) or "utf-8"
    try:
        "☑☒".encode(enc)
        return "☑", "☒"
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[x]"


def format_examples(dataset: Dataset, x, t, pred, stream=None) -> list[str]:
    """The book's printout: one line per example, ☑ right or ☒ wrong (then the expected answer)."""
    ok_mark, bad_mark = _mark_symbols(stream or sys.stdout)
    vocab = dataset.vocab
    lines = []
    for q, want, got, ok in zip(dataset.question_text(x), vocab.decode_batch(np.asarray(t)[:, 1:]),
                                vocab.decode_batch(pred), exact_match(pred, t)):
        if ok:
            lines.append(f"  {ok_mark} {q} -> {got.rstrip()}")
        else:
            lines.append(f"  {bad_mark} {q} -> {got.rstrip()}  (expected {want.rstrip()})")
    return lines


# ---------------------------------------------------------------- Ctrl-C
class _StopFlag:
    """Ctrl-C while training: the first press asks to stop at the next step boundary, a second
    press stops at once (except inside a weight update, which is never cut in half)."""

    def __init__(self, log):
        self.requested = False
        self.critical = False
        self.log = log

    def handler(self, signum, frame):
        if self.requested and not self.critical:
            raise KeyboardInterrupt
        if not self.requested:
            print("\nCtrl-C: stopping after this step and saving a checkpoint (press again to stop now)",
                  file=sys.stderr, flush=True)
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self         # signals only reach the main thread; KeyboardInterrupt is still caught
            return
        old = signal.signal(signal.SIGINT, self.handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, old)


# ---------------------------------------------------------------- the trainer
def _registered_name(model) -> str | None:
    """The registry name whose factory built `model` (None if it was not built by one)."""
    from .registry import _models, load_plugins  # noqa: PLC0415
    load_plugins()
    return next((name for name, (factory, _) in _models.items() if factory is type(model)), None)


def dataset_of(config: dict, source=None) -> Dataset:
    """The dataset a run was trained on (or `source` instead), encoded with the run's vocabulary,
    split and reversed as in training, limited as in training. The saved file is preferred; a
    built-in task whose file is gone is regenerated (same seed, same bytes)."""
    if source is None:
        path = config.get("dataset_path")
        source = path if path and Path(path).is_file() else config["dataset"]
    ds = load_dataset(source, reverse=config.get("reverse", False), seed=config.get("split_seed", SPLIT_SEED),
                      vocab=Vocab(config["vocab"]))
    return ds.limit(config.get("limit"), config.get("test_limit"))


class Trainer:
    """Trains `model` on `dataset` with Adam and gradient clipping, as the book's chapter 7.

    With `run_dir`, it writes config.json, metrics.csv, last.npz/best.npz and learning_curve.png
    there (see `tinygrad_s2s.runfiles`). `config` is saved with the run and must name the registered
    model (`config["model"]`) for the run to be reloadable; the Trainer adds the hyper-parameters,
    the dataset description and `model.config`. `log` gets the per-epoch lines; progress bars go to
    stderr.
    """

    def __init__(self, model, dataset: Dataset, *, lr: float = 1e-3, lr_schedule: str = "constant",
                 max_grad: float | None = 5.0,
                 batch_size: int = 128, run_dir=None, config: dict | None = None, log=None,
                 progress: bool = True, eval_batch_size: int = 1000, examples_shown: int = 3):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if lr <= 0 or not math.isfinite(lr):
            raise ValueError(f"lr must be a positive number, got {lr}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        self.base_lr, self.lr_schedule = lr, lr_schedule
        self.model, self.dataset = model, dataset
        self.max_grad, self.batch_size = max_grad, batch_size
        self.optimizer = optim.Adam(model.parameters(), lr=lr)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.log = log if log is not None else sys.stdout
        self.progress, self.eval_batch_size, self.examples_shown = progress, eval_batch_size, examples_shown
        self.config = dict(config or {})
        self.config.update(
            dataset=dataset.name, dataset_path=str(Path(dataset.path).resolve()), reverse=dataset.reverse,
            vocab="".join(dataset.vocab.chars), question_width=dataset.question_width,
            answer_width=dataset.answer_width, split_seed=dataset.seed,
            limit=dataset.train_limit, test_limit=dataset.test_limit,
            train_examples=len(dataset.x_train),
            test_examples=len(dataset.x_test), lr=lr, lr_schedule=lr_schedule, max_grad=max_grad,
            batch_size=batch_size,
            model_config=getattr(model, "config", None))
        mc = self.config["model_config"] or {}
        self.config.setdefault("model", _registered_name(model))
        self.config.setdefault("wordvec", mc.get("wordvec_size"))
        self.config.setdefault("hidden", mc.get("hidden_size"))
        # position: `epoch` epochs finished, `batch` batches of the next one done, `step` updates in all
        self.epoch = self.batch = self.step = 0
        self.history: list[dict] = []
        self.best_accuracy: float | None = None
        self._epoch_loss, self._epoch_examples, self._epoch_seconds = 0.0, 0, 0.0
        self._rng_epoch_start = self._rng = None
        self._started = False

    # ---- resuming
    @classmethod
    def resume(cls, run_dir, *, device: str = "cpu", dataset: Dataset | None = None, **kwargs) -> Trainer:
        """A Trainer that continues the run in `run_dir` exactly where last.npz left it (weights,
        optimizer slots, RNG, position, history). The dataset is reloaded from the saved config."""
        path = Path(run_dir) / LAST
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        model_state, opt_state, meta = load_checkpoint(path)
        config = meta["config"]
        if dataset is None:
            dataset = dataset_of(config)
        model = build_model(config)
        model.load_state_dict(model_state)
        if device != "cpu":
            model.to(device)
        trainer = cls(model, dataset, lr=config["lr"], lr_schedule=config.get("lr_schedule", "constant"),
                      max_grad=config["max_grad"],
                      batch_size=config["batch_size"], run_dir=run_dir, config=config, **kwargs)
        if opt_state is not None:
            trainer.optimizer.load_state_dict(opt_state)
        trainer.epoch, trainer.batch, trainer.step = meta["epoch"], meta["batch"], meta["step"]
        trainer.history = list(meta.get("history", []))
        trainer.best_accuracy = meta.get("best_accuracy")
        trainer._epoch_loss = meta.get("epoch_loss", 0.0)
        trainer._epoch_examples = meta.get("epoch_examples", 0)
        trainer._epoch_seconds = meta.get("epoch_seconds", 0.0)
        trainer._rng_epoch_start, trainer._rng = meta["rng_epoch_start"], meta["rng"]
        trainer._started = True
        return trainer

    # ---- checkpoints
    def _meta(self, **extra) -> dict:
        return {"config": self.config, "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "rng": self._rng, "rng_epoch_start": self._rng_epoch_start, "history": self.history,
                "best_accuracy": self.best_accuracy, "epoch_loss": self._epoch_loss,
                "epoch_examples": self._epoch_examples, "epoch_seconds": self._epoch_seconds, **extra}

    def save(self, name: str = LAST, **extra) -> Path | None:
        """Write a checkpoint of the current position into the run directory (None without one)."""
        if self.run_dir is None:
            return None
        path = self.run_dir / name
        save_checkpoint(path, self.model, self.optimizer, self._meta(**extra))
        return path

    def _start(self) -> None:
        """First fit() of a fresh run: refuse to overwrite a run, write the config and checkpoint 0."""
        self._rng = self._rng_epoch_start = random.get_state()
        if self.run_dir is not None:
            if self.config.get("model") is None:
                raise ValueError("cannot tell which registered model this is, so the run could not be "
                                 "reloaded; pass config={'model': NAME}")
            if (self.run_dir / LAST).exists():
                raise FileExistsError(f"{self.run_dir} already holds a run; resume it (--resume) or "
                                      "choose another directory (--out)")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_config(self.run_dir, self.config)
            self.save()
        self._started = True

    # ---- training
    def fit(self, epochs: int) -> list[dict]:
        """Train until `epochs` epochs are finished in all (a resumed run continues its count).
        Returns the metrics history. Raises TrainingInterrupted on Ctrl-C (after saving) and
        TrainingDiverged on a NaN/Inf loss or gradient (keeping the last good checkpoint)."""
        stop = _StopFlag(self.log)
        with stop.installed(), np.errstate(over="ignore", invalid="ignore"):
            if not self._started:
                self._start()
            if epochs > self.epoch:      # the new target; asking for fewer epochs than done changes nothing
                self.config["epochs"] = epochs
                if self.run_dir is not None:
                    write_config(self.run_dir, self.config)
            while self.epoch < epochs:
                try:
                    self._run_epoch(epochs, stop)
                except KeyboardInterrupt:
                    path = self.save(interrupted=True)
                    raise TrainingInterrupted(path, self.epoch, self.batch, self.step) from None
        return self.history

    def _run_epoch(self, epochs: int, stop: _StopFlag) -> None:
        from tqdm import tqdm  # noqa: PLC0415 - keeps `import tinygrad_s2s.train` light

        ds, n = self.dataset, len(self.dataset.x_train)
        # the epoch's order is drawn from the RNG state saved at its start; after a mid-epoch resume
        # the state then jumps to where the last finished step had left it, so resume is exact
        random.set_state(self._rng_epoch_start)
        batches = batch_indices(n, self.batch_size, random.generator())
        if self.batch:
            random.set_state(self._rng)
        self._rng = random.get_state()
        params = self.model.parameters()
        self.model.train()
        bar = tqdm(total=n, initial=min(self.batch * self.batch_size, n), unit="ex", file=sys.stderr,
                   desc=f"epoch {self.epoch + 1}/{epochs}", disable=not self.progress, leave=True,
                   dynamic_ncols=True, mininterval=0.5)
        t0 = time.perf_counter()
        try:
            for b in range(self.batch, len(batches)):
                if stop.requested:
                    raise KeyboardInterrupt
                idx = batches[b]
                loss = check_loss(self.model(ds.x_train[idx], ds.t_train[idx]), self.config.get("model"))
                value = float(loss.item())
                if not math.isfinite(value):
                    raise self._diverged("loss", value, b)
                self.optimizer.zero_grad()
                loss.backward()
                norm = optim.clip_grad_norm(params, self.max_grad if self.max_grad else math.inf)
                if not math.isfinite(norm):
                    raise self._diverged("gradient norm", norm, b)
                stop.critical = True        # the update and the position advance together
                self.optimizer.lr = self._lr_at(epochs * len(batches))
                self.optimizer.step()
                self.step += 1
                self.batch = b + 1
                self._epoch_loss += value * len(idx)
                self._epoch_examples += len(idx)
                self._rng = random.get_state()
                stop.critical = False
                bar.update(len(idx))
                bar.set_postfix(loss=f"{self._epoch_loss / self._epoch_examples:.4f}", refresh=False)
        finally:
            stop.critical = False
            self._epoch_seconds += time.perf_counter() - t0
            bar.close()
        self._end_epoch(epochs, stop)

    def _lr_at(self, total_steps: int) -> float:
        """The learning rate of the current step: constant, or cosine-annealed from lr to 0 over the
        run's `epochs` (a function of the step count alone, so resume stays exact)."""
        if self.lr_schedule == "constant":
            return self.base_lr
        return self.base_lr * 0.5 * (1 + math.cos(math.pi * min(self.step / total_steps, 1.0)))

    def _diverged(self, what, value, b) -> TrainingDiverged:
        last = self.run_dir / LAST if self.run_dir is not None else None
        return TrainingDiverged(what, value, self.step + 1, self.epoch, b, last)

    def _end_epoch(self, epochs: int, stop: _StopFlag) -> None:
        ds = self.dataset
        pred = generate_batched(self.model, ds.x_test, ds.start_id, ds.t_test.shape[1] - 1,
                                batch_size=self.eval_batch_size, should_stop=lambda: stop.requested)
        accuracy = float(exact_match(pred, ds.t_test).mean())
        improved = self.best_accuracy is None or accuracy > self.best_accuracy
        seconds = self._epoch_seconds
        row = {"epoch": self.epoch + 1, "step": self.step,
               "train_loss": self._epoch_loss / max(self._epoch_examples, 1), "test_accuracy": accuracy,
               "best_accuracy": accuracy if improved else self.best_accuracy, "seconds": round(seconds, 3),
               "examples_per_second": round(self._epoch_examples / seconds, 1) if seconds > 0 else 0.0}
        stop.critical = True     # history and position move together
        if improved:
            self.best_accuracy = accuracy
        self.history.append(row)
        self.epoch += 1
        self.batch = 0
        self._epoch_loss, self._epoch_examples, self._epoch_seconds = 0.0, 0, 0.0
        self._rng = self._rng_epoch_start = random.get_state()
        stop.critical = False
        if self.run_dir is not None:
            self.save()
            if improved:
                self.save(BEST)
            write_metrics(self.run_dir, self.history)
            plot_learning_curve(self.run_dir, self.history,
                                f"{self.config.get('model', '')} on {ds.name}".strip())
        print(f"epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.4f}, test accuracy "
              f"{100 * accuracy:.3f}% (best {100 * self.best_accuracy:.3f}%), {seconds:.1f} s, "
              f"{row['examples_per_second']:.0f} examples/s", file=self.log)
        k = self.examples_shown
        for line in format_examples(ds, ds.x_test[:k], ds.t_test[:k], pred[:k], self.log):
            print(line, file=self.log)
        self.log.flush()
