"""save/load: .npz files with a format version, names and shapes; no pickle; written atomically."""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np

from . import backend

FORMAT = "tinygrad-s2s"
TMP_PREFIX = ".tmp-"
"""Temporary files of atomic_write start with this, then the writer's PID."""
VERSION = 1


def _state_of(obj):
    from .nn import Module  # noqa: PLC0415 - nn imports this package's engine, not the reverse
    if isinstance(obj, Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        return OrderedDict((k, backend.to_numpy(getattr(v, "data", v))) for k, v in obj.items())
    raise TypeError(f"save: expected a Module or a dict of arrays, got {type(obj).__name__}")


def atomic_write(path, write) -> None:
    """Call write(fileobj) on a temp file beside `path`, fsync, then rename over `path`: a crash
    mid-write leaves the old file intact."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    # the writer's PID in the name lets remove_stale_temps tell a dead writer's litter from a live write
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)     # mkstemp's private 0600 is not what a saved file should have
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temps(directory) -> list[str]:
    """Delete the temporary files of atomic writes in `directory` whose writing process is gone (cut
    short by kill -9 or power loss); returns their names. Where a process cannot be asked whether it
    is alive (Windows), nothing is removed."""
    removed = []
    if os.name != "posix" or not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        pid = name[len(TMP_PREFIX):].split("-", 1)[0]
        if not (name.startswith(TMP_PREFIX) and pid.isdigit()):
            continue
        try:
            os.kill(int(pid), 0)
            continue                    # its writer is alive: a write in progress
        except ProcessLookupError:
            pass
        except OSError:                 # alive, owned by someone else
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    return sorted(removed)


def write_bytes(path, data: bytes) -> None:
    """Write a whole file atomically (configs, metrics, pictures, generated datasets)."""
    atomic_write(path, lambda f: f.write(data))


def save(obj, path, meta: dict | None = None) -> None:
    """Save a Module's parameters (or a dict name -> array) to `path` (.npz), with JSON `meta`."""
    state = _state_of(obj)
    header = {"format": FORMAT, "version": VERSION, "names": list(state),
              "shapes": [list(a.shape) for a in state.values()],
              "dtypes": [str(a.dtype) for a in state.values()], "meta": meta or {}}
    arrays = {f"a{i}": a for i, a in enumerate(state.values())}
    arrays["__header__"] = np.frombuffer(json.dumps(header, allow_nan=False).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path, return_meta: bool = False):
    """Load what `save` wrote: an OrderedDict name -> ndarray (and the meta dict if asked)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["__header__"]).decode())
            arrays = [z[f"a{i}"] for i in range(len(header["names"]))]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ValueError(f"load: {path} is not a tinygrad-s2s checkpoint ({exc})") from None
    if header.get("format") != FORMAT or header.get("version", 0) > VERSION:
        raise ValueError(f"load: {path} has format {header.get('format')} version {header.get('version')}; "
                         f"this build reads {FORMAT} up to version {VERSION}")
    state = OrderedDict(zip(header["names"], arrays))
    for (name, a), shape in zip(state.items(), header["shapes"]):
        if list(a.shape) != shape:
            raise ValueError(f"load: {path}: array '{name}' has shape {a.shape}, header says {shape}")
    return (state, header["meta"]) if return_meta else state
