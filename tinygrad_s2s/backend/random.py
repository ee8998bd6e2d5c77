"""The one random generator behind dropout, initialisation and sampling, so a seed fixes a whole run
and a checkpoint can save and restore it (resume is then exact)."""
from __future__ import annotations

import numpy as np

_gen = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the global generator."""
    global _gen
    _gen = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _gen


def get_state() -> dict:
    """The generator's state as a JSON-able dict (saved in checkpoints)."""
    return _gen.bit_generator.state


def set_state(state: dict) -> None:
    _gen.bit_generator.state = state
