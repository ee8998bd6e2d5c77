"""Recurrent building blocks: nn.GRU (fused layer vs its primitive reference, gradients, skipped
work), the single steps nn.LSTMCell / nn.GRUCell against the layers, and bidirectional=True."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_s2s as tg
from tinygrad_s2s.ops.gru import gru_sequence, gru_sequence_reference
from tinygrad_s2s.testing import gradcheck, gradcheck_module
from tinygrad_s2s.testing.fake_device import fake_device

dims = dict(n=st.integers(1, 3), t=st.integers(1, 5), d=st.integers(1, 4), h=st.integers(1, 4),
            seed=st.integers(0, 2**16))


def arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@settings(max_examples=15)
@given(used=st.sampled_from(["hs", "h", "both"]), with_h0=st.booleans(), **dims)
def test_fused_gru_matches_the_primitive_composition(used, with_h0, n, t, d, h, seed):
    x, Wx, b, h0, Wh = arrays(seed, (n, t, d), (d, 3 * h), (3 * h,), (n, h), (h, 3 * h))
    h0 = h0 if with_h0 else None
    results = []
    for layer in (gru_sequence, gru_sequence_reference):
        ts = [tg.Tensor(a, requires_grad=True) for a in (x, Wx, b, Wh)]
        start = None if h0 is None else tg.Tensor(h0, requires_grad=True)
        hs, last = layer(ts[0], ts[1], ts[2], start, ts[3])
        w = tg.Tensor(np.linspace(-1, 1, h))
        loss = {"hs": (hs * w).sum(), "h": (last * w).sum(), "both": (hs * w).sum() + (last * 2.0).sum()}[used]
        loss.backward()
        grads = [a.grad.numpy() for a in ts] + ([] if start is None else [start.grad.numpy()])
        results.append((hs.numpy(), last.numpy(), grads))
    (hs1, h1, g1), (hs2, h2, g2) = results
    np.testing.assert_allclose(hs1, hs2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h1, h2, rtol=1e-10, atol=1e-12)
    for a, b_ in zip(g1, g2):
        np.testing.assert_allclose(a, b_, rtol=1e-9, atol=1e-12)


@settings(max_examples=10)
@given(bidirectional=st.booleans(), cls=st.sampled_from(["LSTM", "GRU"]), **dims)
def test_whole_layer_gradcheck(bidirectional, cls, n, t, d, h, seed):
    tg.manual_seed(seed)
    with tg.default_dtype(np.float64):
        layer = getattr(tg.nn, cls)(d, h, bidirectional=bidirectional)
    xs, = arrays(seed, (n, t, d))
    width = 2 * h if bidirectional else h
    h0 = tg.Tensor(arrays(seed + 1, (n, width))[0])
    w = tg.Tensor(np.linspace(-1, 1, width))
    gradcheck_module(layer, lambda: (layer(tg.Tensor(xs), h0=h0) * w).sum() + (layer.h * w).sum())
    gradcheck(lambda x, s: layer(x, h0=s), xs, h0.numpy())


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_unfused_layers_give_the_fused_values(cls):
    tg.manual_seed(0)
    with tg.default_dtype(np.float64):
        fused = getattr(tg.nn, cls)(3, 4, bidirectional=True)
        plain = getattr(tg.nn, cls)(3, 4, bidirectional=True, fused=False)
    plain.load_state_dict(fused.state_dict())
    xs = tg.Tensor(arrays(0, (2, 5, 3))[0])
    np.testing.assert_allclose(plain(xs).numpy(), fused(xs).numpy(), rtol=1e-10)
    np.testing.assert_allclose(plain.h.numpy(), fused.h.numpy(), rtol=1e-10)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_bidirectional_is_two_layers_one_reading_backwards(cls):
    tg.manual_seed(0)
    with tg.default_dtype(np.float64):
        bi = getattr(tg.nn, cls)(3, 4, bidirectional=True)
        fwd, bwd = getattr(tg.nn, cls)(3, 4), getattr(tg.nn, cls)(3, 4)
    state = bi.state_dict()
    fwd.load_state_dict({k: v for k, v in state.items() if not k.endswith("_reverse")})
    bwd.load_state_dict({k[:-len("_reverse")]: v for k, v in state.items() if k.endswith("_reverse")})
    xs = arrays(1, (2, 5, 3))[0]
    hs = bi(tg.Tensor(xs)).numpy()
    assert hs.shape == (2, 5, 8) and bi.h.shape == (2, 8)
    np.testing.assert_allclose(hs[:, :, :4], fwd(tg.Tensor(xs)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(hs[:, :, 4:], bwd(tg.Tensor(xs[:, ::-1].copy())).numpy()[:, ::-1], rtol=1e-12)
    np.testing.assert_allclose(bi.h.numpy(), np.concatenate([fwd.h.numpy(), bwd.h.numpy()], axis=1), rtol=1e-12)
    assert sorted(state) == sorted(["Wx", "Wh", "b", "Wx_reverse", "Wh_reverse", "b_reverse"])
    if cls == "LSTM":
        assert bi.c.shape == (2, 8)


def test_recurrent_layer_errors():
    with pytest.raises(ValueError, match="stateful=True .* right-to-left"):
        tg.nn.GRU(3, 4, stateful=True, bidirectional=True)
    with pytest.raises(ValueError, match=r"gru: state h has shape \(2, 4\), expected \(2, 8\)"):
        tg.nn.GRU(3, 4, bidirectional=True)(tg.Tensor(np.zeros((2, 5, 3))), h0=tg.Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"gru: expected input \(N, T, 3\), got \(2, 5, 4\)"):
        tg.nn.GRU(3, 4)(tg.Tensor(np.zeros((2, 5, 4))))
    with pytest.raises(ValueError, match=r"gru_sequence.*Wh of shape \(2, 6\)"):
        tg.gru_sequence(np.zeros((2, 3, 4)), np.zeros((4, 6)), np.zeros(6), np.zeros((2, 2)), np.zeros((3, 6)))
    with pytest.raises(ValueError, match=r"grucell: expected input \(N, 3\), got \(2, 5\)"):
        tg.nn.GRUCell(3, 4)(tg.Tensor(np.zeros((2, 5))))


def test_stateful_gru_carries_its_state():
    tg.manual_seed(0)
    with tg.default_dtype(np.float64):
        gru = tg.nn.GRU(3, 4, stateful=True)
    xs = arrays(2, (2, 6, 3))[0]
    whole = gru(tg.Tensor(xs)).numpy()
    gru.reset_state()
    parts = np.concatenate([gru(tg.Tensor(xs[:, :2])).numpy(), gru(tg.Tensor(xs[:, 2:])).numpy()], axis=1)
    np.testing.assert_allclose(parts, whole, rtol=1e-12)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_cells_step_through_the_layer(kind):
    """Feeding a sequence one step at a time through the Cell (same weights) gives the layer's states."""
    tg.manual_seed(0)
    with tg.default_dtype(np.float64):
        layer, cell = getattr(tg.nn, kind)(3, 4), getattr(tg.nn, kind + "Cell")(3, 4)
    cell.load_state_dict(layer.state_dict())
    xs = arrays(3, (2, 5, 3))[0]
    hs = layer(tg.Tensor(xs)).numpy()
    state = (None, None) if kind == "LSTM" else None
    for t in range(5):
        if kind == "LSTM":
            state = cell(tg.Tensor(xs[:, t]), *state)
            h = state[0]
        else:
            h = state = cell(tg.Tensor(xs[:, t]), state)
        np.testing.assert_allclose(h.numpy(), hs[:, t], rtol=1e-10)
    if kind == "LSTM":
        np.testing.assert_allclose(state[1].numpy(), layer.c.numpy(), rtol=1e-10)
    x, h0 = arrays(4, (2, 3), (2, 4))
    with tg.default_dtype(np.float64):
        cell.to(np.float64)
        if kind == "GRU":
            gradcheck(lambda x, h: cell(x, h), x, h0)
        else:
            gradcheck(lambda x, h, c: tg.stack(cell(x, h, c)), x, h0, h0 * 0.5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_layers_on_the_strict_fake_gpu(kind):
    tg.manual_seed(0)
    layer = getattr(tg.nn, kind)(3, 4, bidirectional=True)
    xs = arrays(5, (2, 5, 3))[0].astype(np.float32)
    cpu = layer(tg.Tensor(xs))
    (cpu * 1.0).sum().backward()
    want = [p.grad.numpy() for p in layer.parameters()]
    layer.zero_grad()
    with fake_device() as dev:
        layer.to(dev)
        out = layer(tg.Tensor(xs).to(dev))
        out.sum().backward()
        np.testing.assert_allclose(out.numpy(), cpu.numpy(), rtol=1e-5, atol=1e-6)
        for p, g in zip(layer.parameters(), want):
            np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-4, atol=1e-5)


@settings(max_examples=15)
@given(fused=st.booleans(), bidirectional=st.booleans(), with_state=st.booleans(), s=st.integers(1, 3), **dims)
def test_lstm_static_input_is_the_repeated_concat(fused, bidirectional, with_state, s, n, t, d, h, seed):
    """lstm(x, static=s) == lstm(concat([repeat(s), x])): values and every gradient, fused or not."""
    tg.manual_seed(seed)
    with tg.default_dtype(np.float64):
        layer = tg.nn.LSTM(s + d, h, fused=fused, bidirectional=bidirectional)
    xs, st_, h0 = arrays(seed, (n, t, d), (n, s), (n, 2 * h if bidirectional else h))
    w = np.linspace(-1, 1, 2 * h if bidirectional else h)
    results = []
    for use_static in (True, False):
        x, sv = tg.Tensor(xs, requires_grad=True), tg.Tensor(st_, requires_grad=True)
        start = tg.Tensor(h0) if with_state else None
        if use_static:
            hs = layer(x, h0=start, static=sv)
        else:
            hs = layer(tg.concat([tg.repeat(tg.reshape(sv, (n, 1, s)), t, axis=1), x], axis=2), h0=start)
        layer.zero_grad()
        ((hs * tg.Tensor(w)).sum() + (layer.c * tg.Tensor(w)).sum()).backward()
        results.append([hs.numpy(), x.grad.numpy(), sv.grad.numpy()]
                       + [p.grad.numpy() for p in layer.parameters()])
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=1e-9, atol=1e-12)


def test_lstm_static_input_errors():
    layer = tg.nn.LSTM(5, 3)
    x = tg.Tensor(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"static input must be \(N, S\).*static \(3, 2\)"):
        layer(x, static=tg.Tensor(np.zeros((3, 2))))       # N differs
    with pytest.raises(ValueError, match=r"expected input \(N, T, 4\) beside static \(2, 1\)"):
        layer(x, static=tg.Tensor(np.zeros((2, 1))))       # 1 + 3 != 5
    with pytest.raises(ValueError, match=r"0 < S < 5"):
        layer(x, static=tg.Tensor(np.zeros((2, 5))))
