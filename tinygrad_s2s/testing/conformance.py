"""`check_model`: the plugin conformance battery. It builds a model at tiny sizes and checks every item
of the contract (`tinygrad_s2s.models.contract.CONTRACT`) in turn; the first violation raises a
`ContractError` quoting the item it broke. `tinygrad-s2s check MODEL` runs the same battery.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..models.contract import ContractError, check_generated, check_loss, describe_value
from ..nn import Module
from ..backend.random import manual_seed
from ..autograd import default_dtype, no_grad
from .numeric import gradcheck_module

__all__ = ["check_exportable", "check_model"]


@contextlib.contextmanager
def _item(item: str, label: str):
    """Any exception the model raises while an item is checked becomes a ContractError naming it."""
    try:
        yield
    except ContractError:
        raise
    except Exception as exc:
        raise ContractError(item, f"{type(exc).__name__}: {exc}", label) from exc


def _resolve(name_or_factory):
    """(build(**kwargs), label) from a registered name or a factory (a class or a function)."""
    from ..models.registry import create_model, record_config  # noqa: PLC0415 - registry loads plugins

    if isinstance(name_or_factory, str):
        return (lambda **kw: create_model(name_or_factory, **kw)), name_or_factory
    if not callable(name_or_factory):
        raise TypeError(f"check_model: expected a registered model name or a factory, got "
                        f"{type(name_or_factory).__name__}")

    def build(**kw):
        return record_config(name_or_factory(**kw), kw, getattr(name_or_factory, "__name__", "model"))
    return build, getattr(name_or_factory, "__name__", repr(name_or_factory))


def _short(a) -> str:
    return " ".join(np.array2string(np.asarray(a), threshold=16, separator=",").split())


class _Battery:
    """The state the items share: the factory, the tiny batch, the model under test, its greedy
    answers and loss. Each method checks one contract item."""

    def __init__(self, name_or_factory, kwargs, batch, src_len, tgt_len, seed, entries):
        self.build, self.label = _resolve(name_or_factory)
        self.kwargs, self.seed, self.entries = kwargs, seed, entries
        rng = np.random.default_rng(seed)
        self.xs = rng.integers(0, kwargs["vocab_size"], (batch, src_len), dtype=np.int64)
        self.ts = rng.integers(0, kwargs["vocab_size"], (batch, tgt_len + 1), dtype=np.int64)
        self.start, self.batch, self.length = int(self.ts[0, 0]), batch, tgt_len

    def fresh(self, **kw):
        manual_seed(self.seed)
        with default_dtype(np.float64):
            model = self.build(**kw)
        if not isinstance(model, Module):
            raise ContractError("factory", describe_value(model), self.label)
        return model

    def answers(self, model, **kw):
        with no_grad():
            out = model.generate(self.xs, self.start, self.length, **kw)
        return check_generated(out, self.batch, self.length, self.label)

    def loss(self, model) -> float:
        with no_grad():
            return float(model(self.xs, self.ts).item())

    def same(self, a, b, what: str, item: str) -> None:
        if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            raise ContractError(item, f"{what}: {_short(a)} against {_short(b)}", self.label)

    def twin_agrees(self, twin, where: str, item: str) -> None:
        """A rebuilt copy gives the model's loss and answers."""
        twin.eval()
        self.same(self.loss(twin), self.want, f"loss {where}", item)
        self.same(self.answers(twin), self.out, f"answers {where}", item)

    # ---- the items, in order
    def check_factory(self):
        self.model = self.fresh(**self.kwargs)

    def check_loss(self):
        self.model.train()
        self.first_loss = check_loss(self.model(self.xs, self.ts), self.label)

    def check_gradient(self):
        from .. import optim  # noqa: PLC0415
        model = self.model
        model.zero_grad()
        self.first_loss.backward()
        for pname, p in model.named_parameters():
            if p.grad is None or p.grad.shape != p.shape or not np.isfinite(p.grad.numpy()).all():
                got = None if p.grad is None else describe_value(p.grad)
                raise ContractError("gradient", f"parameter '{pname}' got gradient {got}", self.label)
        optim.Adam(model.parameters(), lr=1e-3).step()
        check_loss(model(self.xs, self.ts), self.label)
        model.eval()
        try:
            gradcheck_module(model, lambda: model(self.xs, self.ts), max_entries=self.entries, seed=self.seed)
        except AssertionError as exc:
            raise ContractError("gradient", str(exc), self.label) from None

    def check_generate(self):
        self.out = self.answers(self.model)
        V = self.kwargs["vocab_size"]
        if ((self.out < 0) | (self.out >= V)).any():
            raise ContractError("generate", f"ids outside [0, {V}): {self.out.min()}..{self.out.max()}", self.label)

    def takes_beam(self) -> bool:
        params = inspect.signature(self.model.generate).parameters
        return "beam" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    def check_greedy(self):
        self.same(self.answers(self.model), self.out, "a second greedy decode", "greedy")
        if self.takes_beam():
            self.same(self.answers(self.model, beam=1), self.out, "generate(beam=1) against greedy", "greedy")

    def check_beam(self):
        if not self.takes_beam():
            return
        out = self.answers(self.model, beam=3)
        for i in range(self.batch):
            with no_grad():
                alone = self.model.generate(self.xs[i:i + 1], self.start, self.length, beam=3)
            self.same(check_generated(alone, 1, self.length, self.label)[0], out[i],
                      f"question {i} decoded alone against in the batch of {self.batch}", "beam")

    def check_attention(self):
        self.answers(self.model)
        w = getattr(self.model, "attention_weights", None)
        shape = (self.batch, self.length, self.xs.shape[1])
        if w is not None and (not isinstance(w, np.ndarray) or w.shape != shape):
            raise ContractError("attention", describe_value(w) + f" for N={shape[0]}, length={shape[1]}, "
                                f"T={shape[2]}", self.label)

    def check_round_trip(self):
        from .. import serialization  # noqa: PLC0415
        self.want = self.loss(self.model)
        config = getattr(self.model, "config", None)
        if not isinstance(config, dict):
            raise ContractError("config", describe_value(config), self.label)
        try:
            self.config = json.loads(json.dumps(config))
        except TypeError as exc:
            raise ContractError("config", f"not JSON-able ({exc})", self.label) from None
        fd, path = tempfile.mkstemp(suffix=".npz")
        os.close(fd)
        try:
            serialization.save(self.model.state_dict(), path)
            twin = self.fresh(**self.config)
            twin.load_state_dict(serialization.load(path))
        finally:
            os.unlink(path)
        self.twin_agrees(twin, "of the rebuilt model", "round trip")

    def check_device(self):
        from .fake_device import fake_device  # noqa: PLC0415
        with fake_device() as dev:
            twin = self.fresh(**self.config)
            twin.load_state_dict(self.model.state_dict())
            self.twin_agrees(twin.to(dev), "on the fake GPU", "device")

    def check_draws(self):
        from .. import viz  # noqa: PLC0415 - viz pulls in networkx
        dot = viz.to_dot(self.model(self.xs, self.ts), module=self.model).source
        if "digraph" not in dot:
            raise ContractError("draws", f"DOT text without a digraph: {dot[:80]!r}", self.label)


ITEMS = ("factory", "loss", "gradient", "generate", "greedy", "beam", "attention", "round trip", "device", "draws")
"""The items check_model checks, in order (keys of CONTRACT; 'config' is checked within 'round trip')."""


def check_model(name_or_factory, *, vocab_size: int = 9, wordvec_size: int = 4, hidden_size: int = 8,
                batch: int = 3, src_len: int = 5, tgt_len: int = 4, seed: int = 0, entries: int = 2,
                device: bool = True, **extra) -> list[str]:
    """Run the plugin contract's conformance battery on a model (what `tinygrad-s2s check` runs).

    Checks, in order: it builds; one optimizer step on a scalar float loss; every parameter's
    gradient against central differences; `generate` shape and dtype; greedy decoding deterministic
    and equal to beam=1; beam search (beam=3) answering each question as it does alone; attention
    weights' shape; a save/load round trip through its config gives the same loss and answers; the
    same on the strict fake GPU; the loss graph draws.

    Args:
        name_or_factory: a registered model name, or a factory `f(vocab_size=, wordvec_size=,
            hidden_size=, **extra)`.
        vocab_size: V of the tiny test model.
        wordvec_size: D.
        hidden_size: H.
        batch: questions per test batch.
        src_len: question length.
        tgt_len: answer length, without the start marker (the batch holds tgt_len + 1 columns).
        seed: of the weights and the test data.
        entries: gradient entries checked per parameter.
        device: also run on the strict fake GPU (False skips it).
        **extra: the model's own keyword arguments.

    Returns:
        list[str]: the items checked.

    Raises:
        ContractError: naming the item, at the first violation.
    """
    kwargs = dict(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size, **extra)
    battery = _Battery(name_or_factory, kwargs, batch, src_len, tgt_len, seed, entries)
    checked = []
    for item in ITEMS:
        if item == "device" and not device:
            continue
        with _item(item, battery.label):
            getattr(battery, "check_" + item.replace(" ", "_"))()
        checked.append(item)
    return checked


def check_exportable(name_or_factory, *, vocab_size: int = 9, wordvec_size: int = 4, hidden_size: int = 8,
                     src_len: int = 5, tgt_len: int = 4, seed: int = 0, **extra) -> tuple[bool | None, str]:
    """The contract's optional `exportable` item, reported rather than required: the model (a
    Seq2seqModel, in the default float dtype) exported by `tg.onnx` (encoder and one-step decoders) and
    decoded in onnxruntime at two batch sizes gives its own greedy answers, logits within 1e-4.

    Args:
        name_or_factory: the model, a registered name or a factory, as `check_model` takes it.
        vocab_size: V of the tiny model exported.
        wordvec_size: its D.
        hidden_size: its H.
        src_len: question length the encoder is traced at.
        tgt_len: decoder steps exported (the answer length without the start marker).
        seed: of the weights and the start id.
        **extra: the model's own keyword arguments.

    Returns:
        (True, what was checked), (False, why not: the model has no decode_start/decode_step, or the
            export's error as `Type: message`) or (None, 'not checked: ...') without onnx and onnxruntime.
    """
    from .battery import onnx_available  # noqa: PLC0415
    if not onnx_available():
        return None, "not checked: needs onnx and onnxruntime (pip install 'tinygrad-s2s[export]')"
    from ..onnx.model import export_model, write_checked  # noqa: PLC0415 - the export extra
    build, label = _resolve(name_or_factory)
    manual_seed(seed)
    model = build(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size, **extra)
    if not callable(getattr(model, "decode_start", None)) or not callable(getattr(model, "decode_step", None)):
        return False, "the model has no decode_start/decode_step to export (subclass tinygrad_s2s.models.Seq2seqModel)"
    start = int(np.random.default_rng(seed).integers(0, vocab_size))
    try:
        files, sidecar = export_model(model, vocab_size, src_len, start, tgt_len, label)
        with tempfile.TemporaryDirectory() as d:
            write_checked(model, files, sidecar, Path(d) / "out", vocab_size)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, (f"{len(files)} ONNX files (encoder, {len(files) - 1} decoder steps); greedy answers equal and "
                  "logits within 1e-4 in onnxruntime at batch sizes 3 and 5")
