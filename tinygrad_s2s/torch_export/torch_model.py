"""PyTorch modules of tinygrad-s2s's five zoo models: seq2seq, peeky, attention, deep_lstm, transformer.

Kept whole: `tinygrad-s2s export RUN --format torch --out DIR` copies this one file into DIR as
`model.py`, beside the weights (`model.safetensors`) and the settings (`config.json`), so it must hold
every model and import nothing but torch, numpy, json and safetensors (never tinygrad_s2s):

    import sys; sys.path.insert(0, "DIR")
    import model
    m = model.load("DIR")                  # eval mode, the exported dtype (float32 by default)
    m.answer(["16+75"])                    # ['91'] : greedy decoding of typed questions
    logits = m(xs, ts_in)                  # (N, L, V) scores of every decoder step (teacher forcing)
    loss = m.loss(xs, ts)                  # mean cross-entropy of ts[:, 1:] given ts[:, :-1]
    ids = m.generate(xs)                   # (N, answer_width - 1) greedy ids

The modules keep tinygrad-s2s's module paths (`encoder.lstm`, `decoder.affine`, ...) so a weight has the
same name on both sides. The layers are PyTorch's own (nn.LSTM(batch_first=True), nn.Linear, nn.Embedding,
nn.LayerNorm); where the book's layout differs the exporter converted the weights:
- LSTM gates: the book orders them f, g, i, o in Wx (D, 4H), Wh (H, 4H), b (4H,); PyTorch orders them
  i, f, g, o in weight_ih (4H, D), weight_hh (4H, H). The book's LSTM has one bias: it is `bias_ih`, and
  `bias_hh` is zero and frozen (requires_grad=False), since a second trainable bias would take the same
  gradient and double that bias's optimizer step.
- Linear: the book computes x @ W + b with W (in, out); nn.Linear holds W transposed (out, in).
Dropout sits where the zoo models have it (deep_lstm, transformer) with their rate: off in eval mode,
on in train mode, so continued training regularises as training did.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FORMAT, VERSION = "tinygrad-s2s-torch", 1
CONFIG, WEIGHTS, MODULE = "config.json", "model.safetensors", "model.py"
PAD = " "


def book_lstm(input_size: int, hidden_size: int, bidirectional: bool = False) -> nn.LSTM:
    """An nn.LSTM with the book's single bias: `bias_hh_l0*` zero and frozen."""
    lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_hh"):
            nn.init.zeros_(p)
            p.requires_grad_(False)
    return lstm


def _run_lstm(lstm: nn.LSTM, x, h, c):
    """x (N, L, D) from start state h, c (N, H) -> (states (N, L, H), (last h, last c) each (N, H))."""
    out, (h, c) = lstm(x, (h[None].contiguous(), c[None].contiguous()))
    return out, (h[0], c[0])


class Seq2seqBase(nn.Module):
    """What every exported model shares: `forward(xs, ts_in)` gives the logits (N, L, V) of each decoder
    step; `loss(xs, ts)`, greedy `generate(xs)` and `answer(questions)` are built on it and on the two
    decoding hooks `decode_start(xs) -> (memory, state)` and `decode_step(ids, memory, state) ->
    (logits (N, V), state)`. `settings` holds the exported config.json (vocabulary, widths, start id)."""

    def __init__(self):
        super().__init__()
        self.settings: dict = {}

    def loss(self, xs, ts):
        """Mean cross-entropy of predicting ts[:, 1:] from ts[:, :-1] (tinygrad-s2s's `model(xs, ts)`)."""
        logits = self(xs, ts[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ts[:, 1:].reshape(-1))

    @torch.no_grad()
    def generate(self, xs, max_len: int | None = None, start_id: int | None = None):
        """Greedy decoding of the whole batch, one step at a time: (N, max_len) int64 ids. By default
        `max_len` and `start_id` are the exported run's (answer_width - 1, the id of '_')."""
        max_len = self.settings["decoding"]["max_len"] if max_len is None else max_len
        start_id = self.settings["start_id"] if start_id is None else start_id
        xs = torch.as_tensor(xs, dtype=torch.long)
        memory, state = self.decode_start(xs)
        ids = torch.full((xs.shape[0], 1), int(start_id), dtype=torch.long, device=xs.device)
        out = []
        for _ in range(max_len):
            logits, state = self.decode_step(ids, memory, state)
            ids = logits.argmax(dim=-1, keepdim=True)     # the first of equal maxima, as NumPy's argmax
            out.append(ids)
        return torch.cat(out, dim=1) if out else ids[:, :0]

    def _ids(self, texts, width: int, what: str) -> list[list[int]]:
        char_to_id = {c: i for i, c in enumerate(self.settings["vocab"])}
        rows = []
        for text in texts:
            if len(text) > width or any(ch not in char_to_id for ch in text):
                raise ValueError(f"{what} {text!r}: at most {width} characters of {self.settings['vocab']!r}")
            rows.append([char_to_id[ch] for ch in text.ljust(width, PAD)])
        return rows

    def encode(self, questions) -> torch.Tensor:
        """Typed questions -> (n, question_width) ids: padded with spaces, reversed when the run was."""
        width = self.settings["question_width"]
        rows = [row[::-1] if self.settings["reverse"] else row for row in self._ids(questions, width, "question")]
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), width)

    def encode_answers(self, answers) -> torch.Tensor:
        """Answers (without the start marker) -> (n, answer_width) ids: the start id, then the padded answer,
        as `loss` takes them."""
        width = self.settings["answer_width"]
        rows = [[self.settings["start_id"], *row] for row in self._ids(answers, width - 1, "answer")]
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), width)

    def answer(self, questions) -> list[str]:
        """Greedy answers to typed questions, padding stripped."""
        vocab = self.settings["vocab"]
        ids = self.generate(self.encode(questions).to(self._device()))
        return ["".join(vocab[i] for i in row).rstrip(PAD) for row in ids.tolist()]

    def _device(self):
        return next(self.parameters()).device


# ---------------------------------------------------------------- seq2seq, peeky, attention (ch. 7-8)
class Encoder(nn.Module):
    """Embedding -> LSTM over the question: every hidden state (N, T, H) and the last one (N, H)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = book_lstm(wordvec_size, hidden_size)

    def forward(self, xs):
        hs, (h, _) = self.lstm(self.embed(xs))
        return hs, h[0]


class Decoder(nn.Module):
    """Embedding -> LSTM (started from the encoder's h) -> Linear."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = book_lstm(self._input_size(wordvec_size, hidden_size), hidden_size)
        self.affine = nn.Linear(self._affine_size(hidden_size), vocab_size)

    def _input_size(self, D, H):
        return D

    def _affine_size(self, H):
        return H

    def forward(self, ids, memory, h, c):
        out, state = _run_lstm(self.lstm, self.embed(ids), h, c)
        return self.affine(out), state


class PeekyDecoder(Decoder):
    """The encoder's h is concatenated to every step's LSTM input and to every LSTM output."""

    def _input_size(self, D, H):
        return H + D

    def _affine_size(self, H):
        return H + H

    def forward(self, ids, h_enc, h, c):
        N, L = ids.shape
        H = h_enc.shape[-1]
        peek = h_enc[:, None].expand(N, L, H)
        out, state = _run_lstm(self.lstm, torch.cat((peek, self.embed(ids)), dim=2), h, c)
        # affine(cat(h, out)) as the zoo computes it, h's product once per sequence: the same function,
        # summed in the same order as ours (the concatenated product differed by 1e-5 in float32)
        W = self.affine.weight
        return F.linear(out, W[:, H:]) + F.linear(h_enc, W[:, :H], self.affine.bias)[:, None], state


def attend(enc_hs, dec_hs):
    """The book's dot-product attention: context vectors (N, L, H) of decoder states over encoder ones."""
    return torch.softmax(dec_hs @ enc_hs.transpose(1, 2), dim=-1) @ enc_hs


class AttentionDecoder(Decoder):
    """Embedding -> LSTM -> attention over the encoder states -> Linear of [context, state]."""

    def _affine_size(self, H):
        return H + H

    def forward(self, ids, enc_hs, h, c):
        dec_hs, state = _run_lstm(self.lstm, self.embed(ids), h, c)
        return self.affine(torch.cat((attend(enc_hs, dec_hs), dec_hs), dim=2)), state


class Seq2seq(Seq2seqBase):
    """The book's Seq2seq (section 7.3); `decoder_class` picks the peeky or attention decoder."""
    decoder_class = Decoder

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, **_ignored):
        super().__init__()
        self.encoder = Encoder(vocab_size, wordvec_size, hidden_size)
        self.decoder = self.decoder_class(vocab_size, wordvec_size, hidden_size)

    def decode_start(self, xs):
        hs, h = self.encoder(xs)
        memory = h if self.decoder_class is PeekyDecoder else hs
        return memory, (h, torch.zeros_like(h))

    def decode_step(self, ids, memory, state):
        logits, state = self.decoder(ids, memory, *state)
        return logits[:, 0], state

    def forward(self, xs, ts_in):
        memory, state = self.decode_start(xs)
        return self.decoder(ts_in, memory, *state)[0]


class PeekySeq2seq(Seq2seq):
    decoder_class = PeekyDecoder


class AttentionSeq2seq(Seq2seq):
    decoder_class = AttentionDecoder


# ---------------------------------------------------------------- deep_lstm (GNMT-style)
class DeepEncoder(nn.Module):
    """Embedding -> bidirectional LSTM (directions summed) -> (layers - 1) residual LSTMs; returns the
    top states and each layer's final (h, c) (the first layer's: its forward direction's)."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, layers, dropout):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.lstm = book_lstm(wordvec_size, hidden_size, bidirectional=True)
        self.layers = nn.ModuleList(book_lstm(hidden_size, hidden_size) for _ in range(layers - 1))
        self.dropout = nn.Dropout(dropout)

    def forward(self, xs):
        H = self.hidden_size
        both, (h, c) = self.lstm(self.embed(xs))
        x = both[:, :, :H] + both[:, :, H:]
        states = [(h[0], c[0])]
        for lstm in self.layers:
            y, (h, c) = lstm(self.dropout(x))
            x = x + y
            states.append((h[0], c[0]))
        return x, states


class DeepDecoder(nn.Module):
    """Embedding -> `layers` LSTMs (residual from layer 2, each started from the encoder layer at its
    depth) -> attention from the top layer -> Linear of [context, state]."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, layers, dropout):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.layers = nn.ModuleList([book_lstm(wordvec_size, hidden_size)] +
                                    [book_lstm(hidden_size, hidden_size) for _ in range(layers - 1)])
        self.dropout = nn.Dropout(dropout)
        self.affine = nn.Linear(hidden_size + hidden_size, vocab_size)

    def forward(self, ids, enc_hs, states):
        x = self.embed(ids)
        new_states = []
        for i, (lstm, (h, c)) in enumerate(zip(self.layers, states)):
            y, state = _run_lstm(lstm, x if i == 0 else self.dropout(x), h, c)
            x = y if i == 0 else x + y
            new_states.append(state)
        return self.affine(self.dropout(torch.cat((attend(enc_hs, x), x), dim=2))), new_states


class DeepLSTMSeq2seq(Seq2seqBase):
    """GNMT-style deep LSTM seq2seq with attention (zoo/deep_lstm.py)."""

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, layers: int = 4,
                 dropout: float = 0.0, **_ignored):
        super().__init__()
        self.encoder = DeepEncoder(vocab_size, wordvec_size, hidden_size, layers, dropout)
        self.decoder = DeepDecoder(vocab_size, wordvec_size, hidden_size, layers, dropout)

    def decode_start(self, xs):
        return self.encoder(xs)

    def decode_step(self, ids, enc_hs, states):
        logits, states = self.decoder(ids, enc_hs, states)
        return logits[:, 0], states

    def forward(self, xs, ts_in):
        return self.decoder(ts_in, *self.encoder(xs))[0]


# ---------------------------------------------------------------- transformer (pre-LN)
def sinusoid_table(max_len: int, dim: int) -> np.ndarray:
    """(max_len, dim) positional encodings: sin on even features, cos on odd ones (as zoo/transformer.py)."""
    pos = np.arange(max_len)[:, None]
    freq = np.exp(-math.log(10000.0) * (np.arange(0, dim, 2) / dim))
    table = np.zeros((max_len, dim))
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq[: dim // 2])
    return table


class TokenEmbedding(nn.Module):
    """ids -> embedding (projected to d_model when narrower) * sqrt(d_model) + fixed sinusoidal positions."""

    def __init__(self, vocab_size, wordvec_size, d_model, max_len):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.proj = nn.Linear(wordvec_size, d_model, bias=False) if wordvec_size != d_model else None
        self.scale = math.sqrt(d_model)
        # kept in float64 and rounded to the activations' dtype when used, as ours is to its default dtype
        self.register_buffer("positions", torch.from_numpy(sinusoid_table(max_len, d_model)), persistent=False)

    def forward(self, ids):
        if ids.shape[1] > self.positions.shape[0]:
            raise ValueError(f"a sequence of {ids.shape[1]} tokens is longer than max_len={self.positions.shape[0]}")
        x = self.embed(ids)
        if self.proj is not None:
            x = self.proj(x)
        return x * self.scale + self.positions[:ids.shape[1]].to(x.dtype)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention in `heads` heads; mask (Lq, Lk) bool, False = do not attend."""

    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.value, self.out = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)

    def _split(self, x):
        N, L, d = x.shape
        return x.reshape(N, L, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, xq, xkv, mask=None):
        N, Lq, d = xq.shape
        q, k, v = self._split(self.query(xq)), self._split(self.key(xkv)), self._split(self.value(xkv))
        scores = (q @ k.transpose(2, 3)) * (1.0 / math.sqrt(d // self.heads))
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        return self.out((torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(N, Lq, d))


class FeedForward(nn.Module):
    def __init__(self, d_model, ff):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, ff), nn.Linear(ff, d_model)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class EncoderLayer(nn.Module):
    """x + SelfAttention(LN(x)), then x + FeedForward(LN(x))."""

    def __init__(self, d_model, heads, ff, dropout):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, heads)
        self.norm2, self.ff = nn.LayerNorm(d_model), FeedForward(d_model, ff)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.dropout(self.self_attn(y, y))
        return x + self.dropout(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    """x + causal SelfAttention(LN(x)), x + CrossAttention(LN(x), memory), x + FeedForward(LN(x))."""

    def __init__(self, d_model, heads, ff, dropout):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, heads)
        self.norm2, self.cross_attn = nn.LayerNorm(d_model), MultiHeadAttention(d_model, heads)
        self.norm3, self.ff = nn.LayerNorm(d_model), FeedForward(d_model, ff)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, memory, causal):
        y = self.norm1(x)
        x = x + self.dropout(self.self_attn(y, y, causal))
        x = x + self.dropout(self.cross_attn(self.norm2(x), memory))
        return x + self.dropout(self.ff(self.norm3(x)))


class TransformerStack(nn.Module):
    """Token embedding + positions -> layers -> LayerNorm (-> Linear to the vocabulary for the decoder)."""

    def __init__(self, layer, vocab_size, wordvec_size, d_model, heads, layers, ff, dropout, max_len, affine):
        super().__init__()
        self.embed = TokenEmbedding(vocab_size, wordvec_size, d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(layer(d_model, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        if affine:
            self.affine = nn.Linear(d_model, vocab_size)


class Transformer(Seq2seqBase):
    """The zoo's pre-LN encoder-decoder Transformer. Greedy decoding reruns the decoder over the answer
    so far at each step (answers are a few characters; the zoo model caches keys and values instead)."""

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, heads: int = 4,
                 layers: int = 2, ff: int | None = None, dropout: float = 0.0, max_len: int = 256, **_ignored):
        super().__init__()
        ff = 2 * hidden_size if ff is None else ff
        args = (vocab_size, wordvec_size, hidden_size, heads, layers, ff, dropout, max_len)
        self.encoder = TransformerStack(EncoderLayer, *args, affine=False)
        self.decoder = TransformerStack(DecoderLayer, *args, affine=True)

    def encode_memory(self, xs):
        enc = self.encoder
        x = enc.dropout(enc.embed(xs))
        for layer in enc.layers:
            x = layer(x)
        return enc.norm(x)

    def decode(self, ts_in, memory):
        dec, L = self.decoder, ts_in.shape[1]
        causal = torch.tril(torch.ones((L, L), dtype=torch.bool, device=ts_in.device))
        x = dec.dropout(dec.embed(ts_in))
        for layer in dec.layers:
            x = layer(x, memory, causal)
        return dec.affine(dec.norm(x))

    def forward(self, xs, ts_in):
        return self.decode(ts_in, self.encode_memory(xs))

    def decode_start(self, xs):
        return self.encode_memory(xs), xs[:, :0]

    def decode_step(self, ids, memory, prefix):
        prefix = torch.cat((prefix, ids), dim=1)
        return self.decode(prefix, memory)[:, -1], prefix


MODELS = {"seq2seq": Seq2seq, "peeky": PeekySeq2seq, "attention": AttentionSeq2seq,
          "deep_lstm": DeepLSTMSeq2seq, "transformer": Transformer}
"""The zoo model name -> its PyTorch module."""


def build(name: str, model_config: dict) -> Seq2seqBase:
    """A fresh module (PyTorch's initialisation) of zoo model `name` with its constructor settings."""
    if name not in MODELS:
        raise ValueError(f"no PyTorch module for model {name!r}; this file has {', '.join(MODELS)}")
    return MODELS[name](**model_config)


def from_weights(name: str, model_config: dict, weights: dict, where: str = "the weights") -> Seq2seqBase:
    """Zoo model `name` built with `model_config` and given `weights` (name -> tensor, PyTorch layout,
    the frozen `bias_hh_l0` left out), in their dtype and on their device, in eval mode."""
    model = build(name, model_config)
    first = next(iter(weights.values()))
    model.to(device=first.device, dtype=first.dtype)
    missing = {k for k in model.state_dict() if ".bias_hh_l0" not in k} - set(weights)
    unexpected = set(weights) - set(model.state_dict())
    if missing or unexpected:
        raise ValueError(f"{where} do not fit a {name!r} model (missing {sorted(missing)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]})")
    model.load_state_dict(weights, strict=False)    # strict but for the frozen zero biases, checked above
    return model.eval()


def load(directory=".", device="cpu") -> Seq2seqBase:
    """The exported model in `directory` (config.json + model.safetensors), in eval mode on `device`,
    in the dtype of its weights; `settings` holds its config.json."""
    from safetensors.torch import load_file

    directory = Path(directory)
    settings = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    if not isinstance(settings, dict) or settings.get("format") != FORMAT or settings.get("version") != VERSION:
        got = (settings.get("format"), settings.get("version")) if isinstance(settings, dict) else settings
        raise ValueError(f"{directory / CONFIG}: not a tinygrad-s2s PyTorch export (format {FORMAT!r}, "
                         f"version {VERSION}); got {got!r}")
    path = directory / settings.get("weights", WEIGHTS)
    model = from_weights(settings["model"], settings["model_config"], load_file(str(path), device=str(device)),
                         str(path))
    model.settings = settings
    return model


def _write(path: Path, data: bytes) -> None:
    """Write a whole file through a temporary file beside it and a rename: a crash leaves the old one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save(model: Seq2seqBase, directory) -> None:
    """Write `model` (after training it further) as an export that `load` reads: its weights, its
    settings and this file, each replaced whole."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if ".bias_hh_l0" not in k}
    _write(directory / WEIGHTS, save(weights, metadata={"format": FORMAT}))
    _write(directory / CONFIG, (json.dumps(model.settings, indent=2) + "\n").encode())
    if Path(__file__).resolve() != (directory / MODULE).resolve():
        _write(directory / MODULE, Path(__file__).read_bytes())
