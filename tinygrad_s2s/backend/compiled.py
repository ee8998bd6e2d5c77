"""The compiled path of the fused recurrent layers: Numba kernels for their elementwise work, when installed.

An LSTM or GRU layer's time loop does a GEMM and then elementwise work at every step. In NumPy that
work is eight or more ufunc calls a step (each its own pass over the step's (N, H) blocks, and its own
dispatch), and the backward first computes five factors for all steps in another fifteen passes. The
compiled path does each step's elementwise work in one pass of a kernel compiled with Numba
(`tinygrad_s2s.backend._kernels`): the LSTM forward in one kernel after the step's GEMM, its backward
in one kernel before the step's GEMM and one after it (the sums over the gates, and the next step's
incoming gradient), the GRU in two kernels each way. The GEMMs stay in BLAS, called by NumPy between
the kernels, so a thread setting or an OpenBLAS kernel family acts on both paths alike.

The same op-table rows (`lstm_sequence`, `gru_sequence`) run either path: the op's forward and backward
ask `kernels(xp, dtype)` and take the compiled kernels when it returns them, NumPy's ufuncs otherwise.
It returns them for NumPy arrays of float32 or float64 when Numba can be imported (the `compiled`
extra: pip install 'tinygrad-s2s[compiled]') and TINYGRAD_S2S_COMPILED is not 0; CuPy arrays, other
dtypes and the fake device of the tests always take the NumPy path, the reference that every test
compares both against.

Numbers: without fastmath, every kernel gives the same bits run after run (Numba's loops run on one
thread; nothing is summed in an order that depends on timing). They differ from the NumPy path's in
the last bits: the float32 forward computes its tanh with a vectorizable rational approximation
(within 7 ulp of tanh, where NumPy's float32 tanh is within 2) and both paths round sums in their own
order. A run resumed on a machine without Numba continues with NumPy's rounding, as one resumed
under another OpenBLAS kernel family does.

Cost: importing Numba takes ~0.5 s, once per process, at the first fused layer's call (never at
`import tinygrad_s2s`). The kernels compile on the first use after an install (a few seconds for
both dtypes) and are cached on disk (beside this module, or in NUMBA_CACHE_DIR where that is not
writable); later processes load them in a fraction of a second.
"""
from __future__ import annotations

import importlib

import numpy as np

from . import envvars

ENV_VAR = "TINYGRAD_S2S_COMPILED"
"""Set to 0 to run the fused layers on NumPy even where Numba is installed."""
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_loaded = None          # the kernels module once imported; False when Numba is missing or failed
_why = ""               # why it failed: shown by active()


def enabled_by_environment() -> bool:
    """TINYGRAD_S2S_COMPILED, on unless 0 (or false, no, off)."""
    return envvars.flag(ENV_VAR, True)


def available() -> bool:
    """Whether the compiled kernels can be loaded (Numba imports); imports it on the first call."""
    global _loaded, _why
    if _loaded is None:
        try:    # Numba only when a fused layer first runs
            _loaded = importlib.import_module(__package__ + "._kernels")
        except ImportError:
            _loaded, _why = False, "Numba is not installed: pip install 'tinygrad-s2s[compiled]'"
        except Exception as exc:    # a Numba that cannot run here (its NumPy or LLVM): NumPy's path, said why
            _loaded, _why = False, f"Numba failed to load: {type(exc).__name__}: {exc}"
    return _loaded is not False


def kernels(xp, dtype):
    """The kernels module for arrays of module `xp` and `dtype`, or None for the NumPy path."""
    if xp is not np or np.dtype(dtype) not in DTYPES or not enabled_by_environment() or not available():
        return None
    return _loaded


def active() -> str:
    """'compiled (Numba X)' or 'NumPy (why)': which path float32 layers take in this process."""
    if not enabled_by_environment():
        return f"NumPy ({ENV_VAR}=0)"
    if not available():
        return f"NumPy ({_why})"
    import numba  # noqa: PLC0415
    return f"compiled (Numba {numba.__version__})"
