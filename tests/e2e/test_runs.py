"""Runs you can trust, through the command line in subprocesses as a user meets them: resume after
kill -9 at any moment continues exactly; one process per run directory; a run refuses data that
changed under it; --out never clobbers what this tool did not write; strict flags; no litter."""
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.training import rundir

import tiny_model  # noqa: F401 - registers tiny-s2s in this process too
from paths import HELPERS

TESTS = HELPERS
PRELUDE = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import crash; "
           "from tinygrad_s2s.cli import main; sys.exit(main())")
EPOCHS = 3
TRAIN = ["train", "tiny-s2s", "--dataset", "data/add.txt", "--hidden", "8", "--wordvec", "4", "--batch-size", "64",
         "--epochs", str(EPOCHS), "--test-limit", "40", "--no-progress"]
RESUME = ["train", "--resume", "--no-progress"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working directory with data/add.txt (400 addition examples: 360 training, 6 batches of 64)."""
    work = tmp_path_factory.mktemp("runs")
    datagen.write_task("addition", work / "data" / "add.txt", n=400, seed=5)
    return work


def cli(work, *args, timeout=180, **env):
    e = dict(os.environ, TINYGRAD_S2S_DATA=str(work / "datasets"), PYTHONWARNINGS="ignore",
             PYTHONIOENCODING="utf-8", TINYGRAD_S2S_DEBUG="", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
             **{k: str(v) for k, v in env.items()})
    return subprocess.run([sys.executable, "-c", PRELUDE, *args], cwd=work, env=e, capture_output=True,
                          text=True, timeout=timeout)


def popen(work, *args):
    e = dict(os.environ, TINYGRAD_S2S_DATA=str(work / "datasets"), PYTHONWARNINGS="ignore",
             OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", PRELUDE, *args], cwd=work, env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def one_error_line(r, code, *words):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def metrics(run):
    with open(run / "metrics.csv") as f:
        return [(r["epoch"], r["step"], r["train_loss"], r["test_accuracy"], r["best_accuracy"])
                for r in csv.DictReader(f)]


def snapshot(run):
    """What must come out identical: every array of last.npz and best.npz (weights and optimizer
    slots), the position, and the metrics (times aside)."""
    last, meta = tg.load(run / "last.npz", return_meta=True)
    return {"last": last, "best": tg.load(run / "best.npz"), "metrics": metrics(run),
            "position": (meta["epoch"], meta["batch"], meta["step"])}


def assert_same_run(run, ref):
    got = snapshot(run)
    assert got["position"] == ref["position"] and got["metrics"] == ref["metrics"]
    for name in ("last", "best"):
        assert list(got[name]) == list(ref[name])
        for k in ref[name]:
            assert np.array_equal(got[name][k], ref[name][k]), (name, k)
    assert sorted(p.name for p in run.iterdir()) == sorted(rundir.RUN_FILES)   # no .lock, no .tmp-* litter


@pytest.fixture(scope="module")
def reference_run(work):
    """The uninterrupted run every interrupted one must equal, and how long it took on this machine
    (kill moments are drawn within it, so a fast machine cannot finish before the first kill)."""
    t0 = time.perf_counter()
    r = cli(work, *TRAIN, "--out", "ref")
    assert r.returncode == 0, r.stderr
    return snapshot(work / "ref"), time.perf_counter() - t0


@pytest.fixture(scope="module")
def reference(reference_run):
    return reference_run[0]


def resume_until_done(work, out, tries=6):
    for _ in range(tries):
        r = cli(work, *RESUME, "--out", out)
        if r.returncode == 0:
            return r
        assert r.returncode == -signal.SIGKILL, r.stderr
    raise AssertionError(f"{out} did not finish in {tries} resumes")


# ---------------------------------------------------------------- resume after kill -9 at any moment
# writes of a new run: 1 config.json, 2 last.npz (step 0); then per epoch best.npz (when it improved),
# metrics.csv, learning_curve.png, last.npz
@pytest.mark.parametrize("where", [{"TG_KILL_WRITE": 2}, {"TG_KILL_STEP": 1},
                                   {"TG_KILL_STEP": 4}, {"TG_KILL_WRITE": 3}, {"TG_KILL_WRITE": 6},
                                   {"TG_KILL_STEP": 9}],
                         ids=["writing-checkpoint-0", "before-step-1", "inside-epoch-1",
                              "writing-epoch-1-files", "writing-epoch-1-last", "inside-epoch-2"])
@pytest.mark.numerics
def test_kill_9_at_a_chosen_moment_then_resume_is_exact(work, reference, where):
    out = "kill-" + "-".join(f"{k[8:].lower()}{v}" for k, v in where.items())
    r = cli(work, *TRAIN, "--out", out, **where)
    assert r.returncode == -signal.SIGKILL, r.stderr
    r = cli(work, *RESUME, "--out", out)
    assert r.returncode == 0, r.stderr
    assert_same_run(work / out, reference)


@pytest.mark.numerics
@pytest.mark.parametrize("save_every, kept", [("1e-9", (1, 2, 8)), ("0", (1, 0, 6))], ids=["every-step", "epochs-only"])
def test_a_kill_inside_an_epoch_loses_only_the_steps_since_the_last_save(work, reference, save_every, kept):
    """--save-every: a checkpoint inside an epoch once that many seconds of training passed (1e-9:
    after every step), so a kill at step 9 (the third of epoch 2) keeps the first 8 steps; 0 keeps
    the end of epoch 1. Either way the resumed run is the uninterrupted one, bit for bit."""
    out = f"kill-save-{save_every}"
    r = cli(work, *TRAIN, "--out", out, "--save-every", save_every, TG_KILL_STEP=9)
    assert r.returncode == -signal.SIGKILL, r.stderr
    _, meta = tg.load(work / out / "last.npz", return_meta=True)
    assert (meta["epoch"], meta["batch"], meta["step"]) == kept
    assert meta["epoch_examples"] == 64 * kept[1] and meta["epoch_seconds"] >= 0
    r = cli(work, *RESUME, "--out", out, "--save-every", "0")     # may change on resume
    assert r.returncode == 0, r.stderr
    assert_same_run(work / out, reference)


def test_resume_refuses_to_re_plan_a_learning_rate_schedule(work):
    base = [a for a in TRAIN if a not in ("--epochs", str(EPOCHS))]
    assert cli(work, *base, "--epochs", "1", "--lr-schedule", "cosine", "--out", "cos").returncode == 0
    one_error_line(cli(work, *RESUME, "--out", "cos", "--epochs", "2"), 2,
                   "--epochs 2: this run's cosine learning-rate schedule was planned over 1 epoch and 6 steps",
                   "Train a new run with 2 epochs instead")
    one_error_line(cli(work, *RESUME, "--out", "cos", "--lr", "0.5"), 2,
                   "a resumed run keeps its settings (only --epochs, --device, --save-every may change)")


def test_kill_9_before_the_first_write_leaves_a_run_to_start_again(work, reference):
    """Killed while writing its very first file (config.json), a run has recorded nothing: --resume
    says so and the same command starts it in the directory it left."""
    r = cli(work, *TRAIN, "--out", "kill-first", TG_KILL_WRITE=1)
    assert r.returncode == -signal.SIGKILL
    one_error_line(cli(work, *RESUME, "--out", "kill-first"), 1, "nothing to resume",
                   "stopped before it wrote its config", "--out kill-first")
    assert cli(work, *TRAIN, "--out", "kill-first").returncode == 0
    assert_same_run(work / "kill-first", reference)


@pytest.mark.machine           # kill moments drawn within this machine's run time
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_at_random_moments_then_resume_is_exact(work, reference_run, seed):
    reference, seconds = reference_run
    rng = random.Random(seed)
    out = work / f"random-kills-{seed}"
    proc = popen(work, *TRAIN, "--out", str(out))
    kills = 0
    for _ in range(4):       # kill the run, then each resume, at a random moment, until 4 kills landed
        time.sleep(rng.uniform(0.05, 0.5) * seconds)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if rundir.state(out)[0] != "run":     # killed before the config was written: start it again
            proc = popen(work, *TRAIN, "--out", str(out))
        else:
            proc = popen(work, *RESUME, "--out", str(out))
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, (f"random seed {seed}", err)
    assert kills >= 1, f"random seed {seed}: the run finished before the first kill"
    try:
        assert_same_run(out, reference)
    except AssertionError as exc:
        raise AssertionError(f"random seed {seed}, {kills} kills: {exc}") from None


def test_resume_after_a_nan_stop_in_epoch_1(work):
    r = cli(work, "train", "tiny-s2s-nan", *TRAIN[2:], "--out", "nan")
    one_error_line(r, 1, "loss is nan at step 2", "last good checkpoint is nan/last.npz")
    config = json.loads((work / "nan" / "config.json").read_text())
    assert config["epochs"] == EPOCHS
    r = cli(work, *RESUME, "--out", "nan")      # was: KeyError: 'epochs'
    one_error_line(r, 1, "loss is nan at step 2")     # the same model diverges at the same step again
    assert tg.load(work / "nan" / "last.npz", return_meta=True)[1]["step"] == 0


def test_interrupted_writes_leave_no_litter(work, reference):
    r = cli(work, *TRAIN, "--out", "litter", TG_KILL_WRITE=6)
    assert r.returncode == -signal.SIGKILL
    assert [p.name for p in (work / "litter").glob(".tmp-*")]     # the cut write's temporary file
    (work / "litter" / ".tmp-abcd-last.npz").write_bytes(b"older litter")
    assert cli(work, *RESUME, "--out", "litter").returncode == 0
    assert not list((work / "litter").glob(".tmp-*"))


def test_a_killed_dataset_generation_leaves_no_litter(tmp_path, monkeypatch):
    from tinygrad_s2s.data import dataset_path
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "datasets"
    root.mkdir()
    (root / f".tmp-{dead.pid}-abc-addition.txt").write_text("half a file")       # its writer is gone
    (root / f".tmp-{os.getpid()}-abc-date.txt").write_text("being written")     # its writer is alive
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(root))
    dataset_path("addition")
    assert sorted(p.name for p in root.iterdir()) == [f".tmp-{os.getpid()}-abc-date.txt", "addition.txt"]


# ---------------------------------------------------------------- one process per run directory
def _wait_for_lock(run, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if rundir.holder(run):
            return rundir.holder(run)
        time.sleep(0.05)
    raise AssertionError(f"{run} never got locked: {proc.communicate()}")


def test_two_processes_cannot_use_one_run_directory(work):
    run = work / "busy"
    first = popen(work, *TRAIN, "--epochs", "100", "--out", str(run))
    try:
        assert _wait_for_lock(run, first) == first.pid
        for args in ([*RESUME, "--out", "busy"], [*TRAIN, "--out", "busy"], ["eval", "busy"],
                     ["eval", "busy/last.npz"], [*TRAIN, "--out", "busy", "--overwrite"]):
            one_error_line(cli(work, *args), 2, f"busy is in use by process {first.pid}")
        assert first.poll() is None          # the holder never noticed
    finally:
        first.kill()                          # kill -9: the OS releases the lock
        first.wait()
    assert rundir.holder(run) is None and (run / ".lock").exists()    # a stale file, but no stale lock
    r = cli(work, *RESUME, "--out", "busy", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert not (run / ".lock").exists()      # a clean exit removes it


def test_the_lock_is_reentrant_in_a_process_and_exclusive_across(tmp_path):
    run = tmp_path / "run"
    with rundir.locked(run):
        with rundir.locked(run):
            assert rundir.holder(run) is None          # held by this process, not by another one
        code = ("import sys; from tinygrad_s2s import rundir\n"
                "try:\n    rundir.locked(sys.argv[1]).__enter__()\n"
                "except rundir.RunDirLocked as e:\n    print(e.pid)")
        out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == str(os.getpid()), out.stderr
    assert not (run / ".lock").exists()


# ---------------------------------------------------------------- the data fingerprint
def test_a_run_refuses_data_that_changed_or_vanished(work):
    data = work / "data" / "fp.txt"
    datagen.write_task("addition", data, n=300, seed=7)
    r = cli(work, *TRAIN, "--dataset", str(data), "--epochs", "1", "--out", "fp")
    assert r.returncode == 0, r.stderr
    config = json.loads((work / "fp" / "config.json").read_text())
    assert config["dataset_path"] == str(data) and config["dataset_size"] == data.stat().st_size
    old_digest = config["dataset_sha256"]
    assert len(old_digest) == 64

    datagen.write_task("addition", data, n=300, seed=8)       # other data under the same name
    from tinygrad_s2s.training.fingerprint import fingerprint
    new_digest = fingerprint(data)["dataset_sha256"]
    line = one_error_line(cli(work, *RESUME, "--out", "fp", "--epochs", "2"), 1, old_digest, new_digest, str(data))
    assert "refusing" in line
    one_error_line(cli(work, "eval", "fp"), 1, old_digest, new_digest)
    one_error_line(cli(work, "eval", "fp", "--split", "train"), 1, old_digest)
    r = cli(work, "eval", "fp", "--dataset", str(data))          # another file, on purpose: a feature
    assert r.returncode == 0, r.stderr
    data.unlink()
    one_error_line(cli(work, *RESUME, "--out", "fp", "--epochs", "2"), 1, "is gone", old_digest)
    datagen.write_task("addition", data, n=300, seed=7)       # the same bytes back: the run goes on
    assert cli(work, *RESUME, "--out", "fp", "--epochs", "2").returncode == 0


def test_an_old_run_without_a_fingerprint_refuses_the_regenerated_builtin(work):
    r = cli(work, *TRAIN, "--dataset", "addition", "--limit", "200", "--epochs", "1", "--out", "old")
    assert r.returncode == 0, r.stderr
    config = json.loads((work / "old" / "config.json").read_text())
    assert config["dataset_path"] == str(work / "datasets" / "addition.txt")
    old_keys = ("dataset_size", "dataset_sha256", "format")     # as a run written before this change
    (work / "old" / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k not in old_keys}))
    for name in ("last.npz", "best.npz"):
        state, meta = tg.load(work / "old" / name, return_meta=True)
        meta["config"] = {k: v for k, v in meta["config"].items() if k not in old_keys}
        tg.save(state, work / "old" / name, meta=meta)
    one_error_line(cli(work, "eval", "old"), 1, "records no fingerprint of its training data")
    one_error_line(cli(work, *RESUME, "--out", "old", "--epochs", "2"), 1, "records no fingerprint")


# ---------------------------------------------------------------- --out never clobbers
def _tree(d):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(d).iterdir())}


def test_out_refuses_a_directory_this_tool_did_not_write(work):
    foreign = work / "mine"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"my": "settings"}')
    (foreign / "metrics.csv").write_text("a,b\n1,2\n")
    before = _tree(foreign)
    for extra in ([], ["--overwrite"]):
        one_error_line(cli(work, *TRAIN, "--out", "mine", *extra), 2, "holds files this tool did not write",
                       "config.json", "metrics.csv")
    one_error_line(cli(work, *RESUME, "--out", "mine"), 2, "not a run of this tool")
    assert _tree(foreign) == before               # not even a lock file
    (work / "afile").write_text("x")
    one_error_line(cli(work, *TRAIN, "--out", "afile"), 2, "is a file")


def test_a_run_is_replaced_only_with_overwrite_and_best_is_never_lost(work, reference):
    run = work / "best-only"
    import shutil
    shutil.copytree(work / "ref", run)
    (run / "last.npz").unlink()
    before = _tree(run)
    one_error_line(cli(work, *TRAIN, "--out", "best-only"), 2, "already holds a run", "--overwrite")
    assert _tree(run) == before
    best_epoch = tg.load(run / "best.npz", return_meta=True)[1]["epoch"]
    r = cli(work, *RESUME, "--out", "best-only")
    assert r.returncode == 0, r.stderr      # continues from best.npz, a whole checkpoint itself
    assert f"resumed at epoch {best_epoch + 1}" in r.stdout
    assert_same_run(run, reference)
    (run / "notes.txt").write_text("mine")
    one_error_line(cli(work, *TRAIN, "--out", "best-only", "--overwrite"), 2, "notes.txt", "move them first")
    (run / "notes.txt").unlink()
    r = cli(work, *TRAIN, "--out", "best-only", "--overwrite", "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert len(metrics(run)) == 1 and sorted(p.name for p in run.iterdir()) == sorted(rundir.RUN_FILES)
    one_error_line(cli(work, *RESUME, "--out", "best-only", "--overwrite"), 2, "pass one of them")


# ---------------------------------------------------------------- strict flags and bounds
@pytest.mark.parametrize("args, flag", [
    (["train", "tiny-s2s", "--max-grad", "nan"], "--max-grad"), (["train", "tiny-s2s", "--max-grad", "inf"], "--max-grad"),
    (["train", "tiny-s2s", "--lr", "nan"], "--lr"), (["train", "tiny-s2s", "--lr", "-inf"], "--lr"),
    (["train", "tiny-s2s", "--seed", "-1"], "--seed"), (["train", "tiny-s2s", "--epochs", "1.5"], "--epochs"),
    (["train", "tiny-s2s", "--model-arg", "scale=NaN"], "--model-arg"),
    (["train", "tiny-s2s", "--save-every", "-1"], "--save-every"), (["train", "tiny-s2s", "--save-every", "inf"], "--save-every"),
    (["predict", "r", "1+1", "--sample", "--temperature", "nan"], "--temperature"),
    (["predict", "r", "1+1", "--seed", "-3"], "--seed"), (["eval", "r", "--show", "-1"], "--show"),
    (["gradcheck", "tiny-s2s", "--seed", "x"], "--seed")])
def test_bad_flags_exit_2_naming_the_flag(args, flag, capsys):
    from tinygrad_s2s.cli import main
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err, err


def test_predict_and_eval_bounds(work, reference):
    one_error_line(cli(work, "predict", "ref", ""), 2, "empty question")
    one_error_line(cli(work, "predict", "ref", "1+1", "  "), 2, "empty question")
    one_error_line(cli(work, "predict", "ref", "1_1"), 2, "question '1_1' holds '_', the answers' start marker")
    oov = work / "data" / "oov.txt"
    oov.write_text("1+1  _2  \n1+2  _3  \n1+K  _4  \n")
    one_error_line(cli(work, "eval", "ref", "--dataset", str(oov)), 2, "tinygrad-s2s eval: error:",
                   f"{oov}:3: does not fit the model's vocabulary: character 'K' is not in")
    wide = work / "data" / "wide.txt"
    wide.write_text("1000+1000_2000\n2000+2000_4000\n")
    one_error_line(cli(work, "eval", "ref", "--dataset", str(wide)), 2, "wider than the run was trained on")
    narrow = work / "data" / "narrow.txt"
    narrow.write_text("".join(f"{a}+{b}_{a + b:<2}\n" for a in range(5) for b in range(5)))
    r = cli(work, "eval", "ref", "--dataset", str(narrow), "--split", "all", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    from tinygrad_s2s.training.runfiles import load_run
    answers = load_run(work / "ref").predict([p["question"] for p in report["predictions"]])
    assert [p["predicted"] for p in report["predictions"]] == answers      # padded exactly as predict pads


def test_config_json_is_strict(work, reference):
    text = (work / "ref" / "config.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in config.json"))
    config = json.loads(text)
    assert config["format"] == "tinygrad-s2s run" and config["epochs"] == EPOCHS and config["model_args"] == {}


def test_a_narrower_file_is_padded_as_predict_pads_it_reversed_too(tmp_path):
    from tinygrad_s2s.data import encode_questions, load_dataset
    from tinygrad_s2s.training.fingerprint import DoesNotFit, fit_widths
    wide = datagen.write_task("addition", tmp_path / "wide.txt", n=50, seed=1)
    vocab = load_dataset(wide).vocab
    narrow = tmp_path / "narrow.txt"
    narrow.write_text("".join(f"{a}+{b}_{a + b:<2}\n" for a in range(4) for b in range(4)))
    for reverse in (False, True):
        ds = fit_widths(load_dataset(narrow, reverse=reverse, vocab=vocab), 7, 5)
        x = np.concatenate([ds.x_train, ds.x_test])
        assert np.array_equal(x, encode_questions(ds.question_text(x), vocab, 7, reverse))
        assert ds.t_train.shape[1] == 5 and set(vocab.decode_batch(ds.t_train[:, 3:])) == {"  "}
    with pytest.raises(DoesNotFit, match="wider than the run was trained on"):
        fit_widths(load_dataset(wide, vocab=vocab), 5, 5)
