"""One value, one source: a setting that the model or the dataset already fixes, given again with
another value, is an error before anything is written, never a run whose config.json describes
another run than the one trained."""
import io

import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.cli import main
from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.data import load_dataset
from tinygrad_s2s.training.trainer import Trainer

import tiny_model  # noqa: F401 - registers 'tiny-s2s'


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return load_dataset(datagen.write_task("addition", tmp_path_factory.mktemp("data") / "add600.txt", n=600, seed=3))


def model(ds, hidden=8):
    tg.manual_seed(0)
    return tg.create_model("tiny-s2s", len(ds.vocab), wordvec_size=4, hidden_size=hidden)


def test_limits_given_to_the_trainer_are_applied(ds):
    """limit / test_limit were recorded from the dataset only: Trainer(..., limit=256) trained on all."""
    trainer = Trainer(model(ds), ds, epochs=1, limit=256, test_limit=32, log=io.StringIO(), progress=False)
    assert (trainer.config.limit, trainer.config.test_limit) == (256, 32)
    assert (len(trainer.dataset.x_train), len(trainer.dataset.x_test)) == (256, 32)
    assert (trainer.config.train_examples, trainer.config.test_examples) == (256, 32)
    trainer.fit()
    assert trainer.history[-1]["epoch"] == 1


@pytest.mark.parametrize("settings, match", [
    ({"hidden": 16}, "hidden=16 but the model was built with hidden_size=8"),
    ({"wordvec": 5}, "wordvec=5 but the model was built with wordvec_size=4"),
    ({"limit": 50}, "limit=50 but the dataset was limited to 100 examples"),
    ({"reverse": True}, "reverse=True but the dataset was loaded with reverse=False")])
def test_a_setting_that_contradicts_the_model_or_the_dataset_is_refused(ds, settings, match):
    with pytest.raises(ValueError, match=match):
        Trainer(model(ds), ds.limit(100), log=io.StringIO(), progress=False, **settings)


def test_settings_that_agree_are_accepted(ds):
    trainer = Trainer(model(ds), ds.limit(100), hidden=8, wordvec=4, limit=100, reverse=False, log=io.StringIO())
    assert (trainer.config.hidden, trainer.config.limit, len(trainer.dataset.x_train)) == (8, 100, 100)


@pytest.mark.parametrize("arg, match", [
    ("hidden_size=24", "--model-arg hidden_size=24: set the hidden size with --hidden"),
    ("hidden_size=0", "--model-arg hidden_size=0: set the hidden size with --hidden"),
    ("wordvec_size=3", "--model-arg wordvec_size=3: set the embedding size with --wordvec"),
    ("vocab_size=1000", "--model-arg vocab_size=1000: the vocabulary is the dataset's")])
def test_a_model_arg_that_a_flag_sets_is_a_usage_error_before_any_file(arg, match, tmp_path, monkeypatch, capsys):
    """--hidden 8 --model-arg hidden_size=24 built H=24 while the banner and config.json said 8."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "tiny-s2s", "--hidden", "8", "--model-arg", arg, "--out", "runs/x"]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_mplbackend_is_a_usage_error_before_training(tmp_path, monkeypatch, capsys):
    """MPLBACKEND=nonsense trained a whole epoch, then failed at the plot."""
    import matplotlib  # noqa: F401 - imported first, as in a test session (a failed first import would linger)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "nonsense")
    assert main(["train", "tiny-s2s", "--limit", "10", "--out", "runs/x"]) == 2
    err = capsys.readouterr().err
    assert "error: MPLBACKEND='nonsense': 'nonsense' is not a valid value for backend" in err, err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("MPLBACKEND", "Agg")                     # a valid one passes the check
    assert main(["train", "no-such-model"]) == 2 and "unknown model" in capsys.readouterr().err
