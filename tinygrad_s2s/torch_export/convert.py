"""Our parameters -> PyTorch's, in NumPy: each array renamed and laid out as the PyTorch layer of the
same module path holds it (see torch_model.py's docstring for the two layouts that differ).

The conversion walks the model's modules: an `nn.LSTM` gives `weight_ih_l0`, `weight_hh_l0` and
`bias_ih_l0` (gates reordered f,g,i,o -> i,f,g,o, matrices transposed; `_reverse` too when
bidirectional), an `nn.Linear` its transposed weight and its bias, an `nn.Embedding` and an
`nn.LayerNorm` their arrays as they are. A parameter of any other layer is an error naming it.
"""
from __future__ import annotations

import numpy as np

from .. import nn

__all__ = ["BOOK_TO_TORCH_GATES", "ConversionError", "lstm_gates_to_torch", "torch_state"]

BOOK_TO_TORCH_GATES = (2, 0, 1, 3)
"""The book orders an LSTM's gate blocks f, g, i, o; PyTorch orders them i, f, g, o: torch's block k is
the book's block BOOK_TO_TORCH_GATES[k]."""


class ConversionError(ValueError):
    """A parameter that has no PyTorch counterpart in the exported modules."""


def lstm_gates_to_torch(w: np.ndarray) -> np.ndarray:
    """Book-layout LSTM gate weights to PyTorch's: gate blocks reordered f, g, i, o -> i, f, g, o and
    transposed.

    Args:
        w: a weight matrix (D, 4H) (Wx or Wh) or a bias (4H,), its last axis the four gate blocks.

    Returns:
        A new contiguous array: (4H, D) as nn.LSTM's weight_ih / weight_hh, or (4H,) as its bias_ih.
    """
    blocks = np.split(np.asarray(w), 4, axis=-1)
    out = np.concatenate([blocks[k] for k in BOOK_TO_TORCH_GATES], axis=-1)
    return np.ascontiguousarray(out.T)


def _lstm(prefix: str, module) -> dict:
    out = {}
    for suffix in ("", "_reverse") if module.bidirectional else ("",):
        for ours, theirs in (("Wx", "weight_ih_l0"), ("Wh", "weight_hh_l0"), ("b", "bias_ih_l0")):
            out[f"{prefix}{theirs}{suffix}"] = lstm_gates_to_torch(getattr(module, ours + suffix).numpy())
    return out


def torch_state(model) -> dict[str, np.ndarray]:
    """The PyTorch state dict of a zoo model, in NumPy.

    Args:
        model: a model whose parameters all belong to LSTM, Linear, Embedding or LayerNorm layers.

    Returns:
        Module path name -> NumPy array in PyTorch's layout (copies), each parameter converted once;
            the frozen zero `bias_hh_l0` of each LSTM is left out.

    Raises:
        ConversionError: a parameter of another kind of layer, or one not converted (shared between
            modules), named.
    """
    out, done = {}, set()
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        own = [f"{prefix}{name}" for name in module._params if getattr(module, name) is not None]
        if not own:
            continue
        if isinstance(module, nn.LSTM):
            out.update(_lstm(prefix, module))
        elif isinstance(module, nn.Linear):
            out[f"{prefix}weight"] = np.ascontiguousarray(module.weight.numpy().T)
            if module.bias is not None:
                out[f"{prefix}bias"] = module.bias.numpy().copy()
        elif isinstance(module, (nn.Embedding, nn.LayerNorm)):
            out.update({name: getattr(module, name.rsplit(".", 1)[1]).numpy().copy() for name in own})
        else:
            raise ConversionError(f"parameter {own[0]!r} belongs to a {type(module).__name__}, a layer "
                                  "with no PyTorch counterpart here (LSTM, Linear, Embedding, LayerNorm convert)")
        done.update(own)
    left = [n for n, _ in model.named_parameters() if n not in done]
    if left:
        raise ConversionError(f"parameters {left[:3]} were not converted (shared between modules?)")
    return out
