"""A run directory on disk: who holds it and what it holds.

- One process per run: `locked(run_dir)` takes an exclusive OS lock on `run_dir/.lock` (flock on POSIX,
  msvcrt.locking on Windows). The OS drops it when the process dies, so a `kill -9` never leaves a
  stale lock; the file holds the holder's PID so a refusal can name it.
- `state(run_dir)`: absent, empty, a run of this tool, or someone else's files; `check_new_run`
  refuses to start a run anywhere but an absent or empty directory (or, with overwrite, a run).
- `clear_run` removes a run's own files (for --overwrite); `remove_temps` removes what an atomic
  write cut short left behind (only while the lock is held, when no one else can be writing).
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import zipfile
from pathlib import Path

from ..serialization import TMP_PREFIX
from .config import RUN_FORMAT

__all__ = ["BEST", "CONFIG", "CURVE", "EVENTS_PREFIX", "LAST", "LOCK", "METRICS", "MLFLOW", "RUN_FILES",
           "TENSORBOARD", "TRACKING_FILES", "RunDirError", "RunDirLocked", "RunDirRefused", "check_new_run", "clear_run", "holder", "locked", "remove_temps", "state"]

CONFIG, METRICS, LAST, BEST, CURVE = "config.json", "metrics.csv", "last.npz", "best.npz", "learning_curve.png"
RUN_FILES = (CONFIG, METRICS, LAST, BEST, CURVE)
"""Every file a run writes (see runfiles)."""
TENSORBOARD, MLFLOW = "tensorboard", "mlflow.json"
TRACKING_FILES = (TENSORBOARD, MLFLOW)
"""What the trackers keep in a run (see tinygrad_s2s.tracking): TensorBoard's event files in a folder, the
MLflow run's id and store."""
EVENTS_PREFIX = "events.out.tfevents."
LOCK = ".lock"
_LEGACY_KEYS = {"model", "vocab", "dataset_path", "question_width"}   # config.json before the format key

try:
    import fcntl
except ImportError:         # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:         # POSIX
    msvcrt = None
_WINDOWS_LOCK_BYTE = 1 << 20     # msvcrt locks are mandatory: lock a byte past the PID so it stays readable


class RunDirError(Exception):
    """A directory the command refuses to use (the command line exits 2)."""


class RunDirLocked(RunDirError):
    """Another process holds the run directory's lock; `pid` is that process (None if unknown)."""

    def __init__(self, run_dir, pid: int | None):
        self.run_dir, self.pid = Path(run_dir), pid
        who = f"process {pid}" if pid else "another process"
        super().__init__(f"{run_dir} is in use by {who} (it holds {Path(run_dir) / LOCK}); one process per "
                         "run directory: wait for it to finish or stop it")


class RunDirRefused(RunDirError, FileExistsError):
    """The directory holds a run (or files this tool did not write) that starting a run would overwrite."""


# ---------------------------------------------------------------- what a directory holds
def _is_checkpoint(path: Path) -> bool:
    if not path.is_file():       # a planted FIFO or device would block the read, or never end
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return "__header__.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _is_run_config(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and (config.get("format") == RUN_FORMAT or _LEGACY_KEYS <= set(config))


def state(run_dir) -> tuple[str, list[str]]:
    """("absent" | "empty" | "run" | "foreign" | "file" | "dangling", the names that are not the tool's
    own); "dangling": a symbolic link to nothing.

    A run is a directory whose config.json is one this tool wrote or that holds one of its checkpoints;
    the lock file and interrupted temporary files do not count as contents."""
    p = Path(run_dir)
    if not p.exists():
        return ("dangling", [p.name]) if p.is_symlink() else ("absent", [])
    if not p.is_dir():
        return "file", [p.name]
    names = sorted(n for n in os.listdir(p) if n != LOCK and not n.startswith(TMP_PREFIX))
    if not names:
        return "empty", []
    other = [n for n in names if n not in RUN_FILES + TRACKING_FILES]
    is_run = (_is_run_config(p / CONFIG) or any(_is_checkpoint(p / n) for n in (LAST, BEST) if n in names))
    return ("run" if is_run else "foreign"), (other if is_run else names)


def check_new_run(run_dir, overwrite: bool = False) -> str:
    """Refuse (RunDirRefused / RunDirLocked) unless a new run may start in `run_dir`: it is absent or
    empty, or (with `overwrite`) a run of this tool that no process holds. Touches nothing; returns
    the state."""
    kind, other = state(run_dir)
    if kind == "file":
        raise RunDirRefused(f"{run_dir} is a file, not a directory; choose another --out")
    if kind == "dangling":      # making the directory would fail on the link ("File exists")
        raise RunDirRefused(f"{run_dir} is a symbolic link to {os.readlink(run_dir)}, which does not exist; "
                            "create that directory first or choose another --out")
    if kind == "foreign":
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise RunDirRefused(f"{run_dir} holds files this tool did not write ({shown}); it never writes "
                            "into such a directory: choose another --out")
    pid = holder(run_dir) if kind != "absent" else None
    if pid is not None:
        raise RunDirLocked(run_dir, pid or None)
    if kind == "run" and not overwrite:
        raise RunDirRefused(f"{run_dir} already holds a run; pass --resume to continue it (in Python: "
                            "Trainer.resume(run_dir)), --overwrite to replace it, or choose another --out "
                            "(another run_dir)")
    if kind == "run" and other:
        raise RunDirRefused(f"{run_dir} holds a run and files this tool did not write ({', '.join(other[:5])}); "
                            "--overwrite replaces a run whole and never deletes those: move them first")
    return kind


def clear_run(run_dir) -> list[str]:
    """Remove a run's own files (and interrupted temporaries) for --overwrite; other files stay.
    Returns the names removed. Call it while holding the lock."""
    p, removed = Path(run_dir), []
    for name in RUN_FILES + (MLFLOW,):
        if (p / name).is_file():
            (p / name).unlink()
            removed.append(name)
    events = p / TENSORBOARD
    if events.is_dir() and not events.is_symlink():   # its event files; the folder too once empty
        for f in sorted(events.iterdir()):
            if f.name.startswith(EVENTS_PREFIX) and f.is_file() and not f.is_symlink():
                f.unlink()
                removed.append(f"{TENSORBOARD}/{f.name}")
        with contextlib.suppress(OSError):
            events.rmdir()
    return removed + remove_temps(p)


def remove_temps(run_dir) -> list[str]:
    """Delete the `.tmp-*` files an atomic write cut short (by kill -9 or power loss) left in
    `run_dir`; call it while holding the lock, when no process of this tool can be writing there."""
    p, removed = Path(run_dir), []
    if p.is_dir():
        for name in os.listdir(p):
            if name.startswith(TMP_PREFIX) and (p / name).is_file():
                with contextlib.suppress(FileNotFoundError):
                    (p / name).unlink()
                    removed.append(name)
    return sorted(removed)


# ---------------------------------------------------------------- the lock
_held: dict[str, list] = {}     # resolved path -> [fd, count]: the lock is re-entrant within a process


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif msvcrt is not None:
            os.lseek(fd, _WINDOWS_LOCK_BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            raise OSError("this platform offers no file locking (neither fcntl nor msvcrt)")
    except (BlockingIOError, PermissionError):
        return False
    except OSError as exc:
        if msvcrt is not None and fcntl is None:    # msvcrt reports a held lock as a plain OSError
            return False
        raise RunDirError(f"cannot lock the run directory: {exc}") from None
    return True


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)     # Windows has none (nor links a user plants by accident)


def _open_lock(path: Path, flags: int) -> int:
    """Open the lock file without following a link planted under its name (the PID written into it
    would overwrite the file it points to) and refuse anything but a regular file with one name (a
    hard link: another file's contents). RunDirError (exit 2) names it."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0), 0o644)
    except OSError:
        if os.path.islink(path):
            raise RunDirError(f"{path} is a symbolic link; the run's lock must be a plain file this tool "
                              "creates: remove the link") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(st.st_mode) else f"a file with {st.st_nlink} hard links"
        raise RunDirError(f"{path} is {what}; the run's lock must be a plain file this tool creates (writing "
                          "its PID there would overwrite another file): remove it")
    return fd


def _read_pid(path: Path) -> int | None:
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except (OSError, RunDirError):
        return None
    try:
        text = os.read(fd, 32).split(b"\0")[0].strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def holder(run_dir) -> int | None:
    """The PID of another process holding `run_dir`'s lock (0 when its PID is unknown), None when no
    other process holds it. Creates nothing."""
    path = Path(run_dir) / LOCK
    if str(path.resolve()) in _held:
        return None
    try:
        fd = _open_lock(path, os.O_RDWR)
    except (OSError, RunDirError):   # absent, not ours to open, or planted (locking refuses it, naming it)
        return None
    try:
        if _try_lock(fd):
            if fcntl is None and msvcrt is not None:
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            return None
    finally:
        os.close(fd)            # closing releases a probe's lock
    return _read_pid(path) or 0


@contextlib.contextmanager
def locked(run_dir, *, create: bool = True, optional: bool = False):
    """Hold `run_dir`'s exclusive lock inside the block (the directory is created if `create`).
    Raises RunDirLocked naming the holder's PID when another process has it. Re-entrant: a process
    that already holds it just enters. `optional`: where the lock file cannot be created (a read-only
    directory, which nobody can be training into), go on without it."""
    p = Path(run_dir)
    if create:
        p.mkdir(parents=True, exist_ok=True)
    path = p / LOCK
    key = str(path.resolve())
    if key in _held:
        _held[key][1] += 1
        try:
            yield p
        finally:
            _held[key][1] -= 1
        return
    try:
        fd = _acquire(path, p)
    except (PermissionError, OSError) as exc:
        if isinstance(exc, RunDirError) or not optional:
            raise
        yield p
        return
    _held[key] = [fd, 1]
    try:
        yield p
    finally:
        del _held[key]
        if fcntl is not None:       # unlink while still holding it: a waiter then sees a new file
            with contextlib.suppress(OSError):
                os.unlink(path)
        os.close(fd)                # closing releases the lock


def _acquire(path: Path, run_dir: Path) -> int:
    for _ in range(100):
        fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
        if not _try_lock(fd):
            os.close(fd)
            raise RunDirLocked(run_dir, _wait_for_pid(path))
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:                # the previous holder unlinked it between our open and our lock
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd
    raise RunDirError(f"cannot lock {path}: it keeps being replaced")


def _wait_for_pid(path: Path) -> int | None:
    """The holder writes its PID just after locking; give it a moment to appear."""
    import time  # noqa: PLC0415
    for _ in range(20):
        pid = _read_pid(path)
        if pid:
            return pid
        time.sleep(0.01)
    return None


def check_output_dir(out, owned, marker: str, fmt: str, what: str, error=ValueError) -> list[str]:
    """Refuse (with `error`) an export's output directory `out` unless it is absent, empty, or an earlier
    export of the same kind: its `marker` JSON file says `"format": fmt` and `owned(name)` accepts every
    file in it. A file or a dangling link is refused too, so an export never writes over a user's files.

    Args:
        out: the directory the export is to write.
        owned: `owned(name) -> bool`, whether an export of this kind writes a file of that name.
        marker: the JSON file, among those, that names the format.
        fmt: the format it must name.
        what: the export's name for the message ("a PyTorch export").
        error: the exception class raised.

    Returns:
        The names of the earlier export's files (empty for a new or empty directory).

    Raises:
        error: `out` is a file, a dangling link, or a directory holding anything else.
    """
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise error(f"{out} is a symbolic link to {os.readlink(out)}, which does not exist; choose another --out")
    if out.exists() and not out.is_dir():
        raise error(f"{out} is a file, not a directory; choose another --out")
    if not out.exists():
        return []
    names = sorted(n for n in os.listdir(out) if not n.startswith(TMP_PREFIX))
    if not names:
        return []
    try:
        ours = json.loads((out / marker).read_text(encoding="utf-8")).get("format") == fmt
    except (OSError, ValueError, AttributeError):
        ours = False
    other = [n for n in names if not owned(n)]
    if not ours or other:
        shown = ", ".join((other or names)[:5]) + (" ..." if len(other or names) > 5 else "")
        raise error(f"{out} holds files {what} did not write ({shown}); it is only written into an empty "
                    "directory or over an earlier export of the same kind: choose another --out")
    return names
