"""The model zoo: whole-loss gradient checks, the model contract (loss, batched generate, sampling,
attention weights), module paths on graph nodes, fused vs primitive attention, architecture
properties (bidirectional encoder, causal decoder) and a quick learning sanity check."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_s2s as tg
from zoo_cases import ATTENDING, MODELS, V, batch, build
from tinygrad_s2s.testing import gradcheck, gradcheck_model
from tinygrad_s2s.testing.fake_device import fake_device
from zoo.attention import Attention
from zoo.transformer import sinusoid_table


def graph_nodes(loss):
    """Every Function node reachable from `loss` (walking creator -> inputs)."""
    seen, stack, nodes = set(), [loss.creator], []
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        nodes.append(fn)
        stack.extend(t.creator for t in fn.inputs)
    return nodes


# ---------------------------------------------------------------- whole-loss gradient checks
# (model, extra kwargs, entries checked per parameter): the transformer is checked at one layer per
# stack here to keep the budget; test_default_sizes_gradcheck covers its default depth
GRADCHECKS = [("seq2seq", {}, 6), ("peeky", {}, 6), ("attention", {"fused": True}, 6),
              ("attention", {"fused": False}, 6), ("deep_lstm", {"layers": 3}, 4),
              ("transformer", {"layers": 1}, 3)]


@pytest.mark.parametrize("name,extra,entries", GRADCHECKS, ids=[f"{n}-{e}" for n, e, _ in GRADCHECKS])
@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 3), src=st.integers(1, 5), tgt=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_whole_loss_gradcheck(name, extra, entries, n, src, tgt, seed):
    counts = gradcheck_model(name, batch=n, src_len=src, tgt_len=tgt, seed=seed, max_entries=entries, **extra)
    model = build(name, 7, **extra)
    assert set(counts) == {p for p, _ in model.named_parameters()}     # every parameter was checked


@pytest.mark.parametrize("name", MODELS)
def test_default_sizes_gradcheck(name):
    """What `tinygrad-s2s gradcheck NAME` runs: the default extra kwargs, wordvec 4, hidden 8."""
    counts = gradcheck_model(name, max_entries=2)
    assert sum(counts.values()) >= len(counts) and all(v >= 1 for v in counts.values())


# ---------------------------------------------------------------- the contract
@pytest.mark.parametrize("name", MODELS)
def test_loss_is_a_scalar_cross_entropy_and_reaches_every_parameter(name):
    model = build(name, dtype=np.float32)
    xs, ts = batch()
    loss = model(xs, ts)
    assert isinstance(loss, tg.Tensor) and loss.shape == () and loss.dtype == np.float32
    assert 0 < loss.item() < 3 * np.log(V)     # near log(V) for an untrained model
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, pname
        assert np.isfinite(p.grad.numpy()).all(), pname
    again = model(tg.Tensor(xs), tg.Tensor(ts))      # Tensors of ids are accepted as well
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_loss_is_the_mean_over_decoder_steps(name):
    model = build(name)
    model.eval()
    xs, ts = batch(n=2, length=3)
    logits = model.logits(xs, ts[:, :-1]).numpy()
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, ts[:, 1:, None], -1).mean()
    assert model(xs, ts).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_bad_batches_name_the_problem(name):
    model = build(name)
    xs, ts = batch()
    with pytest.raises(ValueError, match="start marker"):
        model(xs, ts[:, :1])
    with pytest.raises(ValueError, match="rows"):
        model(xs[:2], ts)
    with pytest.raises(TypeError, match="integer"):
        model(xs.astype(float), ts)
    with pytest.raises(ValueError, match="2-D"):
        model(xs[0], ts)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(xs, 0, 3, sample=True, temperature=0)
    with pytest.raises(ValueError, match="length"):
        model.generate(xs, 0, -1)


@pytest.mark.parametrize("name", MODELS)
def test_config_rebuilds_the_model(name):
    model = build(name, dtype=np.float32)
    config = json.loads(json.dumps(model.config))                  # JSON-able
    assert {"vocab_size", "wordvec_size", "hidden_size"} <= set(config)
    assert (config["vocab_size"], config["wordvec_size"], config["hidden_size"]) == (V, 4, 8)
    twin = tg.create_model(name, **{k: v for k, v in config.items()})
    twin.load_state_dict(model.state_dict())
    xs, ts = batch()
    model.eval(), twin.eval()
    assert twin(xs, ts).item() == model(xs, ts).item()


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
def test_seed_fixes_the_initial_weights(name):
    a, b, c = build(name), build(name), build(name, seed=1)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=na)
    assert any(not np.array_equal(pa.numpy(), pc.numpy()) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
def test_greedy_generate_is_batched_deterministic_and_matches_teacher_forcing(name):
    model = build(name)
    model.eval()
    xs, _ = batch(n=5)
    out = model.generate(xs, 2, 4)
    assert isinstance(out, np.ndarray) and out.shape == (5, 4) and out.dtype.kind == "i"
    assert ((0 <= out) & (out < V)).all()
    np.testing.assert_array_equal(model.generate(xs, 2, 4), out)
    # one row at a time gives the same answers as the batch
    np.testing.assert_array_equal(np.concatenate([model.generate(xs[i:i + 1], 2, 4) for i in range(5)]), out)
    # feeding the generated answer back in under teacher forcing: each step's argmax is what was chosen
    ts_in = np.concatenate([np.full((5, 1), 2), out[:, :-1]], axis=1)
    with tg.no_grad():
        np.testing.assert_array_equal(model.logits(xs, ts_in).numpy().argmax(-1), out)
    assert model.generate(xs, 2, 0).shape == (5, 0)
    assert model.generate(tg.Tensor(xs), 2, 4).shape == (5, 4)


@pytest.mark.parametrize("name", MODELS)
def test_sampling_is_seeded_and_follows_the_temperature(name):
    model = build(name)
    model.eval()
    xs, _ = batch(n=40)
    greedy = model.generate(xs, 1, 4)
    tg.manual_seed(5)
    a = model.generate(xs, 1, 4, sample=True)
    tg.manual_seed(5)
    np.testing.assert_array_equal(model.generate(xs, 1, 4, sample=True), a)
    tg.manual_seed(6)
    assert not np.array_equal(model.generate(xs, 1, 4, sample=True), a)
    # a cold softmax is the argmax (an untrained model's logits differ by little, hence so cold);
    # a hot one is close to uniform, so it leaves the greedy path
    np.testing.assert_array_equal(model.generate(xs, 1, 4, sample=True, temperature=1e-12), greedy)
    hot = model.generate(xs, 1, 4, sample=True, temperature=100.0)
    assert (hot != greedy).mean() > 0.5 and len(np.unique(hot)) > V // 2


@pytest.mark.parametrize("name", ATTENDING)
def test_attention_weights_of_forward_and_generate(name):
    model = build(name)
    model.eval()
    xs, ts = batch(n=3, t=6, length=4)
    model(xs, ts)
    w = model.attention_weights
    assert isinstance(w, np.ndarray) and w.shape == (3, 4, 6)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    out = model.generate(xs, 2, 5)
    g = model.attention_weights
    assert g.shape == (3, 5, 6)
    np.testing.assert_allclose(g.sum(axis=-1), 1.0, rtol=1e-12)
    ts_in = np.concatenate([np.full((3, 1), 2), out[:, :-1]], axis=1)
    model.logits(xs, ts_in)
    np.testing.assert_allclose(model.attention_weights, g, atol=1e-12)   # step by step == all at once


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
def test_large_batches_decode_in_chunks_with_the_same_answers(name, monkeypatch):
    import tinygrad_s2s.models.base
    model = build(name)
    model.eval()
    xs, _ = batch(n=7)
    whole = model.generate(xs, 2, 4)
    weights = model.attention_weights
    monkeypatch.setattr(tinygrad_s2s.models.base, "DECODE_CHUNK", 3)      # 7 rows -> chunks of 3, 3 and 1
    np.testing.assert_array_equal(model.generate(xs, 2, 4), whole)
    if weights is not None:
        np.testing.assert_allclose(model.attention_weights, weights, atol=1e-12)


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
def test_training_and_decoding_on_the_strict_fake_gpu_match_the_cpu(name):
    """The GPU code path of a whole model (embedding lookups and gradients, the fused LSTM with its
    zero start state, Adam, clipping, decoding) on the fake device, which refuses any silent host
    array: the same losses and answers as on the CPU."""
    xs, ts = batch()
    results = []
    with fake_device() as dev:
        for device in ("cpu", dev):
            model = build(name, dtype=np.float32).to(device)
            opt = tg.optim.Adam(model.parameters(), lr=0.01)
            losses = []
            for _ in range(3):
                opt.zero_grad()
                loss = model(xs, ts)
                loss.backward()
                tg.optim.clip_grad_norm(model.parameters(), 1.0)
                opt.step()
                losses.append(loss.item())
            results.append((losses, model.generate(xs, 0, 4)))
    (cpu_losses, cpu_ids), (gpu_losses, gpu_ids) = results
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-6)
    np.testing.assert_array_equal(gpu_ids, cpu_ids)


@pytest.mark.parametrize("name", ["seq2seq", "peeky"])
def test_models_without_attention_record_none(name):
    model = build(name)
    model(*batch())
    assert model.attention_weights is None


# ---------------------------------------------------------------- graph structure
@pytest.mark.parametrize("name,extra", [("attention", {"fused": False}), ("attention", {"fused": True}),
                                        ("deep_lstm", {"fused": False, "layers": 2})])
def test_attention_module_paths_are_on_the_graph(name, extra):
    model = build(name, **extra)
    nodes = graph_nodes(model(*batch()))
    ops_at = {}
    for fn in nodes:
        ops_at.setdefault(fn.module, set()).add(fn.op)
    assert "decoder.attention.weight" in ops_at and "decoder.attention.weight_sum" in ops_at
    if extra["fused"]:
        assert {"matmul", "softmax"} <= ops_at["decoder.attention.weight"]
        assert "matmul" in ops_at["decoder.attention.weight_sum"]
    else:   # the book's nodes: Repeat, Mul, Sum (and Softmax for the weights)
        assert {"repeat", "mul", "sum", "softmax"} <= ops_at["decoder.attention.weight"]
        assert {"repeat", "mul", "sum"} <= ops_at["decoder.attention.weight_sum"]
    assert any(m.startswith("encoder") for m in ops_at) and "decoder.affine" in ops_at


@given(n=st.integers(1, 3), t=st.integers(1, 5), length=st.integers(1, 4), h=st.integers(1, 4),
       seed=st.integers(0, 2**16))
@settings(max_examples=10, deadline=None)
def test_fused_attention_matches_the_per_step_primitives(n, t, length, h, seed):
    rng = np.random.default_rng(seed)
    hs0, dec0 = rng.standard_normal((n, t, h)), rng.standard_normal((n, length, h))
    up = rng.standard_normal((n, length, h))
    results = []
    for fused in (True, False):
        hs, dec = tg.Tensor(hs0, requires_grad=True), tg.Tensor(dec0, requires_grad=True)
        att = Attention(fused=fused)
        c = att(hs, dec)
        (c * tg.Tensor(up)).sum().backward()
        results.append((c.numpy(), att.last_weights.numpy(), hs.grad.numpy(), dec.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    gradcheck(lambda x, y: Attention(fused=False)(x, y), hs0, dec0)
    gradcheck(lambda x, y: Attention(fused=True)(x, y), hs0, dec0)


def test_attention_one_step_is_the_books_layer():
    rng = np.random.default_rng(0)
    hs, h = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 3))
    att = Attention()
    c = att(tg.Tensor(hs), tg.Tensor(h))
    s = np.einsum("nth,nh->nt", hs, h)
    a = np.exp(s - s.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    np.testing.assert_allclose(att.last_weights.numpy(), a, rtol=1e-12)
    np.testing.assert_allclose(c.numpy(), np.einsum("nt,nth->nh", a, hs), rtol=1e-12)
    with pytest.raises(ValueError, match="encoder states"):
        att(tg.Tensor(hs), tg.Tensor(rng.standard_normal((2, 4))))


@pytest.mark.parametrize("name,extra", [("attention", {}), ("deep_lstm", {"layers": 2})])
def test_fused_and_primitive_models_agree_in_loss_and_gradients(name, extra):
    fused, plain = build(name, fused=True, **extra), build(name, fused=False, **extra)
    plain.load_state_dict(fused.state_dict())
    xs, ts = batch(n=3, t=6, length=4)
    losses = []
    for m in (fused, plain):
        loss = m(xs, ts)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    for (pname, a), (_, b) in zip(fused.named_parameters(), plain.named_parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=pname)
    np.testing.assert_allclose(fused.attention_weights, plain.attention_weights, rtol=1e-12)


# ---------------------------------------------------------------- architecture properties
def _first_state(model, xs):
    with tg.no_grad():
        return model.encoder(xs)[0].numpy()[:, 0]


def test_deep_lstm_first_encoder_layer_reads_both_directions_and_depth_is_configurable():
    model = build("deep_lstm")
    assert len(model.encoder.layers) == 3 and len(model.decoder.layers) == 4    # 1 bi + 3, and 4
    xs, _ = batch(n=2, t=5)
    changed = xs.copy()
    changed[:, -1] = (changed[:, -1] + 1) % V
    # position 0 sees the last token only through the backward direction
    assert not np.allclose(_first_state(model, xs), _first_state(model, changed))
    shallow = build("deep_lstm", layers=1)
    assert len(shallow.encoder.layers) == 0 and len(shallow.decoder.layers) == 1
    assert shallow(*batch()).shape == ()
    with pytest.raises(ValueError, match="layers"):
        build("deep_lstm", layers=0)


def test_deep_lstm_residual_connections():
    """With a layer's weights zeroed, its LSTM adds 0 to the residual stream: the top states equal
    the states below it."""
    model = build("deep_lstm", layers=2)
    xs, _ = batch()
    with tg.no_grad():
        top = model.encoder(xs)[0].numpy()
        for p in model.encoder.layers[0].parameters():
            p.data = p.data * 0
        below = model.encoder(xs)[0].numpy()
        both = model.encoder.lstm(model.encoder.embed(xs)).numpy()
    np.testing.assert_allclose(below, both[:, :, :8] + both[:, :, 8:], rtol=1e-12)
    assert not np.allclose(top, below)


def test_transformer_decoder_is_causal_and_sizes_are_checked():
    model = build("transformer")
    model.eval()
    xs, ts = batch(n=2, length=5)
    changed = ts.copy()
    changed[:, -2] = (changed[:, -2] + 1) % V
    with tg.no_grad():
        a = model.logits(xs, ts[:, :-1]).numpy()
        b = model.logits(xs, changed[:, :-1]).numpy()
    np.testing.assert_array_equal(a[:, :-1], b[:, :-1])       # earlier steps never see a later input
    assert not np.allclose(a[:, -1], b[:, -1])
    with pytest.raises(ValueError, match="divisible by heads"):
        build("transformer", heads=3)
    with pytest.raises(ValueError, match="max_len"):
        build("transformer", max_len=4)(*batch(t=5))
    assert build("transformer", hidden=6, heads=2, ff=5, layers=1, wordvec=6)(*batch()).shape == ()


def test_sinusoidal_positions():
    table = sinusoid_table(50, 6)
    np.testing.assert_allclose(table[0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(table[:, 0], np.sin(np.arange(50)))
    np.testing.assert_allclose(table[:, 1], np.cos(np.arange(50)))
    assert table.shape == (50, 6) and sinusoid_table(4, 5).shape == (4, 5)
    model = build("transformer")
    assert "positions" not in " ".join(n for n, _ in model.named_parameters())   # a buffer, not trained


@pytest.mark.parametrize("name", ["deep_lstm", "transformer"])
def test_dropout_only_while_training(name):
    model = build(name, dropout=0.5, layers=2)
    xs, ts = batch()
    train_losses = {model(xs, ts).item() for _ in range(3)}
    assert len(train_losses) == 3
    model.eval()
    assert model(xs, ts).item() == model(xs, ts).item()
    with pytest.raises(ValueError, match="dropout"):
        build(name, dropout=1.0)


# ---------------------------------------------------------------- learning sanity
@pytest.mark.parametrize("name,extra,steps", [("seq2seq", {}, 150), ("peeky", {}, 150), ("attention", {}, 150),
                                              ("deep_lstm", {"layers": 2}, 150),
                                              ("transformer", {"layers": 1, "heads": 2}, 150)])
def test_a_tiny_reversal_task_is_learned(name, extra, steps):
    rng = np.random.default_rng(0)
    xs = rng.integers(1, 6, (200, 4))
    ts = np.concatenate([np.zeros((200, 1), int), xs[:, ::-1]], axis=1)     # 0 is the start marker
    model = build(name, vocab=6, wordvec=8, hidden=24, dtype=np.float32, **extra)
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    first = model(xs, ts).item()
    order = np.random.default_rng(1)
    for _ in range(steps):
        idx = order.choice(200, 32, replace=False)
        opt.zero_grad()
        model(xs[idx], ts[idx]).backward()
        tg.optim.clip_grad_norm(model.parameters(), 5.0)
        opt.step()
    model.eval()
    last = model(xs, ts).item()
    assert last < 0.25 * first, (first, last)
    accuracy = (model.generate(xs, 0, 4) == xs[:, ::-1]).mean()
    assert accuracy > 0.8, accuracy


def test_deep_lstm_loads_checkpoints_from_before_the_bidirectional_option(tmp_path):
    """Its first encoder layer was two LSTMs, `encoder.lstm_fwd` and `encoder.lstm_bwd`; such a state
    dict loads into the one bidirectional `encoder.lstm` and gives the same loss."""
    model = build("deep_lstm", layers=2)
    old = {}
    for name, value in model.state_dict().items():
        if name.startswith("encoder.lstm."):
            rest = name[len("encoder.lstm."):]
            name = ("encoder.lstm_bwd." + rest[:-len("_reverse")] if rest.endswith("_reverse")
                    else "encoder.lstm_fwd." + rest)
        old[name] = value
    tg.save(old, tmp_path / "old.npz")
    twin = build("deep_lstm", layers=2, seed=5)
    twin.load_state_dict(tg.load(tmp_path / "old.npz"))
    xs, ts = batch()
    model.eval(), twin.eval()
    assert twin(xs, ts).item() == model(xs, ts).item()


def test_peeky_decoder_computes_the_books_concatenated_input():
    """The peeky decoder feeds h to its LSTM as `static` and to its Affine as a product of its own
    (each one product per sequence); the function is the book's, whose LSTM reads concat(h, x) and
    whose Affine reads concat(h, hs) at every step: same loss and gradients from the same weights (so
    checkpoints of either kind load into the other)."""
    model = build("peeky")
    xs, ts = batch()
    dec = model.decoder

    def book_logits(xs_, ts_in):
        _, h = model.encoder(xs_)
        N, L = ts_in.shape
        hr = tg.repeat(tg.reshape(h, (N, 1, h.shape[1])), L, axis=1)
        hs = dec.lstm(tg.concat([hr, dec.embed(ts_in)], axis=2), h0=h)
        return dec.affine(tg.concat([hr, hs], axis=2))

    results = []
    for logits in (model.logits, book_logits):
        model.zero_grad()
        out = logits(xs, ts[:, :-1])
        (out * tg.Tensor(np.linspace(-1, 1, V))).sum().backward()
        results.append([out.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
