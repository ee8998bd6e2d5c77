"""The graphs that `tinygrad-s2s graph` draws: a registered model's whole unrolled loss on a tiny batch,
or the attention of one decoder step (the book's Fig. 8-16) computed by the model's own attention
module. Sizes are tiny and the seeds fixed, so the drawing (and its DOT text) never changes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import random as tg_random
from ..models.registry import create_model
from ..tensor import Tensor
from ..autograd import module_scope

BATCH = 2             # N: two sequences, so the batch axis is visible in the shapes
ANSWER_STEPS = 2      # decoder steps of the whole-model drawing


ATTENTION_CLASS = "Attention"   # the one-step view draws the first module of this class (or a subclass)


@dataclass
class ModelGraph:
    """What to draw: the output tensors, the Module that computed them (for class names), a title, and
    a note for the user when the drawing is not the one asked for (None otherwise)."""
    outputs: tuple
    module: object
    title: str
    note: str | None = None


def find_attention(model):
    """(path, module) of the first sub-module whose class, or one of its base classes, is named
    `Attention` (the book's attention layer); None when there is none."""
    for path, m in model.named_modules():
        if any(cls.__name__ == ATTENTION_CLASS for cls in type(m).__mro__):
            return path, m
    return None


def attention_step(attention, seq_len: int, hidden_size: int, seed: int = 0) -> ModelGraph:
    """One decoder step of attention: encoder states hs (N, T, H) and one decoder state h (N, H)
    through `attention`, giving the weights a (N, T) and the context vector c (N, H).

    The book's Attention is `weight_sum(hs, weight(hs, h))`; the two children are called here inside
    the attention module's own scope so that `a` stays alive to be labelled. That is used only when
    it gives the same c as calling `attention` itself; otherwise the module's own call is drawn.
    """
    rng = np.random.default_rng(seed)
    hs = Tensor(rng.standard_normal((BATCH, seq_len, hidden_size)), requires_grad=True, name="hs")
    h = Tensor(rng.standard_normal((BATCH, hidden_size)), requires_grad=True, name="h")
    try:
        with module_scope(attention.__dict__.get("_name", "")):
            a = attention.weight(hs, h)
            c = attention.weight_sum(hs, a)
    except (TypeError, ValueError):     # children with other signatures: draw the module's own call
        a = c = None
    reference = attention(hs, h)
    if not isinstance(reference, Tensor):
        raise TypeError(f"{type(attention).__name__}(hs, h) returned {type(reference).__name__}; "
                        "expected the context vector as a Tensor")
    if isinstance(a, Tensor) and isinstance(c, Tensor) and c.shape == reference.shape and np.allclose(c.numpy(), reference.numpy()):
        a.name = "a"
    else:
        c = reference
    c.name = "c"
    title = (f"{type(attention).__name__} of one decoder step (the book's Fig. 8-16): "
             f"N={BATCH}, T={seq_len}, H={hidden_size}")
    return ModelGraph((c,), attention, title)


def whole_model(model, name: str, vocab_size: int, seq_len: int, seed: int = 0) -> ModelGraph:
    """The model's mean cross-entropy on a tiny batch: every op of the unrolled encoder and decoder."""
    rng = np.random.default_rng(seed)
    # int64 NumPy ids, as every command hands a model (the plugin contract's "inputs")
    xs = rng.integers(0, vocab_size, (BATCH, seq_len), dtype=np.int64)
    ts = rng.integers(0, vocab_size, (BATCH, 1 + ANSWER_STEPS), dtype=np.int64)
    loss = model(xs, ts)
    if not isinstance(loss, Tensor) or loss.creator is None:
        raise TypeError(f"model '{name}' returned {type(loss).__name__} without a recorded graph; "
                        "expected the loss Tensor")
    loss.name = "loss"
    title = f"{name}: whole model (N={BATCH}, T={seq_len}, L={ANSWER_STEPS}, V={vocab_size})"
    return ModelGraph((loss,), model, title)


def model_graph(name: str, whole: bool = False, seq_len: int | None = None, vocab_size: int = 5,
                wordvec_size: int = 3, hidden_size: int = 4, seed: int = 0, **extra) -> ModelGraph:
    """Build registered model `name` at tiny sizes (`extra` goes to its constructor) and record the
    graph to draw: one attention step when the model has a module of class `Attention` and `whole` is
    false, else the whole unrolled loss (with a `note` saying why, when one step was asked for)."""
    state = tg_random.get_state()
    tg_random.manual_seed(seed)        # same weights every time, without disturbing the caller's stream
    try:
        model = create_model(name, vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size, **extra)
        if whole:
            return whole_model(model, name, vocab_size, seq_len or 3, seed)
        found = find_attention(model)
        if found is None:
            why = f"model '{name}' has no module of class {ATTENTION_CLASS}"
        else:
            try:
                return attention_step(found[1], seq_len or 5, hidden_size, seed)
            except (TypeError, ValueError) as exc:
                why = (f"its {ATTENTION_CLASS} module '{found[0]}' cannot be called as "
                       f"attention(hs (N, T, H), h (N, H)): {' '.join(str(exc).split())}")
        drawn = whole_model(model, name, vocab_size, seq_len or 3, seed)
        drawn.note = f"drawing the whole model instead of one attention step: {why}"
        return drawn
    finally:
        tg_random.set_state(state)
