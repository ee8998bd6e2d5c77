"""Hypothesis strategies for property-based tests of ops and models (public: use them for your own ops).

Shapes include size-1 dims (the broadcasting corner cases); value ranges keep each op differentiable
and well conditioned for float64 central differences. In your own `@given` tests Hypothesis's
defaults apply (a 200 ms deadline per example): set `@settings(deadline=None, max_examples=N)`, as
`check_op` does, so that a slow or loaded machine does not fail them.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..tensor import Tensor

__all__ = ["shapes", "broadcastable_shapes", "arrays", "tensors", "axes", "axis"]


def shapes(min_dims=1, max_dims=3, min_side=1, max_side=4):
    """Array shapes with small sides (size-1 dims included)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4):
    """A tuple of shapes that broadcast together (NumPy rules), e.g. ((3, 1), (4, 3, 5))."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                            max_dims=max_dims, min_side=1, max_side=max_side
                                            ).map(lambda r: r.input_shapes)


def arrays(shape, lo=-3.0, hi=3.0, dtype=np.float64, unique=False, away_from_zero=0.0):
    """Float arrays with elements in [lo, hi]; `away_from_zero` > 0 keeps |x| >= that value
    (for ops with a kink or pole at 0); `unique` for ops whose gradient needs distinct values (max)."""
    elems = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    if away_from_zero:
        elems = elems.filter(lambda v: abs(v) >= away_from_zero)
    strat = hnp.arrays(dtype, shape, elements=elems, unique=unique)
    if unique:
        # distinct values must also be far enough apart that +-eps never swaps their order
        strat = strat.filter(lambda a: a.size < 2 or np.diff(np.sort(a, axis=None)).min() > 1e-3)
    return strat


def tensors(shape=None, requires_grad=True, **kw):
    """Tensors (float64 data) over `arrays`; draws a shape when none is given."""
    shape_st = shapes() if shape is None else st.just(shape)
    return shape_st.flatmap(lambda s: arrays(s, **kw)).map(
        lambda a: Tensor(a, requires_grad=requires_grad))


def axis(ndim):
    """One valid axis, negative ones included."""
    return st.integers(-ndim, ndim - 1) if ndim else st.just(None)


def axes(ndim):
    """None, one axis or a tuple of distinct axes (negatives included)."""
    if ndim == 0:
        return st.just(None)
    tuples = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda ax: st.tuples(*[st.sampled_from([a, a - ndim]) for a in ax]))
    return st.one_of(st.none(), axis(ndim), tuples)
