"""Elementwise ops: arithmetic, exp/log/sqrt, the activations, abs, maximum/minimum, clip and dropout.

Backward returns gradients of the broadcast result's shape: the engine sums them back to each input.

Kept whole: one family of small ops; a third of the module is their docstrings' Args/Returns, which the
reference renders.
"""
from __future__ import annotations

import operator

from .. import backend
from ..autograd import as_tensor, describe, saved_input, saved_output
from ..backend import random as _random
from .base import Op, _pair, _xp, array_function, onnx_binary, onnx_unary


# Backward returns gradients of the broadcast result's shape: the engine sums them back to each input.
class Add(Op):
    onnx = onnx_binary("Add")

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


def add(a, b):
    """`a + b`, elementwise with broadcasting (the operator `+`).

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Add.apply(*_pair(a, b))


class Sub(Op):
    onnx = onnx_binary("Sub")

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, -gy


def sub(a, b):
    """`a - b`, elementwise with broadcasting (the operator `-`).

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Sub.apply(*_pair(a, b))


class Mul(Op):
    a, b = saved_input(0), saved_input(1)

    onnx = onnx_binary("Mul")

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        return (gy * self.b if self.needs_grad[0] else None,
                gy * self.a if self.needs_grad[1] else None)


def mul(a, b):
    """`a * b`, elementwise with broadcasting (the operator `*`).

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Mul.apply(*_pair(a, b))


class Div(Op):
    a, b = saved_input(0), saved_input(1)

    onnx = onnx_binary("Div")

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.a, self.b
        return (gy / b if self.needs_grad[0] else None,
                -gy * a / (b * b) if self.needs_grad[1] else None)


def div(a, b):
    """`a / b`, elementwise with broadcasting (the operator `/`; true division).

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Div.apply(*_pair(a, b))


class Neg(Op):
    onnx = onnx_unary("Neg")

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x):
    """`-x`, elementwise (unary minus).

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Neg.apply(as_tensor(x))


class Pow(Op):
    a, b, y = saved_input(0), saved_input(1), saved_output(0)

    onnx = onnx_binary("Pow")

    def forward(self, a, b):
        return a ** b

    def backward(self, gy):
        a, b = self.a, self.b
        return (gy * b * a ** (b - 1) if self.needs_grad[0] else None,
                gy * self.y * _xp(a).log(a) if self.needs_grad[1] else None)


def pow(a, b):  # noqa: A001 - the public name mirrors numpy/torch
    """`a ** b`, elementwise with broadcasting (the operator `**`).

    The gradient with respect to `b` is `a ** b * log(a)`: it needs `a > 0` where `b` requires a
    gradient; an exponent that is a Python number gets none.

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Pow.apply(*_pair(a, b))


class Exp(Op):
    y = saved_output(0)

    onnx = onnx_unary("Exp")

    def forward(self, x):
        return _xp(x).exp(x)

    def backward(self, gy):
        return gy * self.y


@array_function("exp")
def exp(x):
    """`e ** x`, elementwise.

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Exp.apply(as_tensor(x))


class Log(Op):
    x = saved_input(0)

    onnx = onnx_unary("Log")

    def forward(self, x):
        return _xp(x).log(x)

    def backward(self, gy):
        return gy / self.x


@array_function("log")
def log(x):
    """Natural logarithm, elementwise (`-inf` at 0, NaN below, as NumPy).

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Log.apply(as_tensor(x))


class Sqrt(Op):
    y = saved_output(0)

    onnx = onnx_unary("Sqrt")

    def forward(self, x):
        return _xp(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.y)


def sqrt(x):
    """Square root, elementwise (its gradient is infinite at 0).

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Sqrt.apply(as_tensor(x))


class Sigmoid(Op):
    y = saved_output(0)

    onnx = onnx_unary("Sigmoid")

    def forward(self, x):
        return _xp(x).tanh(x * 0.5) * 0.5 + 0.5   # the tanh form never overflows in exp

    def backward(self, gy):
        y = self.y
        return gy * y * (1 - y)


def sigmoid(x):
    """`1 / (1 + exp(-x))`, elementwise, computed without overflow for large `|x|`.

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Sigmoid.apply(as_tensor(x))


class Tanh(Op):
    y = saved_output(0)

    onnx = onnx_unary("Tanh")

    def forward(self, x):
        return _xp(x).tanh(x)

    def backward(self, gy):
        y = self.y
        return gy * (1 - y * y)


def tanh(x):
    """Hyperbolic tangent, elementwise.

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Tanh.apply(as_tensor(x))


class ReLU(Op):
    """The subgradient at 0 is 0 (as PyTorch's)."""
    name = "relu"

    onnx = onnx_unary("Relu")

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def relu(x):
    """`max(x, 0)`, elementwise; the gradient at 0 is 0, as PyTorch's.

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return ReLU.apply(as_tensor(x))


class Abs(Op):
    """The subgradient at 0 is 0 (sign(0), as PyTorch's)."""

    onnx = onnx_unary("Abs")

    def forward(self, x):
        if self.needs_grad:        # masks only when a backward will read them
            self.sign = _xp(x).sign(x)
        return _xp(x).abs(x)

    def backward(self, gy):
        return gy * self.sign


def abs(x):  # noqa: A001
    """`|x|`, elementwise (also `abs(t)`); the gradient at 0 is 0, as PyTorch's.

    Args:
        x: a Tensor, array or number.

    Returns:
        Tensor: the elementwise result, of `x`'s shape and dtype.
    """
    return Abs.apply(as_tensor(x))


class Maximum(Op):
    """Elementwise max of two tensors; tied elements split the gradient equally (as PyTorch). Minimum is
    this op with the comparison turned round."""
    _wins = staticmethod(operator.gt)        # a's element is taken where _wins(a, b)
    _array_function = "maximum"

    onnx = onnx_binary("Max")

    def forward(self, a, b):
        if self.needs_grad:
            half_tie = (a == b).astype(a.dtype) * 0.5
            self.wa, self.wb = self._wins(a, b) + half_tie, self._wins(b, a) + half_tie
        return getattr(_xp(a), self._array_function)(a, b)

    def backward(self, gy):
        return gy * self.wa, gy * self.wb


def maximum(a, b):
    """Elementwise maximum of two tensors with broadcasting (not a reduction: see `max`).

    Where the two are equal, each gets half the gradient, as PyTorch's.

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Maximum.apply(*_pair(a, b))


class Minimum(Maximum):
    """Elementwise min of two tensors; tied elements split the gradient equally."""
    _wins = staticmethod(operator.lt)
    _array_function = "minimum"
    onnx = onnx_binary("Min")


def minimum(a, b):
    """Elementwise minimum of two tensors with broadcasting (there is no `min` reduction: use
    `-(-x).max(axis)`).

    Where the two are equal, each gets half the gradient, as PyTorch's.

    Args:
        a: a Tensor, array or Python number.
        b: a Tensor, array or Python number; broadcast against `a` with NumPy's rules. A Python
            number takes the other operand's dtype and device.

    Returns:
        Tensor: the elementwise result, of the broadcast shape and NumPy's result dtype.
    """
    return Minimum.apply(*_pair(a, b))


class Clip(Op):
    """Clamp into [lo, hi] (either may be None); the gradient passes where lo <= x <= hi, bounds
    included (as PyTorch's clamp)."""

    def forward(self, x):
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"clip: lo={lo} is above hi={hi}")
        inside = _xp(x).ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        self.inside = inside
        return _xp(x).clip(x, lo, hi)

    def onnx(self, g, x):
        """ONNX: Clip, a missing bound an omitted input."""
        dt = g.dtype(x)
        return g.op("Clip", x, *(None if v is None else g.const(v, dt) for v in (self.lo, self.hi)))

    def backward(self, gy):
        return gy * self.inside


def clip(x, lo=None, hi=None):
    """Clamp each element into `[lo, hi]` (PyTorch's `clamp`, NumPy's `clip`).

    The gradient passes where `lo <= x <= hi`, bounds included (as PyTorch's), and is 0 outside.

    Args:
        x: a Tensor, array or number.
        lo: the lower bound, a Python number, or None for none.
        hi: the upper bound, a Python number, or None for none.

    Returns:
        Tensor: `x` clamped, same shape and dtype.

    Raises:
        ValueError: both bounds are None.
    """
    if lo is None and hi is None:
        raise ValueError(describe("clip", "give lo, hi or both"))
    return Clip.apply(as_tensor(x), lo=lo, hi=hi)


class Dropout(Op):
    def forward(self, x):
        keep = _random.generator().random(x.shape) >= self.p
        mask = backend.to_device(keep, backend.device_of(x))
        self.mask = mask.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self.mask

    def onnx(self, g, x):
        """ONNX: a Mul by this trace's mask, with a warning: dropout while training is random, and the
        exported graph would drop the same elements on every run (export a model in eval mode)."""
        g.warn("dropout in training mode: its mask of this trace is baked into the graph (call model.eval() "
               "before exporting)")
        return g.op("Mul", x, g.const(self.mask))

    def backward(self, gy):
        return gy * self.mask


def dropout(x, p=0.5, training=True):
    """Inverted dropout: zero each element with probability `p`, scale the rest by `1 / (1 - p)`.

    The mask comes from the library's one generator (`tg.manual_seed` makes it repeatable). The
    modules call it with `training=self.training` (`nn.Dropout`, `model.eval()`).

    Args:
        x: a Tensor or array.
        p: the probability of zeroing an element, in `[0, 1)`; default 0.5.
        training: False (or `p == 0`) returns `x` itself, unchanged.

    Returns:
        Tensor: of `x`'s shape and dtype; the gradient is masked and scaled the same way.

    Raises:
        ValueError: `p` is outside `[0, 1)`.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(describe("dropout", f"p must be in [0, 1), got {p}"))
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    return Dropout.apply(x, p=p)
