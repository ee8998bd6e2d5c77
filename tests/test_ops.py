"""Every op in the op table, property-based: gradients, forward reference, dtypes, invariants, device."""
import weakref

import hypothesis
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_s2s as tg
from tinygrad_s2s.testing import gradcheck
from tinygrad_s2s.testing.fake_device import fake_device
from tinygrad_s2s.testing.op_table import BY_NAME, OPS

each_op = pytest.mark.parametrize("spec", OPS, ids=[s.name for s in OPS])


def _run(spec, arrays, kw, dtype=np.float64, device="cpu", upstream_seed=0):
    """Forward and backward with a random upstream gradient; returns (inputs, output, upstream)."""
    xs = [tg.Tensor(a.astype(dtype)).to(device).requires_grad_() for a in arrays]
    out = spec.fn(*xs, **kw)
    g = np.random.default_rng(upstream_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(tg.Tensor(g).to(device))
    return xs, out, g


@each_op
@given(data=st.data())
def test_gradient_matches_central_differences(spec, data):
    arrays, kw = data.draw(spec.inputs)
    gradcheck(lambda *ts: spec.fn(*ts, **kw), *arrays, atol=spec.atol)


_KINKED = [s for s in OPS if s.kinks is not None]


@pytest.mark.parametrize("spec", _KINKED, ids=[s.name for s in _KINKED])
@given(data=st.data())
def test_ties_and_kinks_get_the_documented_subgradient_exactly(spec, data):
    arrays, kw = data.draw(spec.kinks)
    xs, out, g = _run(spec, arrays, kw)
    expected = spec.subgradient(arrays, g, **kw)
    for i, (x, e) in enumerate(zip(xs, expected)):
        e = tg.tensor.sum_to(np.asarray(e), x.shape)   # the subgradient of a broadcast input, summed back
        np.testing.assert_allclose(x.grad.numpy(), e, rtol=1e-12, atol=0,
                                   err_msg=f"{spec.name}: input {i} at ties/kinks {arrays[i]}")


def test_max_ties_are_drawn_and_a_full_gradient_to_every_tie_is_caught():
    """Seen: max inputs were drawn unique, so a backward giving each tied element the whole gradient
    passed. The kinks strategy draws ties, and such a backward fails the subgradient check."""
    spec = BY_NAME["max"]
    x = np.array([[1.0, 2.0, 2.0], [0.0, -1.0, 0.0]])
    g = np.array([3.0, 5.0])
    t = tg.Tensor(x, requires_grad=True)
    tg.max(t, axis=1).backward(tg.Tensor(g))
    expected = spec.subgradient([x], g, axis=1, keepdims=False)[0]
    np.testing.assert_array_equal(t.grad.numpy(), [[0, 1.5, 1.5], [2.5, 0, 2.5]])
    np.testing.assert_array_equal(expected, t.grad.numpy())
    full = (x == x.max(axis=1, keepdims=True)) * g[:, None]      # the wrong "everyone gets all" rule
    assert not np.allclose(full, expected)
    found = hypothesis.find(spec.kinks, lambda d: bool(np.any(np.sum(
        d[0][0] == np.max(d[0][0], axis=d[1]["axis"], keepdims=True), axis=d[1]["axis"]) > 1)),
        settings=hypothesis.settings(database=None))
    assert found is not None


@each_op
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_forward_matches_numpy_and_keeps_dtype(spec, dtype, data):
    arrays, kw = data.draw(spec.inputs)
    xs, out, _ = _run(spec, arrays, kw, dtype)
    expected = spec.ref(*[a.astype(dtype) for a in arrays], **kw)
    assert out.dtype == dtype, f"{spec.name} returned {out.dtype} for {dtype.__name__} inputs"
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol * 10, atol=tol)
    for x in xs:
        assert x.grad.dtype == dtype and x.grad.shape == x.shape


@each_op
@given(data=st.data())
def test_invariants_no_mutation_no_aliasing_graph_freed(spec, data):
    arrays, kw = data.draw(spec.inputs)
    before = [a.copy() for a in arrays]
    xs, out, _ = _run(spec, arrays, kw)
    for x, b in zip(xs, before):
        np.testing.assert_array_equal(x.numpy(), b)              # inputs not mutated
    grads = [x.grad.numpy() for x in xs]
    for i, g in enumerate(grads):
        for x in xs:
            assert not np.shares_memory(g, x.numpy()), f"{spec.name}: grad {i} aliases an input"
        for j in range(i):
            assert not np.shares_memory(g, grads[j]), f"{spec.name}: grads {i} and {j} alias"
    fn = out.creator
    assert fn.inputs is None, "graph kept after backward without retain_graph"
    ref = weakref.ref(fn)
    del out, fn   # no gc.collect(): the graph must not hold reference cycles
    assert ref() is None, "the op node outlived its output"


@each_op
@given(data=st.data())
def test_runs_on_a_strict_device_and_matches_cpu(spec, data):
    arrays, kw = data.draw(spec.inputs)
    cpu_xs, cpu_out, _ = _run(spec, arrays, kw)
    with fake_device() as dev:
        xs, out, _ = _run(spec, arrays, kw, device=dev)
        assert out.device == dev
        np.testing.assert_allclose(out.numpy(), cpu_out.numpy(), rtol=1e-12, atol=1e-12)
        for x, c in zip(xs, cpu_xs):
            assert x.grad.device == dev
            np.testing.assert_allclose(x.grad.numpy(), c.grad.numpy(), rtol=1e-12, atol=1e-12)


def _cuda_available():
    try:
        tg.backend.module_for("cuda")
        return True
    except tg.backend.DeviceError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="no CUDA device (CuPy missing or no GPU)")
@each_op
@given(data=st.data())
def test_runs_on_cuda_and_matches_cpu(spec, data):
    arrays, kw = data.draw(spec.inputs)
    cpu_xs, cpu_out, _ = _run(spec, arrays, kw)
    xs, out, _ = _run(spec, arrays, kw, device="cuda")
    np.testing.assert_allclose(out.numpy(), cpu_out.numpy(), rtol=1e-10, atol=1e-10)
    for x, c in zip(xs, cpu_xs):
        np.testing.assert_allclose(x.grad.numpy(), c.grad.numpy(), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- random compositions
_UNARY = [tg.tanh, tg.sigmoid, lambda x: tg.exp(x * 0.3), lambda x: x * tg.sum(x, axis=-1, keepdims=True),
          lambda x: tg.softmax(x, axis=-1), lambda x: x * x, lambda x: tg.transpose(x)]
_BINARY = [tg.add, tg.sub, tg.mul, lambda a, b: a / (b * b + 1.0),
           lambda a, b: tg.matmul(a, tg.transpose(b))]


@st.composite
def _dag(draw):
    """A small random DAG over a pool of (n, n) tensors; nodes may reuse any earlier node. Every op
    keeps the (n, n) shape, so any two nodes can meet in any binary op (matmul included)."""
    n = draw(st.integers(1, 3))
    leaves = draw(st.integers(1, 3))
    steps = draw(st.lists(st.tuples(st.booleans(), st.integers(0, 99), st.integers(0, 99),
                                    st.integers(0, 99)), min_size=1, max_size=8))
    vals = [draw(tg.testing.strategies.arrays((n, n), -1.5, 1.5)) for _ in range(leaves)]
    return vals, steps


@given(_dag())
def test_random_compositions_with_shared_subexpressions(dag):
    vals, steps = dag

    def build(*xs):
        pool = list(xs)
        for binary, i, j, k in steps:
            a, b = pool[i % len(pool)], pool[j % len(pool)]
            pool.append(_BINARY[k % len(_BINARY)](a, b) if binary else _UNARY[k % len(_UNARY)](a))
        return pool[-1] + pool[len(xs) - 1] * 0.5   # the result and an early node share inputs
    gradcheck(build, *vals)
