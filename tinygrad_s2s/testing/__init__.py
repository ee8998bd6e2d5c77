"""Public testing helpers: `gradcheck` / `gradgradcheck` (float64 central differences, `numeric.py`),
Hypothesis `strategies`, the op battery (`OpSpec`, `check_op`, `op_test_cases`, `battery.py`) and the
model plugin conformance battery (`check_model`, and `check_exportable` for its optional item,
`conformance.py`).

Users test their own ops and models with these exactly as this project tests its own.
"""
from .numeric import gradcheck, gradcheck_model, gradcheck_module, gradgradcheck, numerical_grad
from .battery import CHECKS, OpSpec, check_op, op_test_cases
from .conformance import check_exportable, check_model

__all__ = ["CHECKS", "OpSpec", "check_exportable", "check_model", "check_op", "gradcheck", "gradcheck_model", "gradcheck_module",
           "gradgradcheck", "numerical_grad", "op_test_cases"]
