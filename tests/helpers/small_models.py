"""Small models and helpers that several drawing tests share (imported by path, like tiny_model)."""
from __future__ import annotations

import warnings

import numpy as np

import tinygrad_s2s as tg
from tinygrad_s2s import nn


def registered(name: str) -> bool:
    with warnings.catch_warnings():          # a zoo module still being written warns on discovery
        warnings.simplefilter("ignore")
        return name in tg.available_models()


class Block(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return tg.tanh(self.fc(x))


class MLP(nn.Module):
    def __init__(self, layers: int = 3):
        super().__init__()
        self.layers = nn.ModuleList([Block() for _ in range(layers)])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.layers:
            x = block(x)
        return tg.mean(self.head(x) ** 2)


def mlp_loss(layers: int = 3, input_grad: bool = False):
    """(loss, model) of a small MLP with modules 'layers.0.fc' ...; with `input_grad` the input is a
    leaf named 'x' that requires grad (for gradient overlays)."""
    model = MLP(layers)
    x = np.arange(8.0).reshape(2, 4) / 8
    return model(tg.Tensor(x, requires_grad=True, name="x") if input_grad else tg.Tensor(x)), model


def tanh_derivatives(x, n):
    """[d1, ..., dn] of tanh at x, each by tg.grad of the previous one with create_graph=True."""
    g, out = tg.tanh(x), []
    for _ in range(n):
        g, = tg.grad(tg.sum(g) if g.size > 1 else g, x, create_graph=True)
        out.append(g)
    return out


# names that are markup or escapes in DOT, SVG or HTML (each must be drawn as exactly these characters)
NAMES = ["a\\", "<b>x</b>", "<!--<script>", 'say "hi"', "a:b", "x\\ny", "&lt;"]


class Outer(nn.Module):
    def __init__(self, name, cls_name):
        super().__init__()
        self.name = name
        setattr(self, name, type(cls_name, (Block,), {})(2))     # a Block whose class is called cls_name

    def forward(self, x):
        return tg.sum(getattr(self, self.name)(x))


def crafted(name):
    """(loss, model) whose sub-module, its class and the input tensor are all called `name`."""
    model = Outer(name, name)
    return model(tg.Tensor(np.ones((1, 2), np.float32), name=name)), model


def empty_path(monkeypatch, tmp_path):
    """The user's machine: nothing on PATH (so no system `dot`), only what pip installed; returns the
    (empty) folder PATH now names."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    return empty
