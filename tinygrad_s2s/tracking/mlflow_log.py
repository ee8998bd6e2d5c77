"""`MLflowLogger`: a run as an MLflow run, in a real database (SQLite by default) or on a server.

What is recorded: the parameters (config.json's keys; the model's constructor config as
`model_config.<key>`), the metrics.csv columns of every epoch (MLflow's step is the epoch), and as
artifacts config.json, metrics.csv, the learning curve, the best checkpoint (each time it improves)
and, for a model that records attention, the heatmap of its attention on the first test question.

Where: `tracking_uri`, else the store a resumed run used, else `sqlite:///mlruns.db` *beside the run
directory* (`runs/mlruns.db` for `runs/NAME`, whatever the current directory: every run of a folder
in one database, and a resume from elsewhere finds it), with artifacts in `mlartifacts/` next to the
database. The MLflow run's id and store are kept in the run directory (`mlflow.json`), so a resumed run
continues the same MLflow run; an epoch MLflow already holds (a run killed after logging an epoch and
before its checkpoint redoes that epoch) is not logged again, and epochs MLflow lacks (logging turned
on at a resume) are filled in from the history: each epoch is held exactly once.

The `mlflow-skinny` package (the `tracking` extra, with SQLAlchemy and Alembic for the SQL store) is
imported when a run starts. A SQLite store is checked first (it opens, it can be written, it is not
locked for longer than `lock_timeout` seconds) and a server must answer its `/health` within
`timeout` seconds, so a store that cannot work fails at once, not after MLflow's retries; for a
server, MLflow's own retries are cut to MLFLOW_HTTP_REQUEST_MAX_RETRIES=3 and
MLFLOW_HTTP_REQUEST_TIMEOUT=30 unless those variables are set.
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import serialization
from ..training.loggers import RunLogger
from .extra import require
from ..training.rundir import BEST, CONFIG, CURVE, METRICS, MLFLOW

__all__ = ["DEFAULT_DB", "EXPERIMENT", "MLflowLogger", "default_uri"]

DEFAULT_DB = "mlruns.db"
"""The default store's file name, beside the run directory."""
EXPERIMENT = "tinygrad-s2s"
_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "diverged": "FAILED", "failed": "FAILED"}


def default_uri(run_dir) -> str:
    """`sqlite:///mlruns.db` beside `run_dir` (an absolute path, so any current directory finds it)."""
    return "sqlite:///" + str(Path(run_dir).absolute().parent / DEFAULT_DB)


def _sqlite_file(uri: str) -> tuple[str, str] | None:
    """(path, query) of a sqlite:/// URI's database file; None for other stores and in-memory ones."""
    if not uri.startswith("sqlite:///"):
        return None
    path, _, query = uri[len("sqlite:///"):].partition("?")
    path = path.removeprefix("file:")
    return (path, query) if path and path != ":memory:" else None


def check_sqlite(uri: str, timeout: float) -> None:
    """Open the SQLite database of `uri` and write to it (rolled back): OSError or sqlite3.Error when it
    is not a file SQLite can open, is read-only, or stays locked for `timeout` seconds."""
    found = _sqlite_file(uri)
    if found is None:
        return
    path, query = found
    Path(path).parent.mkdir(parents=True, exist_ok=True)      # as MLflow does
    if Path(path).is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an SQLite database")
    params = [p for p in query.split("&") if p and not p.startswith("uri=")]
    con = sqlite3.connect(f"file:{urllib.parse.quote(path)}" + ("?" + "&".join(params) if params else ""),
                          uri=True, timeout=timeout)
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        con.execute(f"PRAGMA user_version = {int(version)}")     # a write that changes nothing
    finally:
        con.close()


def check_server(uri: str, timeout: float) -> None:
    """ConnectionError unless the server at an http(s) `uri` answers within `timeout` seconds."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return                  # it answered
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"cannot reach the MLflow server at {uri}: {getattr(exc, 'reason', exc)}") from None
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def flat_params(config: dict) -> dict:
    """config.json as MLflow parameters: nested objects as `key.subkey`, values as text."""
    out = {}
    for key, value in sorted(config.items()):
        if isinstance(value, dict):
            out.update({f"{key}.{k}": str(v) for k, v in sorted(value.items())})
        else:
            out[key] = str(value)
    return out


class MLflowLogger(RunLogger):
    """Log a run to MLflow (see the module docstring for what and where).

    Args:
        tracking_uri: the MLflow store or server; None: the store a resumed run used, else
            `sqlite:///mlruns.db` beside the run directory.
        experiment: the MLflow experiment new runs go to (made when missing).
        artifacts: also log config.json, metrics.csv, the learning curve, best.npz and the attention map.
        timeout: seconds a server has to answer its `/health` at start.
        lock_timeout: seconds a SQLite store may stay locked at start.
    """

    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str = EXPERIMENT, *, artifacts: bool = True,
                 timeout: float = 10.0, lock_timeout: float = 5.0):
        self.tracking_uri, self.experiment, self.artifacts = tracking_uri, experiment, artifacts
        self.timeout, self.lock_timeout = timeout, lock_timeout
        self.client = self.run_id = self.uri = None
        self._logged: set[int] = set()
        self._best_stamp = None
        self._trainer = None

    # ---- starting or continuing the MLflow run
    def _stored(self, run_dir: Path | None) -> dict:
        path = run_dir / MLFLOW if run_dir is not None else None
        if path is None or not path.is_file():
            return {}
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable ({exc}); move it away to start a new MLflow run") from None
        if not (isinstance(stored, dict) and isinstance(stored.get("run_id"), str)
                and isinstance(stored.get("tracking_uri"), str)):
            raise ValueError(f"{path}: not the run id and store this tool writes; move it away to start a new "
                             "MLflow run")
        return stored

    def start(self, trainer) -> None:
        """Check the store, then continue the run's MLflow run (mlflow.json) or create one and record it.

        Args:
            trainer: the Trainer; its config becomes the run's parameters, and epochs of its history
                the store lacks are logged.

        Raises:
            ValueError: mlflow.json is unreadable or not what this tool writes.
        """
        Param = require("mlflow.entities", self.name).Param
        from mlflow.tracking import MlflowClient  # noqa: PLC0415
        run_dir = Path(trainer.run_dir) if trainer.run_dir is not None else None
        stored = self._stored(run_dir)
        self.uri = self.tracking_uri or stored.get("tracking_uri") or (
            default_uri(run_dir) if run_dir is not None else "sqlite:///" + os.path.abspath(DEFAULT_DB))
        if self.uri.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "mysql", "mssql"):
            require("sqlalchemy", self.name)     # a SQL store's, which mlflow-skinny leaves out
        check_sqlite(self.uri, self.lock_timeout)
        check_server(self.uri, self.timeout)
        self.client, self._trainer = MlflowClient(tracking_uri=self.uri), trainer
        if stored and stored["tracking_uri"] == self.uri:
            self.run_id = stored["run_id"]
            self.client.get_run(self.run_id)        # gone from the store: an error naming it
            self.client.update_run(self.run_id, status="RUNNING")
            self._logged = {int(m.step) for m in self.client.get_metric_history(self.run_id, "test_accuracy")}
        else:
            run = self.client.create_run(self._experiment_id(), run_name=run_dir.name if run_dir else None,
                                         tags={"model": str(trainer.config.model), "dataset": trainer.dataset.name})
            self.run_id, self._logged = run.info.run_id, set()
            params = [Param(k, v) for k, v in flat_params(trainer.config.to_dict()).items()]
            for i in range(0, len(params), 100):        # MLflow takes at most 100 parameters a call
                self.client.log_batch(self.run_id, params=params[i:i + 100])
            if run_dir is not None:
                record = {"tracking_uri": self.uri, "run_id": self.run_id, "experiment_id": run.info.experiment_id}
                serialization.write_bytes(run_dir / MLFLOW, (json.dumps(record, indent=2) + "\n").encode())
        for row in trainer.history:         # epochs the store lacks (logging turned on at a resume)
            self._metrics(row)
        self._files(run_dir)

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        db = _sqlite_file(self.uri)
        where = (Path(db[0]).absolute().parent / "mlartifacts").as_uri() if db else None
        return self.client.create_experiment(self.experiment, artifact_location=where)

    # ---- each epoch
    def _metrics(self, row: dict) -> None:
        from mlflow.entities import Metric  # noqa: PLC0415
        if row["epoch"] in self._logged:
            return
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, int(row["epoch"]))
                                                    for k, v in row.items() if k != "epoch" and v is not None])
        self._logged.add(row["epoch"])

    def _files(self, run_dir: Path | None) -> None:
        if run_dir is None or not self.artifacts:
            return
        for name in (CONFIG, METRICS, CURVE):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        best = run_dir / BEST
        stamp = (best.stat().st_mtime_ns, best.stat().st_size) if best.is_file() else None
        if stamp is not None and stamp != self._best_stamp:
            self.client.log_artifact(self.run_id, str(best), artifact_path="checkpoints")
            self._best_stamp = stamp

    def log_epoch(self, row: dict, trainer) -> None:
        """Log the epoch's metrics at MLflow step = epoch (unless already held), and the changed artifacts.

        Args:
            row: the epoch's metrics.csv row.
            trainer: the Trainer (its run directory holds the artifacts).
        """
        self._metrics(row)
        self._files(Path(trainer.run_dir) if trainer.run_dir is not None else None)

    # ---- the end
    def _attention_map(self) -> None:
        trainer = self._trainer
        if not (self.artifacts and getattr(trainer.model, "records_attention", False) and trainer.run_dir is not None
                and (Path(trainer.run_dir) / BEST).is_file()):
            return
        from ..data.datasets import unpad  # noqa: PLC0415
        from ..viz.heatmap import attention_map_for_run  # noqa: PLC0415
        ds = trainer.dataset
        question = ds.vocab.decode(ds.x_test[0])
        question = unpad(question[::-1] if ds.reverse else question)
        with tempfile.TemporaryDirectory() as tmp:
            out = attention_map_for_run(trainer.run_dir, question, os.path.join(tmp, "attention_map.png"))
            self.client.log_artifact(self.run_id, out)

    def close(self, status: str) -> None:
        """End the MLflow run; a finished or interrupted run of a model that records attention first
        logs its attention map.

        Args:
            status: the Trainer's: "finished" (MLflow FINISHED), "interrupted" (KILLED), "diverged" or
                "failed" (FAILED).
        """
        if self.client is None or self.run_id is None:
            return
        try:
            if status in ("finished", "interrupted"):
                self._attention_map()
        finally:
            self.client.set_terminated(self.run_id, status=_STATUS.get(status, "FAILED"))
