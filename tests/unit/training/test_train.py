"""Trainer, batched evaluation, run directories and checkpoints: the files a run writes, exact
resume (2 epochs == 1 + resume 1, bitwise), Ctrl-C at any point, NaN/Inf stops, load_run."""
import io
import json
import math
import os
import signal
import threading

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.training import runfiles
from tinygrad_s2s.data import load_dataset
from tinygrad_s2s.training.evaluation import evaluate, exact_match, generate_batched
from tinygrad_s2s.training.trainer import Trainer, TrainingDiverged, TrainingInterrupted, load_run

import tiny_model  # noqa: F401 - registers 'tiny-s2s'


@pytest.fixture(scope="module")
def addition_file(tmp_path_factory):
    """600 addition examples: 540 training (5 batches of <=128) and 60 test."""
    return datagen.write_task("addition", tmp_path_factory.mktemp("data") / "add600.txt", n=600, seed=3)


@pytest.fixture
def ds(addition_file):
    return load_dataset(addition_file)


def make_trainer(ds, run_dir=None, seed=0, model="tiny-s2s", **kw):
    tg.manual_seed(seed)
    m = tg.create_model(model, len(ds.vocab), wordvec_size=4, hidden_size=8)
    kw.setdefault("log", io.StringIO())
    kw.setdefault("progress", False)
    return Trainer(m, ds, run_dir=run_dir, config={"seed": seed}, **kw)


def arrays(path):
    return tg.load(path)


def assert_same_arrays(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def losses(history):
    return [(h["epoch"], h["step"], h["train_loss"], h["test_accuracy"]) for h in history]


@pytest.fixture
def reference(ds, tmp_path):
    """An uninterrupted 2-epoch run: its last checkpoint's arrays and its history."""
    t = make_trainer(ds, tmp_path / "ref")
    t.fit(2)
    return arrays(tmp_path / "ref" / "last.npz"), t.history


# ---------------------------------------------------------------- evaluation
class Oracle:
    """A stand-in model: answers from a lookup table, wrong on chosen rows, recording batch sizes."""

    def __init__(self, x, t, wrong_rows):
        self.table = {row.tobytes(): ans for row, ans in zip(x, t[:, 1:].copy())}
        for r in wrong_rows:
            ans = self.table[x[r].tobytes()].copy()
            ans[-1] = (ans[-1] + 1) % 5          # one wrong character makes the whole answer wrong
            self.table[x[r].tobytes()] = ans
        self.batches = []

    def generate(self, xs, start_id, length):
        self.batches.append(len(xs))
        return np.stack([self.table[row.tobytes()][:length] for row in xs])


def test_evaluate_is_batched_exact_match(ds):
    x = np.concatenate([ds.x_train, ds.x_test])
    t = np.concatenate([ds.t_train, ds.t_test])
    oracle = Oracle(x, t, wrong_rows=range(0, 600, 4))
    assert evaluate(oracle, x, t, ds.start_id, batch_size=256) == pytest.approx(0.75)
    assert oracle.batches == [256, 256, 88]
    pred = generate_batched(Oracle(x, t, []), x, ds.start_id, t.shape[1] - 1)
    assert exact_match(pred, t).all()
    with pytest.raises(ValueError, match="no examples"):
        evaluate(oracle, x[:0], t[:0], ds.start_id)


def test_trainer_learns_a_copy_task(tmp_path):
    """End to end: a tiny model learns to copy two digits well above chance (1%)."""
    lines = "".join(f"{a}{b}_{a}{b}\n" for a in range(10) for b in range(10))
    path = tmp_path / "copy.txt"
    path.write_text(lines)
    copy = load_dataset(path)
    tg.manual_seed(0)
    m = tg.create_model("tiny-s2s", len(copy.vocab), wordvec_size=8, hidden_size=32)
    t = Trainer(m, copy, lr=0.02, batch_size=32, log=io.StringIO(), progress=False)
    history = t.fit(40)
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 4
    assert evaluate(m, np.concatenate([copy.x_train, copy.x_test]),
                    np.concatenate([copy.t_train, copy.t_test]), copy.start_id) > 0.5


# ---------------------------------------------------------------- run directory
def test_run_directory_holds_config_metrics_checkpoints_and_curve(ds, tmp_path):
    run = tmp_path / "run"
    log = io.StringIO()
    t = make_trainer(ds, run, log=log)
    history = t.fit(2)
    assert sorted(p.name for p in run.iterdir()) == ["best.npz", "config.json", "last.npz",
                                                     "learning_curve.png", "metrics.csv"]
    config = json.loads((run / "config.json").read_text())
    for key, value in {"model": "tiny-s2s", "reverse": False, "dataset": "add600", "wordvec": 4, "hidden": 8,
                       "epochs": 2, "batch_size": 128, "lr": 1e-3, "max_grad": 5.0, "seed": 0,
                       "vocab": " +0123456789_", "question_width": 7, "answer_width": 5}.items():
        assert config[key] == value, key
    assert config["model_config"] == {"vocab_size": 13, "wordvec_size": 4, "hidden_size": 8}
    rows = runfiles.read_metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [5, 10]
    assert [r["train_loss"] for r in rows] == [h["train_loss"] for h in history]
    assert (run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state, meta = tg.load(run / "last.npz", return_meta=True)
    assert meta["epoch"] == 2 and meta["batch"] == 0 and meta["step"] == 10
    assert meta["optimizer"]["type"] == "Adam" and meta["optimizer"]["hyper"]["t"] == 10
    assert meta["config"]["model"] == "tiny-s2s" and meta["rng"]["bit_generator"] == "PCG64"
    n_params = len(t.model.parameters())
    assert [f"optim/m/{i}" for i in range(n_params)] == [k for k in state if k.startswith("optim/m/")]
    assert np.array_equal(state["optim/v/3"], t.optimizer.v[3])
    assert np.array_equal(state["out.weight"], t.model.out.weight.numpy())
    text = log.getvalue()
    assert "epoch 2/2: loss" in text and "test accuracy" in text
    assert text.count("☒") + text.count("☑") == 6           # three examples after each epoch


def test_a_log_without_write_is_refused_before_any_training(ds, tmp_path):
    """Trainer(log=print) failed after its first epoch had trained."""
    with pytest.raises(TypeError, match=r"Trainer: log must be a text stream with write\(\) .*got builtin_function"):
        make_trainer(ds, tmp_path / "run", log=print)
    assert not (tmp_path / "run").exists()


def test_a_model_the_registry_cannot_name_is_refused_without_making_the_run_directory(ds, tmp_path):
    class Unregistered(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = tg.nn.Parameter(np.ones(2))
    t = Trainer(Unregistered(), ds, run_dir=tmp_path / "run", log=io.StringIO(), progress=False)
    with pytest.raises(ValueError, match="cannot tell which registered model this is"):
        t.fit(1)
    assert not (tmp_path / "run").exists()


def test_a_dataset_without_a_file_trains_without_a_run_directory_only(ds, tmp_path):
    from dataclasses import replace
    mem = replace(ds, path=None)            # was: TypeError from pathlib, even without run_dir
    make_trainer(mem).fit(1)
    with pytest.raises(ValueError, match=r"a run directory records its training file .* this dataset has none"):
        make_trainer(mem, tmp_path / "run").fit(1)
    assert not (tmp_path / "run").exists()


def test_trainer_refuses_to_overwrite_a_run(ds, tmp_path):
    make_trainer(ds, tmp_path / "run").fit(1)
    with pytest.raises(FileExistsError, match="already holds a run"):
        make_trainer(ds, tmp_path / "run").fit(1)


def test_best_checkpoint_is_the_best_epoch(ds, tmp_path):
    t = make_trainer(ds, tmp_path / "run", lr=0.01)
    t.fit(3)
    best_meta = tg.load(tmp_path / "run" / "best.npz", return_meta=True)[1]
    accs = [h["test_accuracy"] for h in t.history]
    assert best_meta["best_accuracy"] == max(accs) == t.best_accuracy
    assert best_meta["epoch"] == 1 + accs.index(max(accs))


# ---------------------------------------------------------------- exact resume
@pytest.mark.numerics     # bit-for-bit resume under every kernel family
def test_resume_is_bitwise_exact(ds, tmp_path, reference):
    ref_arrays, ref_history = reference
    make_trainer(ds, tmp_path / "run").fit(1)
    tg.manual_seed(12345)          # the resumed run must not depend on the RNG state it starts in
    resumed = Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False)
    assert (resumed.epoch, resumed.batch, resumed.step) == (1, 0, 5)
    resumed.fit(2)
    assert_same_arrays(arrays(tmp_path / "run" / "last.npz"), ref_arrays)
    assert losses(resumed.history) == losses(ref_history)
    assert len(runfiles.read_metrics(tmp_path / "run")) == 2


@pytest.mark.numerics     # bit-for-bit resume under every kernel family
def test_interrupt_mid_epoch_saves_and_resumes_exactly(ds, tmp_path, reference):
    t = make_trainer(ds, tmp_path / "run")
    forward = t.model.forward

    def interrupted_forward(xs, ts):
        if t.model.calls == 7:       # in epoch 2, after 2 of its batches
            t.model.calls += 1
            raise KeyboardInterrupt
        return forward(xs, ts)
    t.model.forward = interrupted_forward
    with pytest.raises(TrainingInterrupted) as err:
        t.fit(2)
    assert (err.value.epoch, err.value.batch, err.value.step) == (1, 2, 7)
    assert err.value.checkpoint == tmp_path / "run" / "last.npz"
    meta = tg.load(err.value.checkpoint, return_meta=True)[1]
    assert meta["interrupted"] is True and (meta["epoch"], meta["batch"], meta["step"]) == (1, 2, 7)
    tg.manual_seed(999)
    resumed = Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False)
    resumed.fit(2)
    assert_same_arrays(arrays(tmp_path / "run" / "last.npz"), reference[0])
    assert losses(resumed.history) == losses(reference[1])


@pytest.mark.numerics     # bit-for-bit resume under every kernel family
def test_interrupt_during_evaluation_resumes_exactly(ds, tmp_path, reference):
    t = make_trainer(ds, tmp_path / "run")
    generate, fired = t.model.generate, []

    def interrupted_generate(*a, **k):
        if not fired:
            fired.append(1)
            raise KeyboardInterrupt
        return generate(*a, **k)
    t.model.generate = interrupted_generate
    with pytest.raises(TrainingInterrupted) as err:
        t.fit(2)
    assert (err.value.epoch, err.value.batch, err.value.step) == (0, 5, 5)
    tg.manual_seed(999)
    resumed = Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False)
    resumed.fit(2)
    assert_same_arrays(arrays(tmp_path / "run" / "last.npz"), reference[0])
    assert losses(resumed.history) == losses(reference[1])


@pytest.mark.numerics     # bit-for-bit resume under every kernel family
def test_sigint_stops_at_the_next_step_boundary(ds, tmp_path, reference, capsys):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    t = make_trainer(ds, tmp_path / "run")
    forward = t.model.forward

    def forward_with_ctrl_c(xs, ts):
        if t.model.calls == 3:
            os.kill(os.getpid(), signal.SIGINT)    # the handler only asks to stop; this step finishes
        return forward(xs, ts)
    t.model.forward = forward_with_ctrl_c
    with pytest.raises(TrainingInterrupted) as err:
        t.fit(2)
    assert (err.value.epoch, err.value.batch, err.value.step) == (0, 4, 4)
    assert "Ctrl-C: stopping after this step" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # handler removed again
    tg.manual_seed(999)
    resumed = Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False)
    resumed.fit(2)
    assert_same_arrays(arrays(tmp_path / "run" / "last.npz"), reference[0])


def test_interrupt_without_run_dir_saves_nothing(ds):
    t = make_trainer(ds, None)
    t.model.forward = lambda xs, ts: (_ for _ in ()).throw(KeyboardInterrupt)
    with pytest.raises(TrainingInterrupted, match="no run directory, nothing saved") as err:
        t.fit(1)
    assert err.value.checkpoint is None


# ---------------------------------------------------------------- NaN / Inf
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(ds, tmp_path):
    make_trainer(ds, tmp_path / "good").fit(1)
    t = make_trainer(ds, tmp_path / "run")
    t.model.nan_after = 7                      # the loss of step 8 (epoch 2, batch 3) is NaN
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 8 \(epoch 2, batch 3\)") as err:
        t.fit(3)
    assert err.value.step == 8 and err.value.checkpoint == tmp_path / "run" / "last.npz"
    assert str(err.value.checkpoint) in str(err.value)
    kept, meta = tg.load(tmp_path / "run" / "last.npz", return_meta=True)
    assert meta["epoch"] == 1 and meta["step"] == 5
    assert_same_arrays(kept, arrays(tmp_path / "good" / "last.npz"))
    assert all(np.isfinite(p.numpy()).all() for p in t.model.parameters())   # NaN never reached them
    assert len(runfiles.read_metrics(tmp_path / "run")) == 1


def test_nan_at_the_first_step_keeps_the_initial_checkpoint(ds, tmp_path):
    t = make_trainer(ds, tmp_path / "run", model="tiny-s2s-nan")
    t.model.nan_after = 0
    with pytest.raises(TrainingDiverged, match="at step 1 "):
        t.fit(1)
    kept, meta = tg.load(tmp_path / "run" / "last.npz", return_meta=True)
    assert meta["step"] == 0 and all(np.isfinite(a).all() for a in kept.values())


def test_infinite_gradient_stops_before_the_update(ds, monkeypatch):
    t = make_trainer(ds, None)
    before = {n: p.numpy().copy() for n, p in t.model.named_parameters()}
    monkeypatch.setattr(tg.optim, "clip_grad_norm", lambda params, max_norm: math.inf)
    with pytest.raises(TrainingDiverged, match="gradient norm is inf at step 1"):
        t.fit(1)
    assert all(np.array_equal(before[n], p.numpy()) for n, p in t.model.named_parameters())


# ---------------------------------------------------------------- load_run
def test_load_run_rebuilds_the_model(ds, tmp_path):
    t = make_trainer(ds, tmp_path / "run")
    t.fit(1)
    for where in (tmp_path / "run", tmp_path / "run" / "last.npz"):
        run = load_run(where)
        assert run.config["model"] == "tiny-s2s" and run.config["wordvec"] == 4 and run.config["hidden"] == 8
        assert run.config["dataset"] == "add600" and run.config["reverse"] is False
        assert run.vocab == ds.vocab and run.model.training is False
        for (name, p), (_, q) in zip(run.model.named_parameters(), t.model.named_parameters()):
            assert np.array_equal(p.numpy(), q.numpy()), name
    assert run.checkpoint.name == "last.npz" and load_run(tmp_path / "run").checkpoint.name == "best.npz"
    answers = run.predict(["16+75", "1+2"])
    expected = generate_batched(t.model, run.encode_questions(["16+75", "1+2"]), ds.start_id, 4)
    assert answers == [s.rstrip() for s in ds.vocab.decode_batch(expected)]


def test_load_run_errors(ds, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory or checkpoint"):
        load_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        load_run(tmp_path / "empty")
    tg.manual_seed(0)
    tg.save(tg.create_model("tiny-s2s", 13, 4, 8), tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="bare weights file"):
        load_run(tmp_path / "weights.npz")


@pytest.mark.numerics     # bit-for-bit resume under every kernel family
def test_cosine_schedule_anneals_to_zero_and_resumes_exactly(ds, tmp_path):
    ref = make_trainer(ds, tmp_path / "ref", lr=0.01, lr_schedule="cosine")
    seen = []
    step = ref.optimizer.step

    def recording_step():
        seen.append(ref.optimizer.lr)
        step()
    ref.optimizer.step = recording_step
    ref.fit(2)
    assert seen[0] == pytest.approx(0.01) and seen == sorted(seen, reverse=True)
    assert seen[-1] < 0.01 * 0.05 and len(seen) == 10
    t = make_trainer(ds, tmp_path / "run", lr=0.01, lr_schedule="cosine")
    forward = t.model.forward

    def interrupted_forward(xs, ts):
        if t.model.calls == 7:
            t.model.calls += 1
            raise KeyboardInterrupt
        return forward(xs, ts)
    t.model.forward = interrupted_forward
    with pytest.raises(TrainingInterrupted):
        t.fit(2)
    resumed = Trainer.resume(tmp_path / "run", log=io.StringIO(), progress=False)
    assert resumed.config.lr_schedule == "cosine"
    resumed.fit(2)
    assert_same_arrays(arrays(tmp_path / "run" / "last.npz"), arrays(tmp_path / "ref" / "last.npz"))
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        make_trainer(ds, lr_schedule="step")


def test_a_scheduled_run_refuses_another_number_of_epochs_once_it_has_stepped(ds, tmp_path):
    """Extending a finished cosine run restarted its rate at half the base rate, silently: the run
    then matched no run trained straight through. A constant rate may be extended (bit for bit the
    straight run), and a scheduled run may finish its own plan."""
    t = make_trainer(ds, tmp_path / "cos", lr=0.01, lr_schedule="cosine")
    t.fit(1)
    resumed = Trainer.resume(tmp_path / "cos", log=io.StringIO(), progress=False)
    with pytest.raises(ValueError, match=r"cosine learning-rate schedule was planned over 1 epoch and 5 steps of "
                                         r"it are done; training it to 2 epochs would re-plan"):
        resumed.fit(2)
    resumed.fit(1)                                   # its own plan: nothing to do, nothing refused
    c = make_trainer(ds, tmp_path / "const", lr=0.01)
    c.fit(1)
    Trainer.resume(tmp_path / "const", log=io.StringIO(), progress=False).fit(2)
    straight = make_trainer(ds, tmp_path / "straight", lr=0.01)
    straight.fit(2)
    assert_same_arrays(arrays(tmp_path / "const" / "last.npz"), arrays(tmp_path / "straight" / "last.npz"))
