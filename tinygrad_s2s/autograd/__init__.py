"""The engine: global modes (`grad_mode`), where errors point (`errors`), the checks of what flows
through the graph (`checks`), the tensor's bookkeeping (`tensor_base`), one node per primitive
(`function`) and the backward walk with `grad` (`engine`). Modules import downwards in that order."""
from .grad_mode import (current_module_path, default_dtype, detect_anomaly, enable_grad, get_default_dtype,
                        is_grad_enabled, module_scope, no_grad, set_default_dtype, tracing)
from .errors import describe, user_location
from .checks import sum_to
from .tensor_base import TensorBase, as_tensor, set_tensor_class
from .function import BackwardPass, Function, GradOf, saved_input, saved_output
from .engine import grad, run_backward

__all__ = [
    "BackwardPass", "Function", "GradOf", "TensorBase", "as_tensor", "current_module_path", "default_dtype",
    "describe", "detect_anomaly", "enable_grad", "get_default_dtype", "grad", "is_grad_enabled", "module_scope",
    "no_grad", "run_backward", "saved_input", "saved_output", "set_default_dtype", "set_tensor_class", "sum_to",
    "tracing", "user_location",
]
