"""The `graph` and `attention-map` subcommands of `tinygrad-s2s`.

`add_subparsers(subparsers)` is what the main CLI calls. Parsing stays import-light: networkx,
graphviz, matplotlib and the models are imported only when a command actually runs.
"""
from __future__ import annotations

import os

from ..argtypes import non_negative_int as _non_negative_int, positive_int as _positive_int

FORMATS = ("svg", "png", "pdf", "dot")
DEFAULT_OUT_DIR = "graphviz_out"


def add_subparsers(subparsers) -> None:
    """Add `graph` and `attention-map` to an argparse subparsers object (each sets `func`)."""
    p = subparsers.add_parser(
        "graph", help="draw a model's computation graph, grouped by module (Graphviz)",
        description="Draw the computation graph of a registered model with one nested box per module "
                    "path. For the attention model the default is the attention of one decoder step "
                    "(the book's Fig. 8-16); --whole draws the whole unrolled model on a tiny batch. "
                    "Without Graphviz's `dot` the .dot file is still written.")
    p.add_argument("model", nargs="?", default="attention",
                   help="registered model name (default: attention; see `tinygrad-s2s models`)")
    p.add_argument("--whole", action="store_true",
                   help="draw the whole unrolled model (loss of a tiny batch), not one attention step")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: from --out's extension, else svg)")
    p.add_argument("--out", help="output file (default: graphviz_out/MODEL[-whole].FORMAT)")
    p.add_argument("--collapse", action="append", default=None, metavar="MODULE",
                   help="draw this module path (e.g. encoder, decoder.lstm) as a single box; "
                        "repeat or separate with commas")
    p.add_argument("--depth", type=_non_negative_int, default=None,
                   help="nest module boxes at most this deep; deeper modules merge into their "
                        "ancestor (0: no boxes)")
    p.add_argument("--no-shapes", dest="show_shapes", action="store_false",
                   help="leave tensor shapes out of the labels")
    p.add_argument("--seq-len", type=_positive_int, default=None,
                   help="source length T of the drawn input (default: 5 for one step, 3 for --whole)")
    p.add_argument("--hidden", type=_positive_int, default=4, help="hidden size H of the drawn model (default 4)")
    p.add_argument("--wordvec", type=_positive_int, default=3, help="embedding size D (default 3)")
    p.add_argument("--vocab", type=_positive_int, default=5, help="vocabulary size V (default 5)")
    p.set_defaults(func=cmd_graph)

    p = subparsers.add_parser(
        "attention-map", help="heatmap of a trained attention run's weights for one question",
        description="Decode QUESTION with a trained attention run and save the attention weights as "
                    "a heatmap (the book's Fig. 8-26: output characters down, input characters across).")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run directory (or checkpoint) of an attention model")
    p.add_argument("question", metavar="QUESTION", help='e.g. "september 27, 1994"')
    p.add_argument("--out", help="output image (default: graphviz_out/attention_map.png); "
                                 "the extension picks the format (png, svg, pdf)")
    p.add_argument("--length", type=_positive_int, default=None,
                   help="characters to decode (default: the run's answer length)")
    p.set_defaults(func=cmd_attention_map)


def _split_collapse(values):
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def cmd_graph(args) -> int:
    """Build, lay out and save a model's graph; prints the file written."""
    from .model_graphs import model_graph  # noqa: PLC0415 - heavy imports wait until the command runs
    from .dot import to_dot  # noqa: PLC0415
    from .render import render  # noqa: PLC0415

    fmt = args.format
    if args.out and fmt is None:
        ext = os.path.splitext(args.out)[1].lower().lstrip(".")
        fmt = ext if ext in FORMATS else None
        if fmt is None:
            raise ValueError(f"--out {args.out!r}: unknown extension; use one of "
                             f"{', '.join('.' + f for f in FORMATS)} or pass --format")
    fmt = fmt or "svg"
    out = args.out
    if out is None:
        stem = args.model + ("-whole" if args.whole else "")
        out = os.path.join(DEFAULT_OUT_DIR, f"{stem}.{fmt}")
    else:
        ext = os.path.splitext(out)[1].lower().lstrip(".")
        if ext in FORMATS and ext != fmt:
            raise ValueError(f"--out {out!r} is a .{ext} file but --format is {fmt}; make them agree")
        if ext != fmt:
            out = f"{out}.{fmt}"

    drawn = model_graph(args.model, whole=args.whole, seq_len=args.seq_len, vocab_size=args.vocab,
                        wordvec_size=args.wordvec, hidden_size=args.hidden)
    g = to_dot(*drawn.outputs, collapse=_split_collapse(args.collapse), depth=args.depth,
               show_shapes=args.show_shapes, module=drawn.module, title=drawn.title)
    path = render(g, out)
    print(path)
    return 0


def cmd_attention_map(args) -> int:
    """Decode one question with a trained run and save its attention heatmap; prints the file."""
    from .heatmap import attention_map_for_run  # noqa: PLC0415

    out = args.out or os.path.join(DEFAULT_OUT_DIR, "attention_map.png")
    path = attention_map_for_run(args.run, args.question, out, length=args.length)
    print(path)
    return 0
