"""The `graph` and `attention-map` subcommands of `tinygrad-s2s`.

`add_subparsers(subparsers)` is what the main CLI calls. Parsing stays import-light: networkx,
graphviz, matplotlib and the models are imported only when a command actually runs.
"""
from __future__ import annotations

import os
import sys

from .argtypes import model_arg as _model_arg, non_negative_int as _non_negative_int, positive_int as _positive_int
from ..viz import formats

DEFAULT_OUT_DIR = "graphviz_out"


def add_subparsers(subparsers) -> None:
    """Add `graph` and `attention-map` to an argparse subparsers object (each sets `func`)."""
    p = subparsers.add_parser(
        "graph", help="draw a model's computation graph, grouped by module (Graphviz)",
        description="Draw the computation graph of a registered model with one nested box per module "
                    "path. For the attention model the default is the attention of one decoder step "
                    "(the book's Fig. 8-16); --whole draws the whole unrolled model on a tiny batch. "
                    "Layout uses Graphviz's `dot` when installed, else the pip-installed graphviz-pure "
                    "(svg, png).")
    p.add_argument("model", nargs="?", default="attention",
                   help="registered model name (default: attention; see `tinygrad-s2s models`)")
    p.add_argument("--whole", action="store_true",
                   help="draw the whole unrolled model (loss of a tiny batch), not one attention step")
    p.add_argument("--format", choices=formats.ALL, default=None,
                   help="output format (default: from --out's extension, else svg); html is an "
                        "interactive page (one offline file: click module boxes to open them)")
    p.add_argument("--out", help="output file (default: graphviz_out/MODEL[-whole].FORMAT)")
    p.add_argument("--collapse", action="append", default=None, metavar="MODULE",
                   help="draw this module path (e.g. encoder, decoder.lstm) as a single box; "
                        "repeat or separate with commas")
    p.add_argument("--depth", type=_non_negative_int, default=None,
                   help="nest module boxes this many levels deep; each module one level deeper is "
                        "drawn as a single box holding all its ops (0: top-level modules are boxes)")
    p.add_argument("--roll", action="store_true",
                   help="fold the repeated calls of a module (time steps) and runs of identical blocks "
                        "(layers.0, layers.1, ...) into one box marked xT")
    p.add_argument("--no-shapes", dest="show_shapes", action="store_false",
                   help="leave tensor shapes out of the labels")
    p.add_argument("--seq-len", type=_positive_int, default=None,
                   help="source length T of the drawn input (default: 5 for one step, 3 for --whole)")
    p.add_argument("--hidden", type=_positive_int, default=4, help="hidden size H of the drawn model (default 4)")
    p.add_argument("--wordvec", type=_positive_int, default=3, help="embedding size D (default 3)")
    p.add_argument("--vocab", type=_positive_int, default=5, help="vocabulary size V (default 5)")
    p.add_argument("--grads", action="store_true",
                   help="html: run the loss's backward first, so the page can overlay every tensor's "
                        "gradient norm (needs --whole, or a model drawn whole)")
    p.add_argument("--model-arg", dest="model_args", action="append", type=_model_arg, default=None,
                   metavar="KEY=VALUE", help="extra keyword for the model's constructor, as in `train` "
                   "(layers=1, fused=false); repeatable")
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
                   help="characters to decode, at most the run's answer length (the default)")
    p.add_argument("--beam", type=_positive_int, default=1, metavar="B",
                   help="decode by beam search with B hypotheses and draw the attention of its best answer "
                        "(default 1: greedy)")
    p.set_defaults(func=cmd_attention_map)


def _split_collapse(values):
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def _output_path(args) -> tuple[str, str]:
    """(format, path) from --format and --out; a contradiction or an unknown extension is a usage error."""
    from .base import UsageError  # noqa: PLC0415 - the CLI layer sits above viz; its error class

    fmt = args.format
    ext = formats.extension(args.out) if args.out else ""
    if args.out and fmt is None:
        if ext not in formats.ALL:
            raise UsageError(f"--out {args.out!r}: unknown extension; use one of "
                             f"{formats.listed(formats.ALL)} or pass --format")
        fmt = ext
    fmt = fmt or "svg"
    if args.out is None:
        stem = args.model + ("-whole" if args.whole else "")
        return fmt, os.path.join(DEFAULT_OUT_DIR, f"{stem}.{fmt}")
    if ext in formats.ALL and ext != fmt:
        raise UsageError(f"--out {args.out!r} is a .{ext} file but --format is {fmt}; make them agree")
    return fmt, args.out if ext == fmt else f"{args.out}.{fmt}"


def _check_flags(args, fmt: str) -> None:
    """Flags that belong to the other kind of output are usage errors, before any work is done."""
    from .base import UsageError  # noqa: PLC0415

    if fmt == formats.HTML and (args.collapse or args.depth is not None or args.roll or not args.show_shapes):
        raise UsageError("--collapse, --depth, --roll and --no-shapes shape static drawings; the html "
                         "page opens and folds boxes on click (and takes #expand=PATH,PATH in its URL)")
    if fmt != formats.HTML and args.grads:
        raise UsageError("--grads overlays gradient norms on the html page; add --format html")


def cmd_graph(args) -> int:
    """Build, lay out and save a model's graph; prints the file written (and any note on stderr)."""
    from .base import UsageError, require_model  # noqa: PLC0415
    from ..viz.dot import to_dot  # noqa: PLC0415 - heavy imports wait until the command runs
    from ..viz.html import to_html  # noqa: PLC0415
    from ..viz.model_graphs import model_graph  # noqa: PLC0415
    from ..viz.render import render  # noqa: PLC0415

    fmt, out = _output_path(args)
    _check_flags(args, fmt)
    extra = dict(args.model_args or ())
    require_model(args.model, extra)
    try:
        drawn = model_graph(args.model, whole=args.whole, seq_len=args.seq_len, vocab_size=args.vocab,
                            wordvec_size=args.wordvec, hidden_size=args.hidden, **extra)
    except TypeError as exc:      # an unknown --model-arg reaches the constructor as a bad keyword
        if not extra:
            raise
        raise UsageError(f"model '{args.model}' does not take these arguments {sorted(extra)}: {exc}") from None
    if drawn.note:
        print(f"tinygrad-s2s graph: note: {drawn.note}", file=sys.stderr)
    if fmt == formats.HTML:
        if args.grads:
            loss = drawn.outputs[0]
            if loss.size != 1:
                raise UsageError(f"--grads: the drawing's output is {drawn.outputs[0].shape}, not a scalar "
                                 "loss; add --whole")
            loss.backward(retain_graph=True)
        print(to_html(drawn.outputs, out, module=drawn.module, title=drawn.title))
        return 0
    try:
        g = to_dot(*drawn.outputs, collapse=_split_collapse(args.collapse), depth=args.depth, roll=args.roll,
                   show_shapes=args.show_shapes, module=drawn.module, title=drawn.title)
    except ValueError as exc:
        if args.collapse and str(exc).startswith("collapse:"):   # a module name the user typed
            raise UsageError(f"--{exc}") from None
        raise
    path = render(g, out)
    print(path)
    return 0


def cmd_attention_map(args) -> int:
    """Decode one question with a trained run and save its attention heatmap; prints the file."""
    from .base import UsageError  # noqa: PLC0415
    from ..training.trainer import load_run  # noqa: PLC0415 - the trainer pulls in the data pipeline
    from ..viz.heatmap import attention_map_for_run  # noqa: PLC0415

    run = load_run(args.run)
    most = run.answer_width - 1            # the answer's characters after the start mark
    if args.length is not None and args.length > most:
        raise UsageError(f"--length {args.length}: this run was trained on answers of {most} characters "
                         f"(answer width {run.answer_width} with the start mark); ask for at most {most}")
    out = args.out or os.path.join(DEFAULT_OUT_DIR, "attention_map.png")
    path = attention_map_for_run(run, args.question, out, length=args.length, source=args.run, beam=args.beam)
    print(path)
    return 0
