"""The `compare` command: several runs of one task in one figure and one table (the book's Fig. 7-23
and 7-26 as a command)."""
from __future__ import annotations

import os

from .base import UsageError, emit_json
from .graph import DEFAULT_OUT_DIR

DEFAULT_OUT = os.path.join(DEFAULT_OUT_DIR, "compare.png")


def add_subparsers(sub) -> None:
    """Add `compare` to an argparse subparsers object."""
    p = sub.add_parser(
        "compare", help="draw several runs' test accuracy and loss per epoch in one figure",
        description="Compare runs of one task: test accuracy and training loss per epoch in one figure, one "
                    "line per run, labelled by the settings that differ between their configs, and a table "
                    "of each run's best and final accuracy, epochs and training time. A run still training "
                    "is drawn up to its last finished epoch; runs of different tasks are refused.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (the --out of `train`)")
    p.add_argument("--out", default=None, metavar="FIG",
                   help=f"the figure (.png, .svg or .pdf; default {DEFAULT_OUT})")
    p.add_argument("--title", help="the figure's title (default: the task and the number of runs)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (the runs, their labels, results and histories)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    """tinygrad-s2s compare: the figure, then the table (or the JSON object)."""
    from ..tracking.compare import TaskMismatch, compare_figure, load_runs, save_figure, table  # noqa: PLC0415
    try:
        runs = load_runs(args.runs)
    except TaskMismatch as exc:
        raise UsageError(str(exc)) from None
    out = save_figure(compare_figure(runs, args.title), args.out or DEFAULT_OUT)
    if args.json:
        emit_json({"figure": str(out), "runs": [r.as_dict() for r in runs]})
    else:
        print(table(runs))
        print(f"figure: {out}")
    return 0
