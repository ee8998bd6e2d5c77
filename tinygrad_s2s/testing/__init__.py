"""Public testing helpers: `gradcheck` (float64 central differences), Hypothesis `strategies`, and
`check_model`, the plugin conformance battery.

Users test their own ops and models with these exactly as this project tests its own.
"""
from .gradcheck import gradcheck, gradcheck_model, gradcheck_module, numerical_grad
from .conformance import check_model

__all__ = ["check_model", "gradcheck", "gradcheck_model", "gradcheck_module", "numerical_grad"]
