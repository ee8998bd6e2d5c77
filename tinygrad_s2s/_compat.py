"""Old import paths, kept for one release (until 0.2): each module that moved when the package was
split into layers still imports under its old name, as the new module itself, with one FutureWarning
naming the new path. `tinygrad_s2s.tensor` is still the module of `Tensor`; the engine's names it used
to hold warn the same way (see `moved_name`)."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "tinygrad_s2s.allocator": "tinygrad_s2s.backend.allocator",
    "tinygrad_s2s.blas_threads": "tinygrad_s2s.backend.blas_threads",
    "tinygrad_s2s.random": "tinygrad_s2s.backend.random",
    "tinygrad_s2s.envvars": "tinygrad_s2s.backend.envvars",
    "tinygrad_s2s.fused": "tinygrad_s2s.ops.lstm",
    "tinygrad_s2s.fused_gru": "tinygrad_s2s.ops.gru",
    "tinygrad_s2s.factories": "tinygrad_s2s.ops.factories",
    "tinygrad_s2s.registry": "tinygrad_s2s.models.registry",
    "tinygrad_s2s.contract": "tinygrad_s2s.models.contract",
    "tinygrad_s2s.datagen": "tinygrad_s2s.data.generators",
    "tinygrad_s2s.train": "tinygrad_s2s.training.trainer",
    "tinygrad_s2s.trainconfig": "tinygrad_s2s.training.config",
    "tinygrad_s2s.rundir": "tinygrad_s2s.training.rundir",
    "tinygrad_s2s.runfiles": "tinygrad_s2s.training.runfiles",
    "tinygrad_s2s.rundata": "tinygrad_s2s.training.fingerprint",
    "tinygrad_s2s.evaluation": "tinygrad_s2s.training.evaluation",
    "tinygrad_s2s.cli_base": "tinygrad_s2s.cli.base",
    "tinygrad_s2s.cli_train": "tinygrad_s2s.cli.train",
    "tinygrad_s2s.cli_run": "tinygrad_s2s.cli.run",
    "tinygrad_s2s.cli_info": "tinygrad_s2s.cli.info",
    "tinygrad_s2s.argtypes": "tinygrad_s2s.cli.argtypes",
    "tinygrad_s2s.viz.commands": "tinygrad_s2s.cli.graph",
}
"""old module -> the module it became (the same file, moved)."""


def warn_moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old name works until tinygrad-s2s 0.2: import {new} instead",
                  FutureWarning, stacklevel=3)


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds only the old names in MOVED; loading one warns and hands back the new module itself."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        warn_moved(spec.name, MOVED[spec.name])
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass     # the new module ran when it was imported


def install() -> None:
    """Put the finder on sys.meta_path once (last: real modules are always found first)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())


_warned: set = set()


def moved_name(module: str, name: str, new_module: str):
    """`module.name` that now lives in `new_module`: the object, with a FutureWarning the first time."""
    value = getattr(importlib.import_module(new_module), name)
    if (module, name) not in _warned:
        _warned.add((module, name))
        warnings.warn(f"{module}.{name} moved to {new_module}.{name}; the old name works until tinygrad-s2s 0.2",
                      FutureWarning, stacklevel=3)
    return value
