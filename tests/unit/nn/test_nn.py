"""Layers gradient-checked whole, the fused LSTM against its primitives, Module API, optimizers, save/load."""
import os
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_s2s as tg
from tinygrad_s2s.ops.lstm import lstm_sequence, lstm_sequence_reference
from tinygrad_s2s.testing import gradcheck, gradcheck_module
from tinygrad_s2s.testing.strategies import arrays


@given(n=st.integers(1, 3), t=st.integers(1, 4), d=st.integers(1, 3), h=st.integers(1, 3),
       seed=st.integers(0, 2**16), with_state=st.booleans())
def test_lstm_whole_layer_gradcheck(n, t, d, h, seed, with_state):
    tg.manual_seed(seed)
    with tg.default_dtype(np.float64):
        lstm = tg.nn.LSTM(d, h)
    xs = np.random.default_rng(seed).standard_normal((n, t, d))
    h0 = tg.Tensor(np.random.default_rng(seed + 1).standard_normal((n, h))) if with_state else None
    gradcheck_module(lstm, lambda: (lstm(tg.Tensor(xs), h0=h0) * tg.Tensor(np.linspace(-1, 1, h))).sum())
    gradcheck(lambda x: lstm(x, h0=h0), xs)


@given(n=st.integers(1, 3), t=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_fused_lstm_matches_the_primitive_composition(n, t, seed):
    tg.manual_seed(seed)
    with tg.default_dtype(np.float64):
        fused = tg.nn.LSTM(3, 4)
        plain = tg.nn.LSTM(3, 4, fused=False)
    plain.load_state_dict(fused.state_dict())
    xs = np.random.default_rng(seed).standard_normal((n, t, 3))
    outs = []
    for layer in (fused, plain):
        x = tg.Tensor(xs, requires_grad=True)
        out = layer(x)
        (out * out).sum().backward()
        outs.append((out.numpy(), x.grad.numpy(), [p.grad.numpy() for p in layer.parameters()]))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-10, atol=1e-12)
    for a, b in zip(outs[0][2], outs[1][2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@given(n=st.integers(1, 3), t=st.integers(1, 4), seed=st.integers(0, 2**16),
       used=st.sets(st.sampled_from(["hs", "h", "c"]), min_size=1),
       zero_start=st.sets(st.sampled_from(["h0", "c0"])))
def test_fused_lstm_skipped_work_keeps_the_gradients(n, t, seed, used, zero_start):
    """lstm_sequence takes None for an unused output's gradient (an encoder's hs, a decoder's last
    state) and for a zero start state, and skips that work; outputs and gradients must still be the
    primitive composition's."""
    rng = np.random.default_rng(seed)
    names = ["x", "Wx", "b", "h0", "c0", "Wh"]
    shapes = [(n, t, 2), (2, 12), (12,), (n, 3), (n, 3), (3, 12)]
    arrays_ = {k: rng.standard_normal(s) for k, s in zip(names, shapes)}
    results = []
    for layer in (lstm_sequence, lstm_sequence_reference):
        ins = {k: None if k in zero_start else tg.Tensor(a, requires_grad=True) for k, a in arrays_.items()}
        outs = dict(zip(["hs", "h", "c"], layer(*ins.values())))
        loss = sum(((outs[k] * outs[k]).sum() for k in sorted(used)), tg.Tensor(0.0))
        loss.backward()
        results.append([loss.item()] + [x.grad.numpy() if x.grad is not None else np.zeros(x.shape)
                                        for x in ins.values() if x is not None])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_stateful_lstm_carries_its_state_between_calls():
    lstm = tg.nn.LSTM(2, 3, stateful=True)
    xs = np.random.default_rng(0).standard_normal((1, 4, 2)).astype(np.float32)
    whole = lstm(tg.Tensor(xs)).numpy()
    lstm.reset_state()
    parts = [lstm(tg.Tensor(xs[:, i:i + 1])).numpy() for i in range(4)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-6)
    h = tg.Tensor(np.ones((1, 3), np.float32))
    lstm.set_state(h)
    a = lstm(tg.Tensor(xs)).numpy()
    lstm.set_state(h)
    np.testing.assert_allclose(lstm(tg.Tensor(xs)).numpy(), a)


@given(data=st.data())
def test_embedding_gradcheck_with_repeated_ids(data):
    ids = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=6)).copy()
    ids.append(ids[0])                                      # at least one repeat
    with tg.default_dtype(np.float64):
        emb = tg.nn.Embedding(5, 3)
    gradcheck_module(emb, lambda: (emb(np.array([ids])) ** 2).sum())


@given(x=arrays((2, 3, 4)))
def test_linear_and_layernorm_gradcheck(x):
    with tg.default_dtype(np.float64):
        lin, ln = tg.nn.Linear(4, 5), tg.nn.LayerNorm(5)
    ln.weight.data = np.linspace(0.5, 1.5, 5)
    w = np.random.default_rng(0).standard_normal((2, 3, 5))
    gradcheck(lambda t: ln(lin(t)) * w, x)
    gradcheck_module(lin, lambda: (ln(lin(tg.Tensor(x))) * w).sum())
    gradcheck_module(ln, lambda: (ln(lin(tg.Tensor(x))) * w).sum())


def test_layernorm_normalises():
    ln = tg.nn.LayerNorm(6)
    y = ln(tg.Tensor(np.random.default_rng(0).standard_normal((4, 6)) * 5 + 3)).numpy()
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-3)


@given(x=arrays((3, 5)), t=st.lists(st.integers(0, 4), min_size=3, max_size=3))
def test_fused_cross_entropy_matches_log_softmax_composition(x, t):
    targets = np.array(t)
    fused = tg.softmax_cross_entropy(tg.Tensor(x), targets).item()
    onehot = np.eye(5)[targets]
    composed = -(tg.log_softmax(tg.Tensor(x)) * onehot).sum().item() / 3
    assert fused == pytest.approx(composed, rel=1e-10)


def test_dropout_module_is_identity_in_eval_and_scales_in_train():
    d = tg.nn.Dropout(0.5)
    x = tg.Tensor(np.ones((1000,), np.float32))
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    assert d(x) is x


# ---------------------------------------------------------------- Module API
class Tiny(tg.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = tg.nn.Embedding(5, 3)
        self.layers = tg.nn.ModuleList([tg.nn.Linear(3, 3), tg.nn.Linear(3, 2)])

    def forward(self, ids):
        h = self.embed(ids)
        for layer in self.layers:
            h = layer(h)
        return h


def test_module_registers_parameters_and_state_dict_round_trips():
    m = Tiny()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["embed.weight", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert m.num_parameters() == 15 + 9 + 3 + 6 + 2
    other = Tiny()
    other.load_state_dict(m.state_dict())
    ids = np.array([[1, 2]])
    np.testing.assert_array_equal(other(ids).numpy(), m(ids).numpy())
    assert m.train().layers[0].training is not False and m.eval().layers[1].training is False


def test_load_state_dict_is_strict_about_names_and_shapes():
    m = Tiny()
    state = m.state_dict()
    state.pop("embed.weight")
    state["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"missing \['embed.weight'\], unexpected \['extra'\]"):
        m.load_state_dict(state)
    state = m.state_dict()
    state["layers.1.bias"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"layers.1.bias: checkpoint \(7,\) vs model \(2,\)"):
        m.load_state_dict(state)


def test_module_to_float64_converts_every_parameter():
    m = Tiny().to(np.float64)
    assert {p.dtype for p in m.parameters()} == {np.dtype(np.float64)}


# ---------------------------------------------------------------- optimizers
def _adam_reference(p, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    m = v = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def test_adam_matches_the_textbook_update():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(5)]
    p = tg.nn.Parameter(p0.copy(), dtype=np.float64)
    opt = tg.optim.Adam([p], lr=0.01)
    for g in grads:
        p.grad = tg.Tensor(g.copy())
        opt.step()
    np.testing.assert_allclose(p.numpy(), _adam_reference(p0, grads), rtol=1e-10)


def test_adam_counts_each_parameters_own_steps_as_pytorch_does():
    """A parameter with no gradient in some steps (a frozen layer thawed later) gets the bias
    correction of its own updates: with one count for all, its first update after 1,000 idle steps
    was 2.5x PyTorch's. The count survives a state_dict round trip; an old state without it means
    every parameter had every step."""
    rng = np.random.default_rng(1)
    p0, q0 = rng.standard_normal(3), rng.standard_normal(2)
    p, q = (tg.nn.Parameter(a.copy(), dtype=np.float64) for a in (p0, q0))
    opt = tg.optim.Adam([p, q], lr=0.01)
    q_grads = []
    for step in range(12):
        p.grad = tg.Tensor(rng.standard_normal(3))
        q.grad = None if step < 5 or step % 3 == 0 else tg.Tensor(rng.standard_normal(2))
        if q.grad is not None:
            q_grads.append(q.grad.numpy().copy())
        opt.step()
    assert opt.t == 12 and opt.steps == [12, len(q_grads)]
    np.testing.assert_allclose(q.numpy(), _adam_reference(q0, q_grads), rtol=1e-10)
    twin = tg.optim.Adam([tg.nn.Parameter(p0.copy(), dtype=np.float64), tg.nn.Parameter(q0.copy(), dtype=np.float64)])
    twin.load_state_dict(opt.state_dict())
    assert twin.steps == opt.steps
    old = opt.state_dict()
    del old["hyper"]["steps"]
    twin.load_state_dict(old)
    assert twin.steps == [12, 12]
    try:
        import torch
    except ImportError:
        return
    tp = torch.tensor(q0.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01)
    for step in range(12):          # the same gradients, idle in the same steps
        if step < 5 or step % 3 == 0:
            tp.grad = None
        else:
            tp.grad = torch.tensor(q_grads.pop(0))
        topt.step()
    np.testing.assert_allclose(q.numpy(), tp.detach().numpy(), rtol=1e-12)


def test_adam_follows_a_model_converted_after_it_was_made():
    lin = tg.nn.Linear(2, 2)
    opt = tg.optim.Adam(lin.parameters())
    lin.to(np.float64)                       # the moments were float32: the updates were rounded to them
    tg.sum(lin(tg.Tensor(np.ones((1, 2))))).backward()
    opt.step()
    assert all(m.dtype == np.float64 for m in opt.m + opt.v)


def test_adam_on_float16_parameters_keeps_float32_moments_and_no_nan():
    """In float16, eps = 1e-8 rounds to 0: a parameter whose gradient was 0 became 0 / 0 = NaN after
    one step (half of a model's weights), silently. The moments and the arithmetic are float32."""
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(8).astype(np.float16)
    grads = [np.where(np.arange(8) % 2 == 0, 0.0, rng.standard_normal(8) * 1e-3) for _ in range(3)]
    p = tg.nn.Parameter(p0.copy(), dtype=np.float16)
    opt = tg.optim.Adam([p], lr=0.01)
    for g in grads:
        p.grad = tg.Tensor(g.astype(np.float16), dtype=np.float16)
        opt.step()
    assert p.dtype == np.float16 and np.isfinite(p.numpy()).all()
    assert all(m.dtype == np.float32 for m in opt.m + opt.v)
    want = _adam_reference(p0.astype(np.float64), [g.astype(np.float16).astype(np.float64) for g in grads])
    np.testing.assert_allclose(p.numpy(), want, rtol=2e-3, atol=2e-3)     # float16's own rounding
    twin = tg.optim.Adam([tg.nn.Parameter(p0.copy(), dtype=np.float16)])
    twin.load_state_dict(opt.state_dict())                                 # float32 moments stay float32
    np.testing.assert_array_equal(twin.v[0], opt.v[0])


def test_sgd_with_momentum_and_optimizer_state_round_trip():
    p = tg.nn.Parameter(np.ones(2), dtype=np.float64)
    opt = tg.optim.SGD([p], lr=0.1, momentum=0.9)
    for _ in range(2):
        p.grad = tg.Tensor(np.ones(2))
        opt.step()
    np.testing.assert_allclose(p.numpy(), 1 - 0.1 - 0.1 * 1.9)
    q = tg.nn.Parameter(np.ones(2), dtype=np.float64)
    opt2 = tg.optim.SGD([q], lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.lr == 0.1 and opt2.momentum == 0.9
    np.testing.assert_allclose(opt2.velocity[0], [1.9, 1.9])


def test_clip_grad_norm_scales_all_gradients_together():
    a = tg.nn.Parameter(np.zeros(2), dtype=np.float64)
    b = tg.nn.Parameter(np.zeros(1), dtype=np.float64)
    a.grad, b.grad = tg.Tensor(np.array([3.0, 0.0])), tg.Tensor(np.array([4.0]))
    assert tg.optim.clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.numpy(), b.grad.numpy()]), [0.6, 0, 0.8], rtol=1e-5)
    assert tg.optim.clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)   # under the limit: unchanged


def test_training_a_tiny_model_reduces_the_loss():
    tg.manual_seed(0)
    m = Tiny()
    opt = tg.optim.Adam(m.parameters(), lr=0.05)
    ids = np.array([[0, 1, 2, 3, 4]])
    t = np.array([[0, 1, 0, 1, 0]])
    losses = []
    for _ in range(60):
        loss = tg.softmax_cross_entropy(m(ids), t)
        m.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


# ---------------------------------------------------------------- save / load
def test_save_load_round_trip_without_pickle(tmp_path):
    m = Tiny()
    path = tmp_path / "m.npz"
    tg.save(m, path, meta={"epoch": 3})
    state, meta = tg.load(path, return_meta=True)
    assert meta == {"epoch": 3} and list(state) == [n for n, _ in m.named_parameters()]
    with np.load(path, allow_pickle=False) as z:      # readable with pickle disabled
        assert "__header__" in z.files
    other = Tiny()
    other.load_state_dict(tg.load(path))
    for a, b in zip(other.parameters(), m.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_save_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.ones(3)}, path)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(tg.load(path)["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]            # no temp file left behind


def test_load_rejects_foreign_and_future_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a tinygrad-s2s checkpoint"):
        tg.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, w=np.ones(2))
    with pytest.raises(ValueError, match="is not a tinygrad-s2s checkpoint"):
        tg.load(other)
    with pytest.raises(FileNotFoundError, match="no such file"):
        tg.load(tmp_path / "missing.npz")


def test_float_buffers_follow_the_default_dtype_and_move_with_to():
    class WithTable(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", np.linspace(0, 1, 4))      # a float64 ndarray
            self.register_buffer("ids", np.arange(3))

    m = WithTable()
    assert m.table.dtype == np.float32 and m.ids.dtype.kind == "i"
    assert m.to(np.float64).table.dtype == np.float64
    assert not m.table.requires_grad and m.parameters() == []


@pytest.mark.parametrize("make, words", [
    (lambda ps: tg.optim.Adam(ps, lr=-1), "Adam: lr must be a finite number >= 0, got -1"),
    (lambda ps: tg.optim.Adam(ps, lr=float("nan")), "Adam: lr must be a finite number >= 0, got nan"),
    (lambda ps: tg.optim.Adam(ps, lr=float("inf")), "Adam: lr must be a finite number >= 0, got inf"),
    (lambda ps: tg.optim.Adam(ps, betas=(0.9, 1.0)), "Adam: betas[1] must be in [0, 1), got 1.0"),
    (lambda ps: tg.optim.Adam(ps, eps=-1e-8), "Adam: eps must be a finite number >= 0, got -1e-08"),
    (lambda ps: tg.optim.SGD(ps, lr=-1), "SGD: lr must be a finite number >= 0, got -1"),
    (lambda ps: tg.optim.SGD(ps, lr=float("nan")), "SGD: lr must be a finite number >= 0, got nan"),
    (lambda ps: tg.optim.SGD(ps, momentum=-0.5), "SGD: momentum must be a finite number >= 0, got -0.5")])
def test_optimizers_refuse_hyper_parameters_out_of_range(make, words):
    """Adam(lr=-1) and Adam(lr=nan) were accepted (as torch.optim refuses them)."""
    with pytest.raises(ValueError, match=re.escape(words)):
        make([tg.nn.Parameter(np.ones(2))])
    tg.optim.Adam([tg.nn.Parameter(np.ones(2))], lr=0)           # 0 is allowed, as in PyTorch


# ---------------------------------------------------------------- containers, as torch.nn's
class _Tanh(tg.nn.Module):
    def forward(self, x):
        return tg.tanh(x)


def test_sequential_calls_its_children_in_order_with_torchs_state_dict_keys():
    tg.manual_seed(0)
    seq = tg.nn.Sequential(tg.nn.Linear(3, 4), _Tanh(), tg.nn.Linear(4, 2))
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = tg.randn(5, 3)
    want = seq[2](tg.tanh(seq[0](x)))
    np.testing.assert_array_equal(seq(x).numpy(), want.numpy())
    assert len(seq) == 3 and [type(m).__name__ for m in seq] == ["Linear", "_Tanh", "Linear"]
    assert isinstance(seq[1:], tg.nn.Sequential) and list(seq[1:].state_dict()) == ["2.weight", "2.bias"]
    assert seq[-1] is seq[2]
    seq.append(_Tanh())
    assert len(seq) == 4 and seq(x).numpy().max() <= 1.0
    seq(x).sum().backward()
    assert all(p.grad is not None for p in seq.parameters())


def test_sequential_takes_an_ordered_dict_and_refuses_what_is_not_a_module():
    from collections import OrderedDict
    seq = tg.nn.Sequential(OrderedDict([("proj", tg.nn.Linear(2, 2)), ("act", _Tanh())]))
    assert list(seq.state_dict()) == ["proj.weight", "proj.bias"] and seq.act is seq[1]
    with pytest.raises(TypeError, match="Sequential: item '1' is a function, not a Module"):
        tg.nn.Sequential(tg.nn.Linear(2, 2), tg.tanh)


def test_sequential_nodes_record_their_module_path():
    class Net(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = tg.nn.Sequential(tg.nn.Linear(2, 2), _Tanh())

        def forward(self, x):
            return self.body(x)

    y = Net()(tg.ones(1, 2))
    assert y.creator.module == "body.1" and y.creator.inputs[0].creator.module == "body.0"


def test_module_list_indexes_iterates_and_grows_as_torchs():
    layers = tg.nn.ModuleList([tg.nn.Linear(2, 2), tg.nn.Linear(2, 3)])
    assert len(layers) == 2 and layers[-1] is layers[1] and list(layers) == [layers[0], layers[1]]
    assert layers.append(tg.nn.Linear(3, 3)) is layers and len(layers) == 3
    assert layers.extend([tg.nn.Linear(3, 1)]) is layers and len(layers) == 4
    part = layers[1:3]
    assert isinstance(part, tg.nn.ModuleList) and list(part) == [layers[1], layers[2]]
    assert [n for n, _ in part.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert list(layers.state_dict())[-2:] == ["3.weight", "3.bias"]
    with pytest.raises(IndexError):
        layers[4]
