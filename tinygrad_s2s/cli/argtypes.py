"""argparse value types shared by every subcommand: one message for each kind of bad value.

argparse puts the flag in front of the message (`argument --seed: expected a non-negative integer, got
'-1'`) and exits 2. Every float is finite: NaN and infinity never reach a run's config."""
from __future__ import annotations

import argparse
import json
import math


def _number(text: str, cast, what: str, ok):
    try:
        v = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """An integer > 0."""
    return _number(text, int, "a positive integer", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _number(text, int, "a non-negative integer", lambda v: v >= 0)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, "a positive finite number", lambda v: v > 0 and math.isfinite(v))


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, float, "a non-negative finite number", lambda v: v >= 0 and math.isfinite(v))


def probability(text: str) -> float:
    """A number in (0, 1]."""
    return _number(text, float, "a number in (0, 1]", lambda v: 0 < v <= 1)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def model_arg(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, value); VALUE as JSON when it parses (never NaN/Infinity), else the string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a Python identifier as KEY, got {text!r}")
    try:
        return key, json.loads(value, parse_constant=_no_constant)
    except json.JSONDecodeError:
        return key, value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
