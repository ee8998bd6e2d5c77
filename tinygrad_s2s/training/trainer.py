"""The Trainer (Adam, gradient clipping, mini-batches, per-epoch progress bar, test accuracy with the
book's ☑/☒ examples) and resumable runs.

Nothing is ever lost: a run directory is held by one process at a time (an OS lock) and gets its
config and a checkpoint before the first step, after every epoch and, inside an epoch, after every
`save_every` seconds of training (60 by default, so a kill loses at most that); Ctrl-C stops at the next step
boundary and saves where it stopped; a NaN/Inf loss or gradient stops training before it touches the
weights and keeps the last good checkpoint. Whatever stopped it (Ctrl-C, a crash, kill -9 at any
moment, a NaN stop), `Trainer.resume(run_dir)` continues exactly, RNG state included.

Under mpiexec the same loop trains one model on every rank: what passes between the ranks (batch
shares, the one reduction per step, weight checks, the evaluation's parts) is `self.comm`'s, see
`distributed`.

Kept whole: the loop, the checkpoint it writes and `resume`, which reads that checkpoint back, keep one
invariant together (a checkpoint is never ahead of the metrics and trackers, and resuming restores every
field `_meta` writes); what could leave has left (run files, the settings check, the ranks, the trackers).
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from .. import optim, serialization
from ..backend import random
from . import rundir
from ..models.contract import check_loss
from ..data.datasets import Dataset, batch_indices
from .evaluation import exact_match, format_examples, generate_batched
from ..models.registry import registered_name
from .fingerprint import dataset_of, fingerprint
from .runfiles import (BEST, CONFIG, LAST, Run, build_model, load_checkpoint, load_run, plot_learning_curve,
                       read_config, save_checkpoint, write_config, write_metrics)
from .config import TrainConfig, agreeing_data
from .distributed import SINGLE
from .loggers import Tracking, TrackingError
from .stops import TrainingDiverged, TrainingInterrupted, _StopFlag

__all__ = ["Run", "TrainConfig", "Trainer", "TrainingDiverged", "TrainingInterrupted", "load_run"]


# ---------------------------------------------------------------- the trainer
def _check_best(run_dir: Path, last_meta: dict) -> None:
    """A damaged best.npz found at resume: rewritten from last.npz when that holds the best epoch's
    weights (a run that improved at its last finished epoch and took no step since), otherwise a
    RunDirError saying which checkpoint to use; never left for eval and predict to trip over."""
    best = run_dir / BEST
    if not best.is_file():
        return
    try:
        load_checkpoint(best)
        return
    except (serialization.CheckpointError, OSError) as exc:
        damage = exc.reason if isinstance(exc, serialization.CheckpointError) else str(exc)
    history, acc = last_meta.get("history") or [], last_meta.get("best_accuracy")
    if (last_meta["batch"] == 0 and history and history[-1].get("test_accuracy") == acc
            and all(h.get("test_accuracy", -1) < acc for h in history[:-1])):
        serialization.write_bytes(best, (run_dir / LAST).read_bytes())   # what the epoch's end wrote to both
        print(f"{best} was damaged ({damage}); rewritten from {LAST}, which holds the same epoch's weights",
              file=sys.stderr)
        return
    raise rundir.RunDirError(f"{best} is damaged ({damage}) and its weights are not in {LAST}, so it cannot be "
                             f"rebuilt: move it away to resume (eval and predict then use {LAST}, the latest "
                             "weights, or pass them a checkpoint file)")


class _Quiet:
    """The log of a rank other than 0: the job's lines are rank 0's."""

    def write(self, text):
        return len(text)

    def flush(self):
        return None


class Trainer:
    """Trains `model` on `dataset` with Adam and gradient clipping, as the book's chapter 7.

    The run directory is locked while `fit` runs; the Trainer records the dataset with its fingerprint
    and `model.config` there. Under mpiexec every rank builds its own Trainer on the same data and model
    (`comm`); rank 0 alone keeps the run directory and writes the log and the trackers.

    Args:
        model: a `Seq2seqModel` (`create_model(...)`).
        dataset: a `Dataset` (`load_dataset(...)`), loaded with the config's `reverse` and limits.
        config: a `TrainConfig` or its dict; default all defaults.
        run_dir: a directory to keep the run in (config.json, metrics.csv, last.npz/best.npz,
            learning_curve.png; locked while `fit` runs): absent, empty, or this tool's run; or None.
        log: a text stream for the per-epoch lines (default stdout); progress bars go to stderr.
        progress: show progress bars (`tqdm.auto`).
        eval_batch_size: questions decoded at a time when evaluating.
        examples_shown: decoded test questions printed after each epoch.
        loggers: experiment trackers (`RunLogger`s; TensorBoard and MLflow in `tinygrad_s2s.tracking`).
        log_strict: a failing tracker stops training (after saving) with a TrackingError, instead of
            being turned off with one TrackingWarning.
        comm: the processes training this model together (`training.distributed.world()` under
            mpiexec); default this process alone.
        **settings: single TrainConfig fields that override `config` (`Trainer(m, ds, lr=0.01)`).

    Raises:
        TypeError: a setting that is not a TrainConfig field, or a `log` without `write()`.
        ValueError: a setting out of range, or a config that disagrees with the model or the dataset.
    """

    def __init__(self, model, dataset: Dataset, config=None, *, run_dir=None, log=None, progress: bool = True,
                 eval_batch_size: int = 1000, examples_shown: int = 3, loggers=None, log_strict: bool = False,
                 comm=None, **settings):
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
        unknown = sorted(set(settings) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise TypeError(f"Trainer: unknown settings {unknown}; the settings are TrainConfig's fields")
        cfg = replace(cfg, **settings).check()
        mc = getattr(model, "config", None)
        dataset = agreeing_data(cfg, mc, dataset)
        self.config = replace(
            cfg, model=cfg.model or registered_name(model), dataset=dataset.name, reverse=dataset.reverse,
            **(fingerprint(dataset.path) if dataset.path is not None else {}), vocab="".join(dataset.vocab.chars),
            question_width=dataset.question_width, answer_width=dataset.answer_width, split_seed=dataset.seed,
            limit=dataset.train_limit, test_limit=dataset.test_limit, train_examples=len(dataset.x_train),
            test_examples=len(dataset.x_test), model_config=mc,
            wordvec=cfg.wordvec or (mc or {}).get("wordvec_size"), hidden=cfg.hidden or (mc or {}).get("hidden_size"))
        self.model, self.dataset = model, dataset
        self.optimizer = optim.Adam(model.parameters(), lr=cfg.lr)
        self.comm = comm if comm is not None else SINGLE
        self.run_dir = Path(run_dir) if run_dir is not None and self.comm.is_root else None
        if not self.comm.is_root:       # rank 0 speaks for the job
            log, progress = _Quiet(), False
        if log is not None and not callable(getattr(log, "write", None)):
            raise TypeError(f"Trainer: log must be a text stream with write() (sys.stdout, an open file, "
                            f"io.StringIO), got {type(log).__name__}")   # not after an epoch of training
        self.log = log if log is not None else sys.stdout
        self.progress, self.eval_batch_size, self.examples_shown = progress, eval_batch_size, examples_shown
        self.tracking = Tracking(loggers, strict=log_strict)
        # position: `epoch` epochs finished, `batch` batches of the next one done, `step` updates in all
        self.epoch = self.batch = self.step = 0
        self.history: list[dict] = []
        self.best_accuracy: float | None = None
        self._epoch_loss, self._epoch_examples, self._epoch_seconds = 0.0, 0, 0.0
        self._epoch_norm = [0.0, 0]     # the epoch's gradient norms (before clipping): sum, count
        self._rng_epoch_start = self._rng = None
        self._started = False
        self._restart = False       # resuming a run stopped before its first checkpoint
        self._saved_at = time.monotonic()   # when the last checkpoint was written (or this Trainer made)

    # ---- resuming
    @classmethod
    def resume(cls, run_dir, *, device: str | None = None, save_every: float | None = None,
               dataset: Dataset | None = None, **kwargs) -> Trainer:
        """A Trainer that continues the run in `run_dir` exactly where it stopped.

        From last.npz (weights, optimizer slots, RNG, position, history; else best.npz), or from the start
        of config.json for a run stopped before its first checkpoint. The data must match its fingerprint.

        Args:
            run_dir: the run directory.
            device: move the run to `"cpu"` or `"cuda"`; default the run's.
            save_every: a new checkpoint interval in seconds; default the run's.
            dataset: the Dataset to continue on, instead of reloading it (it must match the run's).
            **kwargs: Trainer's own keywords (`log`, `progress`, ...).

        Returns:
            Trainer: ready for `fit()`.

        Raises:
            FileNotFoundError: `run_dir` holds neither a checkpoint nor a config.
            CheckpointError: a damaged checkpoint, or one that does not fit its run or its data.
        """
        run_dir = Path(run_dir)
        meta = None
        checkpoint = next((run_dir / n for n in (LAST, BEST) if (run_dir / n).is_file()), None)
        if checkpoint is not None:      # best.npz is a whole checkpoint too: a run that lost last.npz goes on
            model_state, opt_state, meta = load_checkpoint(checkpoint)
            config = meta["config"]
        elif (run_dir / CONFIG).is_file() and rundir.state(run_dir)[0] == "run":
            config = read_config(run_dir)
        else:
            raise FileNotFoundError(f"nothing to resume: {run_dir} holds no {LAST} or {CONFIG}")
        cfg = TrainConfig.from_dict(config)
        if device is not None:
            cfg = replace(cfg, device=device)
        if save_every is not None:
            cfg = replace(cfg, save_every=save_every)
        if dataset is None:
            dataset = dataset_of(config)
        random.manual_seed(cfg.seed)        # as a new run builds its model (a checkpoint then replaces it)
        model = build_model(cfg)
        if meta is not None:
            model.load_state_dict(model_state)
        if cfg.device != "cpu":
            model.to(cfg.device)
        trainer = cls(model, dataset, cfg, run_dir=run_dir, **kwargs)
        if meta is None:
            trainer._restart = True
            return trainer
        batches = -(-len(dataset.x_train) // cfg.batch_size)
        if meta["batch"] > batches:     # past the epoch's end: the rest of the epoch would be skipped
            raise serialization.CheckpointError(checkpoint, f"its meta 'batch' is {meta['batch']:,}, but an epoch "
                                                f"of this run has {batches} batches")
        if checkpoint.name == LAST:
            _check_best(run_dir, meta)
        if opt_state is not None:
            trainer.optimizer.load_state_dict(opt_state)
        trainer.epoch, trainer.batch, trainer.step = meta["epoch"], meta["batch"], meta["step"]
        trainer.history = list(meta.get("history", []))
        trainer.best_accuracy = meta.get("best_accuracy")
        trainer._epoch_loss = meta.get("epoch_loss", 0.0)
        trainer._epoch_examples = meta.get("epoch_examples", 0)
        trainer._epoch_seconds = meta.get("epoch_seconds", 0.0)
        trainer._epoch_norm = list(meta.get("epoch_grad_norm", [0.0, 0]))   # older runs: from here on
        trainer._rng_epoch_start, trainer._rng = meta["rng_epoch_start"], meta["rng"]
        trainer._started = True
        return trainer

    # ---- checkpoints
    def _meta(self, **extra) -> dict:
        return {"config": self.config.to_dict(), "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "rng": self._rng, "rng_epoch_start": self._rng_epoch_start, "history": self.history,
                "best_accuracy": self.best_accuracy, "epoch_loss": self._epoch_loss,
                "epoch_examples": self._epoch_examples, "epoch_seconds": self._epoch_seconds,
                "epoch_grad_norm": self._epoch_norm, **extra}

    def save(self, name: str = LAST, **extra) -> Path | None:
        """Write a checkpoint of the current position into the run directory. In a job of several ranks
        every rank calls it at the same step: their weights are compared first.

        Args:
            name: the file name; default `last.npz`.
            **extra: more JSON-able meta to store in it.

        Returns:
            Path | None: the checkpoint's path, or None without a run directory.
        """
        self.comm.check_same(self.model.parameters(), self.step, force=True)
        if self.run_dir is None:
            return None
        path = self.run_dir / name
        try:
            self.tracking.flush()       # what the checkpoint covers is in the trackers' files first
        finally:                        # (a strict tracker's error still lets the checkpoint be written)
            save_checkpoint(path, self.model, self.optimizer, self._meta(**extra))
        self._saved_at = time.monotonic()
        return path

    def _start(self, epochs: int) -> None:
        """First fit() of a run: refuse a directory holding a run or other files, then write the config
        (complete: a run stopped after this restarts from it) and checkpoint 0."""
        self._rng = self._rng_epoch_start = random.get_state()
        self.config.epochs = epochs
        if self.run_dir is not None:
            if not self._restart:
                rundir.check_new_run(self.run_dir)
            write_config(self.run_dir, self.config)
        self.save()         # checkpoint 0 (every rank: their weights are compared)
        self._started = True

    # ---- training
    def fit(self, epochs: int | None = None) -> list[dict]:
        """Train until `epochs` epochs are finished in all (a resumed run continues its count).

        Args:
            epochs: the total number of epochs; default the config's.

        Returns:
            list[dict]: the metrics history, one dict per epoch (epoch, loss, test_accuracy, seconds, ...).

        Raises:
            TrainingInterrupted: Ctrl-C, SIGTERM or SIGHUP (after saving the position).
            TrainingDiverged: a NaN/Inf loss or gradient (the last good checkpoint is kept).
            RunDirLocked: another process holds the run directory.
            ValueError: no epochs, a run directory without a model name or training file, or `check_epochs`'s.
        """
        epochs = epochs or self.config.epochs
        if not epochs:
            raise ValueError("fit: how many epochs? pass fit(epochs) or set the config's epochs")
        if self.run_dir is not None and self.config.model is None:    # before the lock makes the directory
            raise ValueError("cannot tell which registered model this is, so the run could not be "
                             "reloaded; pass config={'model': NAME}")
        if self.run_dir is not None and self.dataset.path is None:
            raise ValueError("a run directory records its training file (path, size, SHA-256) to resume and "
                             "evaluate on it, and this dataset has none (path=None): write it to a file and "
                             "load_dataset(path), or train without run_dir")
        stop = _StopFlag(at_once=not self.comm.distributed, announce=self.comm.is_root)
        held = rundir.locked(self.run_dir) if self.run_dir is not None else contextlib.nullcontext()
        with held, stop.installed(), np.errstate(over="ignore", invalid="ignore"):
            if self.run_dir is not None:
                rundir.remove_temps(self.run_dir)     # what a write cut short by a crash left behind
            self.comm.check_data(self.config)
            if not self._started:
                self._start(epochs)
            self.check_epochs(epochs)
            if epochs > self.epoch and epochs != self.config.epochs:
                self.config.epochs = epochs     # the new target; fewer epochs than done changes nothing
                if self.run_dir is not None:
                    write_config(self.run_dir, self.config)
            status = "failed"
            try:
                self.tracking.start(self)
                while self.epoch < epochs:
                    try:
                        self._run_epoch(epochs, stop)
                    except KeyboardInterrupt:
                        status, path = "interrupted", self.save(interrupted=True)
                        raise TrainingInterrupted(path, self.epoch, self.batch, self.step,
                                                  stop.signum or signal.SIGINT) from None
                    except TrackingError:
                        self.save()         # --log-strict: the run stops, nothing of it is lost
                        raise
                status = "finished"
            except TrainingDiverged:
                status = "diverged"
                raise
            finally:
                self.tracking.close(status)
        return self.history

    def check_epochs(self, epochs: int) -> None:
        """Refuse training to `epochs` where that would change a run's learning-rate schedule.

        A schedule spans the planned epochs: re-planning it mid-run would match no run trained straight through.

        Args:
            epochs: the total number of epochs asked for.

        Raises:
            ValueError: the schedule is not constant, steps were taken, and `epochs` differs from the plan.
        """
        if epochs <= self.epoch or epochs == self.config.epochs or self.config.lr_schedule == "constant" \
                or not self.step:
            return
        planned = self.config.epochs
        raise ValueError(f"this run's {self.config.lr_schedule} learning-rate schedule was planned over "
                         f"{planned} epoch{'s' if planned != 1 else ''} and {self.step} steps of it are done; training it to {epochs} "
                         f"epochs would re-plan the schedule mid-run (the rate would jump), matching no run "
                         f"trained straight to {epochs} epochs. Train a new run with {epochs} epochs instead")

    def _run_epoch(self, epochs: int, stop: _StopFlag) -> None:
        from tqdm.auto import tqdm  # noqa: PLC0415 - a widget in a notebook (with ipywidgets), text elsewhere

        n = len(self.dataset.x_train)
        # the epoch's order is drawn from the RNG state saved at its start; after a mid-epoch resume
        # the state then jumps to where the last finished step had left it, so resume is exact
        random.set_state(self._rng_epoch_start)
        batches = batch_indices(n, self.config.batch_size, random.generator())
        if self.batch:
            random.set_state(self._rng)
        self._rng = random.get_state()
        if self.comm.any(stop.requested):      # a signal during the last evaluation: every rank stops here
            raise KeyboardInterrupt
        params = self.model.parameters()
        self.model.train()
        bar = tqdm(total=n, initial=min(self.batch * self.config.batch_size, n), unit="ex", file=sys.stderr,
                   desc=f"epoch {self.epoch + 1}/{epochs}", disable=not self.progress, leave=True,
                   dynamic_ncols=True, mininterval=0.5)
        t0 = time.perf_counter()
        try:
            for b in range(self.batch, len(batches)):
                if stop.requested and not self.comm.distributed:    # ranks stop together, after a reduce
                    raise KeyboardInterrupt
                idx = batches[b]
                value, stop_now, save_now = self._gradients(idx, params, stop, b + 1 < len(batches))
                if not math.isfinite(value):
                    raise self._diverged("loss", value, b)
                norm = optim.clip_grad_norm(params, self.config.max_grad or math.inf)
                if not math.isfinite(norm):
                    raise self._diverged("gradient norm", norm, b)
                stop.critical = True        # the update and the position advance together
                self.optimizer.lr = optim.scheduled_lr(self.config.lr, self.config.lr_schedule, self.step,
                                                       epochs * len(batches))
                self.optimizer.step()
                self.step += 1
                self.batch = b + 1
                self._epoch_loss += value * len(idx)
                self._epoch_examples += len(idx)
                self._epoch_norm = [self._epoch_norm[0] + norm, self._epoch_norm[1] + 1]
                self._rng = random.get_state()
                stop.critical = False
                self.tracking.step(self.step, {"loss": value, "lr": self.optimizer.lr, "grad_norm": norm})
                self.comm.check_same(params, self.step)
                if stop_now:
                    raise KeyboardInterrupt
                if save_now:
                    now = time.perf_counter()       # the checkpoint records the epoch's time so far
                    self._epoch_seconds += now - t0
                    t0 = now
                    self.save()
                bar.update(len(idx))
                bar.set_postfix(loss=f"{self._epoch_loss / self._epoch_examples:.4f}", refresh=False)
        finally:
            stop.critical = False
            self._epoch_seconds += time.perf_counter() - t0
            bar.close()
        self._end_epoch(epochs, stop)

    def _gradients(self, idx, params, stop: _StopFlag, may_save: bool) -> tuple[float, bool, bool]:
        """The gradients of the mean loss over the global batch `idx` in every parameter's .grad, and
        (that loss, stop now, save now), the same on every rank: each rank takes its shard, with a
        random stream of its own, and the ranks add up what they found in one reduction."""
        ds, mine = self.dataset, self.comm.shard(idx)
        self.optimizer.zero_grad()
        value = 0.0
        if len(mine):
            with self.comm.stream(self.config.seed, self.step):
                loss = check_loss(self.model(ds.x_train[mine], ds.t_train[mine]), self.config.model)
                value = float(loss.item())
                if math.isfinite(value) or self.comm.distributed:   # alone, a NaN loss stops before backward
                    loss.backward()
        save = (may_save and self.run_dir is not None and bool(self.config.save_every)
                and time.monotonic() - self._saved_at >= self.config.save_every)
        return self.comm.reduce_step(params, value, len(mine), len(idx), stop.requested, save)

    def _diverged(self, what, value, b) -> TrainingDiverged:
        last = self.run_dir / LAST if self.run_dir is not None else None
        return TrainingDiverged(what, value, self.step + 1, self.epoch, b, last)

    def _end_epoch(self, epochs: int, stop: _StopFlag) -> None:
        ds, part = self.dataset, self.comm.part(len(self.dataset.x_test))
        # ranks decode their parts of the test set (no early stop: the others would wait for its rows)
        pred = self.comm.gather_rows(generate_batched(
            self.model, ds.x_test[part], ds.start_id, ds.t_test.shape[1] - 1, batch_size=self.eval_batch_size,
            should_stop=None if self.comm.distributed else lambda: stop.requested))
        accuracy = float(exact_match(pred, ds.t_test).mean())
        improved = self.best_accuracy is None or accuracy > self.best_accuracy
        seconds = self._epoch_seconds
        row = {"epoch": self.epoch + 1, "step": self.step,
               "train_loss": self._epoch_loss / max(self._epoch_examples, 1), "test_accuracy": accuracy,
               "best_accuracy": accuracy if improved else self.best_accuracy, "seconds": round(seconds, 3),
               "examples_per_second": round(self._epoch_examples / seconds, 1) if seconds > 0 else 0.0,
               "lr": self.optimizer.lr, "grad_norm": self._epoch_norm[0] / max(self._epoch_norm[1], 1)}
        stop.critical = True     # history and position move together
        if improved:
            self.best_accuracy = accuracy
        self.history.append(row)
        self.epoch += 1
        self.batch = 0
        self._epoch_loss, self._epoch_examples, self._epoch_seconds = 0.0, 0, 0.0
        self._epoch_norm = [0.0, 0]
        self._rng = self._rng_epoch_start = random.get_state()
        stop.critical = False
        if improved:        # last.npz last: it is never ahead of best.npz and the metrics
            self.save(BEST)
        if self.run_dir is not None:
            write_metrics(self.run_dir, self.history)
            plot_learning_curve(self.run_dir, self.history, f"{self.config.model or ''} on {ds.name}".strip())
        self.tracking.epoch(row, self)      # before last.npz: a kill in between redoes the epoch, never skips it
        self.save()
        print(f"epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.4f}, test accuracy "
              f"{100 * accuracy:.3f}% (best {100 * self.best_accuracy:.3f}%), {seconds:.1f} s, "
              f"{row['examples_per_second']:.0f} examples/s", file=self.log)
        k = self.examples_shown
        for line in format_examples(ds, ds.x_test[:k], ds.t_test[:k], pred[:k], self.log):
            print(line, file=self.log)
        self.log.flush()
