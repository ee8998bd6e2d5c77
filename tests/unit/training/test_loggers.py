"""The Trainer's loggers: what they are told and when, and the rule that a failing tracker never costs
the run (one TrackingWarning, training goes on, the run directory intact), or stops it after saving
in strict mode. No optional package needed: the loggers here are test doubles."""
import io
import math
import subprocess
import sys
import warnings

import pytest

from tinygrad_s2s.training import Trainer, rundir
from tinygrad_s2s.training.loggers import RunLogger, Tracking, TrackingError, TrackingWarning
from tinygrad_s2s.training.runfiles import load_checkpoint, read_metrics

from tiny_runs import STEPS_PER_EPOCH, tiny_trainer


class Recorder(RunLogger):
    name = "recorder"

    def __init__(self, fail_at=None, error=None):
        self.calls, self.steps, self.rows = [], [], []
        self.fail_at, self.error = fail_at, error

    def start(self, trainer):
        self.calls.append(("start", trainer.step, len(trainer.history)))

    def log_step(self, step, values):
        if step == self.fail_at:
            raise self.error
        self.steps.append((step, values))

    def log_epoch(self, row, trainer):
        self.rows.append(dict(row))

    def flush(self):
        self.calls.append(("flush",))

    def close(self, status):
        self.calls.append(("close", status))


def test_loggers_hear_every_step_and_epoch_in_order(tmp_path):
    rec = Recorder()
    history = tiny_trainer(tmp_path, loggers=[rec]).fit(2)
    assert rec.calls[0] == ("start", 0, 0) and rec.calls[-1] == ("close", "finished")
    assert [s for s, _ in rec.steps] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert all(math.isfinite(v["loss"]) and v["grad_norm"] > 0 and v["lr"] == 1e-3 for _, v in rec.steps)
    assert rec.rows == history == read_metrics(tmp_path / "run")
    # each epoch's grad_norm is the mean of its steps' norms, lr the rate of its last step
    for e, row in enumerate(rec.rows):
        norms = [v["grad_norm"] for _, v in rec.steps[e * STEPS_PER_EPOCH:(e + 1) * STEPS_PER_EPOCH]]
        assert row["grad_norm"] == pytest.approx(sum(norms) / len(norms), rel=1e-12) and row["lr"] == 1e-3
    assert rec.calls.count(("flush",)) >= 2       # before each epoch's checkpoint


def test_a_failing_logger_gives_one_warning_and_the_run_goes_on(tmp_path):
    bad, good = Recorder(fail_at=3, error=OSError(28, "No space left on device")), Recorder()
    bad.name = "flaky"
    with pytest.warns(TrackingWarning) as caught:
        history = tiny_trainer(tmp_path, loggers=[bad, good]).fit(2)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "flaky logging stopped" in msg and "No space left on device" in msg and "training goes on" in msg
    assert [s for s, _ in bad.steps] == [1, 2] and bad.rows == []        # never called again
    assert bad.calls[-1] == ("close", "failed")
    assert len(good.steps) == 2 * STEPS_PER_EPOCH and good.rows == history
    assert len(read_metrics(tmp_path / "run")) == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(rundir.RUN_FILES)


def test_strict_mode_stops_after_saving_where_it_failed(tmp_path):
    bad = Recorder(fail_at=7, error=ConnectionError("server gone"))
    trainer = tiny_trainer(tmp_path, loggers=[bad])
    trainer.tracking.strict = True
    with pytest.raises(TrackingError, match="recorder logging failed: ConnectionError: server gone"):
        trainer.fit(2)
    _, _, meta = load_checkpoint(tmp_path / "run" / "last.npz")
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 2, 7)      # step 7 done, then the failure
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(Trainer.resume(tmp_path / "run", log=trainer.log, progress=False).fit(2)) == 2


def test_tracking_refuses_what_is_not_a_logger():
    with pytest.raises(TypeError, match="loggers must have start/log_step/log_epoch/close"):
        Tracking([object()])


def test_an_interrupted_and_resumed_run_has_the_same_epoch_rows(tmp_path):
    """The mean gradient norm of an epoch cut in two by Ctrl-C (the trainer saves exactly where it
    stopped) is that of the epoch trained in one go: its partial sum travels in the checkpoint."""
    straight = tiny_trainer(tmp_path, "straight").fit(2)
    stop = Recorder(fail_at=7, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        tiny_trainer(tmp_path, "cut", loggers=[stop]).fit(2)
    assert stop.calls[-1] == ("close", "interrupted")
    resumed = Trainer.resume(tmp_path / "cut", progress=False, log=io.StringIO()).fit(2)
    for a, b in zip(straight, resumed):
        assert {k: a[k] for k in ("step", "train_loss", "test_accuracy", "lr")} == \
               {k: b[k] for k in ("step", "train_loss", "test_accuracy", "lr")}
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-9)


def test_the_training_layer_imports_no_tracker():
    code = ("import sys, tinygrad_s2s.training, tinygrad_s2s.tracking, tinygrad_s2s.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboard', 'mlflow', 'tensorflow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_tracker_package_names_the_extra():
    from tinygrad_s2s.tracking.extra import require
    with pytest.raises(ImportError, match=r"tensorboard logging needs the `tracking` extra \(pip install "):
        require("no_such_tracker_package", "tensorboard")


def test_overwrite_replaces_a_run_with_its_trackers_files(tmp_path):
    """A run's tensorboard/ folder and mlflow.json are its own files: --overwrite removes them (and
    nothing else), and they do not make the directory look foreign."""
    run = tiny_trainer(tmp_path).run_dir
    tiny_trainer(tmp_path).fit(1)
    (run / rundir.TENSORBOARD).mkdir()
    (run / rundir.TENSORBOARD / (rundir.EVENTS_PREFIX + "1.host.1.0")).write_bytes(b"events")
    (run / rundir.MLFLOW).write_text("{}")
    assert rundir.state(run) == ("run", [])
    assert rundir.check_new_run(run, overwrite=True) == "run"
    removed = rundir.clear_run(run)
    assert f"{rundir.TENSORBOARD}/{rundir.EVENTS_PREFIX}1.host.1.0" in removed and rundir.MLFLOW in removed
    assert list(run.iterdir()) == []
