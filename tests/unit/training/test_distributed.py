"""The single-process side of data-parallel training (no MPI needed): a plain run never loads MPI,
how a batch is shared out, how `--procs` builds its mpiexec command, and the errors on the way."""
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_s2s.cli import main
from tinygrad_s2s.cli import ranks
from tinygrad_s2s.cli.base import UsageError
from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.training import distributed
from tinygrad_s2s.training.stops import _StopFlag

from paths import HELPERS


def test_a_plain_train_never_imports_mpi(tmp_path):
    datagen.write_task("addition", tmp_path / "add.txt", n=60, seed=5)
    code = (f"import sys; sys.path.insert(0, {str(HELPERS)!r}); import tiny_model; from tinygrad_s2s.cli import main; "
            "rc = main(['train', 'tiny-s2s', '--dataset', 'add.txt', '--hidden', '4', '--wordvec', '2', '--epochs', "
            "'1', '--test-limit', '8', '--no-progress', '--out', 'run']); "
            "assert rc == 0, rc; assert 'mpi4py' not in sys.modules, 'mpi4py imported'; print('no mpi')")
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCHER_VARIABLES}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "no mpi" in proc.stdout, proc.stderr


def test_world_is_one_process_unless_a_launcher_started_it(monkeypatch):
    for var in distributed.LAUNCHER_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    assert distributed.world() is distributed.SINGLE and not distributed.launched_by_mpi()
    assert distributed.launched_by_mpi({"PMI_SIZE": "2"}) and distributed.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "4"})


def test_under_a_launcher_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)      # import mpi4py raises ImportError
    with pytest.raises(ImportError, match=r"PMI_SIZE is set.*pip install 'tinygrad-s2s\[mpi\]'"):
        distributed.world()


@given(n=st.integers(0, 300), size=st.integers(1, 64))
def test_shares_cover_every_item_once_in_order_and_differ_by_at_most_one(n, size):
    parts = [distributed.share(n, r, size) for r in range(size)]
    items = [i for p in parts for i in range(n)[p]]
    assert items == list(range(n))
    lengths = [len(range(n)[p]) for p in parts]
    assert max(lengths) - min(lengths) <= 1


def test_one_process_communicates_nothing():
    one = distributed.SINGLE
    assert (one.rank, one.size, one.is_root, one.distributed) == (0, 1, True, False)
    assert one.shard([3, 1, 2]) == [3, 1, 2] and one.part(7) == slice(0, 7)
    assert one.reduce_step([], 1.5, 4, 4, True, False) == (1.5, True, False)
    assert one.agreed(lambda: 5) == 5 and one.bcast("x") == "x" and one.any(False) is False


def test_job_errors_name_the_rank_and_the_step():
    assert "rank 3 failed: FileNotFoundError: add.txt" in str(distributed.RankFailed(3, "FileNotFoundError: add.txt"))
    msg = str(distributed.RankMismatch(40, [1, 2]))
    assert "at step 40 the weights of ranks 1, 2 differ from rank 0's" in msg


def test_procs_is_taken_out_of_the_ranks_command_line():
    assert ranks.without_procs(["train", "x", "--procs", "2", "--lr", "1"]) == ["train", "x", "--lr", "1"]
    assert ranks.without_procs(["train", "--procs=4", "x"]) == ["train", "x"]


def test_the_launch_command_oversubscribes_open_mpi_only(tmp_path):
    for name, version in (("ompi", "mpirun (Open MPI) 5.0.11"), ("mpich", "HYDRA build details:")):
        fake = tmp_path / name
        fake.write_text(f"#!/bin/sh\necho '{version}'\n")
        fake.chmod(0o755)
        cmd = ranks.launch_command(3, ["train", "attention"], mpiexec=str(fake))
        assert cmd[:3] == [str(fake), "-n", "3"] and cmd[-4:] == ["-m", "tinygrad_s2s", "train", "attention"]
        assert ("--oversubscribe" in cmd) == (name == "ompi")


def test_procs_without_any_mpiexec_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match=r"pip install 'tinygrad-s2s\[mpi\]'"):
        ranks.find_mpiexec()


def test_procs_under_mpiexec_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("PMI_SIZE", "2")
    assert main(["train", "tiny-s2s", "--procs", "2"]) == 2
    assert "--procs starts mpiexec itself" in capsys.readouterr().err


def test_ranks_ignore_a_second_signal_they_stop_together(capsys):
    flag = _StopFlag(at_once=False, announce=False)
    flag.handler(signal.SIGINT, None)
    flag.handler(signal.SIGINT, None)          # alone this would raise KeyboardInterrupt
    assert flag.requested and flag.signum == signal.SIGINT and capsys.readouterr().err == ""
