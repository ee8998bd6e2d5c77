"""The `train`, `eval` and `predict` commands (parsers in cli.py). Each returns its exit code; with
--json, stdout gets exactly one JSON object and everything else goes to stderr."""
from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import numpy as np

from .cli import PROG, UsageError

RUNS = Path("runs")
_SHOWN = 10     # examples listed in train's JSON


def _emit_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _examples(dataset, x, t, pred) -> list[dict]:
    from .train import exact_match  # noqa: PLC0415
    vocab = dataset.vocab
    return [{"question": q, "expected": e.rstrip(), "predicted": p.rstrip(), "correct": bool(ok)}
            for q, e, p, ok in zip(dataset.question_text(x), vocab.decode_batch(np.asarray(t)[:, 1:]),
                                   vocab.decode_batch(pred), exact_match(pred, t))]


def _fresh_run_dir(model: str, dataset: str) -> Path:
    """runs/MODEL-DATASET, or the first free runs/MODEL-DATASET-N: a new run never overwrites one."""
    base = RUNS / f"{model}-{dataset}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _check_model(name: str) -> None:
    from .registry import available_models  # noqa: PLC0415
    known = available_models()
    if name not in known:
        raise UsageError(f"unknown model '{name}'; registered models: {', '.join(known) or 'none'} "
                         "(see `tinygrad-s2s models`)")


# ---------------------------------------------------------------- train
# options a resumed run takes from its saved config (given again, they must agree with it)
_KEPT_ON_RESUME = ("model", "reverse", "batch_size", "wordvec", "hidden", "lr", "lr_schedule", "max_grad", "seed",
                   "limit",
                   "test_limit")


def _resume_trainer(args, log):
    from .runfiles import LAST, load_checkpoint  # noqa: PLC0415
    from .train import Trainer  # noqa: PLC0415
    if not args.out:
        raise UsageError("--resume needs --out RUN_DIR, the run to continue")
    run_dir = Path(args.out)
    if not (run_dir / LAST).is_file():
        raise FileNotFoundError(f"nothing to resume: {run_dir / LAST} does not exist")
    config = load_checkpoint(run_dir / LAST)[2]["config"]
    if args.model_args:
        raise UsageError("--model-arg cannot change a resumed run: its model is rebuilt from the saved config")
    for key in _KEPT_ON_RESUME:
        given = getattr(args, key)
        if given is not None and given != config.get(key):
            flag = key if key == "model" else "--" + key.replace("_", "-")
            raise UsageError(f"{flag} {given} differs from the run's {config.get(key)}; a resumed run keeps "
                             "its settings (only --epochs and --device may change)")
    if args.dataset is not None and args.dataset != config["dataset"] and \
            str(Path(args.dataset).resolve()) != config["dataset_path"]:
        raise UsageError(f"--dataset {args.dataset} differs from the run's {config['dataset']}")
    trainer = Trainer.resume(run_dir, device=args.device, log=log, progress=args.progress)
    return trainer, args.epochs or config["epochs"]


def _new_trainer(args, log):
    import tinygrad_s2s as tg  # noqa: PLC0415
    from .data import load_dataset  # noqa: PLC0415
    from .runfiles import LAST  # noqa: PLC0415
    from .train import BOOK_DEFAULTS, Trainer  # noqa: PLC0415
    if not args.model:
        raise UsageError("MODEL is required (or --resume --out RUN_DIR to continue a run)")
    _check_model(args.model)
    if args.max_grad is not None and args.max_grad < 0:
        raise UsageError(f"--max-grad must be 0 (off) or positive, got {args.max_grad}")
    source = args.dataset or "addition"
    name = Path(source).stem if source not in BOOK_DEFAULTS else source
    book = BOOK_DEFAULTS.get(name, BOOK_DEFAULTS["addition"])
    reverse = book["reverse"] if args.reverse is None else args.reverse
    ds = load_dataset(source, reverse=reverse)
    if args.limit or args.test_limit:
        ds = ds.limit(args.limit, args.test_limit)
    run_dir = Path(args.out) if args.out else _fresh_run_dir(args.model, ds.name)
    if (run_dir / LAST).exists():
        raise UsageError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    seed = 0 if args.seed is None else args.seed
    wordvec = args.wordvec or book["wordvec"]
    hidden = args.hidden or book["hidden"]
    tg.manual_seed(seed)
    extra = dict(args.model_args or ())
    try:
        model = tg.create_model(args.model, len(ds.vocab), wordvec_size=wordvec, hidden_size=hidden, **extra)
    except TypeError as exc:      # an unknown --model-arg reaches the constructor as a bad keyword
        raise UsageError(f"model '{args.model}' does not take these arguments {sorted(extra)}: {exc}") from None
    if args.device != "cpu":
        model.to(args.device)
    config = {"model": args.model, "seed": seed, "wordvec": wordvec, "hidden": hidden, "device": args.device}
    trainer = Trainer(model, ds, lr=args.lr or 1e-3, lr_schedule=args.lr_schedule or "constant",
                      max_grad=5.0 if args.max_grad is None else args.max_grad,
                      batch_size=args.batch_size or 128, run_dir=run_dir, config=config, log=log,
                      progress=args.progress)
    return trainer, args.epochs or book["epochs"]


def cmd_train(args) -> int:
    """tinygrad-s2s train: a new run, or --resume one; prints the test accuracy."""
    from .train import TrainingInterrupted, generate_batched  # noqa: PLC0415
    log = sys.stderr if args.json else sys.stdout
    trainer, epochs = (_resume_trainer if args.resume else _new_trainer)(args, log)
    ds, cfg = trainer.dataset, trainer.config
    print(f"{cfg['model']} on {ds.name}: {len(ds.x_train)} training / {len(ds.x_test)} test examples, "
          f"vocabulary {len(ds.vocab)}, D={cfg['wordvec']} H={cfg['hidden']}, "
          f"{sum(p.size for p in trainer.model.parameters()):,} parameters, input "
          f"{'reversed' if ds.reverse else 'as written'}; run: {trainer.run_dir}"
          + (f" (resumed at epoch {trainer.epoch + 1})" if args.resume else ""), file=log)
    if trainer.epoch >= epochs:
        print(f"{trainer.run_dir} has already trained {trainer.epoch} epochs; pass --epochs N with N > "
              f"{trainer.epoch} to train further", file=log)
    try:
        history = trainer.fit(epochs)
    except TrainingInterrupted as exc:
        print(f"{PROG}: {exc}; continue with: {PROG} train --resume --out {trainer.run_dir}", file=sys.stderr)
        if args.json:
            _emit_json({"status": "interrupted", "run": str(trainer.run_dir), "checkpoint": str(exc.checkpoint),
                        "epoch": exc.epoch, "batch": exc.batch, "step": exc.step, "history": trainer.history})
        return 130
    last = history[-1] if history else None
    accuracy = last["test_accuracy"] if last else None
    print(f"test accuracy {100 * accuracy:.3f}% after {trainer.epoch} epochs (best "
          f"{100 * trainer.best_accuracy:.3f}%); run saved in {trainer.run_dir}" if last else
          f"no epoch trained; run in {trainer.run_dir}", file=log)
    if args.json:
        k = min(_SHOWN, len(ds.x_test))
        pred = generate_batched(trainer.model, ds.x_test[:k], ds.start_id, ds.t_test.shape[1] - 1)
        _emit_json({"status": "finished", "run": str(trainer.run_dir), "model": cfg["model"],
                    "dataset": ds.name, "epochs": trainer.epoch, "accuracy": accuracy,
                    "best_accuracy": trainer.best_accuracy, "examples": len(ds.x_test),
                    "train_examples": len(ds.x_train), "checkpoint": str(trainer.run_dir / "best.npz"),
                    "history": history, "predictions": _examples(ds, ds.x_test[:k], ds.t_test[:k], pred)})
    return 0


# ---------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    """tinygrad-s2s eval: exact-match accuracy of a run on a split of its (or another) dataset."""
    from .train import dataset_of, exact_match, format_examples, generate_batched  # noqa: PLC0415
    from .runfiles import load_run  # noqa: PLC0415
    run = load_run(args.run, device=args.device)
    config = dict(run.config, limit=None, test_limit=None)
    ds = dataset_of(config, source=args.dataset)
    x, t = {"test": (ds.x_test, ds.t_test), "train": (ds.x_train, ds.t_train),
            "all": (np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.t_train, ds.t_test]))}[args.split]
    x, t = x[:args.limit], t[:args.limit]
    if not len(x):
        raise ValueError(f"the {args.split} split of {ds.name} has no examples")
    pred = generate_batched(run.model, x, run.start_id, t.shape[1] - 1, batch_size=args.batch_size)
    ok = exact_match(pred, t)
    accuracy = float(ok.mean())
    log = sys.stderr if args.json else sys.stdout
    print(f"accuracy {100 * accuracy:.3f}% ({int(ok.sum())}/{len(ok)} exact matches) on the {args.split} "
          f"split of {ds.name} ({ds.path}); checkpoint {run.checkpoint}", file=log)
    k = max(args.show, 0)
    for line in format_examples(ds, x[:k], t[:k], pred[:k], log):
        print(line, file=log)
    if args.json:
        _emit_json({"accuracy": accuracy, "correct": int(ok.sum()), "examples": len(ok),
                    "run": str(run.run_dir), "checkpoint": str(run.checkpoint), "dataset": ds.name,
                    "dataset_path": str(ds.path), "split": args.split,
                    "predictions": _examples(ds, x[:k], t[:k], pred[:k])})
    return 0


# ---------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    """tinygrad-s2s predict: answer typed questions (greedy, or sampled with a temperature)."""
    import tinygrad_s2s as tg  # noqa: PLC0415
    from .runfiles import load_run  # noqa: PLC0415
    if args.temperature is not None and not args.sample:
        raise UsageError("--temperature only applies with --sample")
    run = load_run(args.run, device=args.device)
    try:
        x = run.encode_questions(args.questions)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    tg.manual_seed(seed)
    from .train import generate_batched  # noqa: PLC0415
    temperature = args.temperature or 1.0
    ids = generate_batched(run.model, x, run.start_id, run.answer_width - 1, sample=args.sample,
                           temperature=temperature)
    answers = [a.rstrip() for a in run.vocab.decode_batch(ids)]
    if args.json:
        _emit_json({"run": str(run.run_dir), "checkpoint": str(run.checkpoint), "sample": args.sample,
                    "temperature": temperature if args.sample else None, "seed": seed if args.sample else None,
                    "predictions": [{"question": q, "answer": a} for q, a in zip(args.questions, answers)]})
    else:
        width = max(len(q) for q in args.questions)
        for q, a in zip(args.questions, answers):
            print(f"{q.ljust(width)} -> {a}")
    return 0
