"""BLAS threads chosen per recurrent loop (tinygrad_s2s/blas_threads.py): the choice follows the
measured times and notices a change, the thread count is always restored, a ceiling of one thread
or TINYGRAD_S2S_BLAS_THREADS=fixed changes nothing, and every zoo model computes the same loss and
gradients on one BLAS thread as on several."""
import numpy as np
import pytest

from tinygrad_s2s.backend import blas_threads

from zoo_cases import MODELS, batch, build

pytestmark = pytest.mark.numerics


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
    monkeypatch.setenv(blas_threads.ENV_VAR, "auto")         # the chooser is opt-in
    return blas, per_step, run


def call(blas, run, steps=4, key="k", result=lambda blas: np.ones(3)):
    """One call of a kind of work through the chooser; returns the thread count it ran on."""
    used = []

    def work():
        used.append(blas.threads)
        run(steps)
        return result(blas)
    blas_threads.run(key, steps, np, work)
    return used


def test_the_faster_count_is_chosen_and_a_change_is_noticed(fake):
    blas, per_step, run = fake
    used = [n for _ in range(20) for n in call(blas, run, 3)]
    assert used[:2] == [1, 2]                            # first call: both counts, results compared
    assert used[2:8] == [1, 1, 1, 2, 2, 2]               # each count timed twice (after an untimed change)
    assert used[8:] == [2] * 13 and blas.threads == 2    # then the faster one; restored after each
    per_step.update({1: 0.5})                            # the machine changes: one thread now faster
    for _ in range(blas_threads.PROBE_EVERY * (blas_threads.SAMPLES + 1)):
        call(blas, run)
    choice = blas_threads.chosen()[("k", 2)]
    assert choice["best"] == 1 and choice["identical"] and choice["seconds per step"][1] == 0.5
    assert call(blas, run) == [1] and blas.threads == 2


def test_the_call_that_changes_the_count_is_not_timed(fake):
    """Waking BLAS's idle threads makes the first call after a change slow, which a run that stays on
    that count does not pay: a probe runs PROBE_CALLS calls in a row and times all but the first."""
    blas, per_step, run = fake
    changed = [None]

    def run_with_wake_up(steps=1):
        if blas.threads != changed[0]:                   # the first call after a change: 50 s to wake up
            run(50 / per_step[blas.threads])
        changed[0] = blas.threads
        run(steps)
    used = [n for _ in range(3 * blas_threads.PROBE_EVERY) for n in call(blas, run_with_wake_up, 1)]
    assert blas_threads.chosen()[("k", 2)]["seconds per step"] == {1: 2.0, 2: 1.0}
    assert used[-blas_threads.PROBE_EVERY:].count(1) == blas_threads.PROBE_CALLS   # one probe per 50 calls
    assert used[-1] == 2 and blas.threads == 2


def test_a_kind_whose_results_differ_stays_on_blas_own_count(fake):
    """Some GEMM shapes round differently on one thread: the choice must never change a number."""
    blas, per_step, run = fake
    per_step.update({1: 0.1})                            # one thread would be much faster...
    differs = lambda blas: np.array([1.0 + blas.threads * 1e-16, 1.0 / blas.threads])  # noqa: E731
    used = [n for _ in range(60) for n in call(blas, run, result=differs)]
    assert used[:2] == [1, 2] and used[2:] == [2] * 59   # ...but its results differ: never again
    assert blas_threads.chosen()[("k", 2)]["identical"] is False
    assert blas.threads == 2


def test_the_count_is_restored_when_the_work_raises(fake):
    blas, _, run = fake
    call(blas, run)                                      # the first call (both counts) is done

    def fails():
        raise RuntimeError("inside")
    for _ in range(3):
        with pytest.raises(RuntimeError):
            blas_threads.run("k", 1, np, fails)
        assert blas.threads == 2


def test_nothing_is_chosen_on_one_thread_when_fixed_or_on_a_gpu(fake, monkeypatch):
    blas, _, run = fake
    blas.threads = 1
    call(blas, run)
    blas.threads = 2
    blas_threads.run("k", 1, object(), lambda: run())    # another array module: a GPU
    monkeypatch.setenv(blas_threads.ENV_VAR, "fixed")
    call(blas, run)
    monkeypatch.delenv(blas_threads.ENV_VAR)             # the default: BLAS decides, nothing is timed
    call(blas, run)
    assert blas.set_calls == [] and blas_threads.chosen() == {}
    monkeypatch.setenv(blas_threads.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match="TINYGRAD_S2S_BLAS_THREADS='sometimes'.*'auto'.*'fixed'"):
        call(blas, run)


def test_an_lstm_layer_that_rounds_differently_per_thread_count_stays_reproducible(monkeypatch):
    """Layers this wide take another kernel path on one BLAS thread than on two (as the deep
    LSTM's): whatever the chooser does, every call gives what BLAS's own count gives, bit for bit."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import tinygrad_s2s as tg
    monkeypatch.setattr(blas_threads, "_kinds", {})
    rng = np.random.default_rng(0)
    N, T, D, H = 64, 4, 512, 64
    arrays = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in ((N, T, D), (D, 4 * H), (4 * H,), (H, 4 * H))]

    def layer():
        ts = [tg.Tensor(a, requires_grad=True) for a in arrays]
        hs = tg.lstm_sequence(ts[0], ts[1], ts[2], None, None, ts[3])[0]
        (hs * 1.5).sum().backward()
        return [hs.numpy()] + [t.grad.numpy() for t in ts]
    monkeypatch.setenv(blas_threads.ENV_VAR, "fixed")
    reference = layer()
    monkeypatch.setenv(blas_threads.ENV_VAR, "auto")
    for _ in range(blas_threads.PROBE_EVERY + 5):
        for a, b in zip(layer(), reference):
            np.testing.assert_array_equal(a, b)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):   # shows the case is real, where it is
        one = layer()
    if threadpoolctl.threadpool_info() and max(i["num_threads"] for i in threadpoolctl.threadpool_info()) > 1:
        differs = not all(np.array_equal(a, b) for a, b in zip(one, reference))
        kinds = blas_threads.chosen()
        # which kinds of call round differently depends on the BLAS kernels (OpenBLAS's SkylakeX kernels:
        # only the forward loop's GEMMs; Haswell's: every kind): the chooser must have seen at least one
        assert any(not v["identical"] for v in kinds.values()) if differs else True


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
    kinds = blas_threads.chosen()
    assert kinds and all(key[:4] == ("gemm", m, n, k) for key, _ in kinds)
    assert blas.set_calls and blas.threads == 2
    blas_threads._kinds.clear()
    tg.matmul(tg.Tensor(np.ones((8, 8)), requires_grad=True), tg.Tensor(np.ones((8, 8)))).sum().backward()
    assert blas_threads.chosen() == {}


def test_all_zero_results_prove_nothing_and_the_next_call_compares_again(fake):
    blas, _, run = fake
    zeros = lambda blas: np.zeros(3)                     # noqa: E731  e.g. a backward with no gradient in
    assert call(blas, run, result=zeros) == [1, 2] and blas_threads.chosen() == {}
    differs = lambda blas: np.array([float(blas.threads)])  # noqa: E731
    assert call(blas, run, result=differs) == [1, 2]
    assert blas_threads.chosen()[("k", 2)]["identical"] is False
    assert call(blas, run, result=differs) == [2]


def test_a_call_from_another_thread_waits_while_the_count_is_changed(fake):
    """Running on a count it did not choose could round differently: the other thread waits its turn."""
    import threading
    blas, _, run = fake
    call(blas, run)                                      # first call done: the kind is measured
    times = blas_threads._kinds[("k", 2)].times
    times[1].extend([0.0] * 5)                           # one thread is now clearly faster
    times[2].extend([9.0] * 5)
    inside, release, seen = threading.Event(), threading.Event(), []

    def slow():
        inside.set()
        release.wait(5)
        return np.ones(1)

    def other():
        seen.append(blas_threads.run("other", 1, np, lambda: blas.threads))
    first = threading.Thread(target=lambda: blas_threads.run("k", 1, np, slow))
    first.start()
    inside.wait(5)
    assert blas.threads == 1                             # the first call runs on one thread...
    second = threading.Thread(target=other)
    second.start()
    second.join(0.2)
    assert second.is_alive() and seen == []              # ...and the other thread's call waits
    release.set()
    first.join(5)
    second.join(5)
    assert seen and blas.threads == 2
