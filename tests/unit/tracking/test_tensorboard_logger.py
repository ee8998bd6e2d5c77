"""TensorBoard event files read back with TensorBoard's own EventAccumulator and checked against
metrics.csv: every step and epoch once, also after a crash past the last checkpoint and a resume."""
import io
import json
import warnings

import pytest

from extras import need
from tinygrad_s2s.training import Trainer
from tinygrad_s2s.training.loggers import RunLogger, TrackingWarning
from tinygrad_s2s.training.runfiles import read_metrics
from tinygrad_s2s.tracking import TensorBoardLogger

from tiny_runs import STEPS_PER_EPOCH, tiny_trainer

pytestmark = pytest.mark.extras


def events(run):
    ea_mod = need("tensorboard.backend.event_processing.event_accumulator", "tracking")
    ea = ea_mod.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def raw_loss_steps(run):
    """The steps of every `step/loss` record in the event files, read raw (no purge applied): what a
    reader that ignores TensorBoard's restart marker would show."""
    loader = need("tensorboard.backend.event_processing.event_file_loader", "tracking")
    steps = []
    for f in sorted((run / "tensorboard").iterdir()):
        for event in loader.EventFileLoader(str(f)).Load():
            steps += [event.step for v in event.summary.value if v.tag == "step/loss"]
    return sorted(steps)


def check_against_metrics(run, steps):
    ea, rows = events(run), read_metrics(run)
    loss = [(e.step, e.value) for e in ea.Scalars("step/loss")]
    assert [s for s, _ in loss] == list(range(1, steps + 1))        # each step once, in order
    for tag in ("test_accuracy", "train_loss", "best_accuracy", "lr", "grad_norm", "seconds"):
        got = [(e.step, e.value) for e in ea.Scalars(f"epoch/{tag}")]
        assert got == [(r["step"], pytest.approx(r[tag], rel=1e-6)) for r in rows], tag
    return ea


def test_a_run_in_tensorboard_matches_its_metrics(tmp_path):
    need("tensorboard", "tracking")
    trainer = tiny_trainer(tmp_path, loggers=[TensorBoardLogger()])
    trainer.fit(2)
    ea = check_against_metrics(tmp_path / "run", 2 * STEPS_PER_EPOCH)
    text = ea.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\njson")) == json.loads((tmp_path / "run" / "config.json").read_text())


class Crash(RunLogger):
    """Dies (as a kill would: nothing saved) at a step after the last checkpoint."""

    def __init__(self, at):
        self.at = at

    def log_step(self, step, values):
        if step == self.at:
            raise SystemExit("killed")


def test_a_crash_and_resume_leave_every_step_once(tmp_path):
    """Steps 6-8 are logged, the process dies before a checkpoint covers them (the last one is at the
    end of epoch 1, step 5), the resumed run takes them again: TensorBoard shows each step once, with
    the resumed run's values."""
    need("tensorboard", "tracking")
    with pytest.raises(SystemExit):
        tiny_trainer(tmp_path, loggers=[TensorBoardLogger(), Crash(at=8)], save_every=0).fit(3)
    assert [e.step for e in events(tmp_path / "run").Scalars("step/loss")][-1] == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False, loggers=[TensorBoardLogger()]).fit(3)
    assert len(list((tmp_path / "run" / "tensorboard").iterdir())) == 2     # one event file per process
    check_against_metrics(tmp_path / "run", 3 * STEPS_PER_EPOCH)
    assert raw_loss_steps(tmp_path / "run") == list(range(1, 3 * STEPS_PER_EPOCH + 1))   # trimmed on disk too


def test_tensorboard_turned_on_at_a_resume_gets_the_earlier_epochs(tmp_path):
    need("tensorboard", "tracking")
    tiny_trainer(tmp_path).fit(1)
    Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False, loggers=[TensorBoardLogger()]).fit(2)
    ea, rows = events(tmp_path / "run"), read_metrics(tmp_path / "run")
    assert [e.step for e in ea.Scalars("epoch/test_accuracy")] == [r["step"] for r in rows]
    assert [e.step for e in ea.Scalars("step/loss")] == list(range(STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH + 1))


def test_a_full_disk_costs_the_events_not_the_run(tmp_path, monkeypatch):
    need("tensorboard", "tracking")
    from tensorboard.summary.writer import record_writer

    def full(self, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    with pytest.warns(TrackingWarning) as caught:
        history = tiny_trainer(tmp_path, loggers=[TensorBoardLogger()]).fit(2)
    assert len(caught) == 1 and "tensorboard logging stopped" in str(caught[0].message)
    assert "No space left on device" in str(caught[0].message)
    assert read_metrics(tmp_path / "run") == history and len(history) == 2


def test_a_file_in_the_way_is_one_warning(tmp_path):
    need("tensorboard", "tracking")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tensorboard").write_text("not a folder")
    with pytest.warns(TrackingWarning, match="tensorboard logging stopped: FileExistsError: .*is in the way"):
        tiny_trainer(tmp_path, "run2", loggers=[TensorBoardLogger(tmp_path / "run" / "tensorboard")]).fit(1)
    assert (tmp_path / "run" / "tensorboard").read_text() == "not a folder"
