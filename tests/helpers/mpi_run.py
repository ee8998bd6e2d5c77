"""Starting MPI jobs from tests: `mpiexec -n N` of this Python, with a timeout so that nothing hangs.

Where the `mpi` extra is required (CI's .ci/extras), a missing mpi4py or mpiexec fails the test; elsewhere
it is skipped with the install command (see extras.need).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from extras import need, required
from paths import HELPERS

TIMEOUT = 240       # seconds any one job may take on a busy 2-core machine before the test fails
PRELUDE = (f"import sys; sys.path.insert(0, {str(HELPERS)!r}); import tiny_model; "
           "from tinygrad_s2s.cli import main; sys.exit(main())")
"""`python -c PRELUDE ARGS`: the command line with the tiny test model registered."""


def mpiexec() -> str:
    """The mpiexec `--procs` would use (the mpi extra's, beside this Python); fail or skip if none."""
    need("mpi4py", "mpi")
    from tinygrad_s2s.cli.base import UsageError
    from tinygrad_s2s.cli.ranks import find_mpiexec
    try:
        return find_mpiexec()
    except UsageError as exc:
        if required("mpi"):
            pytest.fail(f"the mpi extra is required here but: {exc}", pytrace=False)
        pytest.skip(str(exc))


def env(**extra) -> dict:
    """One BLAS thread per rank, no debug tracebacks, warnings quiet."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYTHONWARNINGS="ignore", TINYGRAD_S2S_DEBUG="", **extra)


def command(n: int, *args: str, script: str | None = None) -> list[str]:
    """`mpiexec -n N python (script | -c PRELUDE) ARGS` (n=0: this Python alone, no MPI)."""
    py = [sys.executable, script] if script else [sys.executable, "-c", PRELUDE]
    return ([mpiexec(), "-n", str(n)] if n else []) + py + [str(a) for a in args]


def run(n: int, *args, script: str | None = None, cwd=None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """Run `command(n, ...)` to its end (a job still running after `timeout` is killed and fails the test)."""
    cmd = command(n, *args, script=script)
    try:
        return subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd[:6])} ... still running after {timeout} s (a rank hangs?)\n"
                    f"stdout: {exc.stdout}\nstderr: {exc.stderr}")


def popen(n: int, *args, cwd=None) -> subprocess.Popen:
    """Start the job in its own process group (so a test can signal or kill just it)."""
    return subprocess.Popen(command(n, *args), cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for_checkpoint(proc: subprocess.Popen, run_dir) -> None:
    """Wait until the job has written its first last.npz (or ended, or TIMEOUT passed), then a second
    more, so the job is inside its training loop when a test signals or kills it."""
    deadline = time.time() + TIMEOUT
    while not (Path(run_dir) / "last.npz").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)


def ranks_of(proc: subprocess.Popen) -> list[int]:
    """The PIDs of the Python ranks under a running mpiexec (its descendants running Python)."""
    found, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open(f"/proc/{k}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except OSError:
                continue
            (found.append(k) if b"python" in os.path.basename(argv0) else todo.append(k))
    return sorted(found)
