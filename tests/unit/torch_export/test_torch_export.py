"""PyTorch export (tinygrad_s2s.torch_export): each zoo model, trained for one epoch at tiny sizes, exported
and loaded back through the exported model.py gives our logits within 1e-5 (float32), our greedy answers
exactly, our loss; PyTorch continues training it; bad runs and output directories are clear errors."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import tiny_model
from extras import need
from near_ties import assert_same_answers, decisive_rows
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.data import load_dataset
from tinygrad_s2s.serialization import CheckpointError
from tinygrad_s2s.torch_export import EXPORTABLE, ConversionError, ExportError, export_run, torch_state
from tinygrad_s2s.training.runfiles import load_run

pytestmark = pytest.mark.extras

# dropout on where the model has it: it must be off in eval mode and on (same places) in training
MODEL_ARGS = {"deep_lstm": {"layers": 2, "dropout": 0.1}, "transformer": {"layers": 2, "heads": 2, "dropout": 0.1}}
TOLERANCE = 1e-5      # float32 logits (our float32 run against PyTorch's float32 kernels)


def import_exported(directory, name: str):
    """The exported model.py of `directory` as a module of its own (several exports in one process)."""
    spec = importlib.util.spec_from_file_location(f"exported_{name}", directory / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (Run, the exported directory, its model.py module, the test split) for the five models."""
    need("torch", "bench")
    need("safetensors", "export")
    found = {}
    for name in EXPORTABLE:
        folder = tmp_path_factory.mktemp(name)
        run_dir = tiny_model.finished_run(folder, name, **MODEL_ARGS.get(name, {}))
        files = export_run(run_dir, folder / "torch")
        assert sorted(f.name for f in files) == ["config.json", "model.py", "model.safetensors"]
        assert all(f.is_file() for f in files)
        found[name] = (load_run(run_dir), folder / "torch", import_exported(folder / "torch", name),
                       load_dataset(folder / "add.txt"))
    return found


@pytest.mark.parametrize("name", EXPORTABLE)
def test_exported_model_gives_our_logits_loss_and_greedy_answers(exported, name):
    torch = need("torch", "bench")
    run, out, module, ds = exported[name]
    m = module.load(out)
    assert not m.training and next(m.parameters()).dtype == torch.float32
    xs, ts = ds.x_test, ds.t_test
    ours = run.model.logits(xs, ts[:, :-1]).numpy()
    theirs = m(torch.from_numpy(xs), torch.from_numpy(ts[:, :-1])).detach().numpy()
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=TOLERANCE)
    with torch.no_grad():
        assert float(m.loss(torch.from_numpy(xs), torch.from_numpy(ts))) == pytest.approx(
            float(run.model(xs, ts).item()), abs=TOLERANCE)
    # exact answers where no near-tie makes them depend on the library's rounding (tests/helpers/near_ties.py)
    ids, decisive = decisive_rows(run.model, xs, run.start_id, run.answer_width - 1, TOLERANCE)
    assert_same_answers(ids, m.generate(torch.from_numpy(xs)).numpy(), decisive, f"{name}: greedy ids")
    questions = ["16+75", "1+1", "999+9"]
    _, sure = decisive_rows(run.model, m.encode(questions).numpy(), run.start_id, run.answer_width - 1, TOLERANCE)
    assert_same_answers(np.array(run.predict(questions)), np.array(m.answer(questions)), sure, f"{name}: answers")


@pytest.mark.parametrize("name", EXPORTABLE)
def test_pytorch_continues_training_the_exported_model(exported, name):
    torch = need("torch", "bench")
    run, out, module, ds = exported[name]
    m = module.load(out).train()
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    xs, ts = torch.from_numpy(ds.x_train[:64]), torch.from_numpy(ds.t_train[:64])
    with torch.no_grad():
        before = float(m.eval().loss(xs, ts))
    m.train()
    for _ in range(15):
        opt.zero_grad()
        loss = m.loss(xs, ts)
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(m.eval().loss(xs, ts))
    assert after < before - 0.05, (before, after)
    frozen = [p for n, p in m.named_parameters() if "bias_hh" in n]      # the book's LSTM has one bias
    assert all(not p.requires_grad and not p.any() for p in frozen)
    # saved and loaded again, it is the model that was trained
    module.save(m, out.parent / "continued")
    again = import_exported(out.parent / "continued", name + "_again").load(out.parent / "continued")
    with torch.no_grad():
        assert float(again.loss(xs, ts)) == pytest.approx(after, abs=1e-6)


def test_dropout_is_on_in_train_mode_only(exported):
    torch = need("torch", "bench")
    run, out, module, ds = exported["transformer"]
    m = module.load(out)
    xs, ts = torch.from_numpy(ds.x_test[:8]), torch.from_numpy(ds.t_test[:8, :-1])
    with torch.no_grad():
        assert torch.equal(m(xs, ts), m(xs, ts))
        m.train()
        assert not torch.equal(m(xs, ts), m(xs, ts))


def test_exported_config_describes_the_run(exported):
    import json
    run, out, _, _ = exported["attention"]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "attention" and config["model_config"] == run.model.config
    assert config["vocab"] == "".join(run.vocab.chars) and config["vocab"][config["start_id"]] == "_"
    assert (config["question_width"], config["answer_width"], config["reverse"]) == (
        run.question_width, run.answer_width, run.reverse)
    assert config["decoding"] == {"method": "greedy", "start_id": run.start_id, "max_len": run.answer_width - 1}
    assert config["dtype"] == "float32"


def test_export_needs_no_torch(exported, tmp_path, monkeypatch):
    run, _, _, _ = exported["seq2seq"]
    monkeypatch.setitem(sys.modules, "torch", None)          # `import torch` now fails
    files = export_run(run.run_dir, tmp_path / "out")
    assert {f.name for f in files} == {"config.json", "model.py", "model.safetensors"}


def test_missing_safetensors_names_the_extra(exported, tmp_path, monkeypatch):
    run, _, _, _ = exported["seq2seq"]
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match=r"tinygrad-s2s\[export\]"):
        export_run(run.run_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_damaged_checkpoint_is_a_clear_error(exported, tmp_path):
    import shutil
    run, _, _, _ = exported["peeky"]
    damaged = tmp_path / "run"
    shutil.copytree(run.run_dir, damaged)
    for name in ("best.npz", "last.npz"):
        data = (damaged / name).read_bytes()
        (damaged / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="best.npz"):
        export_run(damaged, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_diverged_run_is_refused(exported, tmp_path):
    import tinygrad_s2s.serialization as ser
    run, _, _, _ = exported["seq2seq"]
    state, meta = ser.load(run.checkpoint, return_meta=True)
    state["decoder.affine.bias"][0] = np.nan
    ser.save(state, tmp_path / "nan.npz", meta=meta)
    with pytest.raises(FloatingPointError, match=r"nan\.npz.*'decoder\.affine\.bias'"):
        export_run(tmp_path / "nan.npz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_model_names_it_and_what_can_be_exported(tmp_path):
    need("safetensors", "export")
    run_dir = tiny_model.finished_run(tmp_path)           # the tests' own plugin, 'tiny-s2s'
    with pytest.raises(ExportError, match=r"'tiny-s2s'.*seq2seq, peeky, attention, deep_lstm, transformer"):
        export_run(run_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_directory_is_checked(exported, tmp_path):
    run, out, _, _ = exported["seq2seq"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_run(run.run_dir, tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match=r"notes\.txt"):
        export_run(run.run_dir, tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="does not exist"):
        export_run(run.run_dir, tmp_path / "dangling")
    # an earlier export is replaced
    again = export_run(run.run_dir, tmp_path / "twice")
    assert export_run(run.run_dir, tmp_path / "twice") == again


def test_loading_refuses_a_directory_that_is_not_an_export(exported, tmp_path):
    _, out, module, _ = exported["seq2seq"]
    (tmp_path / "config.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a tinygrad-s2s PyTorch export"):
        module.load(tmp_path)


def test_a_layer_without_a_pytorch_counterpart_is_named():
    class WithGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(5, 3)
            self.rnn = nn.GRU(3, 4)

    with pytest.raises(ConversionError, match=r"'rnn\.Wx'.*GRU"):
        torch_state(WithGRU())


@settings(max_examples=10, deadline=None)
@given(D=st.integers(1, 5), H=st.integers(1, 5), T=st.integers(1, 4), bidirectional=st.booleans())
def test_lstm_gate_mapping_matches_torch(D, H, T, bidirectional):
    """Our LSTM (book gates f, g, i, o; x @ Wx) and nn.LSTM given the converted weights agree."""
    torch = need("torch", "bench")
    ours = nn.LSTM(D, H, bidirectional=bidirectional)
    for p in ours.parameters():        # the biases start at zero: make them count
        p.data[...] = np.random.default_rng(D * 7 + H).normal(size=p.shape)
    theirs = torch.nn.LSTM(D, H, batch_first=True, bidirectional=bidirectional)
    state = {k: torch.from_numpy(v) for k, v in torch_state(ours).items()}
    theirs.load_state_dict({**state, **{k: torch.zeros_like(v) for k, v in theirs.state_dict().items()
                                        if k.startswith("bias_hh")}})
    x = np.random.default_rng(T).normal(size=(2, T, D)).astype(np.float32)
    out, (h, c) = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), ours(tg.Tensor(x)).numpy(), atol=1e-5)
    np.testing.assert_allclose(h.detach().numpy()[0], ours.h.numpy()[:, :H], atol=1e-5)
    np.testing.assert_allclose(c.detach().numpy()[0], ours.c.numpy()[:, :H], atol=1e-5)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_pytorch_trains_as_we_do_from_the_same_weights(name):
    """Five steps of loss, backward, clipping and Adam in float64 give the same losses on both sides (no
    dropout: the two draw different masks), so gradients and the single LSTM bias match too."""
    torch = need("torch", "bench")
    from tinygrad_s2s.torch_export import torch_model
    tg.manual_seed(1)
    args = {k: v for k, v in MODEL_ARGS.get(name, {}).items() if k != "dropout"}
    with tg.default_dtype(np.float64):
        ours = tg.create_model(name, 9, wordvec_size=4, hidden_size=8, **args)
    twin = torch_model.from_weights(name, ours.config, {k: torch.from_numpy(v) for k, v in torch_state(ours).items()})
    rng = np.random.default_rng(2)
    xs, ts = rng.integers(0, 9, (6, 5)), rng.integers(0, 9, (6, 4))
    opt_ours = tg.optim.Adam(ours.parameters(), lr=0.01)
    opt_twin = torch.optim.Adam([p for p in twin.train().parameters() if p.requires_grad], lr=0.01)
    losses = []
    for _ in range(5):
        opt_ours.zero_grad()
        opt_twin.zero_grad()
        loss, loss_t = ours(xs, ts), twin.loss(torch.from_numpy(xs), torch.from_numpy(ts))
        loss.backward()
        loss_t.backward()
        tg.optim.clip_grad_norm(ours.parameters(), 0.5)
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5)
        opt_ours.step()
        opt_twin.step()
        losses.append((float(loss.item()), float(loss_t.item())))
    np.testing.assert_allclose(*zip(*losses), rtol=1e-9)
