"""Every op in the op table, property-based: gradients, forward reference, dtypes, invariants, device."""
import hypothesis
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_s2s as tg
from tinygrad_s2s.testing import check_op, gradcheck, gradgradcheck, op_test_cases
from tinygrad_s2s.testing.battery import run_op
from tinygrad_s2s.testing.op_table import BY_NAME, OPS

each_op = pytest.mark.parametrize("spec", OPS, ids=[s.name for s in OPS])


BLAS_OPS = ("matmul", "lstm_sequence", "lstm_cell", "gru_sequence")
"""Ops whose results go through BLAS's GEMMs: CI runs their battery under each OpenBLAS kernel family."""


def _battery_cases():
    return [pytest.param(*case.values, id=case.id, marks=[pytest.mark.numerics] * (case.values[0].name in BLAS_OPS))
            for case in op_test_cases(OPS)]


@pytest.mark.parametrize("spec, check", _battery_cases())
def test_op_battery(spec, check):
    """The public battery (tg.testing.check_op) on every op in the table: gradient and second order
    against central differences, forward against NumPy in float32 and float64, no mutation, no
    aliasing, graph freed, the strict fake GPU device, detect_anomaly errors, ties and kinks."""
    check_op(spec, checks=[check])


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
    cpu_xs, cpu_out, _ = run_op(spec, arrays, kw)
    xs, out, _ = run_op(spec, arrays, kw, device="cuda")
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
    gradgradcheck(build, *vals)


def test_the_gradient_of_a_nan_maximum_goes_to_its_nans_without_a_warning():
    """A NaN maximum equals no element; its NaNs take the gradient (as in PyTorch), shared like ties,
    and no 0/0 warning is printed."""
    import warnings
    x = tg.Tensor(np.array([[1.0, np.nan, 3.0], [np.nan, 5.0, np.nan], [1.0, 5.0, 5.0]]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.sum(tg.max(x, axis=1)).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


class _Softplus(tg.Function):
    """A user's op written with np.logaddexp, which warns "invalid value" on the NaN the anomaly check feeds."""
    name = "softplus"

    def forward(self, x):
        self.x = x
        return np.logaddexp(0, x)

    def backward(self, gy):
        return gy / (1 + np.exp(-self.x))


def test_check_op_prints_no_numpy_warning_for_the_nan_it_feeds():
    from tinygrad_s2s.testing import OpSpec
    from tinygrad_s2s.testing.strategies import arrays
    spec = OpSpec("softplus", lambda x: _Softplus.apply(x), lambda x: np.logaddexp(0, x),
                  st.tuples(arrays((2, 3)).map(lambda a: [a]), st.just({})))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a RuntimeWarning would fail the check instead of passing it
        check_op(spec, checks=["anomaly", "forward_float64"], max_examples=5)


def test_check_op_has_no_deadline_and_takes_a_budget():
    """Run from a user's script (Hypothesis's default profile, deadline 200 ms), a slow op still passes:
    the README's LayerNorm failed with DeadlineExceeded on a loaded machine."""
    import subprocess
    import sys
    script = """
import dataclasses, time
from tinygrad_s2s.testing import check_op
from tinygrad_s2s.testing.op_table import BY_NAME
spec, calls = BY_NAME["exp"], []
def slow_exp(*args, **kwargs):
    time.sleep(0.25)
    calls.append(1)
    return spec.fn(*args, **kwargs)
check_op(dataclasses.replace(spec, fn=slow_exp), checks=["forward_float64"], max_examples=2)
print(len(calls))
"""
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert 0 < int(r.stdout) <= 4, r.stdout      # two examples: the budget asked for


def test_the_lstm_sequence_row_draws_none_start_states():
    """h0 / c0 given as None take their own branch (the first step skips their products): the row
    must draw each combination, or that branch goes without a gradient and second-order check."""
    from hypothesis import find
    for zero in [(True, True), (True, False), (False, True), (False, False)]:
        arrays, kw = find(BY_NAME["lstm_sequence"].inputs, lambda d, zero=zero: d[1]["zero"] == zero)
        assert len(arrays) == 4 + zero.count(False)
