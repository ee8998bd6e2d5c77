"""The `models`, `datasets`, `gradcheck` and `check` commands: what is registered and available, and
whether a model keeps the plugin contract."""
from __future__ import annotations

import sys

from .argtypes import model_arg, non_negative_int, positive_int
from .base import UsageError, emit_json, require_model


def add_subparsers(sub) -> None:
    """Add `models`, `datasets` and `gradcheck` to an argparse subparsers object."""
    p = sub.add_parser("models", help="list registered models and where each comes from",
                       description="List the registered models and where each comes from (entry-point "
                                   "plugin and package, or the module that registered it).")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("datasets", help="list datasets with sizes, vocabulary and an example",
                       description="List the built-in tasks (generated into the data root on first use) "
                                   "and any other dataset files there. The data root is "
                                   "$TINYGRAD_S2S_DATA, else ./datasets.")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("gradcheck", help="check a model's gradients against central differences",
                       description="Gradient-check a registered model's whole loss at tiny sizes in "
                                   "float64 (sampled entries of every parameter). Exit 1 names the "
                                   "parameter and index on a mismatch.")
    p.add_argument("model", help="registered model name")
    p.add_argument("--entries", type=positive_int, default=6,
                   help="entries checked per parameter (default 6)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the weights, inputs and sampled entries (default 0)")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("check", help="check that a model keeps the plugin contract",
                       description="Run the plugin conformance battery on a registered model at tiny "
                                   "sizes: it builds, one optimizer step on a scalar float loss, a "
                                   "whole-model gradient check, generate's shape and dtype, greedy = "
                                   "beam 1, a save/load round trip through its config, the strict fake "
                                   "GPU, a drawing. Exit 1 quotes the contract item a failure broke. "
                                   "Also reports, without requiring it, whether the decoder exports to "
                                   "ONNX and matches (needs the 'export' extra).")
    p.add_argument("model", help="registered model name")
    p.add_argument("--model-arg", dest="model_args", action="append", type=model_arg, default=[],
                   metavar="KEY=VALUE", help="extra keyword for the model's constructor, repeatable "
                                             "(VALUE read as JSON when it parses)")
    p.add_argument("--no-device", dest="device", action="store_false", help="skip the fake-GPU item")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights and inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_check)


def cmd_models(args) -> int:
    """tinygrad-s2s models: every registered model and where it comes from."""
    from ..models.registry import available_models  # noqa: PLC0415
    models = available_models()
    if args.json:
        emit_json({"models": models})
        return 0
    if not models:
        print("no models registered (plugins register through the 'tinygrad_s2s.models' entry-point group)")
        return 0
    width = max(len(n) for n in models)
    for name, source in models.items():
        print(f"{name.ljust(width)}  {source}")
    return 0


def _describe(name, path, description="") -> dict:
    from ..data.datasets import Vocab, read_examples, unpad  # noqa: PLC0415
    row = {"name": name, "path": str(path), "description": description}
    try:
        questions, answers = read_examples(path)
    except ValueError as exc:
        return dict(row, error=str(exc))
    vocab = Vocab(set("".join(questions)) | set("".join(answers)))
    return dict(row, examples=len(questions), question_width=len(questions[0]),
                answer_width=len(answers[0]), vocab_size=len(vocab), vocab="".join(vocab.chars),
                example={"question": unpad(questions[0]), "answer": unpad(answers[0][1:])})


def cmd_datasets(args) -> int:
    """tinygrad-s2s datasets: built-in tasks (generated on first use) and other files in the data root."""
    from ..data.datasets import BUILTIN_TASKS, data_root, dataset_path  # noqa: PLC0415
    root = data_root()
    rows = []
    for name, task in BUILTIN_TASKS.items():
        if not (root / f"{name}.txt").exists():
            print(f"generating {root / (name + '.txt')} ...", file=sys.stderr, flush=True)
        rows.append(_describe(name, dataset_path(name), task.description))
    if root.is_dir():
        for path in sorted(root.glob("*.txt")):
            if path.stem not in BUILTIN_TASKS:
                rows.append(_describe(path.stem, path))
    if args.json:
        emit_json({"data_root": str(root), "datasets": rows})
        return 0
    print(f"data root: {root}")
    for r in rows:
        if "error" in r:
            print(f"\n{r['name']}: unreadable: {r['error']}")
            continue
        print(f"\n{r['name']}: {r['examples']:,} examples, question width {r['question_width']}, answer width "
              f"{r['answer_width']} (with '_'), vocabulary {r['vocab_size']}: {r['vocab']!r}")
        if r["description"]:
            print(f"  {r['description']}")
        print(f"  e.g. {r['example']['question']!r} -> {r['example']['answer']!r}")
        print(f"  {r['path']}")
    return 0


def cmd_gradcheck(args) -> int:
    """tinygrad-s2s gradcheck MODEL: the model's loss gradients against float64 central differences."""
    from ..testing import gradcheck_model  # noqa: PLC0415
    require_model(args.model)
    try:
        counts = gradcheck_model(args.model, max_entries=args.entries, seed=args.seed)
    except AssertionError as exc:
        raise RuntimeError(f"gradcheck {args.model} failed: {exc}") from None
    width = max(len(n) for n in counts)
    for name, n in counts.items():
        print(f"  {name.ljust(width)}  {n} entries")
    print(f"gradcheck {args.model}: OK, {len(counts)} parameters, {sum(counts.values())} entries match "
          "float64 central differences")
    return 0


def cmd_check(args) -> int:
    """tinygrad-s2s check MODEL: the plugin contract, item by item (tg.testing.check_model)."""
    from ..models.contract import CONTRACT, ContractError  # noqa: PLC0415
    from ..testing import check_exportable, check_model  # noqa: PLC0415
    extra = dict(args.model_args)
    require_model(args.model, extra)
    try:
        checked = check_model(args.model, seed=args.seed, device=args.device, **extra)
    except ContractError as exc:     # a value the model refuses (heads=3 for hidden 8) is the user's doing
        if exc.item != "factory" or not extra:
            raise
        raise UsageError(f"--model-arg: model '{args.model}' cannot be built with {extra} at the check's "
                         f"sizes: {exc.got}") from None
    exportable, detail = check_exportable(args.model, seed=args.seed, **extra)   # optional: reported only
    if args.json:
        emit_json({"model": args.model, "model_args": extra, "passed": checked,
                   "optional": {"exportable": {"passed": exportable, "detail": detail}}})
        return 0
    for item in checked:
        print(f"  ok  {item}: {CONTRACT[item]}")
    mark = {True: "ok", False: "no", None: "--"}[exportable]
    print(f"  {mark}  exportable (optional, not required): {detail}")
    print(f"check {args.model}: OK, {len(checked)} contract items")
    return 0
