"""The `tinygrad-s2s` command: argument parsing, dispatch and the error convention.

Exit codes: 0 success, 1 failure, 2 usage error (argparse's own, or UsageError), 130 Ctrl-C. A
failure prints one line `tinygrad-s2s: error: ...` on stderr; TINYGRAD_S2S_DEBUG=1 shows the traceback.
The train/eval/predict commands live in `cli_run.py`, the inspection commands in `cli_info.py`.
"""
from __future__ import annotations

import argparse
import os
import sys

from .argtypes import model_arg as _model_arg, positive_float as _positive_float, positive_int as _positive_int

PROG = "tinygrad-s2s"


class UsageError(Exception):
    """A command line that parses but makes no sense (exit code 2)."""


def _add_train(sub) -> None:
    from . import cli_run  # noqa: PLC0415 - the heavy imports wait until a command runs
    p = sub.add_parser(
        "train", help="train a registered model on a dataset",
        description="Train MODEL on a dataset. The defaults reproduce the book: addition with D=16, "
                    "H=128 for 25 epochs; date with D=16, H=256, reversed input, for 10 epochs. The run "
                    "(config, metrics, best/last checkpoints, learning curve) is kept in --out.")
    p.add_argument("model", nargs="?", help="registered model name (see `tinygrad-s2s models`); "
                                            "optional with --resume")
    p.add_argument("--dataset", default=None,
                   help="'addition', 'date' or the path of a file in the same format (default: addition, "
                        "or the resumed run's)")
    p.add_argument("--reverse", action=argparse.BooleanOptionalAction, default=None,
                   help="reverse each input question (default: on for date, off otherwise)")
    p.add_argument("--epochs", type=_positive_int, help="total epochs (default: 25 addition, 10 date)")
    p.add_argument("--batch-size", type=_positive_int, help="mini-batch size (default 128)")
    p.add_argument("--wordvec", type=_positive_int, help="embedding size D (default 16)")
    p.add_argument("--hidden", type=_positive_int, help="hidden size H (default: 128 addition, 256 date)")
    p.add_argument("--lr", type=_positive_float, help="Adam learning rate (default 0.001)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"),
                   help="constant (default, as the book), or cosine: annealed from --lr to 0 over --epochs")
    p.add_argument("--max-grad", type=float, help="clip the global gradient norm to this (default 5.0; "
                                                  "0 turns clipping off)")
    p.add_argument("--seed", type=int, help="seed of initialisation and batch order (default 0)")
    p.add_argument("--model-arg", dest="model_args", action="append", type=_model_arg, default=None,
                   metavar="KEY=VALUE", help="extra keyword for the model's constructor, repeatable; "
                   "VALUE is read as JSON when it parses (layers=2, dropout=0.1, fused=false)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train (default cpu)")
    p.add_argument("--out", help="run directory (default: runs/MODEL-DATASET, numbered if taken)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--limit", type=_positive_int, help="use only the first N training examples (quick trials)")
    p.add_argument("--test-limit", type=_positive_int,
                   help="evaluate on only the first N test examples (quick trials)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress on stderr)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=cli_run.cmd_train)


def _add_eval(sub) -> None:
    from . import cli_run  # noqa: PLC0415
    p = sub.add_parser("eval", help="accuracy of a trained run on a dataset's test split",
                       description="Exact-match accuracy (batched greedy decoding) of a run's best "
                                   "checkpoint (or the given checkpoint file) on the test split of the "
                                   "dataset it was trained on, or of --dataset.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run directory or .npz checkpoint")
    p.add_argument("--dataset", help="evaluate on this dataset instead ('addition', 'date' or a path)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="which examples to evaluate (default test)")
    p.add_argument("--limit", type=_positive_int, help="evaluate only the first N examples of the split")
    p.add_argument("--batch-size", type=_positive_int, default=1000, help="questions decoded at once")
    p.add_argument("--show", type=int, default=10, metavar="K", help="print the first K examples (default 10)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cli_run.cmd_eval)


def _add_predict(sub) -> None:
    from . import cli_run  # noqa: PLC0415
    p = sub.add_parser("predict", help="answer questions with a trained run",
                       description="Answer each QUESTION with a trained run. Questions are padded to "
                                   "the training width and reversed if the run was trained reversed.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run directory or .npz checkpoint")
    p.add_argument("questions", metavar="QUESTION", nargs="+", help='e.g. "16+75"')
    p.add_argument("--sample", action="store_true",
                   help="sample each character from the softmax instead of taking the argmax (book Fig. 7-4)")
    p.add_argument("--temperature", type=_positive_float,
                   help="softmax temperature for --sample (default 1.0)")
    p.add_argument("--seed", type=int, help="seed for --sample (default: a fresh one each time)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cli_run.cmd_predict)


def _add_info(sub) -> None:
    from . import cli_info  # noqa: PLC0415
    p = sub.add_parser("models", help="list registered models and where each comes from",
                       description="List the registered models and where each comes from (entry-point "
                                   "plugin and package, or the module that registered it).")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cli_info.cmd_models)

    p = sub.add_parser("datasets", help="list datasets with sizes, vocabulary and an example",
                       description="List the built-in tasks (generated into the data root on first use) "
                                   "and any other dataset files there. The data root is "
                                   "$TINYGRAD_S2S_DATA, else ./datasets.")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cli_info.cmd_datasets)

    p = sub.add_parser("gradcheck", help="check a model's gradients against central differences",
                       description="Gradient-check a registered model's whole loss at tiny sizes in "
                                   "float64 (sampled entries of every parameter). Exit 1 names the "
                                   "parameter and index on a mismatch.")
    p.add_argument("model", help="registered model name")
    p.add_argument("--entries", type=_positive_int, default=6,
                   help="entries checked per parameter (default 6)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, inputs and sampled entries")
    p.set_defaults(func=cli_info.cmd_gradcheck)


def build_parser() -> argparse.ArgumentParser:
    """The full parser (every subcommand, the visualization ones included)."""
    from .viz.commands import add_subparsers as _add_viz  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog=PROG, description="Train, evaluate and inspect the seq2seq models of Deep Learning from "
                               "Scratch 2 (chapters 7-8) on a small define-by-run autograd engine.",
        epilog="Run `tinygrad-s2s COMMAND --help` for a command's options.")
    from . import __version__  # noqa: PLC0415
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_eval(sub)
    _add_predict(sub)
    _add_info(sub)
    _add_viz(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (KeyError, AttributeError, IndexError, NameError)):
        msg = f"{type(exc).__name__}: {msg} (set TINYGRAD_S2S_DEBUG=1 for the traceback)"
    return msg


def main(argv=None) -> int:
    """Run the command line `argv` (default sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:     # --help (0) and usage errors (2) exit from inside argparse
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = os.environ.get("TINYGRAD_S2S_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:       # `tinygrad-s2s models | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so the exit flush is quiet
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # run the package's own module, so UsageError raised by the commands is the class caught here
    from tinygrad_s2s.cli import main as _main
    sys.exit(_main())
