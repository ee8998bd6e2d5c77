"""Public testing helpers: `gradcheck` / `gradgradcheck` (float64 central differences), Hypothesis
`strategies`, the op battery (`OpSpec`, `check_op`, `op_test_cases`, in `battery.py`) and the model
plugin conformance battery (`check_model`, in `conformance.py`).

Users test their own ops and models with these exactly as this project tests its own.
"""
from __future__ import annotations

from .gradients import gradcheck, gradcheck_model, gradcheck_module, gradgradcheck, numerical_grad

__all__ = ["CHECKS", "OpSpec", "check_model", "check_op", "gradcheck", "gradcheck_model", "gradcheck_module",
           "gradgradcheck", "numerical_grad", "op_test_cases"]
_BATTERY = ("CHECKS", "OpSpec", "check_op", "op_test_cases")


def __getattr__(name):
    # the batteries pull in hypothesis, the nn layers and (check_model) the registry: loaded on first use
    if name in _BATTERY:
        from . import battery  # noqa: PLC0415
        return getattr(battery, name)
    if name == "check_model":
        from .conformance import check_model  # noqa: PLC0415
        return check_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
