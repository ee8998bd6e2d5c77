"""The `tinygrad-s2s` command through subprocesses (and, for cheap error paths, through `main`):
every command, --json output, exit codes 0/1/2/130 with one-line messages, Ctrl-C and NaN stops.

Subprocesses import tests/tiny_model.py first (so the tiny model is registered) and then run
`tinygrad_s2s.cli.main`, exactly what the console script runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.cli import main
from tinygrad_s2s.data import load_dataset
from tinygrad_s2s.training.trainer import load_run

import tiny_model  # noqa: F401 - registers 'tiny-s2s' in this process too
from cli_errors import one_error_line
from paths import HELPERS, REPO_ROOT

TESTS = HELPERS
PRELUDE = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import tiny_model; "
           "from tinygrad_s2s.cli import main; sys.exit(main())")
SMALL = ["--dataset", "addition", "--limit", "300", "--test-limit", "50", "--hidden", "8", "--wordvec", "4"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working directory with its own data root (the built-in files are generated on first use)."""
    return tmp_path_factory.mktemp("cli")


def env_for(work):
    return dict(os.environ, TINYGRAD_S2S_DATA=str(work / "datasets"), PYTHONWARNINGS="ignore",
                PYTHONIOENCODING="utf-8", TINYGRAD_S2S_DEBUG="")


def cli(work, *args, tiny=True, timeout=120):
    cmd = [sys.executable, "-c", PRELUDE, *args] if tiny else [sys.executable, "-m", "tinygrad_s2s", *args]
    return subprocess.run(cmd, cwd=work, env=env_for(work), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(work):
    """One small run trained through the command line with --json: (stdout JSON, run dir)."""
    r = cli(work, "train", "tiny-s2s", *SMALL, "--epochs", "1", "--out", "runs/small", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), work / "runs" / "small"


# ---------------------------------------------------------------- help and entry points
@pytest.mark.parametrize("command", ["train", "eval", "predict", "models", "datasets", "gradcheck", "graph",
                                     "attention-map"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"usage: tinygrad-s2s {command}" in capsys.readouterr().out


def test_console_script_and_python_m(work):
    script = Path(sys.executable).parent / "tinygrad-s2s"
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env_for(work), timeout=60)
    assert r.returncode == 0
    for command in ["train", "eval", "predict", "models", "datasets", "gradcheck", "graph", "attention-map"]:
        assert command in r.stdout
    r = cli(work, "--version", tiny=False)
    assert r.returncode == 0 and r.stdout.startswith("tinygrad-s2s ")


def _console_entry() -> str:
    """The console script's code, from pyproject's [project.scripts]: what an installed `tinygrad-s2s` runs."""
    tomllib = pytest.importorskip("tomllib")
    module, func = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"][
        "tinygrad-s2s"].split(":")
    return f"import sys; from {module} import {func}; sys.exit({func}())"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="watches the child's /proc/PID/maps")
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_ctrl_c_while_the_console_script_imports_is_one_line_and_exit_130(work, delay):
    """Seen: a Ctrl-C in the first 0.3 s (the package importing NumPy and every layer, before main()
    could catch it) printed a KeyboardInterrupt traceback. The signal is sent once the child has loaded
    NumPy's core (so it is past Python's own start-up, inside the import), then `delay` later."""
    env = dict(env_for(work), PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", _console_entry(), "train", "seq2seq", *SMALL, "--epochs", "1000",
                             "--out", f"runs/sigint-{delay}", "--no-progress"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        maps, deadline = Path(f"/proc/{proc.pid}/maps"), time.time() + 30
        while proc.poll() is None and time.time() < deadline and "_multiarray_umath" not in maps.read_text():
            time.sleep(0.001)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    if delay == 0.0:    # still importing: the line cli.main prints for a later Ctrl-C
        assert err == "tinygrad-s2s: interrupted\n"


def test_console_script_trains_and_uses_a_zoo_model(work):
    script = str(Path(sys.executable).parent / "tinygrad-s2s")

    def run(*args):
        return subprocess.run([script, *args], cwd=work, env=env_for(work), capture_output=True, text=True,
                              timeout=120)
    r = run("train", "seq2seq", *SMALL, "--epochs", "1", "--out", "runs/zoo", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["model"] == "seq2seq" and report["epochs"] == 1
    assert load_run(work / "runs" / "zoo").config["model_config"]["hidden_size"] == 8
    r = run("predict", "runs/zoo", "16+75", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["predictions"][0]["question"] == "16+75"
    r = run("train", "deep_lstm", *SMALL, "--epochs", "1", "--out", "runs/deep", "--json",
            "--model-arg", "layers=2", "--model-arg", "fused=false")
    assert r.returncode == 0, r.stderr
    assert load_run(work / "runs" / "deep").config["model_config"]["layers"] == 2
    assert load_run(work / "runs" / "deep").config["model_config"]["fused"] is False
    one_error_line(run("train", "seq2seq", *SMALL, "--out", "runs/bad", "--model-arg", "heads=2"), 2,
                   "--model-arg: model 'seq2seq' takes no argument 'heads' (its own arguments: none)")
    r = run("train", "seq2seq", "--model-arg", "2layers")      # argparse's own usage error
    assert r.returncode == 2 and "expected KEY=VALUE with a Python identifier as KEY" in r.stderr


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: tinygrad-s2s" in capsys.readouterr().err


# ---------------------------------------------------------------- train
def test_train_json_is_one_object_and_the_run_is_complete(trained):
    out, run = trained
    assert out["status"] == "finished" and out["run"] == "runs/small" and out["model"] == "tiny-s2s"
    assert out["dataset"] == "addition" and out["epochs"] == 1
    assert out["examples"] == 50 and out["train_examples"] == 300
    assert 0.0 <= out["accuracy"] <= 1.0 and out["accuracy"] == out["history"][-1]["test_accuracy"]
    assert len(out["predictions"]) == 10
    assert set(out["predictions"][0]) == {"question", "expected", "predicted", "correct"}
    assert all(p["correct"] == (p["expected"] == p["predicted"]) for p in out["predictions"])
    for name in ["config.json", "metrics.csv", "best.npz", "last.npz", "learning_curve.png"]:
        assert (run / name).is_file(), name


def test_train_resume_continues_the_run(trained, work):
    _, run = trained
    shutil.copytree(run, work / "runs" / "resumed")
    r = cli(work, "train", "--resume", "--out", "runs/resumed", "--epochs", "2")
    assert r.returncode == 0, r.stderr
    assert "resumed at epoch 2" in r.stdout and "epoch 2/2: loss" in r.stdout
    assert "test accuracy" in r.stdout and ("☑" in r.stdout or "☒" in r.stdout)
    assert "epoch 2/2" in r.stderr            # the progress bar
    meta = tg.load(work / "runs" / "resumed" / "last.npz", return_meta=True)[1]
    assert meta["epoch"] == 2 and meta["step"] == 6     # 3 batches of <= 128 per epoch
    one_error_line(cli(work, "train", "tiny-s2s", "--resume", "--out", "runs/resumed", "--hidden", "9"),
                   2, "--hidden 9 differs from the run's 8")
    r = cli(work, "train", "--resume", "--out", "runs/resumed", "--epochs", "1")
    assert r.returncode == 0 and "has already trained 2 epochs" in r.stdout


@pytest.mark.parametrize("dataset, wordvec, hidden, reverse, epochs", [
    ("addition", 16, 128, False, 25), ("date", 16, 256, True, 10)])
def test_train_defaults_reproduce_the_book(work, monkeypatch, tmp_path, dataset, wordvec, hidden, reverse,
                                           epochs):
    from tinygrad_s2s.cli import build_parser
    from tinygrad_s2s.cli.train import _new_trainer
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(work / "datasets"))
    args = build_parser().parse_args(["train", "tiny-s2s", "--dataset", dataset])
    trainer = _new_trainer(args, log=sys.stdout)
    cfg = trainer.config
    assert (cfg.wordvec, cfg.hidden, cfg.reverse, cfg.epochs) == (wordvec, hidden, reverse, epochs)
    assert (cfg.batch_size, cfg.lr, cfg.max_grad, cfg.seed) == (128, 1e-3, 5.0, 0)
    assert trainer.run_dir == Path("runs") / f"tiny-s2s-{dataset}"


def test_train_usage_and_failure_exit_codes(work, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(work / "datasets"))
    assert main(["train", "tiny-s2s", "--epochs", "0"]) == 2          # argparse's own usage error
    assert "expected a positive integer" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "MODEL is required" in capsys.readouterr().err
    assert main(["train", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'; registered models:" in capsys.readouterr().err
    assert main(["train", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", "runs/none"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("1+1  _2  \n1+22 _23\n")
    assert main(["train", "tiny-s2s", "--dataset", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinygrad-s2s: error: ") and f"{bad}:2: ragged width" in err


def test_train_refuses_to_overwrite_and_numbers_default_dirs(trained, work, tmp_path, monkeypatch):
    one_error_line(cli(work, "train", "tiny-s2s", *SMALL, "--out", "runs/small"), 2,
                   "already holds a run; pass --resume")
    from tinygrad_s2s.cli.train import _fresh_run_dir
    monkeypatch.chdir(tmp_path)
    assert _fresh_run_dir("attention", "date") == Path("runs/attention-date")
    Path("runs/attention-date").mkdir(parents=True)
    Path("runs/attention-date-2").mkdir()
    assert _fresh_run_dir("attention", "date") == Path("runs/attention-date-3")


def test_nan_loss_stops_with_the_step_and_exit_1(work):
    r = cli(work, "train", "tiny-s2s-nan", *SMALL, "--epochs", "2", "--out", "runs/nan", "--no-progress")
    line = one_error_line(r, 1, "tinygrad-s2s: error: training stopped: the loss is nan at step 2",
                          "last good checkpoint is runs/nan/last.npz")
    assert "epoch 1, batch 2" in line
    meta = tg.load(work / "runs" / "nan" / "last.npz", return_meta=True)[1]
    assert meta["step"] == 0               # the initial checkpoint: no update ever used a NaN
    assert "start a new run with a smaller --lr or --max-grad (in another --out, or in runs/nan with " \
           "--overwrite)" in line
    r = cli(work, "train", "tiny-s2s-nan", *SMALL, "--epochs", "2", "--out", "runs/nan-json", "--no-progress", "--json")
    assert r.returncode == 1 and "training stopped" in r.stderr
    report = json.loads(r.stdout)          # --json still prints its one object
    assert report["status"] == "diverged" and (report["what"], report["value"]) == ("loss", "nan")
    assert (report["epoch"], report["epochs_done"], report["batch"], report["step"]) == (1, 0, 1, 2)
    assert report["checkpoint"] == "runs/nan-json/last.npz" and report["history"] == []


def test_ctrl_c_saves_a_checkpoint_and_exits_130(work):
    run = work / "runs" / "ctrl-c"
    cmd = [sys.executable, "-c", PRELUDE, "train", "tiny-s2s", "--dataset", "addition", "--limit", "3000",
           "--test-limit", "20", "--hidden", "8", "--wordvec", "4", "--epochs", "1000", "--out", str(run),
           "--json"]
    proc = subprocess.Popen(cmd, cwd=work, env=env_for(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 60
        while not (run / "metrics.csv").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)       # wait until at least one epoch went through
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "checkpoint saved to" in err and "continue with: tinygrad-s2s train --resume" in err
    report = json.loads(out)
    assert report["status"] == "interrupted"
    meta = tg.load(run / "last.npz", return_meta=True)[1]
    assert meta["interrupted"] is True and meta["epoch"] >= 1
    assert (meta["epoch"], meta["batch"], meta["step"]) == (report["epochs_done"], report["batch"], report["step"])
    assert report["epoch"] == meta["epoch"] + 1 and f"interrupted at epoch {report['epoch']}, after batch" in err
    r = cli(work, "train", "--resume", "--out", str(run), "--epochs", str(meta["epoch"] + 1))
    assert r.returncode == 0, r.stderr
    assert tg.load(run / "last.npz", return_meta=True)[1]["epoch"] == meta["epoch"] + 1


# ---------------------------------------------------------------- eval
def test_eval_json_matches_the_training_accuracy(trained, work):
    out, run = trained
    r = cli(work, "eval", "runs/small", "--limit", "50", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["accuracy"] == out["accuracy"] and report["examples"] == 50
    assert report["run"] == "runs/small" and report["checkpoint"].endswith("best.npz")
    assert report["split"] == "test" and len(report["predictions"]) == 10
    assert "accuracy" in r.stderr and "exact matches" in r.stderr


def test_eval_prints_accuracy_and_marked_examples(trained, work):
    r = cli(work, "eval", "runs/small/last.npz", "--split", "train", "--limit", "200", "--show", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("accuracy ") and ("/200 exact matches) on the train split (the first 300, which "
                                                 "the run trained on) of addition") in lines[0]
    assert len(lines) == 4 and all(line.lstrip()[0] in "☑☒" for line in lines[1:])
    r = cli(work, "eval", "runs/small", "--limit", "80")        # trained with --test-limit 50: eval scores more
    assert r.returncode == 0 and "on the test split (training chose best.npz on the first 50 of these 80)" in r.stdout
    r = cli(work, "eval", "runs/small", "--split", "train", "--json")      # trained with --limit 300: those 300
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["examples"] == 300
    one_error_line(cli(work, "eval", "runs/missing"), 1,
                   "tinygrad-s2s: error: no such run directory or checkpoint: runs/missing")


# ---------------------------------------------------------------- predict
def test_predict_answers_like_the_loaded_run(trained, work):
    r = cli(work, "predict", "runs/small", "16+75", "1+2", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [p["question"] for p in report["predictions"]] == ["16+75", "1+2"]
    expected = load_run(work / "runs" / "small").predict(["16+75", "1+2"])
    assert [p["answer"] for p in report["predictions"]] == expected
    r = cli(work, "predict", "runs/small", "16+75")
    assert r.returncode == 0 and r.stdout == f"16+75 -> {expected[0]}\n"


def test_predict_sampling_is_seeded(trained, work):
    args = ["predict", "runs/small", "16+75", "1+2", "999+999", "--sample", "--temperature", "5", "--json"]
    a, b = (json.loads(cli(work, *args, "--seed", "3").stdout) for _ in range(2))
    assert a == b and a["sample"] is True and a["temperature"] == 5.0 and a["seed"] == 3
    greedy = load_run(work / "runs" / "small").predict(["16+75", "1+2", "999+999"])
    assert len(greedy) == len(a["predictions"])


def test_predict_errors(trained, work):
    one_error_line(cli(work, "predict", "runs/small", "16+75", "1x2"), 2,
                   "character 'x' in '1x2' is not in the vocabulary")
    one_error_line(cli(work, "predict", "runs/small", "16+75", "--temperature", "2"), 2,
                   "--temperature only applies with --sample")
    one_error_line(cli(work, "predict", "runs/small", "12345+12345"), 2, "trained on at most 7")


def test_predict_refuses_invalid_text_and_quotes_a_huge_question_briefly(trained, work):
    """Seen: bytes that are not UTF-8 failed with "'utf-32-le' codec can't encode character '\\udcff'";
    a 100,000-character question was echoed whole on stderr."""
    line = one_error_line(cli(work, "predict", "runs/small", "16+75", b"\xff\xfe"), 2,
                          "tinygrad-s2s predict: error: question ", "is not valid text", "byte 0xff is not UTF-8")
    assert "codec" not in line
    line = one_error_line(cli(work, "predict", "runs/small", "1" * 100_000), 2,
                          "is 100,000 characters; the model was trained on at most 7")
    assert len(line) < 200


# ---------------------------------------------------------------- models, datasets, gradcheck
def test_models_lists_names_and_sources(work):
    r = cli(work, "models")
    assert r.returncode == 0
    assert any(line.split()[:2] == ["tiny-s2s", "tiny_model"] for line in r.stdout.splitlines())
    r = cli(work, "models", "--json", tiny=False)     # the plain command: the installed plugins only
    assert r.returncode == 0
    models = json.loads(r.stdout)["models"]
    assert "tiny-s2s" not in models
    assert all(src.startswith("plugin '") for src in models.values())   # entry point and package named


def test_datasets_lists_tasks_files_and_errors(tmp_path):
    data = tmp_path / "datasets"
    data.mkdir()
    (data / "mine.txt").write_text("16+75  _91  \n52+607 _659 \n")
    (data / "broken.txt").write_text("16+75  _91  \n52+607 659  \n")
    r = cli(tmp_path, "datasets", tiny=False)
    assert r.returncode == 0, r.stderr
    assert "addition: 50,000 examples, question width 7, answer width 5" in r.stdout
    assert "date: 50,000 examples, question width 29, answer width 11" in r.stdout
    assert "mine: 2 examples" in r.stdout and "e.g. '16+75' -> '91'" in r.stdout
    assert f"broken: unreadable: {data / 'broken.txt'}:2: no '_'" in r.stdout
    assert "generating" in r.stderr and (data / "date.txt").is_file()
    rows = {row["name"]: row for row in json.loads(cli(tmp_path, "datasets", "--json", tiny=False).stdout)["datasets"]}
    assert rows["addition"]["vocab"] == " +0123456789_" and rows["date"]["vocab_size"] == len(
        load_dataset(data / "date.txt").vocab)


def test_gradcheck_command(work):
    r = cli(work, "gradcheck", "tiny-s2s")
    assert r.returncode == 0, r.stderr
    assert "gradcheck tiny-s2s: OK, 10 parameters, 60 entries" in r.stdout
    one_error_line(cli(work, "gradcheck", "tiny-s2s-broken"), 1,
                   "tinygrad-s2s: error: gradcheck tiny-s2s-broken failed", "parameter 'out.weight' at index")
    one_error_line(cli(work, "gradcheck", "nope"), 2, "unknown model 'nope'")


def test_debug_env_shows_the_traceback(work):
    env = dict(env_for(work), TINYGRAD_S2S_DEBUG="1")
    r = subprocess.run([sys.executable, "-c", PRELUDE, "eval", "runs/missing"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" in r.stderr and "FileNotFoundError" in r.stderr
