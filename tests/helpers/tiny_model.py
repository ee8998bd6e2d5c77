"""A tiny seq2seq model (the book's Seq2seq: LSTM encoder, LSTM decoder started from the encoder's
last state) registered as 'tiny-s2s', so the data/train/CLI tests do not depend on the zoo.

Importing this module registers the model; CLI subprocess tests import it through `-c` before
calling `tinygrad_s2s.cli.main`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import tinygrad_s2s as tg
from tinygrad_s2s import nn

NAME = "tiny-s2s"


@tg.register_model(NAME)
class TinySeq2seq(nn.Module):
    """Embedding + LSTM encoder; Embedding + LSTM + Linear decoder; greedy or sampled generate."""

    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8, nan_after=None):
        super().__init__()
        self.config = {"vocab_size": vocab_size, "wordvec_size": wordvec_size, "hidden_size": hidden_size}
        self.enc_embed = nn.Embedding(vocab_size, wordvec_size)
        self.encoder = nn.LSTM(wordvec_size, hidden_size)
        self.dec_embed = nn.Embedding(vocab_size, wordvec_size)
        self.decoder = nn.LSTM(wordvec_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.nan_after = nan_after      # tests: the loss turns NaN after this many forward calls
        self.calls = 0

    def encode(self, xs):
        self.encoder(self.enc_embed(xs))
        return self.encoder.h, self.encoder.c

    def forward(self, xs, ts):
        self.calls += 1
        h, _ = self.encode(xs)
        hs = self.decoder(self.dec_embed(ts[:, :-1]), h0=h)
        loss = tg.softmax_cross_entropy(self.out(hs), ts[:, 1:])
        if self.nan_after is not None and self.calls > self.nan_after:
            loss = loss * float("nan")
        return loss

    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        with tg.no_grad():
            h, _ = self.encode(xs)
            c = None
            ids = np.full((len(xs), 1), start_id, dtype=np.int64)
            out = []
            for _ in range(length):
                self.decoder(self.dec_embed(ids), h0=h, c0=c)
                h, c = self.decoder.h, self.decoder.c
                scores = self.out(h).numpy()
                if sample:
                    p = tg.softmax(tg.Tensor(scores / temperature)).numpy().astype(np.float64)
                    p /= p.sum(axis=1, keepdims=True)
                    u = tg.random.generator().random((len(p), 1))
                    nxt = (p.cumsum(axis=1) < u).sum(axis=1).clip(max=p.shape[1] - 1)
                else:
                    nxt = scores.argmax(axis=1)
                ids = nxt.reshape(-1, 1).astype(np.int64)
                out.append(ids[:, 0])
            return np.stack(out, axis=1)


@tg.register_model(NAME + "-nan")
def tiny_nan(vocab_size, wordvec_size=4, hidden_size=8):
    """The tiny model whose loss turns NaN at the second step (for the NaN-stops-training tests)."""
    return TinySeq2seq(vocab_size, wordvec_size, hidden_size, nan_after=1)


class _HalfSquare(tg.Function):
    """x**2 with a deliberately wrong backward (x instead of 2x), for gradcheck's failure path."""
    name = "half_square"

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return (gy * self.x,)


@tg.register_model(NAME + "-broken")
class TinyBroken(TinySeq2seq):
    """The tiny model with a wrong gradient on its output layer's weight."""

    def forward(self, xs, ts):
        loss = super().forward(xs, ts)
        return loss + tg.sum(_HalfSquare.apply(self.out.weight))


def finished_run(folder: Path, model: str = NAME, **model_args) -> Path:
    """A finished run in folder/run: the tiny model (or the registered `model`, at the same tiny sizes
    with `model_args`), one epoch on 300 generated addition examples (best.npz equals last.npz).
    Returns the run directory."""
    import io

    from tinygrad_s2s.data import generators
    from tinygrad_s2s.data import load_dataset
    from tinygrad_s2s.training import Trainer
    ds = load_dataset(generators.write_task("addition", folder / "add.txt", n=300, seed=1))
    tg.manual_seed(0)
    built = tg.create_model(model, len(ds.vocab), wordvec_size=4, hidden_size=8, **model_args)
    Trainer(built, ds, run_dir=folder / "run", config={"seed": 0}, log=io.StringIO(), progress=False).fit(1)
    return folder / "run"
