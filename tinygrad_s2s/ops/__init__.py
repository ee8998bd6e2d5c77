"""Every primitive op, one Function class each with its lowercase function directly beneath it, grouped
by kind: elementwise, linalg, reductions, shape, indexing, losses, the fused recurrent layers (lstm,
gru) and the factories. `base` holds what they share.

Adding an op is its class (with its `onnx` lowering beside its forward, see `base`), its function
beneath it and one row in `tinygrad_s2s.testing.op_table` (which makes the gradient, reference, dtype,
device, error and ONNX tests cover it); tests then ask for the
function's name in `__all__` here and in `tinygrad_s2s`, in the docs' list and a PyTorch twin in the
benchmarks. An alias under PyTorch's name (`cat`) is set here, beneath the imports: the same function,
not a second op.
"""
from .elementwise import (abs, add, clip, div, dropout, exp, log, maximum, minimum, mul, neg, pow, relu, sigmoid,
                          sqrt, sub, tanh)
from .linalg import matmul
from .reductions import log_softmax, logsumexp, max, mean, softmax, sum
from .joins import concat, split, stack, unstack
from .shape import broadcast_to, expand_dims, repeat, reshape, squeeze, transpose
from .indexing import getitem, take_along_axis, where
from .losses import softmax_cross_entropy
from .lstm import lstm_cell, lstm_sequence
from .gru import gru_sequence
from .factories import arange, full, ones, ones_like, rand, randint, randn, tensor, zeros, zeros_like

cat = concat      # torch.cat

__all__ = [
    "abs", "add", "arange", "broadcast_to", "cat", "clip", "concat", "div", "dropout", "exp", "expand_dims", "full",
    "getitem", "gru_sequence", "log", "log_softmax", "logsumexp", "lstm_cell", "lstm_sequence", "matmul", "max",
    "maximum", "mean", "minimum", "mul", "neg", "ones", "ones_like", "pow", "rand", "randint", "randn", "relu",
    "repeat", "reshape", "sigmoid", "softmax", "softmax_cross_entropy", "split", "sqrt", "squeeze", "stack", "sub",
    "sum", "take_along_axis", "tanh", "tensor", "transpose", "unstack", "where", "zeros", "zeros_like",
]

def __getattr__(name):
    # 0.1's `tinygrad_s2s.ops` was one module holding every op's class (`tinygrad_s2s.ops.Add`): each
    # still resolves, from the module it lives in now, with one FutureWarning (kept until 0.2)
    if name[:1].isupper():
        import importlib
        import pkgutil
        for module in (m.name for m in pkgutil.iter_modules(__path__)):
            found = getattr(importlib.import_module(f"{__name__}.{module}"), name, None)
            if isinstance(found, type):
                from .._compat import moved_name
                return moved_name(__name__, name, f"{__name__}.{module}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
