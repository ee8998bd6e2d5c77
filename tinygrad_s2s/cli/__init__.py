"""The `tinygrad-s2s` command: collects the subcommands and maps errors to exit codes.

Exit codes: 0 success, 1 failure, 2 usage error (argparse's own, UsageError, an unknown model, a run
directory refused or in use by another process), 130 Ctrl-C (training: 143 SIGTERM, 129 SIGHUP,
which save and stop as Ctrl-C does). A failure prints one line
`tinygrad-s2s: error: ...` on stderr; TINYGRAD_S2S_DEBUG=1 shows the traceback.

Each module in COMMAND_MODULES defines its commands' parsers beside their handlers through
`add_subparsers(sub)`: a new subcommand is a change to one of them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .._version import __version__
from ..backend import allocator, blas_threads, compiled, envvars
from ..models.registry import UnknownModelError
from ..training.rundir import RunDirError
from .base import PROG, UsageError

COMMAND_MODULES = ("train", "run", "info", "graph", "compare", "export")
"""Modules of this package whose `add_subparsers(sub)` adds commands, in help order."""

_USAGE_ERRORS = (UsageError, UnknownModelError, RunDirError)


def check_environment() -> None:
    """Parse every environment variable the library reads (ValueError naming a value it does not know)."""
    allocator.enabled_by_environment()
    blas_threads.enabled()
    compiled.enabled_by_environment()
    envvars.flag(envvars.DEBUG, False)
    backend_name = os.environ.get("MPLBACKEND")
    if backend_name:    # matplotlib reads it at its first import: at the plot after a whole epoch of training
        try:    # importing matplotlib checks it too, unless another module imported it first
            from matplotlib import rcsetup  # noqa: PLC0415 - slow import, only when the variable is set
            rcsetup.validate_backend(backend_name)
        except ValueError as exc:
            raise ValueError(f"MPLBACKEND={backend_name!r}: {str(exc).removeprefix('Key backend: ')} (unset it; "
                             "the learning curve is drawn "
                             "without a GUI)") from None


def build_parser() -> argparse.ArgumentParser:
    """The full parser (every subcommand, the visualization ones included)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train, evaluate and inspect the seq2seq models of Deep Learning from "
                               "Scratch 2 (chapters 7-8) on a small define-by-run autograd engine.",
        epilog="Run `tinygrad-s2s COMMAND --help` for a command's options. Exit codes: 0 success, "
               "1 failure, 2 usage error, 130 interrupted (Ctrl-C; train saves and exits 143 on SIGTERM, "
               "129 on SIGHUP).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __package__).add_subparsers(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    # lines are joined, spaces inside a line kept: a quoted dataset line's padding is what is wrong
    msg = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
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
    args.argv = list(sys.argv[1:] if argv is None else argv)    # train --procs runs it again under mpiexec
    try:
        check_environment()     # a bad value is a usage error now, not an op's error halfway through a run
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    debug = envvars.flag(envvars.DEBUG, False)
    try:
        return int(args.func(args) or 0)
    except _USAGE_ERRORS as exc:
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

