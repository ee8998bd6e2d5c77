"""`train` with more than one process: `--procs N` starts `mpiexec` for the user, and each rank that
mpiexec starts sets up its share of the job here (see `training.distributed`).

Rank 0 owns the run directory: it checks and locks it, reads the checkpoint to resume and sends it to
the other ranks (which may run on machines that do not see the directory), writes everything and
speaks for the job. Every setup step is agreed: a rank that cannot read its data, build the model or
read the run stops every rank, with that rank's error. An error only one rank meets while training
ends the whole job at once (MPI_Abort), so no rank waits forever for a reduction that never comes.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .base import PROG, UsageError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""BLAS thread counts `--procs N` sets for its ranks (cores / N each) unless the caller set them."""


# ---------------------------------------------------------------- --procs N
def find_mpiexec() -> str:
    """The mpiexec beside this Python (the `mpi` extra's MPICH wheel installs it into the
    environment's bin), else the first on PATH; UsageError with the install command if none."""
    here = Path(sys.executable).parent
    for name in ("mpiexec", "mpiexec.exe", "mpirun"):
        if (here / name).is_file() and os.access(here / name, os.X_OK):
            return str(here / name)
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found is None:
        raise UsageError("--procs needs MPI's mpiexec and finds none beside this Python or on PATH: pip install "
                         "'tinygrad-s2s[mpi]' (mpi4py and MPICH, no system package needed), or install a system "
                         "Open MPI or MPICH")
    return found


def launch_command(procs: int, argv: list[str], mpiexec: str | None = None) -> list[str]:
    """The mpiexec command line that runs `tinygrad-s2s ARGV` as `procs` ranks on this machine
    (more ranks than cores allowed: Open MPI is told so, MPICH allows it by default)."""
    mpiexec = mpiexec or find_mpiexec()
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    extra = ["--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []
    return [mpiexec, "-n", str(procs), *extra, sys.executable, "-m", "tinygrad_s2s", *argv]


def without_procs(argv: list[str]) -> list[str]:
    """`argv` less its --procs option (the ranks must not launch again)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--procs":
            skip = True
        elif not a.startswith("--procs="):
            out.append(a)
    return out


def launch(procs: int, argv: list[str]) -> int:
    """Replace this process by mpiexec running `procs` ranks of `tinygrad-s2s ARGV` (so Ctrl-C and
    SIGTERM reach mpiexec, which hands them to every rank); each rank gets cores / procs BLAS threads
    unless the environment sets them."""
    from ..training import distributed  # noqa: PLC0415
    if distributed.launched_by_mpi():
        raise UsageError("--procs starts mpiexec itself; under mpiexec (or srun) leave it out")
    cmd = launch_command(procs, without_procs(argv))
    env = dict(os.environ)
    for var in THREAD_VARIABLES:
        env.setdefault(var, str(max(1, (os.cpu_count() or 1) // procs)))
    sys.stdout.flush()
    sys.stderr.flush()
    if not hasattr(os, "execve") or os.name == "nt":
        return subprocess.call(cmd, env=env)
    os.execve(cmd[0], cmd, env)
    return 1     # not reached


# ---------------------------------------------------------------- a rank's setup
def new_trainer(args, log, comm, make, stack: contextlib.ExitStack):
    """Every rank builds its Trainer (`make()`, agreed); rank 0 then locks the run directory (agreed)."""
    from ..training import rundir  # noqa: PLC0415
    trainer = comm.agreed(make)

    def lock():
        if comm.is_root:
            stack.enter_context(rundir.locked(trainer.run_dir))
            if args.overwrite:
                rundir.check_new_run(trainer.run_dir, overwrite=True)
                rundir.clear_run(trainer.run_dir)
    comm.agreed(lock)
    return trainer


def resume_trainer(args, log, comm, check_dir, make, stack: contextlib.ExitStack):
    """Rank 0 checks and locks --out and sends its config and checkpoint to every rank; each rank
    then resumes from them (`make(run_dir)` on rank 0, a private copy elsewhere)."""
    from .. import serialization  # noqa: PLC0415
    from ..training import rundir  # noqa: PLC0415
    from ..training.runfiles import BEST, CONFIG, LAST  # noqa: PLC0415

    def read():
        if not comm.is_root:
            return None
        run_dir = check_dir(args)
        stack.enter_context(rundir.locked(run_dir, create=False))
        names = [CONFIG, LAST if (run_dir / LAST).is_file() else BEST]
        return run_dir, {n: (run_dir / n).read_bytes() for n in names if (run_dir / n).is_file()}
    got = comm.bcast(comm.agreed(read))
    run_dir, files = got
    if not comm.is_root:
        copy = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tinygrad-s2s-rank-")))
        for name, data in files.items():
            serialization.write_bytes(copy / name, data)
        run_dir = copy
    return comm.agreed(lambda: make(run_dir))


def train(args, comm, new, resume, fit) -> int:
    """One rank of `mpiexec -n N tinygrad-s2s train ...`: set up (every step agreed, so every rank
    returns from an error there), then train; an error or Ctrl-C this rank alone meets ends the
    whole job at once (the others would wait for it forever)."""
    from ..training.distributed import JobError  # noqa: PLC0415
    log = sys.stderr if args.json else sys.stdout
    with contextlib.ExitStack() as stack:
        try:
            trainer = resume(args, log, comm, stack) if args.resume else new(args, log, comm, stack)
        except JobError:
            if comm.is_root:
                raise           # rank 0 reports another rank's failure for the job
            return 1
        except Exception as exc:
            if comm.is_root:
                raise           # reported (and exit code chosen) as in one process
            print(f"{PROG} train: error: rank {comm.rank} of {comm.size}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            comm.abort(130)
        try:
            return fit(args, trainer, args.epochs or trainer.config.epochs, log)
        except JobError:       # raised by every rank at the same step
            if comm.is_root:
                raise
            return 1
        except (Exception, KeyboardInterrupt) as exc:
            print(f"{PROG}: error: rank {comm.rank} of {comm.size}: {type(exc).__name__}: {exc}", file=sys.stderr)
            comm.abort(1)
            return 1
