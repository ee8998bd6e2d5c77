"""Decoding and the plugin contract on the command line: predict --beam/--nbest/--json with scores,
eval --beam, --top-k/--top-p with --sample, attention-map --beam, and `check MODEL`."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.cli import main
from cli_errors import one_error_line
from tinygrad_s2s.training.evaluation import evaluate
from tinygrad_s2s.training.fingerprint import dataset_of
from tinygrad_s2s.training.trainer import load_run
from tinygrad_s2s.models.decoding import log_softmax
from paths import HELPERS

SMALL = ["--dataset", "addition", "--limit", "300", "--test-limit", "50", "--hidden", "8", "--wordvec", "4"]
QUESTIONS = ["77+85", "5+5", "123+4"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("decode-cli")
    for model in ("seq2seq", "attention"):
        r = cli(work, "train", model, *SMALL, "--epochs", "1", "--out", f"runs/{model}", "--no-progress")
        assert r.returncode == 0, r.stderr
    return work


def cli(work, *args):
    env = dict(os.environ, TINYGRAD_S2S_DATA=str(work / "datasets"), PYTHONWARNINGS="ignore",
               PYTHONIOENCODING="utf-8", TINYGRAD_S2S_DEBUG="")
    return subprocess.run([sys.executable, "-m", "tinygrad_s2s", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)


def test_predict_beam_nbest_json_gives_scored_hypotheses(work):
    r = cli(work, "predict", "runs/seq2seq", *QUESTIONS, "--beam", "5", "--nbest", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["beam"] == 5 and out["nbest"] == 3 and len(out["predictions"]) == 3
    run = load_run(work / "runs" / "seq2seq")
    x = run.encode_questions(QUESTIONS)
    for i, p in enumerate(out["predictions"]):
        hyps = p["hypotheses"]
        assert p["question"] == QUESTIONS[i] and len(hyps) == 3 and p["answer"] == hyps[0]["answer"]
        scores = [h["score"] for h in hyps]
        assert scores == sorted(scores, reverse=True) and len({h["answer"] for h in hyps}) >= 1
        # each score is the run's own teacher-forced log-likelihood of that (padded) answer
        for h in hyps:
            ids = run.vocab.encode([h["answer"].ljust(run.answer_width - 1)])
            ts_in = np.concatenate([[[run.start_id]], ids[:, :-1]], axis=1)
            with tg.no_grad():
                logp = log_softmax(run.model.logits(x[i:i + 1], ts_in))[0]
            assert logp[np.arange(ids.shape[1]), ids[0]].sum() == pytest.approx(h["score"], rel=1e-4, abs=1e-5)
    r = cli(work, "predict", "runs/seq2seq", *QUESTIONS, "--beam", "5", "--nbest", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6 and lines[0].startswith("77+85 -> ") and "(log p -" in lines[1]


def test_an_empty_answer_is_shown_not_blank(work):
    """Seen: an answer of padding only printed as a blank ('16+75 -> ', an empty --nbest row). A run
    whose decoder always says the padding space shows it as (empty); --json keeps ''."""
    shutil.copytree(work / "runs" / "seq2seq", work / "runs" / "silent")
    best = work / "runs" / "silent" / "best.npz"
    state, meta = tg.load(best, return_meta=True)
    pad = load_run(best).vocab.char_to_id[" "]
    state["decoder.affine.weight"][:] = 0
    state["decoder.affine.bias"][:] = np.arange(len(state["decoder.affine.bias"])) * 0.01  # runners-up differ
    state["decoder.affine.bias"][pad] = 5
    tg.save(state, best, meta=meta)
    r = cli(work, "predict", "runs/silent", "16+75", "1+2")
    assert r.returncode == 0 and r.stdout == "16+75 -> (empty)\n1+2   -> (empty)\n", r.stderr
    assert json.loads(cli(work, "predict", "runs/silent", "16+75", "--json").stdout)["predictions"][0]["answer"] == ""
    r = cli(work, "predict", "runs/silent", "16+75", "--beam", "3", "--nbest", "3")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 3 and lines[0].startswith("16+75 -> (empty)  (log p "), r.stdout
    assert all(line.split("(log p")[0].strip() for line in lines[1:])   # no blank row
    r = cli(work, "eval", "runs/silent", "--limit", "2", "--show", "1")
    assert r.returncode == 0 and " -> (empty)  (expected " in r.stdout.splitlines()[1], r.stdout


def test_eval_beam_reports_the_beam_accuracy(work):
    r = cli(work, "eval", "runs/seq2seq", "--beam", "5", "--json", "--show", "2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["beam"] == 5 and "beam-5 accuracy" in r.stderr
    run = load_run(work / "runs" / "seq2seq")
    os.environ["TINYGRAD_S2S_DATA"], old = str(work / "datasets"), os.environ.get("TINYGRAD_S2S_DATA")
    try:
        ds = dataset_of(dict(run.config, limit=None, test_limit=None))
    finally:
        if old is None:
            del os.environ["TINYGRAD_S2S_DATA"]
        else:
            os.environ["TINYGRAD_S2S_DATA"] = old
    assert out["accuracy"] == evaluate(run.model, ds.x_test, ds.t_test, run.start_id, beam=5)


def test_top_k_one_samples_greedy_and_top_p_samples(work):
    greedy = json.loads(cli(work, "predict", "runs/seq2seq", *QUESTIONS, "--json").stdout)["predictions"]
    r = cli(work, "predict", "runs/seq2seq", *QUESTIONS, "--sample", "--top-k", "1", "--temperature", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["predictions"] == greedy
    r = cli(work, "predict", "runs/seq2seq", *QUESTIONS, "--sample", "--top-p", "0.9", "--seed", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["top_p"] == 0.9


@pytest.mark.parametrize("flags,code,words", [
    (["--top-k", "2"], 2, ["--top-k only applies with --sample"]),
    (["--top-p", "0.5"], 2, ["--top-p only applies with --sample"]),
    (["--seed", "3"], 2, ["--seed only applies with --sample"]),
    (["--nbest", "3"], 2, ["--nbest 3 needs --beam of at least 3"]),
    (["--sample", "--beam", "3"], 2, ["cannot be combined with --beam"]),
])
def test_predict_flag_errors(work, flags, code, words):
    one_error_line(cli(work, "predict", "runs/seq2seq", "1+1", *flags), code, *words)


def test_top_p_outside_the_unit_interval_is_a_usage_error(work):
    r = cli(work, "predict", "runs/seq2seq", "1+1", "--sample", "--top-p", "1.5")   # argparse: usage, then the error
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].endswith(
        "argument --top-p: expected a number in (0, 1], got '1.5'")


def test_beam_on_a_model_without_beam_search_is_a_clear_error(work, monkeypatch, capsys):
    tests = str(HELPERS)
    monkeypatch.syspath_prepend(tests)
    import tiny_model  # noqa: F401 - registers tiny-s2s (greedy generate only)
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(work / "datasets"))
    monkeypatch.chdir(work)
    assert main(["train", "tiny-s2s", *SMALL, "--epochs", "1", "--out", "runs/tiny", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", "runs/tiny", "1+1", "--beam", "3"]) == 1
    assert "has no beam_search: subclass tinygrad_s2s.models.Seq2seqModel" in capsys.readouterr().err
    assert main(["eval", "runs/tiny", "--beam", "3"]) == 1
    assert "its generate takes no beam" in capsys.readouterr().err


def test_attention_map_draws_the_beam_answer(work):
    r = cli(work, "attention-map", "runs/attention", "77+85", "--beam", "4", "--out", "beam.png")
    assert r.returncode == 0, r.stderr
    assert (work / "beam.png").stat().st_size > 1000


def test_check_command(work, capsys):
    r = cli(work, "check", "seq2seq", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["passed"][-1] == "draws"
    assert main(["check", "transformer", "--model-arg", "layers=1", "--no-device"]) == 0
    out = capsys.readouterr().out
    assert "ok  round trip:" in out and "device" not in out.split("round trip")[1].split("\n")[1]
    assert "check transformer: OK, 9 contract items" in out
    assert main(["check", "transformer", "--model-arg", "heads=3"]) == 2     # a value the model refuses
    assert ("--model-arg: model 'transformer' cannot be built with {'heads': 3} at the check's sizes: "
            "ValueError:") in capsys.readouterr().err
    assert main(["check", "deep_lstm", "--model-arg", "layerz=2"]) == 2        # the user's typo, not the model's
    assert ("--model-arg: model 'deep_lstm' takes no argument 'layerz' (its own arguments: layers, dropout, "
            "fused)") in capsys.readouterr().err


@tg.register_model("test-cli-broken")
def broken_factory(vocab_size, wordvec_size=4, hidden_size=8):
    """A model whose loss is per example, not the mean."""
    class PerExample(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tg.nn.Embedding(vocab_size, wordvec_size)

        def forward(self, xs, ts):
            return tg.sum(self.embed(xs), axis=(1, 2))
    return PerExample()


def test_check_names_the_broken_item_in_one_line(capsys):
    assert main(["check", "test-cli-broken"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "model 'test-cli-broken' breaks the plugin contract (loss)" in err[0]
    assert main(["check", "no-such-model"]) == 2
