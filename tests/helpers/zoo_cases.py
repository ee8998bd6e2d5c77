"""The zoo models at test sizes, and a batch of ids for them (zoo and BLAS-thread tests share them)."""
import numpy as np

import tinygrad_s2s as tg

MODELS = ["seq2seq", "peeky", "attention", "deep_lstm", "transformer"]



ATTENDING = ["attention", "deep_lstm", "transformer"]



V = 9          # vocabulary of the contract tests



def build(name, vocab=V, wordvec=4, hidden=8, seed=0, dtype=np.float64, **extra):
    tg.manual_seed(seed)
    with tg.default_dtype(dtype):
        return tg.create_model(name, vocab, wordvec_size=wordvec, hidden_size=hidden, **extra)



def batch(n=3, t=5, length=4, seed=1, vocab=V):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, (n, t)), rng.integers(0, vocab, (n, length + 1))
