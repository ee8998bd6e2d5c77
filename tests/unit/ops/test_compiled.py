"""The compiled path of the fused recurrent layers (backend.compiled, the 'compiled' extra): the op
battery on both paths, the same bits from run to run, and agreement with the NumPy path at sizes
where the kernels' vector loops and their remainders both run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from extras import need

import tinygrad_s2s as tg
from tinygrad_s2s.backend import compiled
from tinygrad_s2s.testing import check_op
from tinygrad_s2s.testing.op_table import BY_NAME

pytestmark = pytest.mark.extras

FUSED = ("lstm_sequence", "gru_sequence")
CHECKS = ("forward_float32", "forward_float64", "gradient", "second_order", "invariants", "device")


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Each test runs on the compiled kernels, then with TINYGRAD_S2S_COMPILED=0 on NumPy's."""
    need("numba", "compiled")
    monkeypatch.setenv(compiled.ENV_VAR, "1" if request.param == "compiled" else "0")
    chosen = compiled.kernels(np, np.float32)
    assert (chosen is not None) == (request.param == "compiled"), compiled.active()
    return request.param


@pytest.mark.numerics
@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("name", FUSED)
def test_battery_on_both_paths(path, name, check):
    """Forward in both dtypes, gradient, second order (through the reference), invariants and the
    fake device against the reference: fewer draws than the op table's own run of the battery."""
    check_op(BY_NAME[name], checks=[check], max_examples=15)


def _layers(seed=0, dtype=np.float32, N=7, T=5, D=3, H=19):
    """Every output and gradient of an LSTM (with a per-sequence bias) and a GRU, at sizes that are no
    multiple of a vector width."""
    rng = np.random.default_rng(seed)

    def t(*shape, scale=1.0):
        return tg.Tensor((rng.standard_normal(shape) * scale).astype(dtype), requires_grad=True)
    x, h0, c0 = t(N, T, D), t(N, H), t(N, H)
    lstm_w = [t(D, 4 * H, scale=0.5), t(N, 4 * H), t(H, 4 * H, scale=0.5)]
    gru_w = [t(H, 3 * H, scale=0.5), t(3 * H), t(H, 3 * H, scale=0.5)]
    hs, h, c = tg.lstm_sequence(x, lstm_w[0], lstm_w[1], h0, c0, lstm_w[2])
    gs, g = tg.gru_sequence(hs, gru_w[0], gru_w[1], None, gru_w[2])
    up = [rng.standard_normal(a.shape).astype(dtype) for a in (gs, g, h, c)]
    (tg.sum(gs * up[0]) + tg.sum(g * up[1]) + tg.sum(h * up[2]) + tg.sum(c * up[3])).backward()
    return [a.numpy() for a in (hs, h, c, gs, g)] + [p.grad.numpy() for p in (x, h0, c0, *lstm_w, *gru_w)]


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-12)])
def test_compiled_agrees_with_numpy(monkeypatch, dtype, rtol):
    need("numba", "compiled")
    runs = {}
    for value in ("1", "0"):
        monkeypatch.setenv(compiled.ENV_VAR, value)
        runs[value] = _layers(dtype=dtype)
    for got, expected in zip(runs["1"], runs["0"]):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


_RUN = """
import hashlib, json, numpy as np, sys
sys.path.insert(0, {tests!r})
from unit.ops.test_compiled import _layers
from tinygrad_s2s.backend import compiled
print(json.dumps([compiled.active()] + [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
                                        for dt in (np.float32, np.float64) for a in _layers(dtype=dt)]))
"""


def test_two_processes_give_the_same_bits():
    """Same machine, same thread count, two fresh processes (the second loads the cached kernels)."""
    need("numba", "compiled")
    tests = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", compiled.ENV_VAR: "1",
           "PYTHONPATH": os.pathsep.join([os.path.join(tests, "helpers"), *sys.path])}
    runs = [json.loads(subprocess.run([sys.executable, "-c", _RUN.format(tests=tests)], env=env, check=True,
                                      capture_output=True, text=True, timeout=300).stdout) for _ in range(2)]
    assert runs[0][0].startswith("compiled (Numba ")
    assert runs[0] == runs[1]
