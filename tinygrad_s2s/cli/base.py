"""What every command module shares: the program name, the usage error, strict JSON output.

Each command module (train, run, info, graph) has `add_subparsers(sub)` defining its
commands' parsers next to their handlers; `cli.py` only collects them and maps errors to exit codes.
Kept free of heavy imports: the parsers are built on every start."""
from __future__ import annotations

import json

PROG = "tinygrad-s2s"


class UsageError(Exception):
    """A command line that parses but makes no sense (exit code 2)."""


def require_model(name: str, model_args=None) -> None:
    """The registered model `name` (UnknownModelError otherwise) taking every --model-arg given: a
    key its factory does not take is the user's typo (UsageError), not the model's fault."""
    from ..models.registry import check_model_args  # noqa: PLC0415 - the registry loads plugins
    try:
        check_model_args(name, model_args or {})
    except TypeError as exc:
        raise UsageError(f"--model-arg: {exc}") from None


def emit_json(obj) -> None:
    """The one JSON object a --json command prints on stdout (strict JSON: never NaN or Infinity)."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False))
