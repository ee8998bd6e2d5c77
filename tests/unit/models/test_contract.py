"""The plugin contract: `check_model` passes every zoo model and fails, naming the contract item, for a
deliberately broken model per item; the registry records the arguments of a model without `config`;
train/eval/predict stop a broken plugin at once with the same message; the plugin guide lists every item."""
import re

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.models.contract import CONTRACT, ContractError, check_generated, check_loss
from tinygrad_s2s.testing import check_model
from zoo.seq2seq import Seq2seq
from paths import REPO_ROOT

MODELS = ["seq2seq", "peeky", "attention", "deep_lstm", "transformer"]
ROOT = REPO_ROOT


@pytest.mark.parametrize("name", MODELS)
def test_every_zoo_model_passes_the_battery(name):
    extra = {"layers": 1} if name == "transformer" else {}
    assert check_model(name, **extra) == ["factory", "loss", "gradient", "generate", "greedy", "beam",
                                          "attention", "round trip", "device", "draws"]


# ---------------------------------------------------------------- one broken model per item
class PlainModel(nn.Module):
    """A correct plugin that does not use the zoo's base: the book's seq2seq by hand, greedy only,
    no `config` (the registry records its arguments). Broken variants below override one thing."""

    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, wordvec_size)
        self.encoder = nn.LSTM(wordvec_size, hidden_size)
        self.decoder = nn.LSTM(wordvec_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def logits(self, xs, ts_in):
        self.encoder(self.embed(xs))
        return self.out(self.decoder(self.embed(ts_in), h0=self.encoder.h))

    def forward(self, xs, ts):
        return tg.softmax_cross_entropy(self.logits(xs, ts[:, :-1]), ts[:, 1:])

    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        out = np.full((len(xs), 1), start_id, dtype=np.int64)
        with tg.no_grad():
            for _ in range(length):       # re-reads the whole prefix: slow and simple
                nxt = self.logits(xs, out).numpy()[:, -1].argmax(axis=1)
                out = np.concatenate([out, nxt[:, None]], axis=1)
        return out[:, 1:]


def test_a_plain_module_plugin_passes():
    assert "round trip" in check_model(PlainModel)


class NotAModule:
    def __init__(self, **kw):
        pass


class PerExampleLoss(PlainModel):
    def forward(self, xs, ts):
        return tg.mean(tg.mean(tg.log_softmax(self.logits(xs, ts[:, :-1]), axis=-1), axis=2), axis=1)


class UnusedParameter(PlainModel):
    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.extra = nn.Linear(hidden_size, hidden_size)


class WrongBackward(tg.Function):
    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return gy            # should be 2 * gy


class WrongGradient(PlainModel):
    def forward(self, xs, ts):
        return WrongBackward.apply(super().forward(xs, ts))


class TensorAnswers(PlainModel):
    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        return tg.Tensor(super().generate(xs, start_id, length))


class FloatAnswers(PlainModel):
    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        return super().generate(xs, start_id, length).astype(np.float64)


class OneTooFew(PlainModel):
    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        return super().generate(xs, start_id, length - 1)


class AlwaysSamples(PlainModel):
    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        return tg.random.generator().integers(0, self.out.weight.shape[1], (len(xs), length))


class BeamOneIsNotGreedy(Seq2seq):
    def generate(self, xs, start_id, length, **kw):
        out = super().generate(xs, start_id, length)
        return (out + 1) % self.config["vocab_size"] if kw.get("beam") == 1 else out


class StateOnTheModel(Seq2seq):
    """Keeps its decoder state on the model, which the README forbids: greedy decoding works, beam
    search (which reorders the state of its hypotheses) cannot."""

    def decode_start(self, xs):
        _, h = self.encoder(xs)
        self.state = (h, None)
        return None, ()

    def decode_step(self, ids, memory, state):
        logits = self.decoder(ids, *self.state)
        self.state = (self.decoder.lstm.h, self.decoder.lstm.c)
        return logits[:, 0], ()


class BeamDependsOnTheBatch(Seq2seq):
    """A question's beam answer changes with its place in the batch (as when rows' states get mixed)."""

    def generate(self, xs, start_id, length, **kw):
        out = super().generate(xs, start_id, length, **kw)
        if kw.get("beam", 1) > 1:
            out = (out + np.arange(len(out))[:, None]) % self.config["vocab_size"]
        return out


class WrongAttention(PlainModel):
    attention_weights = property(lambda self: np.ones((2, 2)))


class ForgetsItsArgument(PlainModel):
    """The issue's report: trained with scale=0, rebuilt without it (its config drops `scale`)."""

    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8, scale=1.0):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.scale = scale
        self.config = {"vocab_size": vocab_size, "wordvec_size": wordvec_size, "hidden_size": hidden_size}

    def forward(self, xs, ts):
        return super().forward(xs, ts) * (1.0 + self.scale)


class ForgetsAShapeArgument(PlainModel):
    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8, bottleneck=False):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.config = {"vocab_size": vocab_size, "wordvec_size": wordvec_size, "hidden_size": hidden_size}
        self.extra = nn.Linear(vocab_size, vocab_size) if bottleneck else None

    def logits(self, xs, ts_in):
        y = super().logits(xs, ts_in)
        return y if self.extra is None else self.extra(y)


class NotJSONConfig(PlainModel):
    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.config = {"vocab_size": vocab_size, "wordvec_size": wordvec_size, "hidden_size": hidden_size,
                       "dtype": np.float32}


class HostArrayInside(PlainModel):
    """Keeps a NumPy mask as a plain attribute, so `to(device)` cannot move it."""

    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.mask = np.ones(vocab_size)

    def logits(self, xs, ts_in):
        return super().logits(xs, ts_in) * tg.Tensor(self.mask)


BROKEN = [
    (NotAModule, {}, "factory", "got NotAModule"),
    (lambda vocab_size, wordvec_size: None, {}, "factory", "unexpected keyword argument 'hidden_size'"),
    (PerExampleLoss, {}, "loss", r"got Tensor float\d+ \(3,\)"),
    (UnusedParameter, {}, "gradient", "parameter 'extra.weight' got gradient None"),
    (WrongGradient, {}, "gradient", "gradcheck: parameter '.*' at index"),
    (TensorAnswers, {}, "generate", r"got Tensor int64 \(3, 4\)"),
    (FloatAnswers, {}, "generate", r"integer array of shape \(N, length\); got float64 \(3, 4\) for N=3, length=4"),
    (OneTooFew, {}, "generate", r"got int64 \(3, 3\) for N=3, length=4"),
    (AlwaysSamples, {}, "greedy", "a second greedy decode"),
    (BeamOneIsNotGreedy, {}, "greedy", r"generate\(beam=1\) against greedy"),
    (StateOnTheModel, {}, "beam", "got ValueError: .*shape"),
    (BeamDependsOnTheBatch, {}, "beam", r"question 1 decoded alone against in the batch of 3"),
    (WrongAttention, {}, "attention", r"got float64 \(2, 2\) for N=3, length=4, T=5"),
    (ForgetsItsArgument, {"scale": 0.0}, "round trip", "loss of the rebuilt model"),
    (ForgetsAShapeArgument, {"bottleneck": True}, "round trip", "extra.weight"),
    (NotJSONConfig, {}, "config", "not JSON-able"),
    (HostArrayInside, {}, "device", "device"),
]


@pytest.mark.parametrize("factory,extra,item,detail", BROKEN, ids=[f"{b[2]}-{i}" for i, b in enumerate(BROKEN)])
def test_a_broken_model_fails_naming_the_item(factory, extra, item, detail):
    with pytest.raises(ContractError) as info:
        check_model(factory, **extra)
    assert info.value.item == item
    message = str(info.value)
    assert f"breaks the plugin contract ({item}): {CONTRACT[item]}; got " in message
    assert re.search(detail, message), message


def test_a_graph_that_cannot_be_drawn_fails_the_draws_item(monkeypatch):
    import tinygrad_s2s.viz

    def broken(*a, **k):
        raise ValueError("no drawing today")
    monkeypatch.setattr(tinygrad_s2s.viz, "to_dot", broken)
    with pytest.raises(ContractError, match=r"\(draws\).*got ValueError: no drawing today"):
        check_model(PlainModel)


def test_the_issues_example_message():
    with pytest.raises(ContractError, match=re.escape(
            "generate must return an integer array of shape (N, length); got float64 (200, 3)")):
        check_generated(np.zeros((200, 3)), 200, 3)
    with pytest.raises(ContractError, match=r"\(loss\).*got float"):
        check_loss(1.5)


# ---------------------------------------------------------------- the registry records arguments
@tg.register_model("test-forgetful")
class NoConfig(PlainModel):
    def __init__(self, vocab_size, wordvec_size=4, hidden_size=8, scale=1.0, bottleneck=False):
        super().__init__(vocab_size, wordvec_size, hidden_size)
        self.scale = scale
        self.extra = nn.Linear(vocab_size, vocab_size) if bottleneck else None

    def logits(self, xs, ts_in):
        y = super().logits(xs, ts_in) * self.scale
        return y if self.extra is None else self.extra(y)


def test_the_registry_records_the_arguments_of_a_model_without_config():
    from tinygrad_s2s.training.runfiles import build_model
    model = tg.create_model("test-forgetful", 9, wordvec_size=4, hidden_size=8, scale=0.0, bottleneck=True)
    assert model.config == {"vocab_size": 9, "wordvec_size": 4, "hidden_size": 8, "scale": 0.0, "bottleneck": True}
    twin = build_model({"model": "test-forgetful", "model_config": model.config, "vocab": "x" * 9})
    twin.load_state_dict(model.state_dict())                  # the bottleneck's weights have a home
    assert twin.scale == 0.0
    assert check_model("test-forgetful", scale=0.0, bottleneck=True)[-1] == "draws"
    with pytest.raises(ValueError, match="keyword arguments must be JSON-able"):
        tg.create_model("test-forgetful", 9, scale=np.float32)


# ---------------------------------------------------------------- the guards in train / eval / predict
def test_training_a_broken_plugin_fails_at_the_first_step_with_the_item(tmp_path):
    from tinygrad_s2s.data import load_dataset
    from tinygrad_s2s.training.trainer import Trainer, generate_batched
    ds = load_dataset("addition").limit(64, 16)
    model = PerExampleLoss(len(ds.vocab))
    trainer = Trainer(model, ds, config={"model": "per-example"}, progress=False)
    with pytest.raises(ContractError, match=r"model 'per-example' breaks the plugin contract \(loss\)"):
        trainer.fit(1)
    with pytest.raises(ContractError, match=r"\(generate\).*got Tensor int64"):
        generate_batched(TensorAnswers(len(ds.vocab)), ds.x_test, ds.start_id, 4)


def test_the_plugin_guide_lists_every_contract_item():
    section = (ROOT / "docs" / "guide" / "plugins.md").read_text()
    for item, text in CONTRACT.items():
        assert f"**{item}**" in section, item
        assert " ".join(text.split()) in " ".join(section.split()), item


# ---------------------------------------------------------------- every command hands over int64 NumPy ids
@tg.register_model("test-spy")
class Spy(PlainModel):
    """Refuses anything but int64 NumPy id arrays, in the loss and in generate."""

    @staticmethod
    def _insist(**arrays):
        for name, a in arrays.items():
            if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.ndim == 2):
                raise TypeError(f"spy: {name} arrived as {type(a).__name__} {getattr(a, 'dtype', '')}")

    def forward(self, xs, ts):
        self._insist(xs=xs, ts=ts)
        return super().forward(xs, ts)

    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        self._insist(xs=xs)
        return super().generate(xs, start_id, length, sample, temperature)


def test_every_command_hands_the_model_int64_numpy_ids(tmp_path, monkeypatch, capsys):
    from tinygrad_s2s.cli import main
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(tmp_path / "datasets"))
    monkeypatch.chdir(tmp_path)
    small = ["--dataset", "addition", "--limit", "200", "--test-limit", "20", "--hidden", "8", "--wordvec", "4"]
    assert main(["train", "test-spy", *small, "--epochs", "1", "--out", "runs/spy", "--no-progress"]) == 0
    for command in (["eval", "runs/spy"], ["predict", "runs/spy", "1+2"], ["predict", "runs/spy", "1+2", "--sample"],
                    ["gradcheck", "test-spy", "--entries", "1"], ["graph", "test-spy", "--whole", "--out", "g.dot"],
                    ["check", "test-spy"]):
        assert main(command) == 0, (command, capsys.readouterr().err)
