"""MLflow with a real database: the run read back with MLflow's own client from the SQLite store
(parameters, every epoch's metrics against metrics.csv, artifacts), continued by a resume, and each way
the store can fail (unreachable server, locked, read-only, in the way, full disk) costing the run nothing."""
import errno
import io
import json
import socket
import sqlite3
import warnings

import pytest

from extras import need
from tinygrad_s2s.training import Trainer, rundir
from tinygrad_s2s.training.loggers import RunLogger, TrackingError, TrackingWarning
from tinygrad_s2s.training.runfiles import read_metrics
from tinygrad_s2s.tracking import MLflowLogger

from tiny_runs import tiny_trainer

pytestmark = pytest.mark.extras


def client(tmp_path):
    mlflow_client = need("mlflow.tracking", "tracking").MlflowClient
    return mlflow_client(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")


def epochs_of(c, run_id, key="test_accuracy"):
    return [(m.step, m.value) for m in sorted(c.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_a_run_in_mlflow_matches_its_directory(tmp_path):
    need("mlflow", "tracking")
    tiny_trainer(tmp_path, loggers=[MLflowLogger()], lr=0.002).fit(2)
    run_dir = tmp_path / "run"
    stored = json.loads((run_dir / rundir.MLFLOW).read_text())
    assert stored["tracking_uri"] == f"sqlite:///{tmp_path / 'mlruns.db'}"     # beside the run directory
    c = client(tmp_path)
    run = c.get_run(stored["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = run.data.params
    assert (params["model"], params["lr"], params["batch_size"]) == ("tiny-s2s", "0.002", "64")
    assert params["model_config.hidden_size"] == "8"
    rows = read_metrics(run_dir)
    for key in ("test_accuracy", "train_loss", "lr", "grad_norm", "best_accuracy"):
        assert epochs_of(c, stored["run_id"], key) == [(r["epoch"], pytest.approx(r[key], rel=1e-12)) for r in rows]
    names = {a.path for a in c.list_artifacts(stored["run_id"])} | {
        a.path for a in c.list_artifacts(stored["run_id"], "checkpoints")}
    assert {"config.json", "metrics.csv", "learning_curve.png", "checkpoints/best.npz"} <= names
    assert (tmp_path / "mlartifacts").is_dir()


class Crash(RunLogger):
    """Dies (as a kill would: nothing saved) at the end of epoch `at`, after the loggers before it in
    the list logged that epoch and before its checkpoint (last.npz) is written."""

    def __init__(self, at):
        self.at = at

    def log_epoch(self, row, trainer):
        if row["epoch"] == self.at:
            raise SystemExit("killed")


def test_resume_continues_the_same_mlflow_run_with_each_epoch_once(tmp_path):
    """MLflow holds epoch 2, the checkpoint does not (the process died in between): the resumed run
    trains epoch 2 again, into the same MLflow run, which ends with epochs 1, 2, 3 once each."""
    need("mlflow", "tracking")
    with pytest.raises(SystemExit):
        tiny_trainer(tmp_path, loggers=[MLflowLogger(), Crash(at=2)], save_every=0).fit(3)
    run_id = json.loads((tmp_path / "run" / rundir.MLFLOW).read_text())["run_id"]
    c = client(tmp_path)
    assert [s for s, _ in epochs_of(c, run_id)] == [1, 2] and len(read_metrics(tmp_path / "run")) == 2
    assert c.get_run(run_id).info.status == "FAILED"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        trainer = Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False, loggers=[MLflowLogger()])
        assert trainer.epoch == 1         # from the checkpoint of epoch 1's end
        trainer.fit(3)
    assert json.loads((tmp_path / "run" / rundir.MLFLOW).read_text())["run_id"] == run_id
    got = epochs_of(c, run_id)
    assert got == [(r["epoch"], pytest.approx(r["test_accuracy"])) for r in read_metrics(tmp_path / "run")]
    assert [s for s, _ in got] == [1, 2, 3]
    assert c.get_run(run_id).info.status == "FINISHED"


def test_mlflow_turned_on_at_a_resume_gets_the_earlier_epochs(tmp_path):
    need("mlflow", "tracking")
    tiny_trainer(tmp_path).fit(1)
    Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False, loggers=[MLflowLogger()]).fit(2)
    run_id = json.loads((tmp_path / "run" / rundir.MLFLOW).read_text())["run_id"]
    assert [s for s, _ in epochs_of(client(tmp_path), run_id)] == [1, 2]


def test_an_attention_model_gets_its_attention_map(tmp_path):
    need("mlflow", "tracking")
    tiny_trainer(tmp_path, model="attention", hidden=8, loggers=[MLflowLogger()]).fit(1)
    run_id = json.loads((tmp_path / "run" / rundir.MLFLOW).read_text())["run_id"]
    assert "attention_map.png" in {a.path for a in client(tmp_path).list_artifacts(run_id)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_warning_and_a_whole_run(tmp_path, logger, *words, name="run"):
    with pytest.warns(TrackingWarning) as caught:
        history = tiny_trainer(tmp_path, name, loggers=[logger]).fit(2)
    assert len(caught) == 1, [str(w.message) for w in caught]
    for w in ("mlflow logging stopped", *words):
        assert w in str(caught[0].message), str(caught[0].message)
    assert read_metrics(tmp_path / name) == history and len(history) == 2
    assert {"config.json", "metrics.csv", "last.npz", "best.npz"} <= {p.name for p in (tmp_path / name).iterdir()}


def test_an_unreachable_server_is_one_warning(tmp_path):
    need("mlflow", "tracking")
    assert_one_warning_and_a_whole_run(tmp_path, MLflowLogger(f"http://127.0.0.1:{free_port()}", timeout=2),
                                       "ConnectionError", "cannot reach the MLflow server")


def test_a_locked_database_is_one_warning(tmp_path):
    need("mlflow", "tracking")
    db = tmp_path / "locked.db"
    holder = sqlite3.connect(db)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert_one_warning_and_a_whole_run(tmp_path, MLflowLogger(f"sqlite:///{db}", lock_timeout=0.2),
                                           "database is locked")
    finally:
        holder.close()


def test_a_read_only_database_is_one_warning(tmp_path):
    need("mlflow", "tracking")
    db = tmp_path / "ro.db"
    sqlite3.connect(db).close()
    assert_one_warning_and_a_whole_run(tmp_path, MLflowLogger(f"sqlite:///{db}?mode=ro&uri=true"),
                                       "readonly database")


def test_a_directory_in_the_way_is_one_warning(tmp_path):
    need("mlflow", "tracking")
    (tmp_path / "mlruns.db").mkdir()
    assert_one_warning_and_a_whole_run(tmp_path, MLflowLogger(), "is a directory")


def test_a_full_disk_for_the_artifacts_is_one_warning(tmp_path, monkeypatch):
    mlflow_client = need("mlflow.tracking", "tracking").MlflowClient

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(mlflow_client, "log_artifact", full)
    assert_one_warning_and_a_whole_run(tmp_path, MLflowLogger(), "No space left on device")


def test_strict_mode_makes_a_failure_fatal(tmp_path):
    need("mlflow", "tracking")
    trainer = tiny_trainer(tmp_path, loggers=[MLflowLogger(f"http://127.0.0.1:{free_port()}", timeout=2)])
    trainer.tracking.strict = True
    with pytest.raises(TrackingError, match="mlflow logging failed: ConnectionError"):
        trainer.fit(1)
    assert (tmp_path / "run" / "last.npz").is_file()


def test_a_damaged_run_id_file_is_one_warning(tmp_path):
    need("mlflow", "tracking")
    tiny_trainer(tmp_path).fit(1)
    (tmp_path / "run" / rundir.MLFLOW).write_text("[1, 2]")
    with pytest.warns(TrackingWarning, match="mlflow.json: not the run id and store this tool writes"):
        Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False, loggers=[MLflowLogger()]).fit(2)
