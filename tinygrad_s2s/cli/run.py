"""The `eval` and `predict` commands: use a trained run. With --json, stdout gets exactly one JSON
object and everything else goes to stderr."""
from __future__ import annotations

import contextlib
import secrets
import sys
from pathlib import Path

import numpy as np

from .argtypes import non_negative_int, positive_float, positive_int, probability
from .base import UsageError, emit_json


def add_subparsers(sub) -> None:
    """Add `eval` and `predict` to an argparse subparsers object."""
    p = sub.add_parser("eval", help="accuracy of a trained run on a dataset's test split",
                       description="Exact-match accuracy (batched greedy decoding, or beam search's best "
                                   "answer with --beam) of a run's best "
                                   "checkpoint (or the given checkpoint file) on the test split of the "
                                   "dataset it was trained on (refused when that file is gone or changed), "
                                   "or of --dataset, encoded and padded as the run was trained.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run directory or .npz checkpoint")
    p.add_argument("--dataset", help="evaluate on this dataset instead ('addition', 'date' or a path)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="which examples to evaluate (default test; train: those the run trained on, the first "
                        "--limit of them for a run trained with --limit; all: every example of the file)")
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N examples of the split")
    p.add_argument("--batch-size", type=positive_int, default=1000, help="questions decoded at once (default 1000)")
    p.add_argument("--beam", type=positive_int, default=1, metavar="B",
                   help="score beam search's best answer (B hypotheses per question) instead of greedy's")
    p.add_argument("--show", type=non_negative_int, default=10, metavar="K",
                   help="print the first K examples (default 10)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="answer questions with a trained run",
                       description="Answer each QUESTION with a trained run. Questions are padded to "
                                   "the training width and reversed if the run was trained reversed; "
                                   "each answer is at most the trained answer width.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run directory or .npz checkpoint")
    p.add_argument("questions", metavar="QUESTION", nargs="+", help='e.g. "16+75"')
    p.add_argument("--sample", action="store_true",
                   help="sample each character from the softmax instead of taking the argmax (book Fig. 7-4)")
    p.add_argument("--temperature", type=positive_float,
                   help="softmax temperature for --sample (default 1.0)")
    p.add_argument("--top-k", type=positive_int, metavar="K",
                   help="with --sample: draw only from the K most likely characters")
    p.add_argument("--top-p", type=probability, metavar="P",
                   help="with --sample: draw only from the smallest set of most likely characters whose "
                        "probability reaches P (nucleus sampling)")
    p.add_argument("--seed", type=non_negative_int, help="seed for --sample (default: a fresh one each time)")
    p.add_argument("--beam", type=positive_int, default=1, metavar="B",
                   help="beam search with B hypotheses per question; answers carry their scores "
                        "(summed log-probabilities)")
    p.add_argument("--nbest", type=positive_int, default=1, metavar="K",
                   help="with --beam: print the K best hypotheses of each question (K <= B)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_predict)


def _held_run_dir(path):
    """The lock of the run directory `path` is (or holds the checkpoint `path`), so no other process
    trains it meanwhile; nothing for a checkpoint outside a run or a directory we may not write."""
    from ..training import rundir  # noqa: PLC0415
    p = Path(path)
    d = p if p.is_dir() else p.parent
    if rundir.state(d)[0] != "run":
        return contextlib.nullcontext()
    return rundir.locked(d, create=False, optional=True)


# ---------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    """tinygrad-s2s eval: exact-match accuracy of a run on a split of its (or another) dataset; holds
    the run directory's lock meanwhile. Under mpiexec each rank decodes a part of the split and rank 0
    counts and reports them all."""
    from ..training import distributed  # noqa: PLC0415
    comm = distributed.world()
    with _held_run_dir(args.run) if comm.is_root else contextlib.nullcontext():
        return _evaluate(args, comm)


def _evaluate(args, comm) -> int:
    from ..data.datasets import OutOfVocabulary  # noqa: PLC0415
    from ..training.evaluation import example_rows, exact_match, format_examples, generate_batched  # noqa: PLC0415
    from ..training.fingerprint import DoesNotFit, dataset_of  # noqa: PLC0415
    from ..training.runfiles import load_run  # noqa: PLC0415
    def load():
        run = load_run(args.run, device=args.device)
        config = dict(run.config, limit=None, test_limit=None)
        try:
            return run, dataset_of(config, source=args.dataset)
        except (DoesNotFit, OutOfVocabulary) as exc:   # a file this model cannot read: the user's choice
            raise UsageError(str(exc)) from None
    run, ds = comm.agreed(load)      # a rank that cannot read them stops every rank
    trained = run.config.get("limit") if args.dataset is None else None   # the examples it saw, not the rest
    x, t = {"test": (ds.x_test, ds.t_test), "train": (ds.x_train[:trained], ds.t_train[:trained]),
            "all": (np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.t_train, ds.t_test]))}[args.split]
    x, t = x[:args.limit], t[:args.limit]
    if not len(x):
        raise ValueError(f"the {args.split} split of {ds.name} has no examples")
    part = comm.part(len(x))
    pred = comm.gather_rows(generate_batched(run.model, x[part], run.start_id, t.shape[1] - 1,
                                             batch_size=args.batch_size, beam=args.beam))
    if not comm.is_root:
        return 0
    ok = exact_match(pred, t)
    accuracy = float(ok.mean())
    log = sys.stderr if args.json else sys.stdout
    how = f"beam-{args.beam} " if args.beam > 1 else ""
    seen = f" (the first {trained:,}, which the run trained on)" if trained and args.split == "train" else ""
    chose = run.config.get("test_limit") if args.dataset is None and args.split == "test" else None
    if chose and chose < len(x):            # eval scores the whole split; training chose best.npz on a part
        seen = f" (training chose best.npz on the first {chose:,} of these {len(x):,})"
    print(f"{how}accuracy {100 * accuracy:.3f}% ({int(ok.sum())}/{len(ok)} exact matches) on the {args.split} "
          f"split{seen} of {ds.name} ({ds.path}); checkpoint {run.checkpoint}", file=log)
    k = args.show
    for line in format_examples(ds, x[:k], t[:k], pred[:k], log):
        print(line, file=log)
    if args.json:
        emit_json({"accuracy": accuracy, "correct": int(ok.sum()), "examples": len(ok),
                   "run": str(run.run_dir), "checkpoint": str(run.checkpoint), "dataset": ds.name,
                   "dataset_path": str(ds.path), "split": args.split, "beam": args.beam,
                   "predictions": example_rows(ds, x[:k], t[:k], pred[:k])})
    return 0


# ---------------------------------------------------------------- predict
def _check_predict_flags(args) -> None:
    for flag, value in (("--temperature", args.temperature), ("--top-k", args.top_k), ("--top-p", args.top_p),
                        ("--seed", args.seed)):
        if value is not None and not args.sample:
            raise UsageError(f"{flag} only applies with --sample")
    if args.sample and args.beam > 1:
        raise UsageError("--sample draws one answer; it cannot be combined with --beam")
    if args.nbest > args.beam:
        raise UsageError(f"--nbest {args.nbest} needs --beam of at least {args.nbest} (got --beam {args.beam})")


def cmd_predict(args) -> int:
    """tinygrad-s2s predict: answer typed questions (greedy, sampled with a temperature, top-k and
    top-p, or by beam search with the n best hypotheses and their scores)."""
    from ..backend.random import manual_seed  # noqa: PLC0415
    from ..data.datasets import unpad  # noqa: PLC0415
    from ..training.evaluation import generate_batched, shown  # noqa: PLC0415
    from ..training.runfiles import load_run  # noqa: PLC0415
    _check_predict_flags(args)
    run = load_run(args.run, device=args.device)
    try:
        x = run.encode_questions(args.questions)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    manual_seed(seed)
    temperature = args.temperature or 1.0
    if args.beam > 1:
        return _predict_beam(args, run, x)
    ids = generate_batched(run.model, x, run.start_id, run.answer_width - 1, sample=args.sample,
                           temperature=temperature, top_k=args.top_k, top_p=args.top_p)
    answers = [unpad(a) for a in run.vocab.decode_batch(ids)]
    if args.json:
        emit_json({"run": str(run.run_dir), "checkpoint": str(run.checkpoint), "sample": args.sample,
                   "temperature": temperature if args.sample else None, "seed": seed if args.sample else None,
                   "top_k": args.top_k, "top_p": args.top_p,
                   "predictions": [{"question": q, "answer": a} for q, a in zip(args.questions, answers)]})
    else:
        width = max(len(q) for q in args.questions)
        for q, a in zip(args.questions, answers):
            print(f"{q.ljust(width)} -> {shown(a)}")
    return 0


def _predict_beam(args, run, x) -> int:
    """predict --beam B [--nbest K]: each question's K best hypotheses with their scores, best first."""
    from ..data.datasets import unpad  # noqa: PLC0415
    from ..training.evaluation import beam_batched, shown  # noqa: PLC0415
    ids, scores = beam_batched(run.model, x, run.start_id, run.answer_width - 1, beam=args.beam, nbest=args.nbest)
    n, k, length = ids.shape
    texts = [unpad(a) for a in run.vocab.decode_batch(ids.reshape(n * k, length))]
    rows = [[{"answer": texts[i * k + j], "score": float(scores[i, j])} for j in range(k)] for i in range(n)]
    if args.json:
        emit_json({"run": str(run.run_dir), "checkpoint": str(run.checkpoint), "beam": args.beam,
                   "nbest": args.nbest, "score": "sum of the answer's log-probabilities",
                   "predictions": [{"question": q, "answer": hyps[0]["answer"], "hypotheses": hyps}
                                   for q, hyps in zip(args.questions, rows)]})
        return 0
    width = max(len(q) for q in args.questions)
    answer_width = max(len(shown(t)) for t in texts) if texts else 0
    for q, hyps in zip(args.questions, rows):
        for j, h in enumerate(hyps):
            lead = q.ljust(width) + " ->" if j == 0 else " " * (width + 3)
            print(f"{lead} {shown(h['answer']).ljust(answer_width)}  (log p {h['score']:.4f})")
    return 0
