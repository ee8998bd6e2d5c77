"""Tests of optional extras (mpi, export, tracking, bench): skipped with the install command where the
extra is missing, failed instead where TINYGRAD_S2S_REQUIRE_EXTRAS names it (CI's .ci/extras sets
"all"), so CI can never pass by skipping what it installed.

    from extras import need
    onnx = need("onnx", "export")
"""
from __future__ import annotations

import importlib
import os

import pytest

REQUIRE = "TINYGRAD_S2S_REQUIRE_EXTRAS"


def required(extra: str) -> bool:
    """Whether the environment says `extra` is installed and its tests must run."""
    named = {s.strip() for s in os.environ.get(REQUIRE, "").split(",") if s.strip()}
    return "all" in named or extra in named


def need(module: str, extra: str):
    """Import `module` (which the `extra` extra installs) or skip the test; fail where it is required."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        msg = f"needs {module} from the {extra!r} extra (pip install -e '.[{extra}]'): {e}"
        if required(extra):
            pytest.fail(f"{msg}; {REQUIRE}={os.environ[REQUIRE]!r} says it is installed", pytrace=False)
        pytest.skip(msg)
