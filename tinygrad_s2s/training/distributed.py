"""Data-parallel training over MPI: what the Trainer asks of "the other processes", in one place.

The Trainer talks to one object, a `Comm`: `SINGLE` (one process: every call is a no-op or the
identity) or an `MPIComm` over mpi4py's COMM_WORLD, which `world()` returns when the process was
started by `mpiexec` (MPICH's, Open MPI's or any launcher setting PMI/PMIx variables). Nothing
imports mpi4py before that, so a plain `train` never loads MPI.

What an MPIComm does for the Trainer, rank r of N:
- `shard(idx)`: its contiguous share of each global batch (sizes differ by at most one; a rank may
  get none when the batch has fewer examples than ranks).
- `stream(seed, step)`: dropout and sampling inside a step draw from a stream of its own, seeded by
  (run seed, step, rank); the main generator (the batch order) advances identically on every rank and
  never depends on N, so a run resumes with another N.
- `reduce_step(...)`: ONE `Allreduce` per step over a flat buffer of every gradient weighted by the
  rank's share of the batch (the loss is a mean over the batch, so sum_r n_r/B * grad_r is exactly the
  gradient of one process with batch B, up to summation order), followed by the loss and the step's
  flags (stop requested, save due) so that every rank stops and saves at the same step.
- `check_same(params, step)`: a digest of the weights compared every `check_every` steps and at every
  checkpoint; ranks that differ stop the job with `RankMismatch` naming the step and the ranks.
- `part(n)` / `gather_rows(rows)`: evaluation decodes a contiguous part of the test set per rank and
  gathers the predictions, so the accuracy is counted over exactly the single-process examples.
- `agreed(fn)`: a setup step (reading the data, building the model, reading a checkpoint) that fails
  on one rank fails on all: that rank raises its own error, the others `RankFailed` naming it.

Device arrays (CuPy) are reduced on the device through NCCL (`cupy.cuda.nccl`) when it is there, else
staged through host memory (any device module with asarray/asnumpy, such as the strict fake device).

Kept whole: `Single` and `MPIComm` are one interface in two forms, the Trainer's only view of the other
processes; each method is documented on both for the reference (Args/Returns/Raises), which is
almost half of the module.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys

import numpy as np

from .. import backend
from ..backend import random
from ..tensor import Tensor

__all__ = ["CHECK_EVERY", "LAUNCHER_VARIABLES", "SINGLE", "JobError", "MPIComm", "RankFailed", "RankMismatch", "Single",
           "launched_by_mpi", "share", "world"]

CHECK_EVERY = 100
"""Steps between two comparisons of the ranks' weights (each checkpoint compares them too)."""

LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
"""Environment variables an MPI launcher sets in each process it starts (MPICH's Hydra: PMI_*, Open MPI
and PMIx launchers such as Slurm's srun: OMPI_*/PMIX_*)."""


class JobError(RuntimeError):
    """An error every rank of the job raises at the same point (rank 0 reports it for all)."""


class RankFailed(JobError):
    """Another rank failed in a step every rank takes together (raised on the ranks that did not fail).

    Args:
        rank: the first rank that failed, kept as `.rank`.
        error: its error as "Type: message", kept as `.error`.
    """

    def __init__(self, rank: int, error: str):
        self.rank, self.error = rank, error
        super().__init__(f"rank {rank} failed: {error}")


class RankMismatch(JobError):
    """The ranks' weights differ: the job's model is no longer one model.

    Args:
        step: the update count at which the digests were compared, kept as `.step`.
        ranks: the ranks whose weights differ from rank 0's, kept as `.ranks`.
    """

    def __init__(self, step: int, ranks: list[int]):
        self.step, self.ranks = step, ranks
        super().__init__(f"at step {step} the weights of rank{'s' if len(ranks) > 1 else ''} "
                         f"{', '.join(map(str, ranks))} differ from rank 0's (every rank must apply the same "
                         "update); the job stops, the last checkpoint before it is intact")


def launched_by_mpi(environ=None) -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun) started this process.

    Args:
        environ: the environment to read (a mapping); None reads `os.environ`.

    Returns:
        True when any of `LAUNCHER_VARIABLES` is set in it.
    """
    env = os.environ if environ is None else environ
    return any(v in env for v in LAUNCHER_VARIABLES)


def share(n: int, rank: int, size: int) -> slice:
    """Rank `rank`'s contiguous part of n items split over `size` ranks.

    Args:
        n: how many items (examples of a batch, test questions).
        rank: the rank, 0 to size - 1.
        size: how many ranks.

    Returns:
        A slice; the slices of ranks 0..size-1 cover range(n) in order, their lengths differing by at
        most one (some empty where n < size).
    """
    return slice(rank * n // size, (rank + 1) * n // size)


class Single:
    """One process: the interface an MPIComm fills, with nothing to communicate."""
    rank, size, is_root, distributed = 0, 1, True, False

    def shard(self, idx):
        """This rank's share of a global batch.

        Args:
            idx: the batch's example indices (a 1-D array).

        Returns:
            `idx` itself: one process trains on the whole batch.
        """
        return idx

    def stream(self, seed: int, step: int):
        """The random stream that dropout and sampling draw from inside one step.

        Args:
            seed: the run's seed.
            step: the update being computed.

        Returns:
            A context manager; here one that changes nothing (the main generator serves).
        """
        return contextlib.nullcontext()

    def reduce_step(self, params, loss: float, n_local: int, n_total: int, *flags: bool) -> tuple:
        """Combine one step's gradients, loss and flags over the ranks.

        Args:
            params: the model's parameters, their `.grad` this rank's gradients.
            loss: this rank's mean loss over its share of the batch.
            n_local: examples in this rank's share.
            n_total: examples in the global batch.
            *flags: per-step booleans (stop requested, save due).

        Returns:
            (the batch's mean loss, each flag true on any rank): here `loss` and the flags as bools;
            the gradients are left as they are.
        """
        return (loss, *(bool(f) for f in flags))

    def check_same(self, params, step: int, force: bool = False) -> None:
        """Check that every rank holds the same weights; nothing to compare in one process.

        Args:
            params: the model's parameters.
            step: the update count (compared every `check_every` steps).
            force: compare whatever the step (at a checkpoint).
        """
        return None

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank.

        Args:
            flag: this rank's value.

        Returns:
            `bool(flag)`.
        """
        return bool(flag)

    def check_data(self, config) -> None:
        """Check that every rank reads the same data file; nothing to compare in one process.

        Args:
            config: the run's TrainConfig (its dataset_path, dataset_size, dataset_sha256).
        """
        return None

    def part(self, n: int) -> slice:
        """This rank's contiguous part of n evaluation examples.

        Args:
            n: how many examples.

        Returns:
            slice(0, n): all of them.
        """
        return slice(0, n)

    def gather_rows(self, rows):
        """Join each rank's rows (its part's predictions) in rank order.

        Args:
            rows: this rank's rows, an array.

        Returns:
            `rows` itself.
        """
        return rows

    def agreed(self, fn):
        """Run a setup step that must succeed on every rank or fail on all.

        Args:
            fn: a callable taking no arguments.

        Returns:
            What `fn()` returns (its error propagates unchanged).
        """
        return fn()

    def bcast(self, obj):
        """Rank 0's `obj` on every rank.

        Args:
            obj: a picklable object (only rank 0's is used).

        Returns:
            `obj` itself.
        """
        return obj

    def abort(self, code: int = 1) -> None:
        """End the job now.

        Args:
            code: the exit status.

        Raises:
            SystemExit: always, with `code`.
        """
        raise SystemExit(code)


SINGLE = Single()


def _message(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class MPIComm(Single):
    """Rank `rank` of `size` processes of one data-parallel job; mpi4py is imported here.

    Args:
        comm: an mpi4py communicator; None takes `MPI.COMM_WORLD`.
        check_every: steps between two comparisons of the ranks' weights (a positive int).

    Raises:
        ValueError: `check_every` is not a positive int.
    """
    distributed = True

    def __init__(self, comm=None, check_every: int = CHECK_EVERY):
        from mpi4py import MPI  # noqa: PLC0415 - only under an MPI launcher
        self._MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_root = self.rank == 0
        if not (isinstance(check_every, int) and check_every > 0):
            raise ValueError(f"check_every must be a positive number of steps, got {check_every!r}")
        self.check_every = check_every
        self._nccl = None
        self.path = None        # how the last reduction went: "MPI", "NCCL" or "host staging"

    # ---- a step
    def shard(self, idx):
        """This rank's contiguous share of a global batch (see `share`).

        Args:
            idx: the batch's example indices (a 1-D array).

        Returns:
            `idx[share(len(idx), rank, size)]`, possibly empty.
        """
        return idx[share(len(idx), self.rank, self.size)]

    @contextlib.contextmanager
    def stream(self, seed: int, step: int):
        """Draw from a generator seeded by (seed, step, rank) inside the block; the main one is restored after.

        Args:
            seed: the run's seed.
            step: the update being computed.

        Yields:
            None, with backend.random switched to this rank's stream for the step.
        """
        main = random.get_state()
        random.set_state(np.random.PCG64(np.random.SeedSequence([seed, step, self.rank])).state)
        try:
            yield
        finally:
            random.set_state(main)

    def reduce_step(self, params, loss: float, n_local: int, n_total: int, *flags: bool) -> tuple:
        """One Allreduce: each gradient becomes sum_r n_r/B * grad_r (the gradient of batch B in one process).

        Args:
            params: the model's parameters, their `.grad` this rank's gradients (None where not reached).
            loss: this rank's mean loss over its share of the batch.
            n_local: examples in this rank's share (may be 0).
            n_total: examples in the global batch (B).
            *flags: per-step booleans (stop requested, save due).

        Returns:
            (the batch's mean loss, each flag true on any rank); each `p.grad` is replaced by the reduced
            gradient, or None where no rank had one.
        """
        grads = [p.grad.data if p.grad is not None else None for p in params]
        some = next((g for g in grads if g is not None), params[0].data)
        xp = backend.get_array_module(some)
        dtype = np.result_type(*[p.data.dtype for p in params])
        weight = n_local / n_total
        parts = [(g if g is not None else xp.zeros(p.shape, dtype=dtype)).reshape(-1) for g, p in zip(grads, params)]
        # after the gradients: the loss, the flags, and per parameter whether this rank has a gradient for it
        # (a parameter no rank's loss reached keeps grad None, as in one process)
        head = [loss * weight if n_local else 0.0, *(float(bool(f)) for f in flags)]
        tail = xp.asarray(np.array(head + [float(g is not None) for g in grads], dtype))
        buf = xp.concatenate([*parts, tail]).astype(dtype, copy=False)
        size = buf.shape[0] - tail.shape[0]
        buf[:size] *= weight
        buf = self._allreduce(buf, xp)
        tail = backend.to_numpy(buf[size:])
        offset = 0
        for p, has in zip(params, tail[len(head):]):
            p.grad = Tensor(buf[offset:offset + p.size].reshape(p.shape)) if has > 0 else None
            offset += p.size
        return (float(tail[0]), *(bool(v > 0) for v in tail[1:len(head)]))

    def _allreduce(self, buf, xp):
        """Sum `buf` over the ranks: in place through MPI for host arrays, NCCL for CuPy's, host staging
        for any other device module."""
        if xp is np:
            self.path = "MPI"
            self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
            return buf
        nccl = self._nccl_comm(xp)
        self.path = "NCCL" if nccl is not None else "host staging"
        if nccl is not None:
            from cupy.cuda import nccl as nccl_mod  # noqa: PLC0415 - only with CuPy and NCCL
            kind = {np.dtype(np.float32): nccl_mod.NCCL_FLOAT32, np.dtype(np.float64): nccl_mod.NCCL_FLOAT64}
            stream = xp.cuda.get_current_stream()
            nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, kind[np.dtype(buf.dtype)], nccl_mod.NCCL_SUM,
                           stream.ptr)
            stream.synchronize()
            return buf
        host = np.ascontiguousarray(xp.asnumpy(buf))
        self.comm.Allreduce(self._MPI.IN_PLACE, host, op=self._MPI.SUM)
        return xp.asarray(host)

    def _nccl_comm(self, xp):
        """A NCCL communicator over the same ranks (made once; the id travels by MPI), or None where
        `xp` is not CuPy, CuPy has no NCCL, or two ranks share a GPU (NCCL refuses that)."""
        if self._nccl is None:
            try:
                import cupy  # noqa: PLC0415
                from cupy.cuda import nccl  # noqa: PLC0415
                usable = xp is cupy and nccl.available
                gpu = cupy.cuda.Device().pci_bus_id if usable else None
            except ImportError:
                usable, gpu = False, None
            gpus = self.comm.allgather(gpu)
            usable = usable and len(set(gpus)) == len(gpus)
            uid = nccl.get_unique_id() if usable and self.is_root else None
            usable = self.comm.allreduce(int(usable), op=self._MPI.MIN) == 1   # all ranks or none
            if usable:
                self._nccl = nccl.NcclCommunicator(self.size, self.comm.bcast(uid, root=0), self.rank)
            else:
                self._nccl = False
        return self._nccl or None

    # ---- agreement
    def check_same(self, params, step: int, force: bool = False) -> None:
        """Compare a digest of every rank's weights, every `check_every` steps or when forced.

        Args:
            params: the model's parameters.
            step: the update count; compared when a multiple of `check_every`.
            force: compare whatever the step (at a checkpoint).

        Raises:
            RankMismatch: some rank's weights differ from rank 0's (on every rank).
        """
        if not force and step % self.check_every:
            return
        digest = hashlib.blake2b(digest_size=16)
        for p in params:
            digest.update(np.ascontiguousarray(backend.to_numpy(p.data)).tobytes())
        digests = self.comm.allgather(digest.digest())
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise RankMismatch(step, differ)

    def check_data(self, config) -> None:
        """Every rank's data file must be rank 0's (size and SHA-256 of its own copy).

        Args:
            config: the run's TrainConfig (its dataset_path, dataset_size, dataset_sha256).

        Raises:
            JobError: on every rank, naming the first rank whose file differs and both files.
        """
        mine = (getattr(config, "dataset_size", None), getattr(config, "dataset_sha256", None))
        theirs = self.comm.allgather((mine, getattr(config, "dataset_path", None)))
        differ = [r for r, (fp, _) in enumerate(theirs) if fp != theirs[0][0]]
        if differ:
            r = differ[0]
            raise JobError(f"rank {r}'s data file {theirs[r][1]} ({theirs[r][0][0]} bytes, SHA-256 "
                             f"{str(theirs[r][0][1])[:12]}...) is not rank 0's {theirs[0][1]} ({theirs[0][0][0]} "
                             f"bytes, SHA-256 {str(theirs[0][0][1])[:12]}...); every rank must read the same data")

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank (a collective: every rank must call it).

        Args:
            flag: this rank's value.

        Returns:
            The same bool on every rank.
        """
        return bool(self.comm.allreduce(int(bool(flag)), op=self._MPI.MAX))

    def part(self, n: int) -> slice:
        """This rank's contiguous part of n evaluation examples.

        Args:
            n: how many examples.

        Returns:
            `share(n, rank, size)`.
        """
        return share(n, self.rank, self.size)

    def gather_rows(self, rows):
        """Join every rank's rows in rank order, so the parts of `part` become the whole again.

        Args:
            rows: this rank's rows (a host or device array; the first axis is joined).

        Returns:
            A NumPy array of all ranks' rows, the same on every rank.
        """
        return np.concatenate(self.comm.allgather(backend.to_numpy(rows)))

    def agreed(self, fn):
        """fn() on every rank; if it raised on any, every rank raises.

        Args:
            fn: a callable taking no arguments (reading the data, building the model...).

        Returns:
            What `fn()` returned on this rank, when it succeeded on every rank.

        Raises:
            RankFailed: on the ranks where `fn` succeeded, naming the first rank that failed; a rank
                where it failed re-raises its own error.
        """
        try:
            result, error = fn(), None
        except Exception as exc:    # noqa: BLE001 - handed on below, to every rank
            result, error = None, exc
        errors = self.comm.allgather(None if error is None else _message(error))
        if error is not None:
            raise error
        failed = next((r for r, e in enumerate(errors) if e is not None), None)
        if failed is not None:
            raise RankFailed(failed, errors[failed])
        return result

    def bcast(self, obj):
        """Rank 0's `obj` on every rank (a collective).

        Args:
            obj: a picklable object; only rank 0's is sent.

        Returns:
            Rank 0's object.
        """
        return self.comm.bcast(obj, root=0)

    def abort(self, code: int = 1) -> None:
        """End every rank now (an error only this rank saw: the others would wait for it forever).

        Args:
            code: the exit status given to `MPI_Abort`.
        """
        sys.stderr.flush()
        self.comm.Abort(code)


def world(check_every: int = CHECK_EVERY) -> Single:
    """The processes of this job, as the Trainer talks to them.

    Args:
        check_every: steps between two comparisons of the ranks' weights (for an MPIComm).

    Returns:
        SINGLE, or an MPIComm over COMM_WORLD when an MPI launcher started this process.

    Raises:
        ImportError: started by a launcher but mpi4py cannot be imported (the message gives the
            install command).
    """
    if not launched_by_mpi():
        return SINGLE
    try:
        return MPIComm(check_every=check_every)
    except ImportError as exc:
        found = next(v for v in LAUNCHER_VARIABLES if v in os.environ)
        raise ImportError(f"started by an MPI launcher ({found} is set) but mpi4py cannot be imported ({exc}); "
                          "install it with pip install 'tinygrad-s2s[mpi]'") from None
