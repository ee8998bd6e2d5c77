"""Loading damaged, foreign and hostile checkpoints: every failure is one line naming the file and what
is wrong, never NumPy's advice to enable pickle, and nothing is allocated beyond what the file holds
(a zip bomb member is refused from the archive's directory, before it is decompressed)."""
import io
import json
import re
import tracemalloc
import zipfile

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.training import runfiles
from tinygrad_s2s.cli import main
from tinygrad_s2s.serialization import CheckpointError, read_header
from tinygrad_s2s.training.trainer import load_run

import tiny_model  # registers 'tiny-s2s'; finished_run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real training checkpoint (tiny model, one epoch on 300 addition examples)."""
    return tiny_model.finished_run(tmp_path_factory.mktemp("ckpt")) / "last.npz"


def assert_one_line_error(exc_info, path, *words):
    msg = str(exc_info.value)
    assert "\n" not in msg and str(path) in msg and "pickle" not in msg, msg
    for w in words:
        assert w in msg, msg


def members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_members(path, files: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def npy(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def edited(checkpoint, tmp_path, edit_header=None, edit_meta=None, name="edited.npz"):
    """A copy of the checkpoint whose JSON header (or meta) was changed by hand."""
    files = members(checkpoint)
    header = json.loads(np.load(io.BytesIO(files["__header__.npy"])).tobytes())
    if edit_meta:
        edit_meta(header["meta"])
    if edit_header:
        header = edit_header(header)
    files["__header__.npy"] = npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return write_members(tmp_path / name, files)


# ---------------------------------------------------------------- files that are not checkpoints
@pytest.mark.parametrize("content, words", [
    (b"", ["the file is empty"]),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), ["is not a tinygrad-s2s checkpoint"]),
    (b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (3,), }" + b" " * 50 + b"\n",
     ["is not a tinygrad-s2s checkpoint"]),         # a pickled-object .npy: never NumPy's allow_pickle advice
])
def test_empty_random_and_foreign_files(tmp_path, content, words):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    for load in (tg.load, load_run, runfiles.load_checkpoint):
        with pytest.raises(ValueError) as err:
            load(path)
        assert_one_line_error(err, path, *words)


def test_a_directory_and_a_plain_npz(tmp_path):
    with pytest.raises(CheckpointError) as err:
        tg.load(tmp_path)
    assert_one_line_error(err, tmp_path, "is a directory")
    np.savez(tmp_path / "plain.npz", w=np.ones(2))
    with pytest.raises(CheckpointError) as err:
        tg.load(tmp_path / "plain.npz")
    assert_one_line_error(err, tmp_path / "plain.npz", "no '__header__.npy'")


def test_every_truncation_of_a_checkpoint_is_a_clear_error(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    cuts = sorted({1, 4, 30, 100, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 22, len(data) - 1}
                  | set(range(0, len(data), max(1, len(data) // 40))))
    for cut in cuts:
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as err:
            tg.load(path)
        assert_one_line_error(err, path)
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        tg.load(path)


def test_a_flipped_byte_in_the_weights_is_caught_by_the_crc(checkpoint, tmp_path):
    data = bytearray(checkpoint.read_bytes())
    with zipfile.ZipFile(checkpoint) as z:
        info = z.getinfo("a0.npy")
    data[info.header_offset + 30 + len("a0.npy") + 200] ^= 0xFF    # inside a0's stored data
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as err:
        tg.load(path)
    assert_one_line_error(err, path, "a0.npy", "CRC")


# ---------------------------------------------------------------- hand-edited headers and metadata
@pytest.mark.parametrize("edit, words", [
    (lambda h: dict(h, version="2"), ["version '2'", "positive integer"]),
    (lambda h: dict(h, version=7), ["newer tinygrad-s2s", "version 7"]),
    (lambda h: dict(h, format="other"), ["format 'other'"]),
    (lambda h: {k: v for k, v in h.items() if k != "names"}, ["lacks 'names'"]),
    (lambda h: dict(h, meta=[1, 2]), ["'meta' is a list"]),
    (lambda h: dict(h, shapes=h["shapes"][:-1]), ["names,", "shapes"]),
    (lambda h: dict(h, shapes=[["a"]] + h["shapes"][1:]), ["has shape ['a']"]),
    (lambda h: dict(h, dtypes=["object"] + h["dtypes"][1:]), ["dtype 'object'"]),
    (lambda h: dict(h, names=[h["names"][0]] * len(h["names"])), ["distinct"]),
    (lambda h: [h], ["JSON list"]),
])
def test_hand_edited_headers(checkpoint, tmp_path, edit, words):
    path = edited(checkpoint, tmp_path, edit_header=edit)
    for load in (tg.load, load_run, runfiles.load_checkpoint):
        with pytest.raises(CheckpointError) as err:
            load(path)
        assert_one_line_error(err, path, *words)


@pytest.mark.parametrize("text, words", [(b"{not json", ["not valid JSON"]), (b"\xff\xfe", ["not valid JSON"]),
                                         (b"[" * 100_000 + b"]" * 100_000, ["nests too deeply"])])
def test_a_header_that_is_not_json(checkpoint, tmp_path, text, words):
    files = members(checkpoint)
    files["__header__.npy"] = npy(np.frombuffer(text, dtype=np.uint8))
    path = write_members(tmp_path / "notjson.npz", files)
    with pytest.raises(CheckpointError) as err:
        tg.load(path)
    assert_one_line_error(err, path, *words)


def _drop(key):
    return lambda d: d.pop(key)


@pytest.mark.parametrize("edit, words", [
    (lambda m: m["config"].pop("vocab"), ["config lacks 'vocab'"]),
    (lambda m: m["config"].update(question_width="7"), ["'question_width' is '7'", "positive integer"]),
    (lambda m: m["config"].update(vocab="0123"), ["'vocab'", "'_'"]),
    (lambda m: m["config"].update(model=3), ["'model' is 3"]),
    (lambda m: m["config"].update(model_config=[1]), ["'model_config' is [1]"]),
    (lambda m: m["config"].update(model_config={"wordvec_size": 4, "hidden_size": 8, "colour": 1}),
     ["does not build a 'tiny-s2s' model", "colour"]),
    (lambda m: m["config"].update(reverse="yes"), ["'reverse' is 'yes'"]),
    (lambda m: m["config"].update(hidden="8"), ["its config: hidden must be a positive integer, got '8'"]),
    (lambda m: m["config"].update(lr=-1), ["its config: lr must be a positive"]),
    (lambda m: m["config"].update(model="no-such-model"), ["does not build a 'no-such-model' model", "unknown model"]),
    (lambda m: m.update(config="peeky"), ["'config' is a str"]),
    (lambda m: m.pop("config"), ["bare weights file"]),
])
def test_hand_edited_config_fails_loading_and_resuming(checkpoint, tmp_path, edit, words):
    path = edited(checkpoint, tmp_path, edit_meta=edit)
    with pytest.raises(CheckpointError) as err:
        load_run(path)
    assert_one_line_error(err, path, *words)
    if "does not build" not in words[0]:
        with pytest.raises(CheckpointError) as err:
            runfiles.load_checkpoint(path)
        assert_one_line_error(err, path, *words)


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.update(epoch="3"), ["'epoch' is '3'", "non-negative integer"]),
    (lambda m: m.update(step=-1), ["'step' is -1"]),
    (_drop("batch"), ["lacks 'batch'"]),
    (_drop("rng"), ["lacks 'rng'"]),
    (lambda m: m.update(history={"a": 1}), ["'history'"]),
    (lambda m: m["optimizer"].update(slots={"m": "many"}), ["'optimizer'"]),
])
def test_hand_edited_training_state_fails_resuming(checkpoint, tmp_path, edit, words):
    path = edited(checkpoint, tmp_path, edit_meta=edit)
    with pytest.raises(CheckpointError) as err:
        runfiles.load_checkpoint(path)
    assert_one_line_error(err, path, *words)
    load_run(path)          # answering questions needs only the config and the weights


def test_a_header_shape_that_differs_from_the_model_is_refused_before_reading(checkpoint, tmp_path):
    def grow(h):
        h["shapes"][0] = [10 ** 9, 8]       # 8 GB of float64 claimed for the first parameter
        return h
    path = edited(checkpoint, tmp_path, edit_header=grow)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as err:
            load_run(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line_error(err, path, "[1000000000, 8]", "[13, 4]", "declares")   # before the model is built
    assert peak < 5 << 20
    with pytest.raises(CheckpointError) as err:      # tg.load: the member's own .npy header disagrees
        tg.load(path)
    assert_one_line_error(err, path, "a0.npy", "the header declares")


# ---------------------------------------------------------------- hostile members
def npy_prefix(shape, descr="<f8") -> bytes:
    """The .npy header of an array of `shape`, without its data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def header_member(names, shapes, dtypes, meta=None) -> bytes:
    header = {"format": "tinygrad-s2s", "version": 1, "names": names, "shapes": shapes, "dtypes": dtypes,
              "meta": meta or {}}
    return npy(np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def peak_memory_of(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_zip_bomb_member_is_refused_before_it_is_decompressed(tmp_path):
    """256 MiB of zeros deflated to about 250 kB, declared consistently in the header and in the
    member's own .npy header: refused from the directory, without allocating its size."""
    n = 32 << 20                                   # float64 elements: 256 MiB
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("__header__.npy", header_member(["embed.weight"], [[n]], ["float64"]),
                   compress_type=zipfile.ZIP_STORED)
        with z.open("a0.npy", "w", force_zip64=True) as f:
            f.write(npy_prefix((n,)))
            for _ in range(256):
                f.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    with zipfile.ZipFile(path) as z:               # a well-formed archive that really expands to 256 MiB
        assert z.getinfo("a0.npy").file_size > 256 << 20

    def load():
        with pytest.raises(CheckpointError) as err:
            tg.load(path)
        assert_one_line_error(err, path, "a0.npy", "compressed")
    assert peak_memory_of(load) < 4 << 20


@pytest.mark.parametrize("declared, member, words", [
    ([10 ** 8], npy(np.ones(3)), ["a0.npy", "float64 [3]", "declares float64 [100000000]"]),
    ([10 ** 8], npy_prefix((10 ** 8,)) + bytes(24), ["a0.npy", "800,000,000 bytes", "holds 24"]),
    ([3], npy_prefix((3,), "|O") + bytes(24), ["a0.npy", "dtype 'object'"]),
    ([3], npy_prefix((-1, -3)) + bytes(24), ["a0.npy", "negative shape [-1, -3]"]),
])
def test_members_that_claim_more_than_they_hold(tmp_path, declared, member, words):
    path = write_members(tmp_path / "liar.npz", {"__header__.npy": header_member(["w"], [declared], ["float64"]),
                                                  "a0.npy": member})

    def load():
        with pytest.raises(CheckpointError) as err:
            tg.load(path)
        assert_one_line_error(err, path, *words)
    assert peak_memory_of(load) < 4 << 20


def test_members_pointing_at_the_same_bytes_are_refused(tmp_path):
    """Directory entries may overlap: 50 names over one stored block would claim 50 times the file."""
    block = npy(np.ones(10_000))
    path = write_members(tmp_path / "overlap.npz", {
        "__header__.npy": header_member([f"w{i}" for i in range(50)], [[10_000]] * 50, ["float64"] * 50),
        "a0.npy": block})
    with zipfile.ZipFile(path, "a") as z:          # 49 more directory entries, all pointing at a0's data
        first = z.getinfo("a0.npy")
        for i in range(1, 50):
            info = zipfile.ZipInfo(f"a{i}.npy")
            for attr in ("compress_type", "file_size", "compress_size", "CRC", "header_offset"):
                setattr(info, attr, getattr(first, attr))
            z.filelist.append(info)
            z.NameToInfo[info.filename] = info
        z._didModify = True
    with pytest.raises(CheckpointError) as err:
        tg.load(path)
    assert_one_line_error(err, path, "overlap")


def test_read_header_reads_no_arrays_and_round_trips(checkpoint):
    header = read_header(checkpoint)
    assert header["names"] == list(tg.load(checkpoint))
    assert header["meta"]["config"]["model"] == "tiny-s2s"


def test_fortran_ordered_arrays_load(tmp_path):
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    tg.save({"w": a}, tmp_path / "f.npz")
    np.testing.assert_array_equal(tg.load(tmp_path / "f.npz")["w"], a)


def test_the_command_line_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys):
    path = tmp_path / "random.npz"
    path.write_bytes(bytes(range(256)) * 4)
    assert main(["predict", str(path), "1+2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "pickle" not in err


@pytest.mark.parametrize("state, words", [
    ({"s": "x"}, "'s' is a str, not an array"), ({"x": None}, "'x' is a NoneType, not an array"),
    ({"d": {"b": np.ones(2)}}, "'d' is a dict, not an array; save writes a flat dict of numeric arrays"),
    ({"o": np.array([1, None])}, "'o' has dtype object; save writes numeric arrays only"),
    ({"u": np.array(["a"])}, "'u' has dtype <U1"), ({1: np.ones(2)}, "key 1 is a int; the names of arrays are strings"),
])
def test_save_refuses_what_load_could_not_read_and_writes_nothing(tmp_path, state, words):
    """Such dicts were saved without complaint, and load then refused the file: lost work."""
    with pytest.raises(TypeError, match=re.escape("save: " + words)):
        tg.save(state, tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())
    tg.save({"ok": [1, 2], "flag": True, "z": np.array([1j])}, tmp_path / "y.npz")
    assert list(tg.load(tmp_path / "y.npz")) == ["ok", "flag", "z"]
