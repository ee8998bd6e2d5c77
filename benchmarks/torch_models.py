"""PyTorch versions of the book's seq2seq, peeky and attention models, written as a PyTorch user would
(nn.Embedding, nn.LSTM(batch_first=True), nn.Linear, F.cross_entropy) with the same layer sizes and
math as the zoo models (Deep Learning from Scratch 2, chapters 7-8):

- seq2seq: the encoder's last hidden state starts the decoder LSTM; an affine layer scores each step.
- peeky: that encoder state is also concatenated to every decoder input and to every LSTM output.
- attention: the encoder keeps all its hidden states; each decoder step attends over them with
  dot-product scores, and [context, decoder state] is scored by an affine layer of 2H inputs.

`copy_from(tg_model.state_dict())` loads a zoo model's weights (gate order and layouts converted),
so the benchmark can check both frameworks compute the same loss before timing them.
This module imports torch: import it only when torch is installed.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# our layer -> the zoo model's parameter-name prefix
ZOO_NAMES = {"enc_embed": "encoder.embed", "enc_lstm": "encoder.lstm", "dec_embed": "decoder.embed",
             "dec_lstm": "decoder.lstm", "affine": "decoder.affine"}

# The book orders LSTM gates f, g, i, o; torch orders them i, f, g, o.
_BOOK_TO_TORCH_GATES = (2, 0, 1, 3)


def lstm_weights_to_torch(lstm: nn.LSTM, Wx, Wh, b) -> None:
    """Load book-layout LSTM weights (Wx (D,4H), Wh (H,4H), b (4H,), gates f,g,i,o) into an nn.LSTM."""
    def reorder(w):   # gate blocks along the last axis, book order -> torch order
        return np.concatenate([blk for blk in (np.split(w, 4, axis=-1)[k] for k in _BOOK_TO_TORCH_GATES)],
                              axis=-1)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(reorder(Wx).T)))
        lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(reorder(Wh).T)))
        lstm.bias_ih_l0.copy_(torch.from_numpy(reorder(b)))
        lstm.bias_hh_l0.zero_()
    # the book's LSTM has one bias: a trainable second one would take the same gradient, doubling the
    # bias's Adam step and its share of the clipping norm (the twins' losses parted after a few steps)
    lstm.bias_hh_l0.requires_grad_(False)


def linear_weights_to_torch(linear: nn.Linear, W, b) -> None:
    """Load x @ W + b weights (W of shape (in, out)) into an nn.Linear."""
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
        linear.bias.copy_(torch.from_numpy(b))


class Seq2seq(nn.Module):
    """Encoder LSTM -> last hidden state -> decoder LSTM -> affine (the book's Seq2seq)."""

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128):
        super().__init__()
        V, D, H = vocab_size, wordvec_size, hidden_size
        self.enc_embed = nn.Embedding(V, D)
        self.enc_lstm = nn.LSTM(D, H, batch_first=True)
        self.dec_embed = nn.Embedding(V, D)
        self.dec_lstm = nn.LSTM(self.decoder_input_size(D, H), H, batch_first=True)
        self.affine = nn.Linear(self.affine_input_size(H), V)

    # sizes that the peeky and attention variants widen
    def decoder_input_size(self, D, H):
        return D

    def affine_input_size(self, H):
        return H

    def encode(self, xs):
        hs, _ = self.enc_lstm(self.enc_embed(xs))
        return hs

    def decode_scores(self, tokens, enc_hs, state):
        """Scores (N, L, V) for decoder input tokens (N, L); returns (scores, new LSTM state)."""
        out, state = self.dec_lstm(self.dec_embed(tokens), state)
        return self.affine(out), state

    def initial_state(self, enc_hs):
        h = enc_hs[:, -1]
        return h[None].contiguous(), torch.zeros_like(h)[None]

    def forward(self, xs, ts):
        """Mean cross-entropy of predicting ts[:, 1:] from ts[:, :-1] given xs (the zoo's contract)."""
        enc_hs = self.encode(xs)
        scores, _ = self.decode_scores(ts[:, :-1], enc_hs, self.initial_state(enc_hs))
        return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), ts[:, 1:].reshape(-1))

    @torch.no_grad()
    def generate(self, xs, start_id: int, length: int):
        """Greedy decoding, one step at a time for the whole batch: (N, length) int64 tensor."""
        enc_hs = self.encode(xs)
        state = self.initial_state(enc_hs)
        token = torch.full((xs.shape[0], 1), start_id, dtype=torch.long)
        out = []
        for _ in range(length):
            scores, state = self.decode_scores(token, enc_hs, state)
            token = scores.argmax(dim=-1)
            out.append(token)
        return torch.cat(out, dim=1)

    def copy_from(self, state: dict) -> None:
        """Load a zoo model's `state_dict()` (names as in zoo/seq2seq.py, peeky.py, attention.py)."""
        for mine, theirs in ZOO_NAMES.items():
            layer = getattr(self, mine)
            if isinstance(layer, nn.Embedding):
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(state[f"{theirs}.weight"]))
            elif isinstance(layer, nn.LSTM):
                lstm_weights_to_torch(layer, state[f"{theirs}.Wx"], state[f"{theirs}.Wh"],
                                      state[f"{theirs}.b"])
            else:
                linear_weights_to_torch(layer, state[f"{theirs}.weight"], state[f"{theirs}.bias"])


class PeekySeq2seq(Seq2seq):
    """The encoder state h also goes into every decoder step's input and into the affine layer."""

    def decoder_input_size(self, D, H):
        return H + D

    def affine_input_size(self, H):
        return H + H

    def decode_scores(self, tokens, enc_hs, state):
        N, L = tokens.shape
        h = enc_hs[:, -1:].expand(N, L, enc_hs.shape[-1])     # the book's np.repeat of h over time
        out, state = self.dec_lstm(torch.cat((h, self.dec_embed(tokens)), dim=2), state)
        return self.affine(torch.cat((h, out), dim=2)), state


class AttentionSeq2seq(Seq2seq):
    """Dot-product attention over all encoder states; the affine layer reads [context, state]."""

    def affine_input_size(self, H):
        return H + H

    def decode_scores(self, tokens, enc_hs, state):
        dec_hs, state = self.dec_lstm(self.dec_embed(tokens), state)
        weights = torch.softmax(dec_hs @ enc_hs.transpose(1, 2), dim=-1)    # (N, L, T_src)
        context = weights @ enc_hs                                         # (N, L, H)
        return self.affine(torch.cat((context, dec_hs), dim=2)), state


MODELS = {"seq2seq": Seq2seq, "peeky": PeekySeq2seq, "attention": AttentionSeq2seq}
