"""`compare` and `train --log` through the command line, in subprocesses as a user meets them: the
figure and table of several runs, a run another process is training, runs of different tasks
refused; TensorBoard and MLflow holding every step and epoch once after kill -9 and --resume; a
tracker that fails is one warning line (or, with --log-strict, the error)."""
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.training.runfiles import read_metrics

from extras import need
from paths import HELPERS
from tiny_runs import fake_run

PRELUDE = (f"import sys; sys.path.insert(0, {str(HELPERS)!r}); import crash; "
           "from tinygrad_s2s.cli import main; sys.exit(main())")
TRAIN = ["train", "tiny-s2s", "--dataset", "data/add.txt", "--hidden", "8", "--wordvec", "4", "--batch-size", "64",
         "--epochs", "3", "--test-limit", "40", "--no-progress", "--save-every", "0"]


def cli(work, *args, **env):
    e = dict(os.environ, TINYGRAD_S2S_DATA=str(work / "datasets"), PYTHONWARNINGS="ignore", PYTHONIOENCODING="utf-8",
             TINYGRAD_S2S_DEBUG="", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **{k: str(v) for k, v in env.items()})
    return subprocess.run([sys.executable, "-c", PRELUDE, *args], cwd=work, env=e, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("tracking")
    datagen.write_task("addition", work / "data" / "add.txt", n=400, seed=5)    # 360 training: 6 batches
    return work


# ---------------------------------------------------------------- compare
def test_compare_draws_and_tabulates_runs(tmp_path):
    from matplotlib import image
    a = fake_run(tmp_path, "baseline", [0.01, 0.05, 0.1], reverse=False)
    b = fake_run(tmp_path, "reversed", [0.1, 0.5, 0.6], reverse=True)
    r = cli(tmp_path, "compare", "baseline", "reversed", "--out", "fig/cmp.png")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "input as written" in lines[1] and "10.00% (epoch 3)" in lines[1]
    assert "reversed input" in lines[2] and "60.00% (epoch 3)" in lines[2] and lines[-1] == "figure: fig/cmp.png"
    pixels = image.imread(tmp_path / "fig" / "cmp.png")
    assert pixels.shape[2] in (3, 4) and pixels[..., :3].std() > 0.05       # drawn, not blank
    r = cli(tmp_path, "compare", str(a), str(b), "--json", "--out", "fig/cmp.svg")
    out = json.loads(r.stdout)
    assert [x["label"] for x in out["runs"]] == ["input as written", "reversed input"]
    assert [x["final_accuracy"] for x in out["runs"]] == [0.1, 0.6] and out["figure"] == "fig/cmp.svg"
    assert (tmp_path / "fig" / "cmp.svg").read_text().lstrip().startswith("<?xml")


def test_compare_refuses_runs_of_different_tasks(tmp_path):
    fake_run(tmp_path, "a", [0.1])
    fake_run(tmp_path, "d", [0.1], dataset="date", sha="b" * 64)
    r = cli(tmp_path, "compare", "a", "d")
    assert r.returncode == 2 and not r.stdout
    assert r.stderr.count("\n") == 1 and "runs of different tasks cannot be compared" in r.stderr
    assert not (tmp_path / "graphviz_out").exists()


def test_compare_draws_a_run_still_training_to_its_last_epoch(tmp_path):
    run = fake_run(tmp_path, "busy", [0.1, 0.2], epochs=10)
    fake_run(tmp_path, "done", [0.3, 0.4, 0.5], reverse=True)
    hold = subprocess.Popen([sys.executable, "-c", "import sys, time; from tinygrad_s2s.training import rundir\n"
                             f"with rundir.locked({str(run)!r}):\n print('held', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == "held"
        out = json.loads(cli(tmp_path, "compare", "busy", "done", "--json").stdout)
        busy = out["runs"][0]
        assert (busy["state"], busy["epochs"], busy["planned_epochs"]) == ("training", 2, 10)
        assert [h["epoch"] for h in busy["history"]] == [1, 2]
    finally:
        hold.kill()
        hold.wait()


# ---------------------------------------------------------------- train --log
def tensorboard_steps(run):
    ea_mod = need("tensorboard.backend.event_processing.event_accumulator", "tracking")
    ea = ea_mod.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    ea.Reload()
    return ea


@pytest.mark.extras
def test_kill_9_between_logging_an_epoch_and_its_checkpoint_then_resume(work):
    """Writes: 1 config.json, 2 last.npz (step 0), 3 mlflow.json, then epoch 1's best.npz, metrics.csv,
    curve and 7 last.npz: killed in the middle of write 7, TensorBoard and MLflow hold epoch 1, the run
    directory does not; `train --resume` (no --log: the backends the run used) trains it again, and
    both trackers end with every step and epoch once, equal to metrics.csv."""
    need("mlflow", "tracking")
    r = cli(work, *TRAIN, "--out", "killed", "--log", "tensorboard", "--log", "mlflow", TG_KILL_WRITE=7)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (work / "killed" / "metrics.csv").exists() or len(read_metrics(work / "killed")) == 1
    r = cli(work, "train", "--resume", "--out", "killed", "--no-progress")
    assert r.returncode == 0, r.stderr
    rows = read_metrics(work / "killed")
    assert [x["epoch"] for x in rows] == [1, 2, 3]
    ea = tensorboard_steps(work / "killed")
    assert [e.step for e in ea.Scalars("step/loss")] == list(range(1, 19))
    loader = need("tensorboard.backend.event_processing.event_file_loader", "tracking")
    raw = sorted(e.step for f in (work / "killed" / "tensorboard").iterdir()
                 for e in loader.EventFileLoader(str(f)).Load() for v in e.summary.value if v.tag == "step/loss")
    assert raw == list(range(1, 19))      # the dead process's steps were cut from its file, not only hidden
    assert [(e.step, e.value) for e in ea.Scalars("epoch/test_accuracy")] == [
        (x["step"], pytest.approx(x["test_accuracy"])) for x in rows]
    stored = json.loads((work / "killed" / "mlflow.json").read_text())
    client = need("mlflow.tracking", "tracking").MlflowClient(tracking_uri=stored["tracking_uri"])
    history = sorted(client.get_metric_history(stored["run_id"], "test_accuracy"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(x["epoch"], pytest.approx(x["test_accuracy"])) for x in rows]
    assert client.get_run(stored["run_id"]).info.status == "FINISHED"


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.extras
def test_an_unreachable_tracking_server_is_one_warning_line(work):
    need("mlflow", "tracking")
    uri = f"http://127.0.0.1:{closed_port()}"
    r = cli(work, *TRAIN, "--epochs", "1", "--out", "no-server", "--log", "mlflow", "--mlflow-uri", uri)
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warned) == 1 and warned[0].startswith("tinygrad-s2s: warning: mlflow logging stopped: ConnectionError")
    assert len(read_metrics(work / "no-server")) == 1
    r = cli(work, *TRAIN, "--epochs", "1", "--out", "strict", "--log", "mlflow", "--mlflow-uri", uri, "--log-strict")
    assert r.returncode == 1, r.stderr
    assert "error: mlflow logging failed" in r.stderr and "train --resume --out strict" in r.stderr
    assert (work / "strict" / "last.npz").is_file()


def test_mlflow_uri_needs_the_mlflow_backend(work):
    r = cli(work, *TRAIN, "--out", "x", "--mlflow-uri", "sqlite:///x.db")
    assert r.returncode == 2 and "--mlflow-uri is for the mlflow backend: add --log mlflow" in r.stderr
    assert not (work / "x").exists()


def test_csv_alone_is_the_run_directory(work):
    r = cli(work, *TRAIN, "--epochs", "1", "--out", "plain", "--log", "csv")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (work / "plain").iterdir()) == sorted(
        ["config.json", "metrics.csv", "last.npz", "best.npz", "learning_curve.png"])
    assert np.isfinite(read_metrics(work / "plain")[0]["grad_norm"])
