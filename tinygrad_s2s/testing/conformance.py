"""`check_model`: the plugin conformance battery. It builds a model at tiny sizes and checks every item
of the contract (`tinygrad_s2s.contract.CONTRACT`) in turn; the first violation raises a
`ContractError` quoting the item it broke. `tinygrad-s2s check MODEL` runs the same battery.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import tempfile

import numpy as np

from ..contract import ContractError, check_generated, check_loss, describe_value
from ..nn import Module
from ..random import manual_seed
from ..tensor import default_dtype, no_grad

__all__ = ["check_model"]


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
    from ..registry import create_model, record_config  # noqa: PLC0415 - registry loads plugins

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


def _same(a, b, what: str, item: str, label: str, rtol: float = 1e-9) -> None:
    if np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=rtol, atol=1e-12):
        raise ContractError(item, f"{what}: {_short(a)} against {_short(b)}", label)


def check_model(name_or_factory, *, vocab_size: int = 9, wordvec_size: int = 4, hidden_size: int = 8,
                batch: int = 3, src_len: int = 5, tgt_len: int = 4, seed: int = 0, entries: int = 2,
                device: bool = True, **extra) -> list[str]:
    """Run the conformance battery on a registered model (by name) or a factory; `extra` are the
    model's own keyword arguments. Checks, in order: it builds; one optimizer step on a scalar float
    loss; every parameter's gradient against central differences (`entries` per parameter);
    `generate` shape and dtype; greedy decoding deterministic and equal to beam=1; attention weights'
    shape; a save/load round trip through its config gives the same loss and answers; the same on
    the strict fake GPU (`device=False` skips it); the loss graph draws. Returns the items checked;
    raises ContractError (naming the item) at the first violation."""
    from .. import optim, serialization, viz  # noqa: PLC0415 - viz pulls in networkx
    from .fake_device import fake_device  # noqa: PLC0415

    build, label = _resolve(name_or_factory)
    kwargs = dict(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size, **extra)
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, vocab_size, (batch, src_len), dtype=np.int64)
    ts = rng.integers(0, vocab_size, (batch, tgt_len + 1), dtype=np.int64)
    start = int(ts[0, 0])
    checked = []

    def fresh(**kw):
        manual_seed(seed)
        with default_dtype(np.float64):
            model = build(**kw)
        if not isinstance(model, Module):
            raise ContractError("factory", describe_value(model), label)
        return model

    with _item("factory", label):
        model = fresh(**kwargs)
    checked.append("factory")

    with _item("loss", label):
        model.train()
        loss = check_loss(model(xs, ts), label)
    checked.append("loss")

    with _item("gradient", label):
        model.zero_grad()
        loss.backward()
        for pname, p in model.named_parameters():
            if p.grad is None or p.grad.shape != p.shape or not np.isfinite(p.grad.numpy()).all():
                raise ContractError("gradient", f"parameter '{pname}' got gradient "
                                                f"{None if p.grad is None else describe_value(p.grad)}", label)
        optim.Adam(model.parameters(), lr=1e-3).step()
        check_loss(model(xs, ts), label)
    with _item("gradient", label):
        from . import gradcheck_module  # noqa: PLC0415 - this module is imported by testing/__init__
        model.eval()
        try:
            gradcheck_module(model, lambda: model(xs, ts), max_entries=entries, seed=seed)
        except AssertionError as exc:
            raise ContractError("gradient", str(exc), label) from None
    checked.append("gradient")

    def answers(m, **kw):
        with no_grad():
            return check_generated(m.generate(xs, start, tgt_len, **kw), batch, tgt_len, label)

    with _item("generate", label):
        out = answers(model)
        if ((out < 0) | (out >= vocab_size)).any():
            raise ContractError("generate", f"ids outside [0, {vocab_size}): {out.min()}..{out.max()}", label)
    checked.append("generate")

    with _item("greedy", label):
        _same(answers(model), out, "a second greedy decode", "greedy", label)
        params = inspect.signature(model.generate).parameters
        if "beam" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
            _same(answers(model, beam=1), out, "generate(beam=1) against greedy", "greedy", label)
    checked.append("greedy")

    with _item("attention", label):
        answers(model)
        weights = getattr(model, "attention_weights", None)
        if weights is not None and (not isinstance(weights, np.ndarray) or weights.shape != (batch, tgt_len, src_len)):
            raise ContractError("attention", describe_value(weights) + f" for N={batch}, length={tgt_len}, "
                                f"T={src_len}", label)
    checked.append("attention")

    with no_grad():
        want = float(model(xs, ts).item())
    with _item("round trip", label):
        config = getattr(model, "config", None)
        if not isinstance(config, dict):
            raise ContractError("config", describe_value(config), label)
        try:
            config = json.loads(json.dumps(config))
        except TypeError as exc:
            raise ContractError("config", f"not JSON-able ({exc})", label) from None
        fd, path = tempfile.mkstemp(suffix=".npz")
        os.close(fd)
        try:
            serialization.save(model.state_dict(), path)
            twin = fresh(**config)
            twin.load_state_dict(serialization.load(path))
        finally:
            os.unlink(path)
        twin.eval()
        with no_grad():
            _same(float(twin(xs, ts).item()), want, "loss of the rebuilt model", "round trip", label)
        _same(answers(twin), out, "answers of the rebuilt model", "round trip", label)
    checked.append("round trip")

    if device:
        with _item("device", label), fake_device() as dev:
            twin = fresh(**config)
            twin.load_state_dict(model.state_dict())
            twin.to(dev)
            twin.eval()
            with no_grad():
                _same(float(twin(xs, ts).item()), want, "loss on the fake GPU", "device", label)
            _same(answers(twin), out, "answers on the fake GPU", "device", label)
        checked.append("device")

    with _item("draws", label):
        dot = viz.to_dot(model(xs, ts), module=model).source
        if "digraph" not in dot:
            raise ContractError("draws", f"DOT text without a digraph: {dot[:80]!r}", label)
    checked.append("draws")
    return checked
