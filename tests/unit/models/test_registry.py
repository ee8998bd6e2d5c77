"""The model registry: register_model / create_model / available_models, entry-point plugins
(duplicates and broken plugins warn, naming the plugin, and the others still load), and a throw-away
plugin installed in a temp dir that the installed `tinygrad-s2s` command lists, gradient-checks,
trains and evaluates."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.models import registry

ZOO = {"seq2seq", "peeky", "attention", "deep_lstm", "transformer"}

# A model outside the project, written the way a plugin author would: tinygrad_s2s's API only.
DEMO_MODEL = '''
"""A throw-away plugin: the book's plain seq2seq, registered as 'demo-copy'."""
import numpy as np

import tinygrad_s2s as tg
from tinygrad_s2s import nn


@tg.register_model("demo-copy")
class DemoCopy(nn.Module):
    """Embedding + LSTM encoder; its last h starts an Embedding + LSTM + Linear decoder."""

    def __init__(self, vocab_size, wordvec_size=16, hidden_size=128):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, wordvec_size=wordvec_size, hidden_size=hidden_size)
        self.src = nn.Embedding(vocab_size, wordvec_size)
        self.enc = nn.LSTM(wordvec_size, hidden_size)
        self.tgt = nn.Embedding(vocab_size, wordvec_size)
        self.dec = nn.LSTM(wordvec_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, xs, ts):
        self.enc(self.src(xs))
        hs = self.dec(self.tgt(ts[:, :-1]), h0=self.enc.h)
        return tg.softmax_cross_entropy(self.out(hs), ts[:, 1:])

    def generate(self, xs, start_id, length, sample=False, temperature=1.0):
        with tg.no_grad():
            self.enc(self.src(xs))
            h, c = self.enc.h, None
            ids = np.full((len(xs), 1), start_id)
            out = []
            for _ in range(length):
                self.dec(self.tgt(ids), h0=h, c0=c)
                h, c = self.dec.h, self.dec.c
                scores = self.out(h).numpy().astype(np.float64)
                if sample:
                    p = np.exp((scores - scores.max(1, keepdims=True)) / temperature)
                    u = tg.random.generator().random((len(p), 1))
                    nxt = ((p / p.sum(1, keepdims=True)).cumsum(1) < u).sum(1).clip(max=p.shape[1] - 1)
                else:
                    nxt = scores.argmax(axis=1)
                ids = nxt[:, None]
                out.append(nxt)
            return np.stack(out, axis=1)
'''

DEMO_DUPLICATE = '''
import tinygrad_s2s as tg


@tg.register_model("demo-copy")
def another_demo_copy(vocab_size, wordvec_size=16, hidden_size=128):
    """Claims a name that 'demo-copy' already took."""
    raise AssertionError("the duplicate must never be built")
'''

DEMO_BROKEN = '''
raise RuntimeError("this plugin is broken on purpose")
'''


def install_plugin(root: Path, dist: str = "demo-plugin", package: str = "demo_s2s_plugin") -> Path:
    """Write a package with three entry points (a good model, a duplicate name, a broken import) and
    the `*.dist-info` folder that makes importlib.metadata find them when `root` is on the path."""
    pkg = root / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Throw-away tinygrad-s2s plugin for the tests."""\n')
    (pkg / "models.py").write_text(DEMO_MODEL)
    (pkg / "duplicate.py").write_text(DEMO_DUPLICATE)
    (pkg / "broken.py").write_text(DEMO_BROKEN)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[tinygrad_s2s.models]\n"
        f"demo-broken = {package}.broken\n"
        f"demo-copy = {package}.models\n"
        f"demo-dup = {package}.duplicate\n")
    return root


@pytest.fixture
def sandbox(monkeypatch):
    """The registry with the installed plugins loaded, restored after the test (names registered
    here and the throw-away plugin's modules disappear again)."""
    registry.load_plugins()
    monkeypatch.setattr(registry, "_models", dict(registry._models))
    monkeypatch.setattr(registry, "_loaded", True)
    before = set(sys.modules)
    yield registry
    for name in set(sys.modules) - before:
        if name.startswith("demo_s2s_plugin"):
            del sys.modules[name]


# ---------------------------------------------------------------- in-process registry
class Echo(nn.Module):
    """Records the arguments it was built with."""

    def __init__(self, vocab_size, wordvec_size=16, hidden_size=128, flavour="plain"):
        super().__init__()
        self.args = (vocab_size, wordvec_size, hidden_size, flavour)
        self.layer = nn.Linear(wordvec_size, hidden_size)


def test_register_create_and_list(sandbox):
    assert tg.register_model("test-echo")(Echo) is Echo          # the decorator returns the class
    m = tg.create_model("test-echo", 11, wordvec_size=3, hidden_size=5, flavour="spicy")
    assert isinstance(m, Echo) and m.args == (11, 3, 5, "spicy")
    assert tg.create_model("test-echo", 7).args == (7, 16, 128, "plain")   # the documented defaults

    @tg.register_model("test-factory")
    def factory(vocab_size, wordvec_size, hidden_size, **extra):
        """A plain function works as a factory too."""
        return Echo(vocab_size, wordvec_size, hidden_size, **extra)
    assert tg.create_model("test-factory", 4, flavour="mild").args == (4, 16, 128, "mild")

    models = tg.available_models()
    assert models["test-echo"] == Echo.__module__ and models["test-factory"] == factory.__module__
    assert ZOO <= set(models)                    # the zoo arrives through its entry points
    assert list(models) == sorted(models)


def test_unknown_model_lists_the_registered_ones(sandbox):
    with pytest.raises(ValueError, match=r"unknown model 'nope'; registered models: .*seq2seq"):
        tg.create_model("nope", 5)


def test_duplicate_name_warns_and_keeps_the_first(sandbox):
    tg.register_model("test-echo")(Echo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.register_model("test-echo")(Echo)        # the same class again (a re-import) is fine

    class Impostor(Echo):
        """Another class under a taken name."""
    with pytest.warns(UserWarning, match=r"model 'test-echo' from .* ignored: the name is already "
                                         r"registered by " + Echo.__module__):
        assert tg.register_model("test-echo")(Impostor) is Impostor
    assert type(tg.create_model("test-echo", 3)) is Echo
    with pytest.warns(UserWarning, match=r"model 'seq2seq' .* already registered by plugin 'seq2seq'"):
        tg.register_model("seq2seq")(Impostor)


def test_entry_point_plugins_load_and_bad_ones_only_warn(sandbox, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.load_plugins(force=True)
    messages = [str(w.message) for w in caught]
    broken = [m for m in messages if "demo-broken" in m]
    assert len(broken) == 1 and "failed to load" in broken[0] and "RuntimeError" in broken[0]
    assert "broken on purpose" in broken[0] and "demo_s2s_plugin.broken" in broken[0]
    dup = [m for m in messages if "plugin 'demo-dup'" in m]
    assert len(dup) == 1 and "model 'demo-copy'" in dup[0]
    assert "already registered by plugin 'demo-copy' (demo_s2s_plugin.models, package demo-plugin)" in dup[0]
    models = tg.available_models()
    assert models["demo-copy"] == "plugin 'demo-copy' (demo_s2s_plugin.models, package demo-plugin)"
    assert ZOO <= set(models) and "demo-broken" not in models and "demo-dup" not in models
    model = tg.create_model("demo-copy", 6, wordvec_size=3, hidden_size=4)    # the first one won
    xs, ts = np.array([[1, 2, 3]]), np.array([[0, 3, 2]])
    assert model(xs, ts).shape == () and model.generate(xs, 0, 2).shape == (1, 2)


# ---------------------------------------------------------------- the installed command
def _command() -> list:
    script = Path(sys.executable).with_name("tinygrad-s2s")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tinygrad_s2s"]


def _tiny_dataset(path: Path, n: int = 60) -> Path:
    """The book's line format: question left-justified to 3 characters, `_`, the reversed question
    left-justified to 3."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(n):
        q = "".join(rng.choice(list("abcd"), rng.integers(1, 4)))
        lines.append(f"{q:<3}_{q[::-1]:<3}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_a_plugin_in_a_temp_dir_is_listed_checked_trained_and_evaluated_by_the_cli(tmp_path):
    plugin_root = install_plugin(tmp_path / "site")
    data = _tiny_dataset(tmp_path / "reverse.txt")
    env = dict(os.environ, TINYGRAD_S2S_DATA=str(tmp_path / "data"), TINYGRAD_S2S_DEBUG="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(plugin_root), os.environ.get("PYTHONPATH")])))

    def run(*args):
        return subprocess.run(_command() + list(args), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)

    r = run("models", "--json")
    assert r.returncode == 0, r.stderr
    models = json.loads(r.stdout)["models"]
    assert models["demo-copy"] == "plugin 'demo-copy' (demo_s2s_plugin.models, package demo-plugin)"
    for name in ZOO:                                             # a broken plugin takes nothing down
        assert models[name] == f"plugin '{name}' (zoo.{name}, package tinygrad-s2s)"
    assert "plugin 'demo-broken'" in r.stderr and "failed to load" in r.stderr
    assert "plugin 'demo-dup'" in r.stderr and "already registered" in r.stderr

    r = run("gradcheck", "demo-copy", "--entries", "2")
    assert r.returncode == 0, r.stderr
    assert "gradcheck demo-copy: OK" in r.stdout

    r = run("train", "demo-copy", "--dataset", str(data), "--epochs", "1", "--batch-size", "16",
            "--wordvec", "4", "--hidden", "8", "--out", str(tmp_path / "run"), "--json", "--no-progress")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["status"] == "finished" and report["model"] == "demo-copy" and report["epochs"] == 1
    assert report["train_examples"] == 54 and report["examples"] == 6
    assert 0.0 <= report["accuracy"] <= 1.0 and len(report["history"]) == 1
    assert (tmp_path / "run" / "best.npz").is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "demo-copy"

    r = run("eval", str(tmp_path / "run"), "--json")            # a fresh process rebuilds the plugin model
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(report["best_accuracy"])
