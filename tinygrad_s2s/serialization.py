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
        return OrderedDict((_name(k), _array(k, v)) for k, v in obj.items())
    raise TypeError(f"save: expected a Module or a dict of arrays, got {type(obj).__name__}")


def _name(key):
    if not isinstance(key, str):
        raise TypeError(f"save: key {key!r} is a {type(key).__name__}; the names of arrays are strings")
    return key


def _array(key, value):
    """A numeric host array, or a TypeError naming the entry: what `load` refuses is never written
    (a file saved without complaint that cannot be loaded again is lost work)."""
    if isinstance(value, (dict, str, bytes)) or value is None:
        raise TypeError(f"save: '{key}' is a {type(value).__name__}, not an array; save writes a flat dict of "
                        "numeric arrays (put other values in meta=, a JSON-able dict)")
    a = backend.to_numpy(getattr(value, "data", value))
    if a.dtype.kind not in backend.NUMERIC_KINDS or a.dtype.hasobject:
        raise TypeError(f"save: '{key}' has dtype {a.dtype}; save writes numeric arrays only (bool, int, "
                        "float, complex)")
    return a


def atomic_write(path, write) -> None:
    """Call write(fileobj) on a temp file beside `path`, fsync, then rename over `path`: a crash
    mid-write leaves the old file intact."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    # the writer's PID in the name lets remove_stale_temps tell a dead writer's litter from a live write
    # mkstemp creates with O_EXCL, which never follows a link planted under the name, and os.replace
    # replaces a link at `path` itself, never the file it points to
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            mask = os.umask(0)
            os.umask(mask)
            # mkstemp's private 0600 is not what a saved file should have; through the descriptor, so a
            # link swapped in under the temporary name meanwhile is never followed
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~mask)
            else:                       # Windows: no fchmod, and no links a user plants by accident
                os.chmod(tmp, 0o666 & ~mask)
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
    """Save a Module's parameters (or a dict name -> array) to an .npz file with a JSON header, atomically.

    No pickle: `load` reads it back without running code. The file is written to a temporary name
    and renamed, so a crash never leaves half a file under `path`.

    Args:
        obj: a `Module` (its `state_dict()`), or a dict of name -> array or Tensor.
        path: the file to write (str or `os.PathLike`), conventionally `*.npz`.
        meta: a JSON-able dict stored beside the arrays (a run's config, an epoch count), returned by
            `load(path, return_meta=True)`.
    """
    state = _state_of(obj)
    header = {"format": FORMAT, "version": VERSION, "names": list(state),
              "shapes": [list(a.shape) for a in state.values()],
              "dtypes": [str(a.dtype) for a in state.values()], "meta": meta or {}}
    arrays = {f"a{i}": a for i, a in enumerate(state.values())}
    arrays["__header__"] = np.frombuffer(json.dumps(header, allow_nan=False).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


class CheckpointError(ValueError):
    """A file `load` cannot read. The message is one line: `load: FILE: what is wrong`."""

    def __init__(self, path, reason: str):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"load: {self.path}: {reason}")


MAX_HEADER_BYTES = 16 << 20
"""The largest `__header__` (names, shapes and the JSON meta) load will read."""
_NPY_PREFIX_MAX = 10 + 0xFFFF      # an .npy version 1 prefix: magic, version, length, header dict
_CHUNK = 16 << 20                  # bytes read at a time, so reading never holds a second full copy


def _fail(path, reason):
    raise CheckpointError(path, reason) from None


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _open_archive(path) -> zipfile.ZipFile:
    if os.path.isdir(path):
        _fail(path, "is a directory, not a checkpoint file")
    size = os.path.getsize(path)
    if size == 0:
        _fail(path, "the file is empty (0 bytes); not a checkpoint")
    try:
        z = zipfile.ZipFile(path)
    except PermissionError as exc:
        _fail(path, f"cannot be read ({exc.strerror})")
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, OSError):
        with open(path, "rb") as f:
            starts_like_zip = f.read(4) == b"PK\x03\x04"
        _fail(path, "truncated: the zip archive's directory at the end is missing (was the write cut short?)"
              if starts_like_zip else "is not a tinygrad-s2s checkpoint: not a .npz (zip) archive")
    # every size check measures the file this archive has open, not whatever the path names by then
    z.tg_size = os.fstat(z.fp.fileno()).st_size
    names = z.namelist()
    if len(set(names)) != len(names):   # zipfile would quietly read the last of two members of one name
        z.close()
        dup = sorted({n for n in names if names.count(n) > 1})
        _fail(path, f"its archive holds more than one member named {', '.join(map(repr, dup))} (damaged or "
                    "hostile: which one is the checkpoint's?)")
    return z


def _member(path, z: zipfile.ZipFile, name: str, max_bytes: int | None = None) -> zipfile.ZipInfo:
    """The directory entry of array `name`, checked before a byte of it is read: stored uncompressed
    (so it cannot expand beyond the file) and inside the file."""
    member = name + ".npy"
    try:
        info = z.getinfo(member)
    except KeyError:
        _fail(path, f"is not a tinygrad-s2s checkpoint: the archive has no '{member}'" if name == "__header__"
              else f"the archive has no member '{member}' although its header lists it (damaged)")
    if info.compress_type != zipfile.ZIP_STORED:
        _fail(path, f"member '{member}' is compressed (zip method {info.compress_type}); tinygrad-s2s writes "
                    "checkpoints uncompressed, and a compressed member could expand to any size")
    if info.file_size != info.compress_size or info.header_offset + info.compress_size > z.tg_size:
        _fail(path, f"member '{member}' claims {info.file_size:,} bytes that the file does not hold "
                    "(truncated or damaged)")
    if max_bytes is not None and info.file_size > max_bytes:
        _fail(path, f"member '{member}' is {info.file_size:,} bytes, more than the {max_bytes:,} allowed")
    return info


def _npy_header(path, f, info: zipfile.ZipInfo):
    """(shape, fortran, dtype, data bytes) from the .npy header at the start of the open member `f`,
    checked to be a numeric array whose data fills the rest of the member exactly."""
    what = f"member '{info.filename}'"
    try:
        major, _ = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if major == 1
                       else np.lib.format.read_array_header_2_0)
        npy_shape, fortran, npy_dtype = read_header(f, max_header_size=_NPY_PREFIX_MAX)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError):
        _fail(path, f"{what} is not a valid .npy array")
    if any(d < 0 for d in npy_shape):
        _fail(path, f"{what} has the negative shape {list(npy_shape)}")
    if npy_dtype.kind not in backend.NUMERIC_KINDS or npy_dtype.hasobject:
        _fail(path, f"{what} holds dtype '{npy_dtype}'; checkpoints hold only numbers")
    nbytes = int(np.prod(npy_shape, dtype=np.int64)) * npy_dtype.itemsize
    if f.tell() + nbytes != info.file_size:
        _fail(path, f"{what}: {npy_dtype} {list(npy_shape)} needs {nbytes:,} bytes of data, the "
                    f"archive holds {info.file_size - f.tell():,}")
    return npy_shape, fortran, npy_dtype, nbytes


def _member_shape(path, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[list, str]:
    """(shape, dtype) of one .npy member from its own header, reading none of its data."""
    try:
        with z.open(info) as f:
            shape, _, dtype, _ = _npy_header(path, f, info)
    except zipfile.BadZipFile:
        _fail(path, f"member '{info.filename}' is damaged (bad zip entry)")
    except (OSError, EOFError, RuntimeError, NotImplementedError):
        _fail(path, f"member '{info.filename}' cannot be read (truncated, damaged or encrypted)")
    return list(shape), str(dtype)


def _read_member(path, z: zipfile.ZipFile, info: zipfile.ZipInfo, shape=None, dtype=None) -> np.ndarray:
    """Read one .npy member; its own header must agree with `shape`/`dtype` (when given) and with
    the size the directory gave, before its data is allocated."""
    what = f"member '{info.filename}'"
    try:
        with z.open(info) as f:
            npy_shape, fortran, npy_dtype, nbytes = _npy_header(path, f, info)
            if shape is not None and (list(npy_shape) != list(shape) or str(npy_dtype) != dtype):
                _fail(path, f"{what} is {npy_dtype} {list(npy_shape)}, the header declares {dtype} {list(shape)}")
            out = np.empty(npy_shape[::-1] if fortran else npy_shape, dtype=npy_dtype)
            view = memoryview(out.reshape(-1).view(np.uint8))
            for i in range(0, nbytes, _CHUNK):
                n = f.readinto(view[i:i + _CHUNK])
                if n != min(_CHUNK, nbytes - i):
                    _fail(path, f"{what} ends early (truncated)")
            f.read(1)     # reach the end, so zipfile checks the CRC
    except zipfile.BadZipFile as exc:
        _fail(path, f"{what} is damaged ({'CRC mismatch' if 'CRC' in str(exc) else 'bad zip entry'})")
    except (OSError, EOFError, RuntimeError, NotImplementedError):   # RuntimeError: an encrypted member
        _fail(path, f"{what} cannot be read (truncated, damaged or encrypted)")
    return out.T if fortran else out


def _check_header(path, header) -> dict:
    if not isinstance(header, dict):
        _fail(path, f"its __header__ is a JSON {type(header).__name__}, not an object")
    if header.get("format") != FORMAT:
        _fail(path, f"its __header__ says format {header.get('format')!r}, not {FORMAT!r}")
    version = header.get("version")
    if not _int(version) or version < 1:
        _fail(path, f"its __header__ has version {version!r}; expected a positive integer")
    if version > VERSION:
        _fail(path, f"written by a newer tinygrad-s2s (format version {version}); this build reads up to "
                    f"version {VERSION}")
    for key, kind in (("names", list), ("shapes", list), ("dtypes", list), ("meta", dict)):
        if key not in header:
            _fail(path, f"its __header__ lacks '{key}'")
        if not isinstance(header[key], kind):
            _fail(path, f"its __header__ '{key}' is a {type(header[key]).__name__}, expected a {kind.__name__}")
    names, shapes, dtypes = header["names"], header["shapes"], header["dtypes"]
    if not len(names) == len(shapes) == len(dtypes):
        _fail(path, f"its __header__ lists {len(names)} names, {len(shapes)} shapes and {len(dtypes)} dtypes")
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        _fail(path, "its __header__ 'names' must be distinct strings")
    for name, shape, dtype in zip(names, shapes, dtypes):
        if not isinstance(shape, list) or not all(_int(d) and d >= 0 for d in shape):
            _fail(path, f"array '{name}' has shape {shape!r} in the __header__; expected a list of sizes")
        try:
            ok = isinstance(dtype, str) and np.dtype(dtype).kind in backend.NUMERIC_KINDS
        except (TypeError, ValueError):
            ok = False
        if not ok:
            _fail(path, f"array '{name}' has dtype {dtype!r} in the __header__; expected a numeric dtype")
    return header


def read_header(path) -> dict:
    """The validated header of a file `save` wrote: {'names', 'shapes', 'dtypes', 'meta', ...},
    without reading any array. Raises FileNotFoundError or CheckpointError (one line, naming the file)."""
    with Checkpoint(path) as ck:
        return ck.header


def _read_header(path, z: zipfile.ZipFile) -> dict:
    raw = _read_member(path, z, _member(path, z, "__header__", MAX_HEADER_BYTES))
    if raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(path, f"its __header__ is {raw.dtype} {list(raw.shape)}, not the bytes of a JSON text")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(path, f"its __header__ is not valid JSON ({type(exc).__name__}: {exc})")
    except RecursionError:
        _fail(path, "its __header__ nests too deeply to be a checkpoint header")
    return _check_header(path, header)


class Checkpoint:
    """A file `save` wrote, opened once: `header`, `shapes()` and `arrays()` all read that one open
    file, so a checkpoint replaced under its name meanwhile (a concurrent `train --overwrite`) can
    never pair one file's config with another's weights. Use it as a context manager."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"load: no such file: {self.path}")
        self._z = _open_archive(self.path)
        try:
            self.header = _read_header(self.path, self._z)
        except BaseException:
            self._z.close()
            raise
        self.meta = self.header["meta"]

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self._z.close()

    def _declared(self) -> dict:
        h = self.header
        return {n: (i, s, d) for i, (n, s, d) in enumerate(zip(h["names"], h["shapes"], h["dtypes"]))}

    def shapes(self) -> dict:
        """name -> shape of every array, as its member's own .npy header gives it (no data is read),
        checked to be what the JSON header declares and to fit in the file: what a model built from
        the meta must match, known before anything is allocated."""
        declared = self._declared()
        out = {}
        for name, info in self._members(declared, list(declared)).items():
            _, shape, dtype = declared[name]
            real = _member_shape(self.path, self._z, info)
            if real != (shape, dtype):
                _fail(self.path, f"member '{info.filename}' is {real[1]} {real[0]}, the header declares {dtype} {shape}")
            out[name] = tuple(shape)
        return out

    def _members(self, declared: dict, names: list) -> dict:
        """name -> the zip member holding it, all of them together fitting in the file."""
        infos = {n: _member(self.path, self._z, f"a{declared[n][0]}") for n in names}
        if sum(i.compress_size for i in infos.values()) > self._z.tg_size:
            _fail(self.path, "its members overlap: they claim more bytes than the file holds (damaged or hostile)")
        return infos

    def arrays(self, expect: dict | None = None):
        """An OrderedDict name -> ndarray: every array, or with `expect` (name -> shape) only those,
        each declared with that shape."""
        path, declared = self.path, self._declared()
        wanted = list(declared) if expect is None else list(expect)
        for name in wanted:
            if name not in declared:
                _fail(path, f"has no array '{name}' (it holds {', '.join(declared) or 'none'})")
            if expect is not None and list(expect[name]) != declared[name][1]:
                _fail(path, f"array '{name}' has shape {declared[name][1]}, expected {list(expect[name])}")
        infos = self._members(declared, wanted)
        return OrderedDict((n, _read_member(path, self._z, infos[n], declared[n][1], declared[n][2]))
                           for n in wanted)


def load(path, return_meta: bool = False, expect: dict | None = None):
    """Load what `save` wrote.

    Nothing is decompressed or allocated before the header, the zip directory and each array's own
    .npy header agree, so a damaged or hostile file costs no more memory than it holds on disk.

    Args:
        path: the file (str or `os.PathLike`).
        return_meta: also return the `meta` dict that `save` stored.
        expect: name -> shape (e.g. a model's `state_dict` shapes): read only those arrays, each of
            which must be declared with that shape.

    Returns:
        OrderedDict[str, numpy.ndarray] | tuple: name -> array in the saved order; with
            `return_meta`, the pair `(arrays, meta)`.

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointError: (a ValueError) a file that is not one `save` wrote, damaged, or missing an
            expected array or holding it in another shape; the message is one line naming the file.
    """
    with Checkpoint(path) as ck:
        state = ck.arrays(expect)
    return (state, ck.meta) if return_meta else state
