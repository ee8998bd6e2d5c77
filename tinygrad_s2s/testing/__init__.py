"""Public testing helpers: `gradcheck` / `gradgradcheck` (float64 central differences, `numeric.py`),
Hypothesis `strategies`, and the op battery (`OpSpec`, `check_op`, `op_test_cases`, `battery.py`).

Users test their own ops and models with these exactly as this project tests its own.
"""
from .numeric import gradcheck, gradcheck_model, gradcheck_module, gradgradcheck, numerical_grad
from .battery import CHECKS, OpSpec, check_op, op_test_cases

__all__ = ["CHECKS", "OpSpec", "check_op", "gradcheck", "gradcheck_model", "gradcheck_module", "gradgradcheck",
           "numerical_grad", "op_test_cases"]
