"""Beam search with end_id and GNMT's length penalty against a plain reference written here: one
question at a time, every hypothesis a Python tuple, every candidate ranked by its penalised score.
The beam is smaller than the answer space, so pruning decides which answers survive, and the scores
differ between raw and penalised order, so ranking by the wrong one shows."""
import zlib

import numpy as np

from tinygrad_s2s.models.decoding import beam_search, gnmt_penalty, log_softmax


class PrefixModel:
    """A toy decoder whose next-id scores are a fixed pseudo-random function of (question, prefix): the
    decoder state is the prefix itself, so the reference can ask for the scores of any prefix."""

    def __init__(self, vocab: int, seed: int):
        self.vocab, self.seed = vocab, seed

    def logits_of(self, question: int, prefix: tuple) -> np.ndarray:
        key = np.array([self.seed, question, *prefix], dtype=np.int64).tobytes()
        return np.random.default_rng(zlib.crc32(key)).normal(0.0, 2.0, self.vocab)

    def decode_start(self, xs):
        return np.asarray(xs)[:, 0].copy(), np.zeros((len(xs), 0), dtype=np.int64)

    def decode_step(self, ids, memory, state):
        prefix = np.concatenate([state, ids], axis=1)       # state: the ids fed so far (start id first)
        logits = np.stack([self.logits_of(int(q), tuple(p)) for q, p in zip(memory, prefix)])
        return logits, prefix


def reference_beam_search(model, question, start_id, length, beam, nbest, end_id, alpha):
    """Plain beam search for one question: hypotheses are (ids, raw log-probability, ended, |Y|)."""
    hyps = [((), 0.0, False, 0)]
    for j in range(length):
        cands = []
        for ids, raw, ended, size in hyps:
            if ended:                              # an ended answer only repeats end_id, at no cost
                cands.append((ids + (end_id,), raw, True, size))
                continue
            logp = log_softmax(model.logits_of(question, (start_id, *ids))[None])[0]
            for v in range(model.vocab):
                cands.append((ids + (v,), raw + logp[v], v == end_id, j + 1))
        # every candidate ranked by its penalised score, its |Y| counting the id just added
        cands.sort(key=lambda h: -h[1] / gnmt_penalty(h[3], alpha))
        hyps = cands[:beam]
    final = sorted(((ids, raw / gnmt_penalty(size if ended else length, alpha))
                    for ids, raw, ended, size in hyps), key=lambda h: -h[1])[:nbest]
    return [ids for ids, _ in final], [score for _, score in final]


def problem(seed):
    """Toy problem number `seed`: vocabulary, answer length, beam (smaller than the answer space),
    end_id and alpha > 0 drawn from it, four questions decoded together."""
    r = np.random.default_rng(seed)
    vocab, length = int(r.integers(3, 6)), int(r.integers(1, 6))
    beam, end_id, alpha = int(r.integers(1, 4)), int(r.integers(0, 3)), (0.6, 1.0, 2.0)[seed % 3]
    return PrefixModel(vocab, seed), np.arange(4)[:, None] + seed, length, beam, end_id, alpha


def test_beam_search_matches_the_reference():
    """A fixed set of 150 problems rather than Hypothesis draws: a slip in the penalty's length while
    pruning changes the answer of about one problem in four, so a fixed set catches it every run."""
    for seed in range(150):
        model, xs, length, beam, end_id, alpha = problem(seed)
        ids, scores, _ = beam_search(model, xs, 1, length, beam, beam, end_id, alpha)
        for i, q in enumerate(xs[:, 0]):
            want_ids, want_scores = reference_beam_search(model, int(q), 1, length, beam, beam, end_id, alpha)
            assert [tuple(h) for h in ids[i]] == want_ids, f"problem {seed}, question {i}"
            np.testing.assert_allclose(scores[i], want_scores, rtol=1e-12, err_msg=f"problem {seed}")


class TableModel(PrefixModel):
    """Next-id probabilities written out by prefix (after the start id 0); vocabulary {0, 1, 2},
    end_id 2."""
    TABLE = {(): [0.10, 0.44, 0.46],          # '2' ends at once: raw log 0.46, |Y| 1
             (1,): [0.95, 0.03, 0.02],
             (1, 0): [0.03, 0.02, 0.95]}      # '1 0 2': raw log(0.44 * 0.95 * 0.95), |Y| 3

    def __init__(self):
        super().__init__(3, 0)

    def logits_of(self, question, prefix):
        return np.log(self.TABLE.get(prefix[1:], [0.3, 0.3, 0.4]))


def test_penalised_order_differs_from_raw_order():
    """'2' beats '1 0 2' on raw score (log 0.46 = -0.78 against -0.92), but with alpha = 1 the
    penalty (8/6 against 1) puts '1 0 2' first (-0.92 / (8/6) = -0.69); without it '2' wins."""
    short, long = np.log(0.46), np.log(0.44 * 0.95 * 0.95)
    assert short > long and long / gnmt_penalty(3, 1.0) > short
    xs = np.zeros((1, 1), dtype=np.int64)
    ids, scores, _ = beam_search(TableModel(), xs, 0, 3, 2, 2, 2, 1.0)
    assert [tuple(h) for h in ids[0]] == [(1, 0, 2), (2, 2, 2)]
    np.testing.assert_allclose(scores[0], [long / gnmt_penalty(3, 1.0), short], rtol=1e-12)
    ids, scores, _ = beam_search(TableModel(), xs, 0, 3, 2, 2, 2, 0.0)
    assert [tuple(h) for h in ids[0]] == [(2, 2, 2), (1, 0, 2)]
    np.testing.assert_allclose(scores[0], [short, long], rtol=1e-12)
