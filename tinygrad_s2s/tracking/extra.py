"""The `tracking` extra's packages, imported by a logger when its run starts (never at import time)."""
from __future__ import annotations

import importlib

__all__ = ["require"]


def require(module: str, backend: str):
    """Import `module` for `backend`, or ImportError saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{backend} logging needs the `tracking` extra (pip install 'tinygrad-s2s[tracking]'): "
                          f"{exc}") from None
