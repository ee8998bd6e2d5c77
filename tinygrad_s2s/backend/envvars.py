"""The environment variables' values, parsed in one place: a value this library does not know is an
error naming the variable and the values it takes, never a silent default (TINYGRAD_S2S_DEBUG=false
used to turn tracebacks on, and TINYGRAD_S2S_KEEP_FREED_MEMORY=disable left the setting on)."""
from __future__ import annotations

import os

ON, OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
DEBUG = "TINYGRAD_S2S_DEBUG"
"""Set to 1 for the command line's full tracebacks."""


def _value(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def flag(name: str, default: bool) -> bool:
    """An on/off variable: 1/true/yes/on or 0/false/no/off (any case); unset or empty is `default`."""
    value = _value(name)
    if not value:
        return default
    if value in ON or value in OFF:
        return value in ON
    raise ValueError(f"environment variable {name}={os.environ[name]!r}: use one of {', '.join(ON + OFF)}, or "
                     "leave it unset")


def choice(name: str, choices: tuple, default: str) -> str:
    """A variable taking one of `choices` (any case); unset or empty is `default`."""
    value = _value(name)
    if not value:
        return default
    if value not in choices:
        raise ValueError(f"environment variable {name}={os.environ[name]!r}: use {' or '.join(map(repr, choices))}"
                         f" ({default!r} is the default), or leave it unset")
    return value
