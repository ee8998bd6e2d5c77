"""Decoding in the shared base, on every zoo model: beam search (beam=1 is greedy, scores sorted and
equal to the model's own teacher-forced log-likelihood, exhaustive search finds the true n-best,
end_id and GNMT's length penalty, chunking, attention of the chosen hypothesis, the fake GPU) and
sampling filters (top_k=1 is greedy, top_p keeps the smallest set reaching p)."""
import itertools
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_s2s as tg
from tinygrad_s2s.testing.fake_device import fake_device
from tinygrad_s2s.models.decoding import gnmt_penalty, log_softmax, sampling_probs

from paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples" / "gru_attention"))
import gru_attention_plugin.model  # noqa: E402, F401 - registers the worked plugin 'gru_attention'

MODELS = ["seq2seq", "peeky", "attention", "deep_lstm", "transformer", "gru_attention"]
ATTENDING = ["attention", "deep_lstm", "transformer", "gru_attention"]
EXTRA = {"deep_lstm": {"layers": 2}, "transformer": {"layers": 1}}


def build(name, vocab=9, seed=0):
    tg.manual_seed(seed)
    with tg.default_dtype(np.float64):
        model = tg.create_model(name, vocab, wordvec_size=4, hidden_size=8, **EXTRA.get(name, {}))
    model.eval()
    return model


def questions(n, t, vocab, seed):
    return np.random.default_rng(seed).integers(0, vocab, (n, t))


def log_likelihood(model, xs, start_id, ids):
    """Teacher-forced sum of log p(ids[j] | ids[:j]) per row, from the model's own `logits`."""
    ts_in = np.concatenate([np.full((len(ids), 1), start_id), ids[:, :-1]], axis=1)
    with tg.no_grad():
        logp = log_softmax(model.logits(xs, ts_in))
    return np.take_along_axis(logp, ids[:, :, None], axis=2)[:, :, 0].sum(axis=1)


problem = dict(n=st.integers(1, 4), t=st.integers(1, 5), length=st.integers(1, 4), seed=st.integers(0, 2**16))


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=8)
@given(**problem)
def test_beam_of_one_is_greedy_exactly(name, n, t, length, seed):
    model = build(name, seed=seed)
    xs = questions(n, t, 9, seed)
    greedy = model.generate(xs, 1, length)
    ids, scores = model.beam_search(xs, 1, length, beam=1)
    assert ids.shape == (n, 1, length) and ids.dtype == np.int64 and scores.shape == (n, 1)
    np.testing.assert_array_equal(ids[:, 0], greedy)
    np.testing.assert_allclose(scores[:, 0], log_likelihood(model, xs, 1, greedy), rtol=1e-9)


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=8)
@given(beam=st.integers(2, 6), **problem)
def test_beam_scores_are_sorted_and_are_the_models_log_likelihood(name, beam, n, t, length, seed):
    model = build(name, seed=seed)
    xs = questions(n, t, 9, seed)
    ids, scores = model.beam_search(xs, 2, length, beam=beam, nbest=beam)
    assert ids.shape == (n, beam, length) and scores.shape == (n, beam)
    assert (np.diff(scores, axis=1) <= 0).all()                      # best first
    for k in range(beam):
        np.testing.assert_allclose(scores[:, k], log_likelihood(model, xs, 2, ids[:, k]), rtol=1e-9)
    for row in ids:                                                  # n distinct hypotheses per question
        assert len({tuple(h) for h in row}) == beam
    np.testing.assert_array_equal(model.generate(xs, 2, length, beam=beam), ids[:, 0])


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
def test_exhaustive_beam_finds_the_true_n_best(name):
    """With beam >= V^length every sequence is kept, so the n-best must be the true n-best."""
    V, length = 3, 3
    model = build(name, vocab=V, seed=3)
    xs = questions(2, 4, V, 3)
    every = np.array(list(itertools.product(range(V), repeat=length)))
    ll = np.stack([log_likelihood(model, xs, 0, np.tile(seq, (2, 1))) for seq in every], axis=1)
    ids, scores = model.beam_search(xs, 0, length, beam=V ** length, nbest=5)
    np.testing.assert_allclose(scores, -np.sort(-ll, axis=1)[:, :5], rtol=1e-9)
    for i in range(2):
        np.testing.assert_array_equal(ids[i, 0], every[ll[i].argmax()])


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=6)
@given(alpha=st.sampled_from([0.0, 0.6, 1.0]), end_id=st.integers(0, 3), beam=st.integers(1, 4), **problem)
def test_end_id_and_length_penalty(name, alpha, end_id, beam, n, t, length, seed):
    V = 4      # a small vocabulary, so hypotheses do end at end_id
    model = build(name, vocab=V, seed=seed)
    xs = questions(n, t, V, seed)
    ids, scores = model.beam_search(xs, 1, length, beam=beam, nbest=beam, end_id=end_id, length_penalty=alpha)
    assert (np.diff(scores, axis=1) <= 1e-12).all()
    for k in range(beam):
        hyp = ids[:, k]
        ended = hyp == end_id
        size = np.where(ended.any(axis=1), ended.argmax(axis=1) + 1, length)       # |Y| counts end_id
        after = np.arange(length)[None, :] >= size[:, None]
        assert (hyp[after] == end_id).all()                                      # then end_id repeats
        ts_in = np.concatenate([np.full((n, 1), 1), hyp[:, :-1]], axis=1)
        with tg.no_grad():
            logp = log_softmax(model.logits(xs, ts_in))
        per_step = np.take_along_axis(logp, hyp[:, :, None], axis=2)[:, :, 0]
        want = np.where(after, 0.0, per_step).sum(axis=1) / gnmt_penalty(size, alpha)
        np.testing.assert_allclose(scores[:, k], want, rtol=1e-9, atol=1e-12)


@pytest.mark.numerics
@pytest.mark.parametrize("name", MODELS)
def test_beam_search_in_chunks_gives_the_same_hypotheses(name, monkeypatch):
    import tinygrad_s2s.models.base
    model = build(name)
    xs = questions(7, 5, 9, 0)
    ids, scores = model.beam_search(xs, 2, 4, beam=3, nbest=2)
    weights = model.attention_weights
    monkeypatch.setattr(tinygrad_s2s.models.base, "DECODE_CHUNK", 6)       # 2 questions x 3 hypotheses per chunk
    ids2, scores2 = model.beam_search(xs, 2, 4, beam=3, nbest=2)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(scores2, scores, rtol=1e-12)
    if weights is not None:
        np.testing.assert_allclose(model.attention_weights, weights, atol=1e-12)


@pytest.mark.parametrize("name", ATTENDING)
def test_beam_attention_is_the_chosen_hypothesis_attention(name):
    model = build(name)
    xs = questions(4, 6, 9, 1)
    best = model.generate(xs, 2, 5, beam=4)
    weights = model.attention_weights
    assert weights.shape == (4, 5, 6)
    ts_in = np.concatenate([np.full((4, 1), 2), best[:, :-1]], axis=1)
    with tg.no_grad():
        model.logits(xs, ts_in)
    np.testing.assert_allclose(weights, model.attention_weights, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_beam_search_on_the_strict_fake_gpu_matches_the_cpu(name):
    model = build(name)
    xs = questions(3, 5, 9, 2)
    ids, scores = model.beam_search(xs, 2, 4, beam=3, nbest=3, end_id=4, length_penalty=0.6)
    with fake_device() as dev:
        gpu = model.to(dev)
        ids2, scores2 = gpu.beam_search(xs, 2, 4, beam=3, nbest=3, end_id=4, length_penalty=0.6)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(scores2, scores, rtol=1e-9)


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=5)
@given(temperature=st.floats(0.05, 20.0), top_p=st.one_of(st.none(), st.floats(0.01, 1.0)), **problem)
def test_top_k_of_one_samples_the_greedy_answer(name, temperature, top_p, n, t, length, seed):
    model = build(name, seed=seed)
    xs = questions(n, t, 9, seed)
    tg.manual_seed(seed)
    sampled = model.generate(xs, 1, length, sample=True, temperature=temperature, top_k=1, top_p=top_p)
    np.testing.assert_array_equal(sampled, model.generate(xs, 1, length))


logit_rows = hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)),
                        elements=st.floats(-8, 8).map(lambda v: round(v, 1)))    # rounding makes ties


@given(logits=logit_rows, p=st.floats(0.01, 1.0), temperature=st.floats(0.1, 5.0))
def test_top_p_keeps_the_smallest_set_reaching_p(logits, p, temperature):
    full = sampling_probs(logits, temperature)
    kept = sampling_probs(logits, temperature, top_p=p)
    np.testing.assert_allclose(kept.sum(axis=1), 1.0)
    for f, k in zip(full, kept):
        keep = k > 0
        mass = f[keep].sum()
        assert mass >= p - 1e-12                                     # reaches p ...
        assert mass - f[keep].min() < p + 1e-12                      # ... and no id could be left out
        assert f[keep].min() >= f[~keep].max(initial=0.0)            # the most likely ids
        np.testing.assert_allclose(k[keep], f[keep] / mass, rtol=1e-12)


@given(logits=logit_rows, k=st.integers(1, 12))
def test_top_k_keeps_the_k_most_likely(logits, k):
    full, kept = sampling_probs(logits), sampling_probs(logits, top_k=k)
    assert ((kept > 0).sum(axis=1) == min(k, logits.shape[1])).all()
    for f, q in zip(full, kept):
        assert f[q > 0].min() >= f[q == 0].max(initial=0.0)


def test_samples_follow_the_filtered_distribution():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    model = build("seq2seq", vocab=4)
    model.decode_start = lambda xs: (None, None)
    model.decode_step = lambda ids, memory, state: (tg.Tensor(np.repeat(logits, len(ids), axis=0)), state)
    tg.manual_seed(0)
    draws = model.generate(np.zeros((20000, 1), dtype=np.int64), 0, 1, sample=True, top_p=0.7)[:, 0]
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, [0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=0.015)


@pytest.mark.parametrize("kwargs,match", [
    ({"beam": 0}, "beam must be a positive int"),
    ({"top_k": 2}, "pass sample=True"),
    ({"sample": True, "top_k": 0}, "top_k must be a positive int"),
    ({"sample": True, "top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"sample": True, "top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"sample": True, "beam": 3}, "cannot be combined with beam"),
])
def test_generate_argument_errors(kwargs, match):
    model = build("seq2seq")
    with pytest.raises(ValueError, match=match):
        model.generate(questions(2, 3, 9, 0), 0, 3, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"beam": 3, "nbest": 4}, r"nbest must be an int in \[1, beam=3\]"),
    ({"end_id": 9}, "end_id 9 is not an id of this model's 9-id vocabulary"),
    ({"end_id": -1}, "end_id must be a non-negative int"),
    ({"length_penalty": -0.5}, "length_penalty must be >= 0"),
])
def test_beam_search_argument_errors(kwargs, match):
    model = build("seq2seq")
    with pytest.raises(ValueError, match=match):
        model.beam_search(questions(2, 3, 9, 0), 0, 3, **kwargs)


def test_fewer_hypotheses_than_nbest_score_minus_infinity():
    model = build("seq2seq", vocab=3)
    ids, scores = model.beam_search(questions(2, 3, 3, 0), 0, 1, beam=5, nbest=5)
    assert np.isfinite(scores[:, :3]).all() and (scores[:, 3:] == -np.inf).all()
    assert sorted(ids[0, :3, 0]) == [0, 1, 2]


def test_zero_length_and_empty_batches():
    model = build("attention")
    ids, scores = model.beam_search(questions(2, 3, 9, 0), 0, 0, beam=3, nbest=2)
    assert ids.shape == (2, 2, 0)
    np.testing.assert_array_equal(scores, [[0, -np.inf]] * 2)       # one empty answer; no second one
    assert model.attention_weights.shape == (2, 0, 3)
    ids, scores = model.beam_search(np.zeros((0, 3), dtype=np.int64), 0, 4, beam=3)
    assert ids.shape == (0, 1, 4) and scores.shape == (0, 1)


@pytest.mark.parametrize("decode", ["greedy", "sample", "beam"])
def test_a_model_holding_nan_says_so_instead_of_decoding(decode):
    """NaN weights (a float16 run gone wrong) made argmax return id 0 and beam scores NaN, silently."""
    model = build("attention")
    name, p = list(model.named_parameters())[1]
    p.data[(0,) * p.ndim] = np.nan
    xs = questions(2, 3, 9, 0)
    call = {"greedy": lambda: model.generate(xs, 0, 3), "sample": lambda: model.generate(xs, 0, 3, sample=True),
            "beam": lambda: model.beam_search(xs, 0, 3, beam=2)}[decode]
    with pytest.raises(FloatingPointError, match=f"NaN or Inf in parameter '{name}' \\(1 of "):
        call()
