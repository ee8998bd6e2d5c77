"""The paths of 0.1's flat layout still import (until 0.2), as the module that replaced them, with one
FutureWarning that names the new path; a plain `import tinygrad_s2s` warns about nothing."""
import subprocess
import sys
import warnings

import pytest

from tinygrad_s2s._compat import MOVED


def _run(code: str) -> subprocess.CompletedProcess:
    # a fresh interpreter: whether a module was imported (and warned) before is part of what is tested
    return subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_the_package_warns_about_nothing():
    r = _run("import tinygrad_s2s, zoo.seq2seq, zoo.peeky, zoo.attention, zoo.deep_lstm, zoo.transformer, "
             "tinygrad_s2s.cli, tinygrad_s2s.testing, tinygrad_s2s.viz")
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module_with_one_warning(old):
    new = MOVED[old]
    r = _run(f"import importlib, {old}\n"
             f"import {old} as again\n"
             f"assert importlib.import_module({old!r}) is importlib.import_module({new!r}) is again\n"
             f"from {old} import *\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("FutureWarning") == 1, r.stderr
    assert f"{old} moved to {new}" in r.stderr and "until tinygrad-s2s 0.2" in r.stderr


def test_the_old_names_users_wrote_still_work():
    code = """
from tinygrad_s2s.train import Trainer, load_run
from tinygrad_s2s.tensor import Tensor, Function, no_grad, saved_input
from tinygrad_s2s.ops import exp, softmax_cross_entropy
from tinygrad_s2s.fused import lstm_sequence
from zoo.common import Seq2seqModel, Encoder
import tinygrad_s2s.training, tinygrad_s2s.autograd, tinygrad_s2s.models, zoo.seq2seq
assert Trainer is tinygrad_s2s.training.Trainer and Function is tinygrad_s2s.autograd.Function
assert Seq2seqModel is tinygrad_s2s.models.Seq2seqModel and Encoder is zoo.seq2seq.Encoder
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stderr.splitlines() if "FutureWarning" in line]
    assert len(warned) == 6, r.stderr   # train, tensor.Function, .no_grad, .saved_input, fused, zoo.common
    assert "tinygrad_s2s.tensor.Function moved to tinygrad_s2s.autograd.Function" in r.stderr
    assert "<string>:6: FutureWarning: zoo.common moved: subclass tinygrad_s2s.models.Seq2seqModel" in r.stderr


def test_an_old_tensor_name_warns_once_and_an_unknown_one_is_an_attribute_error():
    import tinygrad_s2s.tensor as old
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first, second = old.describe, old.describe
    assert first is second
    assert sum(issubclass(w.category, FutureWarning) for w in seen) <= 1   # once per process
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        getattr(old, "no_such_name")  # noqa: B009 - the module attribute lookup is what is tested


def test_an_old_op_class_name_resolves_from_its_new_module_warning_once():
    code = """
import tinygrad_s2s as tg
from tinygrad_s2s.ops import Add, Op, LSTMCell
assert Add is tg.ops.elementwise.Add and Op is tg.ops.base.Op and LSTMCell is tg.ops.lstm.LSTMCell
assert tg.ops.Add is Add
try:
    tg.ops.NoSuchOp
except AttributeError as exc:
    assert "has no attribute 'NoSuchOp'" in str(exc)
else:
    raise AssertionError("an unknown name resolved")
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("FutureWarning") == 3, r.stderr       # Add, Op, LSTMCell: each once
    assert "tinygrad_s2s.ops.Add moved to tinygrad_s2s.ops.elementwise.Add" in r.stderr
