"""THE table of ops: every primitive with a Hypothesis strategy for valid inputs and a NumPy reference.

Gradient tests, forward/reference tests, dtype tests, device tests, error tests and the op benchmarks
all iterate over OPS, so a newly listed op is checked the moment it is added here.

Each strategy draws `(arrays, kwargs)`: the float arrays become Tensors that require grad (the inputs
whose gradients are checked); kwargs carry everything else (axes, shapes, integer ids, masks).
Kept whole: one table, each op beside its strategy and reference, so listing an op is one edit here.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib.array_utils import normalize_axis_tuple

from .. import ops
from ..backend.random import manual_seed
from .battery import OpSpec
from .strategies import arrays, axes, axis, broadcastable_shapes, shapes


def _with(arrays_st, kwargs_st=st.just({})):
    return st.tuples(arrays_st.map(list), kwargs_st)


def _unary(lo=-3.0, hi=3.0, away=0.0):
    return _with(shapes(min_dims=0).flatmap(lambda s: st.tuples(arrays(s, lo, hi, away_from_zero=away))))


def _binary(lo_b=-3.0, hi_b=3.0, away_b=0.0, lo_a=-3.0, hi_a=3.0):
    return _with(broadcastable_shapes().flatmap(lambda ss: st.tuples(
        arrays(ss[0], lo_a, hi_a), arrays(ss[1], lo_b, hi_b, away_from_zero=away_b))))


@st.composite
def _matmul(draw):
    n, k, m, b = (draw(st.integers(1, 4)) for _ in range(4))
    sa, sb = draw(st.sampled_from([((n, k), (k, m)), ((k,), (k, m)), ((n, k), (k,)), ((k,), (k,)),
                                   ((b, n, k), (k, m)), ((b, n, k), (b, k, m)), ((1, n, k), (b, k, m)),
                                   ((n, k), (b, k, m))]))
    return [draw(arrays(sa)), draw(arrays(sb))], {}


@st.composite
def _reduce(draw, unique=False, min_dims=0):
    s = draw(shapes(min_dims=min_dims))
    return [draw(arrays(s, unique=unique))], {"axis": draw(axes(len(s))), "keepdims": draw(st.booleans())}


def _tied(shape):
    """Arrays of a few small integers (as floats): ties and zeros on almost every draw."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float))


@st.composite
def _reduce_tied(draw):
    s = draw(shapes(min_dims=0))
    return [draw(_tied(s))], {"axis": draw(axes(len(s))), "keepdims": draw(st.booleans())}


def _max_subgradient(arrays, g, axis, keepdims):
    """Tied maxima share the upstream gradient equally."""
    x = arrays[0]
    ax = tuple(range(x.ndim)) if axis is None else normalize_axis_tuple(axis, x.ndim)
    m = x == x.max(axis=ax, keepdims=True)
    g = g if keepdims else np.expand_dims(g, ax)
    return [m / m.sum(axis=ax, keepdims=True) * g]


@st.composite
def _along_axis(draw):
    s = draw(shapes(min_dims=1))
    return [draw(arrays(s))], {"axis": draw(axis(len(s)))}


@st.composite
def _reshape(draw):
    s = draw(shapes(min_dims=0))
    size = int(np.prod(s))
    return [draw(arrays(s))], {"shape": draw(st.sampled_from([tuple(reversed(s)), (-1,), (1, size),
                                                              (size, 1, 1)]))}


@st.composite
def _transpose(draw):
    s = draw(shapes(min_dims=0))
    perm = draw(st.one_of(st.none(), st.permutations(range(len(s))).map(tuple)))
    return [draw(arrays(s))], {"axes": perm}


@st.composite
def _broadcast_to(draw):
    target = draw(shapes(min_dims=1))
    drop = draw(st.integers(0, len(target)))
    src = tuple(1 if draw(st.booleans()) else d for d in target[drop:])
    return [draw(arrays(src))], {"shape": target}


@st.composite
def _repeat(draw):
    s = draw(shapes(min_dims=1))
    return [draw(arrays(s))], {"repeats": draw(st.integers(1, 3)),
                               "axis": draw(st.one_of(st.none(), axis(len(s))))}


@st.composite
def _concat(draw):
    s = list(draw(shapes(min_dims=1)))
    ax = draw(axis(len(s)))
    xs = []
    for _ in range(draw(st.integers(1, 3))):
        s[ax] = draw(st.integers(1, 3))
        xs.append(draw(arrays(tuple(s))))
    return xs, {"axis": ax}


@st.composite
def _stack(draw):
    s = draw(shapes(min_dims=0))
    k = draw(st.integers(1, 3))
    return [draw(arrays(s)) for _ in range(k)], {"axis": draw(st.integers(-len(s) - 1, len(s)))}


@st.composite
def _split(draw):
    s = list(draw(shapes(min_dims=1)))
    ax = draw(axis(len(s)))
    parts = draw(st.integers(1, 3))
    if draw(st.booleans()):
        s[ax] = parts * draw(st.integers(1, 2))
        sections = parts
    else:
        s[ax] = draw(st.integers(2, 5))
        sections = sorted(draw(st.lists(st.integers(1, s[ax] - 1), min_size=1, max_size=2, unique=True)))
    return [draw(arrays(tuple(s)))], {"sections": sections, "axis": ax}


@st.composite
def _where(draw):
    sc, sa, sb = draw(broadcastable_shapes(num_shapes=3))
    return [draw(arrays(sa)), draw(arrays(sb))], {"cond": draw(hnp.arrays(bool, sc))}


@st.composite
def _getitem(draw):
    s = draw(shapes(min_dims=1))
    if draw(st.booleans()):
        index = draw(hnp.basic_indices(s, allow_ellipsis=True))
    else:   # integer-array gather with repeated ids, as in an embedding lookup
        index = draw(hnp.arrays(np.int64, draw(shapes(min_dims=1, max_dims=2)),
                                elements=st.integers(-s[0], s[0] - 1)))
    return [draw(arrays(s))], {"index": index}


@st.composite
def _dropout(draw):
    s = draw(shapes(min_dims=1))
    return [draw(arrays(s))], {"p": draw(st.sampled_from([0.1, 0.5, 0.8]))}


@st.composite
def _cross_entropy(draw):
    s = draw(shapes(min_dims=1, max_dims=3))
    targets = draw(hnp.arrays(np.int64, s[:-1], elements=st.integers(0, s[-1] - 1)))
    ignore = draw(st.one_of(st.none(), st.integers(0, s[-1] - 1)))
    return [draw(arrays(s))], {"targets": targets, "ignore_index": ignore}


@st.composite
def _lstm_cell(draw):
    n, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return [draw(arrays((n, 4 * h))), draw(arrays((n, h)))], {}


@st.composite
def _lstm_sequence(draw):
    # small sizes: its second-order check runs the reference composition per perturbed element
    n, t, d, h = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2)),
                  draw(st.integers(1, 2)))
    bias = (4 * h,) if draw(st.booleans()) else (n, 4 * h)     # shared, or one per sequence
    zero = (draw(st.booleans()), draw(st.booleans()))          # h0, c0 given as None: the zero-state branch
    return [draw(arrays((n, t, d))), draw(arrays((d, 4 * h), -1, 1)), draw(arrays(bias)),
            *[draw(arrays((n, h))) for z in zero if not z], draw(arrays((h, 4 * h), -1, 1))], {"zero": zero}


@st.composite
def _gru_sequence(draw):
    # small sizes, as for lstm_sequence: the second-order check runs the reference per perturbed element
    n, t, d, h = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2)),
                  draw(st.integers(1, 2)))
    return [draw(arrays((n, t, d))), draw(arrays((d, 3 * h), -1, 1)), draw(arrays((3 * h,))),
            draw(arrays((n, h))), draw(arrays((h, 3 * h), -1, 1))], {}


@st.composite
def _binary_apart(draw, tied=False):
    """Two broadcastable arrays; apart by > 1e-3 everywhere (smooth), or with many ties (`tied`)."""
    sa, sb = draw(broadcastable_shapes())
    if tied:
        return [draw(_tied(sa)), draw(_tied(sb))], {}
    a = draw(arrays(sa))
    b = draw(arrays(sb).filter(lambda b: np.size(a) == 0 or np.abs(a - b).min() > 1e-3))
    return [a, b], {}


def _extremum_subgradient(win):
    def sub(arrays, g):
        a, b = arrays
        return [g * (win(a, b) + 0.5 * (a == b)), g * (win(b, a) + 0.5 * (a == b))]
    return sub


@st.composite
def _clip(draw, tied=False):
    s = draw(shapes(min_dims=0))
    lo, hi = draw(st.sampled_from([(-1.0, 1.0), (None, 0.0), (-1.0, None), (0.0, 0.0), (1.0, 2.0)]))
    if tied:
        return [draw(_tied(s))], {"lo": lo, "hi": hi}
    bounds = [v for v in (lo, hi) if v is not None]
    x = draw(arrays(s).filter(lambda x: all(np.abs(x - v).min(initial=1) > 1e-3 for v in bounds)))
    return [x], {"lo": lo, "hi": hi}


def _clip_subgradient(arrays, g, lo, hi):
    x = arrays[0]
    inside = np.ones(x.shape, bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    return [g * inside]


@st.composite
def _squeeze(draw):
    s = tuple(d if draw(st.booleans()) else 1 for d in draw(shapes(min_dims=0)))
    ones = [i for i, d in enumerate(s) if d == 1]
    axis = None if not ones or draw(st.booleans()) else tuple(draw(st.lists(
        st.sampled_from(ones), min_size=1, max_size=len(ones), unique=True)))
    return [draw(arrays(s))], {"axis": axis}


@st.composite
def _expand_dims(draw):
    s = draw(shapes(min_dims=0))
    return [draw(arrays(s))], {"axis": draw(st.integers(-len(s) - 1, len(s)))}


@st.composite
def _take_along_axis(draw):
    s = draw(shapes(min_dims=1))
    ax = draw(axis(len(s)))
    ishape = list(s)
    ishape[ax] = draw(st.integers(1, 4))
    n = s[ax]
    idx = draw(hnp.arrays(np.int64, tuple(ishape), elements=st.integers(-n, n - 1)))
    return [draw(arrays(s))], {"indices": idx, "axis": ax}


def _logsumexp_ref(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis) if axis is not None else y.reshape(())


# ---------------------------------------------------------------- NumPy references
def _softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sigmoid_ref(x):
    return 1 / (1 + np.exp(-x))


def _ce_ref(x, targets, ignore_index):
    logp = np.log(_softmax_ref(x.reshape(-1, x.shape[-1])))
    t = targets.reshape(-1)
    valid = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    picked = logp[np.arange(len(t)), t] * valid
    return -picked.sum() / max(int(valid.sum()), 1)


def _dropout_ref(x, p):
    keep = np.random.default_rng(0).random(x.shape) >= p
    return x * keep / (1 - p)


def _dropout_seeded(x, p):
    manual_seed(0)   # the same mask on every call, so central differences see one function
    return ops.dropout(x, p, training=True)


def _lstm_ref(a, c):
    f, g, i, o = np.split(a, 4, axis=-1)
    c2 = _sigmoid_ref(f) * c + np.tanh(g) * _sigmoid_ref(i)
    return np.stack([_sigmoid_ref(o) * np.tanh(c2), c2])


def _lstm_start(x, Wx, b, *rest, zero, fill=lambda n, h: None):
    """(x, Wx, b, h0, c0, Wh) from a drawn row, h0 / c0 `fill`ed in where `zero` says it was left out."""
    given = iter(rest[:-1])
    return (x, Wx, b, *(fill(len(x), len(rest[-1])) if z else next(given) for z in zero), rest[-1])


def _lstm_sequence_ref(*arrays, zero):
    x, Wx, b, h, c, Wh = _lstm_start(*arrays, zero=zero, fill=lambda n, h: np.zeros((n, h)))
    xw, hs = x @ Wx + (b[:, None] if b.ndim == 2 else b), []
    for t in range(xw.shape[1]):
        h, c = _lstm_ref(xw[:, t] + h @ Wh, c)
        hs.append(h)
    return np.concatenate([np.stack(hs, axis=1), h[:, None], c[:, None]], axis=1)


def _lstm_sequence_joined(*tensors, zero):
    hs, h, c = ops.lstm_sequence(*_lstm_start(*tensors, zero=zero))
    return ops.concat([hs, ops.reshape(h, (h.shape[0], 1, -1)), ops.reshape(c, (c.shape[0], 1, -1))], 1)


def _gru_sequence_ref(x, Wx, b, h, Wh):
    H, hs = h.shape[-1], []
    for xw in np.moveaxis(x @ Wx + b, 1, 0):
        z = _sigmoid_ref(xw[:, :H] + h @ Wh[:, :H])
        r = _sigmoid_ref(xw[:, H:2 * H] + h @ Wh[:, H:2 * H])
        h = (1 - z) * h + z * np.tanh(xw[:, 2 * H:] + (r * h) @ Wh[:, 2 * H:])
        hs.append(h)
    return np.concatenate([np.stack(hs, axis=1), h[:, None]], axis=1)


def _gru_sequence_joined(x, Wx, b, h, Wh):
    hs, h = ops.gru_sequence(x, Wx, b, h, Wh)
    return ops.concat([hs, ops.reshape(h, (h.shape[0], 1, -1))], 1)


def _split_ref(x, sections, axis):
    return np.concatenate(np.split(x, sections, axis=axis), axis=axis)


def _unstack_ref(x, axis):
    return np.stack([np.take(x, i, axis=axis) for i in range(x.shape[axis])], axis=axis)


OPS = [
    OpSpec("add", ops.add, np.add, _binary()),
    OpSpec("sub", ops.sub, np.subtract, _binary()),
    OpSpec("mul", ops.mul, np.multiply, _binary()),
    OpSpec("div", ops.div, np.divide, _binary(lo_b=-2, hi_b=2, away_b=0.5)),
    OpSpec("neg", ops.neg, np.negative, _unary()),
    OpSpec("pow", ops.pow, np.power, _binary(lo_a=0.5, hi_a=2.0, lo_b=-2, hi_b=2)),
    OpSpec("pow_scalar", lambda x, exponent: ops.pow(x, exponent), lambda x, exponent: x ** exponent,
           _with(shapes(min_dims=0).flatmap(lambda s: st.tuples(arrays(s, 0.5, 2.0))),
                 st.fixed_dictionaries({"exponent": st.sampled_from([-1.5, 0.5, 2, 3])})), first_op="pow"),
    OpSpec("exp", ops.exp, np.exp, _unary()),
    OpSpec("log", ops.log, np.log, _unary(0.5, 3.0)),
    OpSpec("sqrt", ops.sqrt, np.sqrt, _unary(0.5, 3.0)),
    OpSpec("sigmoid", ops.sigmoid, _sigmoid_ref, _unary()),
    OpSpec("tanh", ops.tanh, np.tanh, _unary()),
    OpSpec("relu", ops.relu, lambda x: np.maximum(x, 0), _unary(away=0.1),
           kinks=_with(shapes(min_dims=0).flatmap(lambda s: st.tuples(_tied(s)))),
           subgradient=lambda arrays, g: [g * (arrays[0] > 0)]),
    OpSpec("abs", ops.abs, np.abs, _unary(away=0.1),
           kinks=_with(shapes(min_dims=0).flatmap(lambda s: st.tuples(_tied(s)))),
           subgradient=lambda arrays, g: [g * np.sign(arrays[0])]),
    OpSpec("maximum", ops.maximum, np.maximum, _binary_apart(), kinks=_binary_apart(tied=True),
           subgradient=_extremum_subgradient(np.greater)),
    OpSpec("minimum", ops.minimum, np.minimum, _binary_apart(), kinks=_binary_apart(tied=True),
           subgradient=_extremum_subgradient(np.less)),
    OpSpec("clip", ops.clip, lambda x, lo, hi: np.clip(x, lo, hi), _clip(), kinks=_clip(tied=True),
           subgradient=_clip_subgradient),
    OpSpec("matmul", ops.matmul, np.matmul, _matmul()),
    OpSpec("softmax", ops.softmax, _softmax_ref, _along_axis()),
    OpSpec("log_softmax", ops.log_softmax, lambda x, axis: np.log(_softmax_ref(x, axis)), _along_axis()),
    OpSpec("sum", ops.sum, lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims), _reduce()),
    OpSpec("mean", ops.mean, lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims), _reduce(),
           first_op="sum"),
    OpSpec("max", ops.max, lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
           _reduce(unique=True), kinks=_reduce_tied(), subgradient=_max_subgradient),
    OpSpec("logsumexp", ops.logsumexp, _logsumexp_ref, _reduce()),
    OpSpec("squeeze", ops.squeeze, lambda x, axis: np.squeeze(x, axis=axis), _squeeze(), first_op="reshape"),
    OpSpec("expand_dims", ops.expand_dims, np.expand_dims, _expand_dims(), first_op="reshape"),
    OpSpec("take_along_axis", ops.take_along_axis, np.take_along_axis, _take_along_axis()),
    OpSpec("reshape", lambda x, shape: ops.reshape(x, shape), lambda x, shape: x.reshape(shape), _reshape()),
    OpSpec("transpose", ops.transpose, lambda x, axes: np.transpose(x, axes), _transpose()),
    OpSpec("broadcast_to", ops.broadcast_to, np.broadcast_to, _broadcast_to()),
    OpSpec("repeat", ops.repeat, np.repeat, _repeat()),
    OpSpec("concat", lambda *xs, axis: ops.concat(xs, axis), lambda *xs, axis: np.concatenate(xs, axis),
           _concat()),
    OpSpec("stack", lambda *xs, axis: ops.stack(xs, axis), lambda *xs, axis: np.stack(xs, axis), _stack()),
    OpSpec("split", lambda x, sections, axis: ops.concat(ops.split(x, sections, axis), axis),
           _split_ref, _split()),
    OpSpec("unstack", lambda x, axis: ops.stack(ops.unstack(x, axis), axis), _unstack_ref, _along_axis()),
    OpSpec("where", lambda a, b, cond: ops.where(cond, a, b), lambda a, b, cond: np.where(cond, a, b),
           _where()),
    OpSpec("getitem", ops.getitem, lambda x, index: x[index], _getitem()),
    OpSpec("dropout", _dropout_seeded, _dropout_ref, _dropout()),
    OpSpec("softmax_cross_entropy", ops.softmax_cross_entropy, _ce_ref, _cross_entropy()),
    OpSpec("lstm_cell", lambda a, c: ops.stack(ops.lstm_cell(a, c)), _lstm_ref, _lstm_cell()),
    OpSpec("lstm_sequence", _lstm_sequence_joined, _lstm_sequence_ref, _lstm_sequence()),
    OpSpec("gru_sequence", _gru_sequence_joined, _gru_sequence_ref, _gru_sequence()),
]

BY_NAME = {spec.name: spec for spec in OPS}
