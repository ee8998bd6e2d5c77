"""`tinygrad-s2s export RUN --format onnx` on small trained runs of the five zoo models: the exported
encoder and decoder steps, decoded by predict.py (NumPy and onnxruntime only), answer exactly as the
model does (greedy as `eval`/`predict`, beam search as `beam_search`) with logits within 1e-4; and the
bad inputs: a damaged checkpoint, an unknown format module, --out a file."""
import json
import subprocess
import sys

import numpy as np
import pytest
from extras import need

from tinygrad_s2s.cli import main
from tinygrad_s2s.data import load_dataset
from tinygrad_s2s.training.runfiles import load_run

import tiny_model
from near_ties import assert_same_answers, decisive_rows, sequence_scores
from zoo_cases import MODELS

pytestmark = pytest.mark.extras


def _need_export():
    need("onnx", "export")
    need("onnxruntime", "export")


@pytest.fixture(autouse=True)
def _extra():
    _need_export()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """model name -> (run directory, export directory), each exported through the command line."""
    _need_export()                 # module-scoped fixtures run before the autouse one
    out = {}
    for name in MODELS:
        folder = tmp_path_factory.mktemp(name)
        run = tiny_model.finished_run(folder, name)
        assert main(["export", str(run), "--format", "onnx", "--out", str(folder / "onnx")]) == 0
        out[name] = (run, folder / "onnx")
    return out


@pytest.mark.parametrize("name", MODELS)
def test_the_exported_model_answers_as_the_model_does(exported, name):
    from tinygrad_s2s.onnx.model import LOGITS_TOLERANCE, check_export
    from tinygrad_s2s.onnx.predict import ExportedModel
    run_dir, out = exported[name]
    run = load_run(run_dir)
    ds = load_dataset(run_dir.parent / "add.txt")
    length = run.answer_width - 1
    onnx_model = ExportedModel(out)
    # greedy: every step's ids equal, logits within 1e-4 (raises otherwise), on the whole test split
    assert check_export(run.model, run.start_id, out, ds.x_test) <= LOGITS_TOLERANCE
    # exact answers where no near-tie makes them depend on the runtime's rounding (tests/helpers/near_ties.py)
    questions = [q.rstrip() for q in run.vocab.decode_batch(ds.x_test[:8])]
    _, sure = decisive_rows(run.model, ds.x_test[:8], run.start_id, length, LOGITS_TOLERANCE)
    assert_same_answers(np.array(run.predict(questions)), np.array(onnx_model.answer(questions)), sure,
                        f"{name}: answers")
    ids, scores = run.model.beam_search(ds.x_test, run.start_id, length, beam=3, nbest=2)
    got_ids, got_scores = onnx_model.beam_search(ds.x_test, 3)
    # a beam's score sums `length` log-probabilities, each within 2 x the logit tolerance of the runtime's:
    # the runtime's best answer must score within twice that of our best by our own model, and be ours
    # wherever our best leads the runner-up by more (a lone answer, -inf behind, always does)
    slack = 2 * 2 * LOGITS_TOLERANCE * length
    np.testing.assert_allclose(sequence_scores(run.model, ds.x_test, run.start_id, got_ids), scores[:, 0],
                               rtol=0, atol=slack)
    clear = ~(scores[:, 0] - scores[:, 1] <= slack)
    np.testing.assert_array_equal(got_ids[clear], ids[clear, 0], err_msg=f"{name}: best beam")
    np.testing.assert_allclose(got_scores, scores[:, 0], atol=1e-4)
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"] == name and meta["vocab"] == run.vocab.chars and meta["start_id"] == run.start_id


def test_predict_runs_standalone_without_the_library(exported, tmp_path):
    """The copied predict.py imports neither tinygrad_s2s nor anything but NumPy and onnxruntime."""
    run_dir, out = exported["attention"]
    script = tmp_path / "run_predict.py"
    script.write_text("import runpy, sys\n"
                      "sys.argv = sys.argv[1:]\ntry:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
                      "except SystemExit as e:\n    assert not e.code, e.code\n"
                      "print('LOADED', sorted(m for m in sys.modules if m.startswith('tinygrad_s2s')))\n")
    res = subprocess.run([sys.executable, str(script), str(out / "predict.py"), str(out), "16+75", "1+2", "--beam", "2"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert "16+75 -> " in res.stdout and "LOADED []" in res.stdout
    run = load_run(run_dir)
    beam = run.model.beam_search(run.encode_questions(["16+75", "1+2"]), run.start_id, run.answer_width - 1,
                                 beam=2)[0][:, 0]
    want = [a.rstrip() for a in run.vocab.decode_batch(beam)]
    assert [line.split(" -> ")[1] for line in res.stdout.splitlines()[:2]] == want
    res = subprocess.run([sys.executable, "-m", "tinygrad_s2s.onnx.predict", str(out), "16+7x"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 1 and "predict: error: question '16+7x': the character 'x' is not in the vocabulary" \
        in res.stderr


def test_export_errors_are_clear(exported, tmp_path, capsys):
    run_dir, _ = exported["seq2seq"]
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes((run_dir / "best.npz").read_bytes()[:300])
    assert main(["export", str(damaged), "--format", "onnx", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "damaged.npz" in err and "Traceback" not in err
    (tmp_path / "file").write_text("")
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_the_whole_split_script_records_the_exported_accuracy_beside_evals(exported, tmp_path):
    from paths import REPO_ROOT
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import export_check
    run_dir, _ = exported["peeky"]
    (tmp_path / "export.md").write_text("# Export results\n\n## PyTorch\n\nkept\n\n## ONNX\n\nreplaced\n")
    assert export_check.main([str(run_dir), "--beam", "2", "--write", str(tmp_path / "export.md")]) == 0
    page = (tmp_path / "export.md").read_text()
    assert "## PyTorch\n\nkept\n" in page and "replaced" not in page and page.count("## ONNX") == 1
    row = next(line for line in page.splitlines() if line.startswith("| peeky")).split(" | ")
    assert row[3] == row[4] and row[5] == "0" and row[7].split()[0] == row[8] and row[-1] == "0 |"
    assert "Command: `" in page and "onnxruntime" in page


def test_the_export_guides_python_blocks_run(tmp_path, monkeypatch):
    """docs/guide/export.md's blocks need the extra, so test_doc_examples leaves them to this test."""
    import re
    import runpy

    from paths import REPO_ROOT
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "docs" / "guide" / "export.md").read_text(), re.S)
    assert len(blocks) == 3 and all(b.startswith("# needs the export extra") for b in blocks)
    for i, code in enumerate(blocks):
        path = tmp_path / f"block{i}.py"
        path.write_text(code)
        runpy.run_path(str(path), run_name="__main__")


def test_both_formats_through_the_command_and_neither_writes_over_the_other(exported, tmp_path, capsys):
    """--format torch beside --format onnx: each writes its own files, re-exports over its own earlier
    export (an ONNX export's extra decoder steps removed), and refuses the other's directory untouched."""
    need("safetensors", "export")
    run_dir, onnx_dir = exported["seq2seq"]
    torch_dir = tmp_path / "torch"
    assert main(["export", str(run_dir), "--format", "torch", "--out", str(torch_dir)]) == 0
    assert sorted(p.name for p in torch_dir.iterdir()) == ["config.json", "model.py", "model.safetensors"]
    capsys.readouterr()
    for fmt, out, other in (("onnx", torch_dir, "a PyTorch"), ("torch", onnx_dir, "an ONNX")):
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) != 0
        assert "did not write" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before, f"--format {fmt} touched {other} export"
    again = tmp_path / "again"
    import shutil
    shutil.copytree(onnx_dir, again)
    (again / "decoder_step7.onnx").write_bytes((again / "decoder_step0.onnx").read_bytes())  # a longer export's
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(again)]) == 0
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in onnx_dir.iterdir())


def test_predict_pads_and_reverses_questions_as_training_did(exported, tmp_path):
    import shutil

    from tinygrad_s2s.data.datasets import encode_questions
    from tinygrad_s2s.onnx.predict import ExportedModel
    run_dir, out = exported["seq2seq"]
    run = load_run(run_dir)
    copy = shutil.copytree(out, tmp_path / "reversed")
    meta = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps(dict(meta, reverse=True)))
    questions = ["16+75", "1+2", "999+999"]
    for directory, reverse in ((out, False), (copy, True)):
        np.testing.assert_array_equal(ExportedModel(directory).encode_questions(questions),
                                      encode_questions(questions, run.vocab, run.question_width, reverse))
