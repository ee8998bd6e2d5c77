"""The one random generator behind dropout, initialisation and sampling, so a seed fixes a whole run
and a checkpoint can save and restore it (resume is then exact)."""
from __future__ import annotations

import numpy as np

_gen = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the library's one generator (`tg.manual_seed`, as `torch.manual_seed`).

    Initialisation, dropout masks, batch order, sampled answers and `tg.randn`/`rand`/`randint` all
    draw from it, so one seed makes a run repeatable.

    Args:
        seed: a non-negative int (NumPy's `default_rng` seed).
    """
    global _gen
    _gen = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The library's one generator, for code that draws its own random numbers.

    Returns:
        numpy.random.Generator: the current generator (a new one after each `manual_seed`: do not keep it).
    """
    return _gen


def get_state() -> dict:
    """The generator's state, as checkpoints save it (resume is then exact).

    Returns:
        dict: the bit generator's state, JSON-able.
    """
    return _gen.bit_generator.state


def set_state(state: dict) -> None:
    """Restore the generator's state from `get_state`.

    Args:
        state: a dict `get_state` returned (from a checkpoint, after JSON).
    """
    _gen.bit_generator.state = state
