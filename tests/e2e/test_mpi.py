"""Data-parallel training through MPI (the `mpi` extra), each job started as `mpiexec -n N` with a
timeout: N ranks give one process's parameters, ranks that drift apart are caught, setup errors and
signals stop every rank, runs resume at any N, evaluation splits the test set exactly."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.data import generators as datagen

import mpi_run
from mpi_run import run
from paths import HELPERS

pytestmark = pytest.mark.extras

TRAIN = HELPERS / "mpi_train.py"
TINY = ("--hidden", "8", "--wordvec", "4", "--batch-size", "8", "--test-limit", "24", "--no-progress")


@pytest.fixture
def data(tmp_path):
    return datagen.write_task("addition", tmp_path / "add.txt", n=300, seed=5)


def params(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if not k.startswith("__")}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def trained(tmp_path, data, n, name, *options):
    result = tmp_path / f"{name}.npz"
    proc = run(n, "--data", data, "--result", result, *options, script=str(TRAIN))
    assert proc.returncode == 0, proc.stderr
    return result


@pytest.mark.numerics     # N ranks against one process within the tolerance under every kernel family
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_two_ranks_give_the_parameters_of_one_process(tmp_path, data, dtype, tol):
    """20 Adam steps with every step's gradient clipped (a small --max-grad), batch 8 = 2 x 4."""
    one = trained(tmp_path, data, 0, "one", "--dtype", dtype)
    two = trained(tmp_path, data, 2, "two", "--dtype", dtype)
    with np.load(one) as a, np.load(two) as b:
        assert int(a["__step__"]) == int(b["__step__"]) == 20 and int(b["__size__"]) == 2
        loss_one, loss_two = (json.loads(str(z["__history__"]))[0]["train_loss"] for z in (a, b))
    assert max_diff(params(one), params(two)) <= tol
    assert loss_two == pytest.approx(loss_one, rel=tol)


def test_uneven_shards_are_weighted_by_their_size(tmp_path, data):
    """Batch 7 over 3 ranks (3+2+2) and a last batch of 3 (1+1+1); batch 2 over 3 ranks (one rank empty)."""
    for batch, limit in ((7, 45), (2, 9)):
        one = trained(tmp_path, data, 0, f"one{batch}", "--dtype", "float64", "--batch-size", batch, "--limit", limit)
        three = trained(tmp_path, data, 3, f"three{batch}", "--dtype", "float64", "--batch-size", batch,
                        "--limit", limit)
        assert max_diff(params(one), params(three)) <= 1e-12


def test_device_arrays_are_reduced_on_the_strict_fake_device(tmp_path, data):
    one = trained(tmp_path, data, 0, "one", "--dtype", "float64")
    fake = trained(tmp_path, data, 2, "fake", "--dtype", "float64", "--device", "fake")
    assert max_diff(params(one), params(fake)) <= 1e-12


def test_a_rank_whose_weights_drift_stops_the_job_naming_step_and_rank(tmp_path, data):
    proc = run(2, "--data", data, "--result", tmp_path / "x.npz", "--check-every", "2", "--perturb-rank", "1",
               "--perturb-step", "3", script=str(TRAIN))
    assert proc.returncode != 0
    assert "at step 4 the weights of rank 1 differ from rank 0's" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.numerics     # bit-for-bit at the same N under every kernel family
def test_train_resume_at_another_n_and_at_the_same_n(tmp_path, data):
    args = ("train", "tiny-s2s", "--dataset", data, *TINY)
    assert run(0, *args, "--epochs", "2", "--out", tmp_path / "one").returncode == 0
    first = run(2, *args, "--epochs", "1", "--out", tmp_path / "two")
    assert first.returncode == 0, first.stderr
    assert "2 ranks" in first.stdout and first.stdout.count("epoch 1/1") == 1, first.stdout   # rank 0 speaks
    for n, out in ((3, "other"), (2, "same")):
        (tmp_path / out).mkdir()
        for f in ("config.json", "last.npz", "best.npz", "metrics.csv"):
            (tmp_path / out / f).write_bytes((tmp_path / "two" / f).read_bytes())
        proc = run(n, "train", "--resume", "--out", tmp_path / out, "--epochs", "2", "--no-progress")
        assert proc.returncode == 0, proc.stderr
    straight = run(2, *args, "--epochs", "2", "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    one, other, same, whole = (tg.load(tmp_path / d / "last.npz") for d in ("one", "other", "same", "straight"))
    assert max_diff(one, other) <= 1e-5 and max_diff(one, same) <= 1e-5
    assert all(np.array_equal(same[k], whole[k]) for k in whole)      # same N, same machine: bit for bit


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_to_mpiexec_saves_once_and_stops_every_rank(tmp_path, data, sig):
    out = tmp_path / "run"
    proc = mpi_run.popen(2, "train", "tiny-s2s", "--dataset", data, *TINY, "--epochs", "1000", "--save-every", "1000",
                         "--out", out)
    try:
        mpi_run.wait_for_checkpoint(proc, out)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=mpi_run.TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert stderr.count("interrupted at epoch") == 1 and stderr.count("stopping after this step") == 1, stderr
    meta = tg.load(out / "last.npz", return_meta=True)[1]
    assert meta.get("interrupted") is True and meta["step"] > 0
    resumed = run(2, "train", "--resume", "--out", out, "--epochs", str(meta["epoch"] + 1), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr


def test_kill_9_of_a_rank_ends_the_job_and_keeps_the_last_checkpoint(tmp_path, data):
    out = tmp_path / "run"
    proc = mpi_run.popen(2, "train", "tiny-s2s", "--dataset", data, *TINY, "--epochs", "1000", "--save-every", "0.2",
                         "--out", out)
    try:
        mpi_run.wait_for_checkpoint(proc, out)
        ranks = mpi_run.ranks_of(proc)
        assert len(ranks) == 2, ranks
        os.kill(ranks[-1], signal.SIGKILL)
        proc.communicate(timeout=60)        # bounded: mpiexec ends the other rank
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    weights, meta = tg.load(out / "last.npz", return_meta=True)
    assert meta["step"] >= 0 and weights
    resumed = run(2, "train", "--resume", "--out", out, "--epochs", str(meta["epoch"] + 1), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr


def test_a_rank_that_cannot_read_the_data_stops_every_rank_with_its_error(tmp_path, data):
    """MPMD: rank 1 starts in a folder without add.txt; then in one whose add.txt differs."""
    other = tmp_path / "other"
    other.mkdir()
    args = ["-c", mpi_run.PRELUDE, "train", "tiny-s2s", "--dataset", "add.txt", *TINY, "--epochs", "1",
            "--out", str(tmp_path / "run")]
    py = mpi_run.command(0)[0]
    for case in ("missing", "differs"):
        if case == "differs":
            datagen.write_task("addition", other / "add.txt", n=300, seed=6)
        cmd = [mpi_run.mpiexec(), "-n", "1", "-wdir", str(tmp_path), py, *args, ":",
               "-n", "1", "-wdir", str(other), py, *args]
        proc = subprocess.run(cmd, env=mpi_run.env(), capture_output=True, text=True, timeout=mpi_run.TIMEOUT)
        assert proc.returncode != 0
        want = "rank 1 failed" if case == "missing" else "rank 1's data file"
        assert want in proc.stderr, proc.stderr
        assert not (tmp_path / "run" / "last.npz").exists()


def test_eval_splits_the_test_set_and_counts_exactly(tmp_path, data):
    out = tmp_path / "run"
    assert run(0, "train", "tiny-s2s", "--dataset", data, *TINY, "--epochs", "1", "--out", out).returncode == 0
    one, two = (run(n, "eval", out, "--split", "all", "--show", "300", "--json") for n in (0, 2))
    assert one.returncode == two.returncode == 0, two.stderr
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert a["examples"] == b["examples"] == 300 and a["correct"] == b["correct"]
    assert a["predictions"] == b["predictions"]


def test_procs_launches_mpiexec(tmp_path, data):
    """--procs N with a zoo model (the ranks are `python -m tinygrad_s2s`: the tiny test model is not there)."""
    mpi_run.mpiexec()           # skipped (or failed where required) without the mpi extra
    out = tmp_path / "run"
    proc = run(0, "train", "attention", "--dataset", data, *TINY, "--epochs", "1", "--limit", "64", "--procs", "2",
               "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "2 ranks" in proc.stdout and (out / "last.npz").is_file()


def test_scaling_benchmark_runs_its_jobs_and_writes_both_tables(tmp_path):
    from paths import REPO_ROOT
    mpi_run.mpiexec()
    page = tmp_path / "scaling.md"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--procs", "1", "2", "--quick", "--no-torch",
                           "--models", "peeky", "--write", page], cwd=REPO_ROOT, env=mpi_run.env(),
                          capture_output=True, text=True, timeout=mpi_run.TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in ("2 ranks (mpiexec, 1 thread each)", "1 process, default threads (no MPI)", "commit ", "BLAS: ",
                 "Written model: ring allreduce", "100 Gbit/s"):
        assert line in out, out
    written = page.read_text()
    assert written.startswith("# Scaling over MPI\n\n## Measured\n\nCPU: ") and "--quick: smoke run" in written
    assert "### Training examples per second" in written and "| 2 ranks (mpiexec, 1 thread each) | " in written
    assert "### Written model: ring allreduce" in written and "| attention | " in written


def test_a_nan_loss_on_the_ranks_stops_every_rank_at_the_same_step(tmp_path, data):
    proc = run(2, "train", "tiny-s2s-nan", "--dataset", data, *TINY, "--epochs", "1", "--out", tmp_path / "run")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("training stopped: the loss is nan at step 2") == 1, proc.stderr
    assert tg.load(tmp_path / "run" / "last.npz", return_meta=True)[1]["step"] == 0


@pytest.mark.numerics     # bit-for-bit at the same N under every kernel family
def test_dropout_draws_per_rank_streams_and_a_resume_at_the_same_n_is_exact(tmp_path, data):
    """deep_lstm with dropout: the ranks' masks differ (their own streams) yet their weights stay one
    model (the digest check at every checkpoint passes), and 1 epoch + resume equals 2 epochs straight."""
    mpi_run.mpiexec()
    args = ("train", "deep_lstm", "--dataset", data, *TINY, "--model-arg", "layers=2", "--model-arg", "dropout=0.3",
            "--limit", "64")
    straight = run(2, *args, "--epochs", "2", "--out", tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    first = run(2, *args, "--epochs", "1", "--out", tmp_path / "split")
    assert first.returncode == 0, first.stderr
    resumed = run(2, "train", "--resume", "--out", tmp_path / "split", "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    a, b = tg.load(tmp_path / "straight" / "last.npz"), tg.load(tmp_path / "split" / "last.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
