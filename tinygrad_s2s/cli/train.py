"""The `train` command: a new run, or `--resume` of one. Its defaults and the run's config keys come
from TrainConfig; with --json, stdout gets exactly one JSON object and everything else goes to stderr."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

from .argtypes import model_arg, non_negative_float, non_negative_int, positive_float, positive_int
from .base import PROG, UsageError, emit_json, require_model
from ..optim import LR_SCHEDULES
from ..tracking.backends import LOGGERS
from ..training.config import CHANGEABLE_ON_RESUME, TASK_DEFAULTS, TrainConfig

RUNS = Path("runs")
_SHOWN = 10     # examples listed in train's JSON
_SETTINGS = ("model", "dataset", "reverse", "epochs", "batch_size", "wordvec", "hidden", "lr", "lr_schedule",
             "max_grad", "seed", "limit", "test_limit", "device", "save_every")     # the flags that set TrainConfig fields


def _per_task(key: str) -> str:
    return ", ".join(f"{v[key]} {task}" for task, v in TASK_DEFAULTS.items())


def add_subparsers(sub) -> None:
    """Add `train` to an argparse subparsers object."""
    d = TrainConfig
    p = sub.add_parser(
        "train", help="train a registered model on a dataset",
        description="Train MODEL on a dataset. The defaults reproduce the book: " + "; ".join(
            f"{task} with D={v['wordvec']}, H={v['hidden']}{', reversed input' if v['reverse'] else ''}, for "
            f"{v['epochs']} epochs" for task, v in TASK_DEFAULTS.items()) + ". The run "
                    "(config, metrics, best/last checkpoints, learning curve) is kept in --out, which must "
                    "be absent, empty, or (with --resume or --overwrite) a run of this tool. One process "
                    "at a time holds a run directory.")
    p.add_argument("model", nargs="?", help="registered model name (see `tinygrad-s2s models`); "
                                            "optional with --resume")
    p.add_argument("--dataset", default=None,
                   help=f"'addition', 'date' or the path of a file in the same format (default: {d.dataset}, "
                        "or the resumed run's)")
    p.add_argument("--reverse", action=argparse.BooleanOptionalAction, default=None,
                   help="reverse each input question (default: "
                        + ", ".join(f"{'on' if v['reverse'] else 'off'} for {t}" for t, v in TASK_DEFAULTS.items())
                        + "; off for other files)")
    p.add_argument("--epochs", type=positive_int, help=f"total epochs (default: {_per_task('epochs')})")
    p.add_argument("--batch-size", type=positive_int, help=f"mini-batch size (default {d.batch_size})")
    p.add_argument("--wordvec", type=positive_int, help=f"embedding size D (default: {_per_task('wordvec')})")
    p.add_argument("--hidden", type=positive_int, help=f"hidden size H (default: {_per_task('hidden')})")
    p.add_argument("--lr", type=positive_float, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--lr-schedule", choices=tuple(LR_SCHEDULES),
                   help=f"learning-rate schedule over --epochs (default {d.lr_schedule}, as the book; cosine "
                        "anneals from --lr to 0)")
    p.add_argument("--max-grad", type=non_negative_float,
                   help=f"clip the global gradient norm to this (default {d.max_grad}; 0 turns clipping off)")
    p.add_argument("--seed", type=non_negative_int,
                   help=f"seed of initialisation and batch order (default {d.seed})")
    p.add_argument("--model-arg", dest="model_args", action="append", type=model_arg, default=None,
                   metavar="KEY=VALUE", help="extra keyword for the model's constructor, repeatable; "
                   "VALUE is read as JSON when it parses (layers=2, dropout=0.1, fused=false)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help=f"where to train (default {d.device}, or the resumed run's)")
    p.add_argument("--out", help="run directory (default: runs/MODEL-DATASET, numbered if taken)")
    p.add_argument("--save-every", type=non_negative_float, metavar="SECONDS",
                   help=f"also save a checkpoint inside an epoch after this many seconds of training since the "
                        f"last one, so a crash or kill -9 loses at most that much work (default {d.save_every:g}; "
                        "0: at the end of each epoch only; may change on --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly where it stopped (Ctrl-C, a crash, kill -9, a NaN stop)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out whole (never a directory holding files this tool did not write)")
    p.add_argument("--limit", type=positive_int, help="use only the first N training examples (quick trials)")
    p.add_argument("--test-limit", type=positive_int,
                   help="evaluate on only the first N test examples (quick trials)")
    p.add_argument("--log", action="append", choices=LOGGERS, default=None, metavar="BACKEND",
                   help=f"also log to BACKEND ({', '.join(LOGGERS)}), repeatable: tensorboard writes event files "
                        "into RUN/tensorboard, mlflow records the run in MLflow (the `tracking` extra); csv, "
                        "the run's own metrics.csv, is always written (default: csv; a resumed run: the "
                        "backends it logged to before)")
    p.add_argument("--mlflow-uri", metavar="URI",
                   help="MLflow tracking store or server (default: sqlite:///mlruns.db in the run directory's "
                        "parent folder; a resumed run: the store it used)")
    p.add_argument("--log-strict", action="store_true",
                   help="a failing tracking backend stops training (after saving) instead of a warning")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress on stderr)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--procs", type=positive_int, metavar="N",
                   help="train with N processes on this machine (data-parallel, through mpiexec; needs the mpi "
                        "extra or a system MPI); on a cluster run `mpiexec ... tinygrad-s2s train` instead")
    p.set_defaults(func=cmd_train)


_SET_ELSEWHERE = {"vocab_size": "the vocabulary is the dataset's", "wordvec_size": "set the embedding size with --wordvec",
                  "hidden_size": "set the hidden size with --hidden"}
"""Model constructor keywords a run's settings already give: --model-arg may not set them again."""


def _given(args) -> dict:
    """The settings given on the command line (flags left out are None)."""
    given = {k: getattr(args, k) for k in _SETTINGS if getattr(args, k) is not None}
    if args.model_args:
        given["model_args"] = dict(args.model_args)
    return given


def _fresh_run_dir(model: str, dataset: str) -> Path:
    """runs/MODEL-DATASET, or the first free runs/MODEL-DATASET-N: a new run never overwrites one."""
    base = RUNS / f"{model}-{dataset}"
    path, n = base, 1
    while os.path.lexists(path):    # a dangling link is taken too: mkdir would fail on it
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _loggers(args, run_dir=None, comm=None) -> dict:
    """The Trainer's tracking arguments from --log (a resumed run without --log: the backends it used).
    In a job of several ranks only rank 0 logs, as only it writes the run directory."""
    from ..tracking.backends import loggers_for, used_backends  # noqa: PLC0415
    names = args.log or (used_backends(run_dir) if run_dir is not None else ["csv"])
    if args.mlflow_uri and "mlflow" not in names:
        raise UsageError("--mlflow-uri is for the mlflow backend: add --log mlflow")
    if comm is not None and not comm.is_root:
        return {"loggers": [], "log_strict": args.log_strict}
    return {"loggers": loggers_for(names, mlflow_uri=args.mlflow_uri), "log_strict": args.log_strict}


def _new_trainer(args, log, comm=None):
    """A Trainer for a new run; refuses (touching nothing) a --out that is not free. `comm`: the ranks of
    a data-parallel job (rank 0 checks --out)."""
    from dataclasses import replace  # noqa: PLC0415 - the heavy imports wait until a command runs

    from ..backend.random import manual_seed  # noqa: PLC0415
    from ..training import rundir  # noqa: PLC0415
    from ..data.datasets import load_dataset  # noqa: PLC0415
    from ..training.runfiles import build_model  # noqa: PLC0415
    from ..training.trainer import Trainer  # noqa: PLC0415
    if not args.model:
        raise UsageError("MODEL is required (or --resume --out RUN_DIR to continue a run)")
    cfg = TrainConfig(**_given(args)).resolved()
    for key, value in cfg.model_args.items():      # one value, one source: the banner and config.json report it
        if key in _SET_ELSEWHERE:
            raise UsageError(f"--model-arg {key}={value}: {_SET_ELSEWHERE[key]}, not with --model-arg")
    require_model(args.model, cfg.model_args)
    if args.out and (comm is None or comm.is_root):
        rundir.check_new_run(args.out, overwrite=args.overwrite)
    ds = load_dataset(cfg.dataset, reverse=cfg.reverse)
    if cfg.limit or cfg.test_limit:
        ds = ds.limit(cfg.limit, cfg.test_limit)
    run_dir = Path(args.out) if args.out else _fresh_run_dir(args.model, ds.name)
    manual_seed(cfg.seed)
    try:      # an unknown --model-arg reaches the constructor as a bad keyword
        model = build_model(replace(cfg, vocab="".join(ds.vocab.chars)))
    except TypeError as exc:
        raise UsageError(f"model '{args.model}' does not take these arguments {sorted(cfg.model_args)}: "
                         f"{exc}") from None
    if cfg.device != "cpu":
        model.to(cfg.device)
    return Trainer(model, ds, cfg, run_dir=run_dir, log=log, progress=args.progress, comm=comm,
                   **_loggers(args, comm=comm))


def _resume_dir(args) -> Path:
    """--out, checked to hold a run this command may resume (touching nothing)."""
    from ..training import rundir  # noqa: PLC0415
    if not args.out:
        raise UsageError("--resume needs --out RUN_DIR, the run to continue")
    if args.overwrite:
        raise UsageError("--resume continues the run in --out, --overwrite replaces it: pass one of them")
    if args.model_args:
        raise UsageError("--model-arg cannot change a resumed run: its model is rebuilt from the saved config")
    run_dir = Path(args.out)
    kind, _ = rundir.state(run_dir)
    if kind == "foreign":
        raise rundir.RunDirRefused(f"{run_dir} is not a run of this tool (no config.json or checkpoint of "
                                   "its own); nothing to resume there")
    if kind != "run":
        hint = (f"; it was stopped before it wrote its config: start it again with `{PROG} train MODEL ... "
                f"--out {run_dir}`" if kind == "empty" else "")
        raise FileNotFoundError(f"nothing to resume: {run_dir} holds no run{hint}")
    return run_dir


def _resume_trainer(args, run_dir: Path, log, comm=None):
    """The Trainer of the run in `run_dir`, after checking the given settings agree with it."""
    from ..training.runfiles import read_run_config  # noqa: PLC0415
    from ..training.trainer import Trainer  # noqa: PLC0415
    config = TrainConfig.from_dict(read_run_config(run_dir))
    given = {k: v for k, v in _given(args).items() if k != "dataset"}
    for key, mine, theirs in config.differences(given):
        flag = key if key == "model" else "--" + key.replace("_", "-")
        raise UsageError(f"{flag} {mine} differs from the run's {theirs}; a resumed run keeps its settings "
                         f"(only {', '.join('--' + k.replace('_', '-') for k in CHANGEABLE_ON_RESUME)} may change)")
    if args.dataset is not None and args.dataset != config.dataset and \
            str(Path(args.dataset).resolve()) != config.dataset_path:
        raise UsageError(f"--dataset {args.dataset} differs from the run's {config.dataset} ({config.dataset_path})")
    trainer = Trainer.resume(run_dir, device=args.device, save_every=args.save_every, log=log, progress=args.progress,
                             comm=comm, **_loggers(args, run_dir, comm))
    epochs = args.epochs or trainer.config.epochs
    try:
        trainer.check_epochs(epochs)
    except ValueError as exc:
        raise UsageError(f"--epochs {epochs}: {exc}") from None
    return trainer


def cmd_train(args) -> int:
    """tinygrad-s2s train: a new run, or --resume one (holding the run directory's lock throughout);
    prints the test accuracy."""
    from ..training import distributed, rundir  # noqa: PLC0415
    from . import ranks  # noqa: PLC0415
    if args.procs:
        return ranks.launch(args.procs, args.argv)
    comm = distributed.world()     # SINGLE unless mpiexec started this process: then one rank of a job
    if comm.distributed:
        return ranks.train(
            args, comm, lambda a, log, c, stack: ranks.new_trainer(a, log, c, lambda: _new_trainer(a, log, c), stack),
            lambda a, log, c, stack: ranks.resume_trainer(
                a, log, c, _resume_dir, lambda d: _resume_trainer(a, d, log, c), stack), _fit)
    log = sys.stderr if args.json else sys.stdout
    if args.resume:
        run_dir = _resume_dir(args)
        with rundir.locked(run_dir, create=False):
            trainer = _resume_trainer(args, run_dir, log)
            return _fit(args, trainer, args.epochs or trainer.config.epochs, log)
    trainer = _new_trainer(args, log)
    with rundir.locked(trainer.run_dir):
        if args.overwrite:
            rundir.check_new_run(trainer.run_dir, overwrite=True)     # again, now that nobody else can write
            rundir.clear_run(trainer.run_dir)
        return _fit(args, trainer, trainer.config.epochs, log)


@contextlib.contextmanager
def _tracking_warnings():
    """A tracker's TrackingWarning as one line on stderr (`tinygrad-s2s: warning: ...`), whatever
    PYTHONWARNINGS says (each tracker fails at most once: it is not called again)."""
    from ..training.loggers import TrackingWarning  # noqa: PLC0415
    with warnings.catch_warnings():
        warnings.simplefilter("always", TrackingWarning)       # the command's own message, never filtered
        shown = warnings.showwarning

        def show(message, category, *rest, **kw):
            if issubclass(category, TrackingWarning):
                print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, *rest, **kw)
        warnings.showwarning = show
        yield


def _position(exc) -> dict:
    """Where training stopped, as the message says it (`epoch` counts from 1) and as the checkpoint
    records it (`epochs_done`, the finished epochs)."""
    return {"epoch": exc.epoch + 1, "epochs_done": exc.epoch, "batch": exc.batch, "step": exc.step}


def _fit(args, trainer, epochs: int, log) -> int:
    from ..training.evaluation import example_rows, generate_batched  # noqa: PLC0415
    from ..training.loggers import TrackingError  # noqa: PLC0415
    from ..training.trainer import TrainingDiverged, TrainingInterrupted  # noqa: PLC0415
    ds, cfg = trainer.dataset, trainer.config
    if not trainer.comm.is_root:        # rank 0 speaks for a job of several ranks
        try:
            trainer.fit(epochs)
        except TrainingInterrupted as exc:
            return 128 + exc.signum
        except TrainingDiverged:
            return 1
        return 0
    ranks = f", {trainer.comm.size} ranks" if trainer.comm.distributed else ""
    print(f"{cfg.model} on {ds.name}: {len(ds.x_train)} training / {len(ds.x_test)} test examples, "
          f"vocabulary {len(ds.vocab)}, D={cfg.wordvec} H={cfg.hidden}, "
          f"{sum(p.size for p in trainer.model.parameters()):,} parameters, input "
          f"{'reversed' if ds.reverse else 'as written'}{ranks}; run: {trainer.run_dir}"
          + (f" (resumed at epoch {trainer.epoch + 1})" if args.resume else ""), file=log)
    if trainer.epoch >= epochs:
        print(f"{trainer.run_dir} has already trained {trainer.epoch} epochs; pass --epochs N with N > "
              f"{trainer.epoch} to train further", file=log)
    try:
        with _tracking_warnings():
            history = trainer.fit(epochs)
    except TrackingError as exc:
        print(f"{PROG}: error: {exc}; the run is saved: continue with `{PROG} train --resume --out "
              f"{trainer.run_dir}` (without --log-strict to go on without the tracker)", file=sys.stderr)
        if args.json:
            emit_json({"status": "tracking failed", "run": str(trainer.run_dir), "error": str(exc),
                       "epochs_done": trainer.epoch, "step": trainer.step, "history": trainer.history})
        return 1
    except TrainingInterrupted as exc:
        print(f"{PROG}: {exc}; continue with: {PROG} train --resume --out {trainer.run_dir}", file=sys.stderr)
        if args.json:
            emit_json({"status": "interrupted", "run": str(trainer.run_dir), "checkpoint": str(exc.checkpoint),
                       **_position(exc), "history": trainer.history})
        return 128 + exc.signum      # 130 for Ctrl-C, 143 SIGTERM, 129 SIGHUP, as the shell reports them
    except TrainingDiverged as exc:      # --json still gets its one object: what stopped, and where
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        if args.json:
            emit_json({"status": "diverged", "run": str(trainer.run_dir), "what": exc.what, "value": str(exc.value),
                       "checkpoint": str(exc.checkpoint), **_position(exc), "history": trainer.history})
        return 1
    last = history[-1] if history else None
    accuracy = last["test_accuracy"] if last else None
    print(f"test accuracy {100 * accuracy:.3f}% after {trainer.epoch} epoch{'s' if trainer.epoch != 1 else ''} (best "
          f"{100 * trainer.best_accuracy:.3f}%); run saved in {trainer.run_dir}" if last else
          f"no epoch trained; run in {trainer.run_dir}", file=log)
    if args.json:
        k = min(_SHOWN, len(ds.x_test))
        pred = generate_batched(trainer.model, ds.x_test[:k], ds.start_id, ds.t_test.shape[1] - 1)
        emit_json({"status": "finished", "run": str(trainer.run_dir), "model": cfg.model,
                   "dataset": ds.name, "epochs": trainer.epoch, "accuracy": accuracy,
                   "best_accuracy": trainer.best_accuracy, "examples": len(ds.x_test),
                   "train_examples": len(ds.x_train), "checkpoint": str(trainer.run_dir / "best.npz"),
                   "history": history, "predictions": example_rows(ds, ds.x_test[:k], ds.t_test[:k], pred)})
    return 0
