"""Run files a user (or another process) may have planted or changed: a link under the lock's name is
refused and its target kept; a checkpoint is read from one open file; the sizes its header gives are
checked against the arrays it holds before anything is built; duplicate members, an edited batch or
optimizer slot count, a config.json that is not an object and a damaged best.npz are named errors."""
import io
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.cli import main
from tinygrad_s2s.serialization import CheckpointError, read_header
from tinygrad_s2s.training import rundir, runfiles
from tinygrad_s2s.training.trainer import Trainer, load_run

import tiny_model  # registers 'tiny-s2s'; finished_run


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished run (tiny model, one epoch on 300 addition examples): best.npz equals last.npz."""
    return tiny_model.finished_run(tmp_path_factory.mktemp("base"))


@pytest.fixture
def run(base, tmp_path):
    """A copy of the finished run to spoil."""
    shutil.copytree(base, tmp_path / "run")
    return tmp_path / "run"


def with_meta(path, edit=None, edit_header=None, out=None):
    """Rewrite checkpoint `path` (to `out`) with its JSON header edited by hand, arrays untouched."""
    with zipfile.ZipFile(path) as z:
        files = {i.filename: z.read(i) for i in z.infolist()}
    header = json.loads(np.load(io.BytesIO(files["__header__.npy"])).tobytes())
    if edit:
        edit(header["meta"])
    if edit_header:
        edit_header(header)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    files["__header__.npy"] = buf.getvalue()
    out = out or path
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


# ---------------------------------------------------------------- item 1: the lock never follows a link
@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_planted_lock_link_is_refused_and_its_target_kept(run, tmp_path, capsys, kind):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    (os.symlink if kind == "symlink" else os.link)(notes, run / ".lock")
    with pytest.raises(rundir.RunDirError, match=r"\.lock is"):
        with rundir.locked(run):
            pass
    assert main(["eval", str(run), "--show", "0"]) == 2
    err = capsys.readouterr().err
    assert ".lock" in err and err.count("\n") == 1
    assert notes.read_text() == "notes\n"
    assert rundir.holder(run) is None        # probing a planted lock neither writes nor fails


def test_a_planted_lock_link_is_refused_by_resume_and_overwrite(run, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    os.symlink(notes, run / ".lock")
    dataset = json.loads((run / "config.json").read_text())["dataset_path"]
    for args in (["train", "--resume", "--out", str(run), "--no-progress"],
                 ["train", "tiny-s2s", "--dataset", dataset, "--out", str(run),
                  "--overwrite", "--no-progress", "--epochs", "1"]):
        assert main(args) == 2, capsys.readouterr()
        assert ".lock is a symbolic link" in capsys.readouterr().err
    assert notes.read_text() == "notes\n"


def test_atomic_writes_replace_a_planted_link_never_its_target(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    (run / "metrics.csv").unlink()
    os.symlink(notes, run / "metrics.csv")
    runfiles.write_metrics(run, [])
    assert notes.read_text() == "notes\n" and not (run / "metrics.csv").is_symlink()


def test_out_as_a_dangling_link_is_a_usage_error(tmp_path, capsys):
    os.symlink(tmp_path / "nowhere", tmp_path / "out")
    assert main(["train", "tiny-s2s", "--out", str(tmp_path / "out"), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "File exists" not in err


# ---------------------------------------------------------------- item 2: one open file
def test_load_run_takes_config_and_weights_from_one_file(run, monkeypatch):
    ckpt = run / "best.npz"
    state, meta = tg.load(ckpt, return_meta=True)
    other = run.parent / "other.npz"
    tg.save({k: v + 1 for k, v in state.items()}, other, meta=meta)
    build = runfiles.build_model

    def build_then_replace(config):     # a concurrent `train --overwrite` replaces the file meanwhile
        model = build(config)
        os.replace(other, ckpt)
        return model
    monkeypatch.setattr(runfiles, "build_model", build_then_replace)
    loaded = load_run(run).model.state_dict()
    for k, v in loaded.items():
        np.testing.assert_array_equal(v, state[k])


# ---------------------------------------------------------------- item 3: sizes checked before building
@pytest.mark.parametrize("key, value, words", [
    ("vocab_size", 10 ** 8, ["'vocab_size' is 100000000", "13 characters"]),
    ("hidden_size", 20000, ["hidden_size 20,000", "largest"]),
    ("wordvec_size", 10 ** 7, ["wordvec_size 10,000,000", "largest"])])
def test_header_sizes_must_match_the_arrays_before_anything_is_built(run, key, value, words, monkeypatch):
    ckpt = with_meta(run / "best.npz", lambda m: m["config"]["model_config"].__setitem__(key, value))
    monkeypatch.setattr(runfiles, "build_model", lambda c: pytest.fail("built a model the file does not hold"))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as err:
            load_run(ckpt)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 << 20
    for w in words:
        assert w in str(err.value)


def test_an_answer_width_the_run_did_not_record_is_refused(run):
    ckpt = with_meta(run / "best.npz", lambda m: m["config"].__setitem__("answer_width", 10 ** 7))
    with pytest.raises(CheckpointError, match="answer_width 10000000, the run's config.json records 5"):
        load_run(ckpt)


def test_a_batch_beyond_the_epoch_is_refused_at_resume(run):
    with_meta(run / "last.npz", lambda m: m.__setitem__("batch", 10 ** 12))
    with pytest.raises(CheckpointError, match="'batch' is 1,000,000,000,000, but an epoch of this run has 3"):
        Trainer.resume(run, log=io.StringIO(), progress=False)


# ---------------------------------------------------------------- item 4: duplicate members
def test_duplicate_member_names_are_refused(run):
    ckpt = run / "best.npz"
    with zipfile.ZipFile(ckpt) as z:
        first = z.read("a1.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # zipfile warns of the duplicate, and writes it
        with zipfile.ZipFile(ckpt, "a") as z:
            z.writestr("a1.npy", first)
    for read in (tg.load, read_header, load_run):
        with pytest.raises(CheckpointError, match="more than one member named 'a1.npy'"):
            read(ckpt)


# ---------------------------------------------------------------- clear errors
def test_an_edited_optimizer_slot_count_is_a_named_error(run):
    def more(m):
        m["optimizer"]["slots"]["m"] += 5
    with_meta(run / "last.npz", more)
    with pytest.raises(CheckpointError, match="slots .* do not match the optimizer arrays it holds .missing optim/m/"):
        runfiles.load_checkpoint(run / "last.npz")


@pytest.mark.parametrize("text, words", [("[1, 2]\n", "holds a JSON list"), ("{oops", "not valid JSON")])
def test_a_config_json_that_is_not_an_object_is_a_named_error(run, capsys, text, words):
    (run / "config.json").write_text(text)
    assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "config.json" in err and words in err and "AttributeError" not in err and err.count("\n") == 1


# ---------------------------------------------------------------- item 6: a damaged best.npz at resume
def damage(path):
    """Cut the file in half, as a full disk or a copy cut short leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_a_damaged_best_is_rewritten_at_resume_when_last_holds_its_weights(run, capsys):
    damage(run / "best.npz")
    Trainer.resume(run, log=io.StringIO(), progress=False)
    assert "rewritten from last.npz" in capsys.readouterr().err
    best, last = tg.load(run / "best.npz"), tg.load(run / "last.npz")
    assert best.keys() == last.keys() and all(np.array_equal(best[k], last[k]) for k in best)
    load_run(run)       # eval and predict work again


def test_a_damaged_best_that_last_cannot_rebuild_stops_the_resume_naming_it(run):
    damage(run / "best.npz")
    with_meta(run / "last.npz", lambda m: m["history"][0].__setitem__("test_accuracy", -1.0))
    with pytest.raises(rundir.RunDirError, match="best.npz is damaged .* move it away"):
        Trainer.resume(run, log=io.StringIO(), progress=False)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
@pytest.mark.parametrize("name", ["config.json", "last.npz"])
def test_a_fifo_planted_as_a_run_file_is_not_read(tmp_path, name):
    """Reading a FIFO blocks until a writer comes: a planted one hung every command on the directory."""
    os.mkfifo(tmp_path / name)
    code = f"from tinygrad_s2s.training import rundir; print(rundir.state({str(tmp_path)!r})[0])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "foreign"
