"""tinygrad-s2s: a define-by-run autograd engine on NumPy/CuPy and the seq2seq models of
*Deep Learning from Scratch 2*, chapters 7-8, built from its primitives.

Layers, each importing only those below it: `backend` (arrays, allocator, BLAS threads, the random
generator), `autograd` (the engine), `ops` (the primitives), `tensor` (Tensor's operators and methods),
`nn`, `optim`, `serialization`, `models` (registry, plugin contract, Seq2seqModel), `data`, `training`,
`viz`, `testing`, `cli`.
"""
import warnings

from . import backend
from .backend import allocator, random
from .autograd import (Function, current_module_path, default_dtype, detect_anomaly, enable_grad, get_default_dtype,
                       grad, is_grad_enabled, no_grad, saved_input, saved_output, set_default_dtype)
from .tensor import Tensor
from .ops import (abs, add, arange, broadcast_to, cat, clip, concat, div, dropout, exp, expand_dims, full, getitem,
                  gru_sequence, log, log_softmax, logsumexp, lstm_cell, lstm_sequence, matmul, max, maximum, mean,
                  minimum, mul, neg, ones, ones_like, pow, rand, randint, randn, relu, repeat, reshape, sigmoid,
                  softmax, softmax_cross_entropy, split, sqrt, squeeze, stack, sub, sum, take_along_axis, tanh,
                  transpose, unstack, where, zeros, zeros_like)
# `tensor` (torch.tensor) is not imported from .ops: `tinygrad_s2s.tensor`, the module of Tensor, is
# callable and is that factory (see tinygrad_s2s/tensor.py's _TensorModule)
from . import nn, optim
from .serialization import load, save
from .models import available_models, create_model, register_model
from .backend.random import manual_seed
from . import _compat
from ._version import __version__  # noqa: F401 - the package attribute users read


__all__ = [
    "Function", "Tensor", "abs", "add", "allocator", "arange", "available_models", "backend",
    "broadcast_to", "cat", "clip", "concat", "create_model", "current_module_path", "default_dtype",
    "detect_anomaly", "div", "dropout", "enable_grad", "exp", "expand_dims", "full", "get_default_dtype",
    "getitem", "grad", "gru_sequence", "is_grad_enabled", "load", "log", "log_softmax", "logsumexp", "lstm_cell",
    "lstm_sequence", "manual_seed", "matmul", "max", "maximum", "mean", "minimum", "mul", "neg", "nn", "no_grad",
    "ones", "ones_like", "onnx", "optim", "pow", "rand", "randint", "randn", "random", "register_model", "relu", "repeat", "reshape", "save",
    "saved_input", "saved_output", "set_default_dtype", "sigmoid", "softmax", "softmax_cross_entropy", "split",
    "sqrt", "squeeze", "stack", "sub", "sum", "take_along_axis", "tanh", "tensor", "testing", "transpose", "unstack", "viz",
    "where", "zeros", "zeros_like",
]

_compat.install()

try:
    _keep = allocator.enabled_by_environment()
except ValueError as _exc:       # importing must not fail on it; the command line refuses it (exit 2)
    warnings.warn(f"{_exc}; keeping freed memory in the heap (the default)", stacklevel=2)
    _keep = True
if _keep:
    allocator.keep_freed_memory()


def __getattr__(name):
    # testing pulls in hypothesis, viz pulls in networkx/graphviz: import them only when asked for;
    # onnx (export) imports the onnx package only when it exports (the `export` extra)
    if name in ("testing", "viz", "onnx"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tinygrad_s2s' has no attribute {name!r}")
