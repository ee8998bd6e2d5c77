"""BLAS threads chosen per recurrent loop (tinygrad_s2s/blas_threads.py): the choice follows the
measured times and notices a change, the thread count is always restored, a ceiling of one thread
or TINYGRAD_S2S_BLAS_THREADS=fixed changes nothing, and every zoo model computes the same loss and
gradients on one BLAS thread as on several."""
import numpy as np
import pytest

from tinygrad_s2s import blas_threads

from test_zoo import MODELS, batch, build


class FakeBLAS:
    """A BLAS controller that records what it is told, with a clock whose step time depends on it."""

    def __init__(self, threads=2):
        self.threads, self.set_calls = threads, []

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, n):
        self.set_calls.append(n)
        self.threads = n


@pytest.fixture
def fake(monkeypatch):
    blas = FakeBLAS()
    now = [0.0]
    per_step = {1: 2.0, 2: 1.0}          # seconds per step on 1 and 2 threads: 2 threads faster

    def run(steps=1):
        now[0] += per_step[blas.threads] * steps
    monkeypatch.setattr(blas_threads, "_controllers", [blas])
    monkeypatch.setattr(blas_threads, "_kinds", {})
    monkeypatch.setattr(blas_threads, "clock", lambda: now[0])
    monkeypatch.delenv(blas_threads.ENV_VAR, raising=False)
    return blas, per_step, run


def loop(run, steps=4, key="k"):
    with blas_threads.threads_for(key, steps, np):
        run(steps)


def test_the_faster_count_is_chosen_and_a_change_is_noticed(fake):
    blas, per_step, run = fake
    used = []
    for _ in range(20):
        with blas_threads.threads_for("k", 3, np):
            used.append(blas.threads)
            run(3)
    assert used[:4] == [1, 1, 2, 2]                      # each count measured twice first
    assert used[4:] == [2] * 16 and blas.threads == 2    # then the faster one; restored after each
    per_step.update({1: 0.5})                            # the machine changes: one thread now faster
    for _ in range(blas_threads.PROBE_EVERY * (blas_threads.SAMPLES + 1)):
        loop(run)
    choice = blas_threads.chosen()[("k", 2)]
    assert choice["best"] == 1 and choice["seconds per step"][1] == 0.5
    with blas_threads.threads_for("k", 1, np):
        assert blas.threads == 1
    assert blas.threads == 2


def test_the_count_is_restored_when_the_loop_raises(fake):
    blas, _, run = fake
    with pytest.raises(RuntimeError):
        with blas_threads.threads_for("k", 1, np):
            assert blas.threads == 1
            raise RuntimeError("inside")
    assert blas.threads == 2
    assert blas_threads.chosen()[("k", 2)]["seconds per step"] == {}   # a failed call is not a sample


def test_nothing_is_chosen_on_one_thread_when_fixed_or_on_a_gpu(fake, monkeypatch):
    blas, _, run = fake
    blas.threads = 1
    loop(run)
    blas.threads = 2
    with blas_threads.threads_for("k", 1, object()):     # another array module: a GPU
        run()
    monkeypatch.setenv(blas_threads.ENV_VAR, "fixed")
    loop(run)
    assert blas.set_calls == [] and blas_threads.chosen() == {}
    monkeypatch.setenv(blas_threads.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match="TINYGRAD_S2S_BLAS_THREADS='sometimes'.*'auto'.*'fixed'"):
        loop(run)


@pytest.mark.parametrize("name", MODELS)
def test_zoo_models_agree_on_one_and_on_all_blas_threads(name, monkeypatch):
    """Whatever count the chooser takes, the numbers are the same to float32 round-off."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setenv(blas_threads.ENV_VAR, "fixed")   # the count below holds everywhere
    xs, ts = batch(n=64, t=7, length=5)                  # enough rows that BLAS splits its work
    results = []
    for limit in (1, None):
        model = build(name, wordvec=16, hidden=64, dtype=np.float32)
        with threadpoolctl.threadpool_limits(limits=limit, user_api="blas"):
            loss = model(xs, ts)
            loss.backward()
        results.append([loss.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_matmul_chooses_for_big_products_only(fake):
    """A matmul of at least GEMM_MIN multiply-adds (forward and backward) runs under the choice; a
    small one leaves BLAS alone, so the op costs what it did."""
    import tinygrad_s2s as tg
    blas, _, _ = fake
    m, k, n = 64, 128, blas_threads.GEMM_MIN // (64 * 128)
    rng = np.random.default_rng(0)
    for shape_a in ((m, k), (4, m // 4, k)):          # 2-D, and (N, T, D) @ (D, H) as one 2-D GEMM
        a = tg.Tensor(rng.standard_normal(shape_a), requires_grad=True)
        b = tg.Tensor(rng.standard_normal((k, n)), requires_grad=True)
        tg.matmul(a, b).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), np.ones(shape_a[:-1] + (n,)) @ b.numpy().T, rtol=1e-12)
    assert set(blas_threads.chosen()) == {(("gemm", m, n, k), 2)}
    assert blas.set_calls and blas.threads == 2
    blas_threads._kinds.clear()
    tg.matmul(tg.Tensor(np.ones((8, 8)), requires_grad=True), tg.Tensor(np.ones((8, 8)))).sum().backward()
    assert blas_threads.chosen() == {}
