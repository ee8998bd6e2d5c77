"""Where the compiled kernels are not used (backend.compiled): without Numba, with
TINYGRAD_S2S_COMPILED=0, on other devices and dtypes. These need no extra: the fused layers' own op
battery (test_ops.py) runs on whichever path this environment has."""
import sys

import numpy as np
import pytest

from tinygrad_s2s.backend import compiled
from tinygrad_s2s.testing.fake_device import fake_device


@pytest.fixture
def no_numba(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)         # `import numba` raises ImportError
    monkeypatch.setitem(sys.modules, "tinygrad_s2s.backend._kernels", None)
    monkeypatch.setattr(compiled, "_loaded", None)


def test_without_numba_the_numpy_path_runs(no_numba, monkeypatch):
    monkeypatch.delenv(compiled.ENV_VAR, raising=False)
    assert compiled.kernels(np, np.float32) is None
    assert compiled.active() == "NumPy (Numba is not installed: pip install 'tinygrad-s2s[compiled]')"


def test_the_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv(compiled.ENV_VAR, "0")
    assert compiled.kernels(np, np.float32) is None
    assert compiled.active() == f"NumPy ({compiled.ENV_VAR}=0)"


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.complex128])
def test_other_dtypes_and_devices_take_the_numpy_path(monkeypatch, dtype):
    monkeypatch.delenv(compiled.ENV_VAR, raising=False)
    assert compiled.kernels(np, dtype) is None
    with fake_device() as dev:
        from tinygrad_s2s import backend
        assert compiled.kernels(backend.module_for(dev), np.float32) is None


def test_a_bad_value_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(compiled.ENV_VAR, "numba")
    with pytest.raises(ValueError, match=f"environment variable {compiled.ENV_VAR}='numba': use one of 1, true"):
        compiled.kernels(np, np.float32)


def test_a_numba_that_fails_to_load_leaves_the_numpy_path_saying_why(monkeypatch):
    def broken(name, *args, **kwargs):
        raise SystemError("LLVM said no")
    monkeypatch.setattr(compiled, "_loaded", None)
    monkeypatch.setattr(compiled.importlib, "import_module", broken)
    monkeypatch.delenv(compiled.ENV_VAR, raising=False)
    assert compiled.kernels(np, np.float32) is None
    assert compiled.active() == "NumPy (Numba failed to load: SystemError: LLVM said no)"
