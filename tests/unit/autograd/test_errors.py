"""Bad input gets a clear error naming the op, the shapes, the module path and the user's file:line."""
import inspect
import os
import re

import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.backend import DeviceError
from tinygrad_s2s.testing.battery import in_module as Outer
from tinygrad_s2s.testing.fake_device import fake_device

HERE = os.path.basename(__file__)


def _line(ahead):
    """file:line `ahead` lines below the caller, to check errors point at the user's code."""
    return f"{HERE}:{inspect.currentframe().f_back.f_lineno + ahead}"


def _raises_in_module(fn, *xs, exc=ValueError):
    model = Outer(fn)
    with pytest.raises(exc) as info:
        model(*xs)
    return str(info.value)


@pytest.mark.parametrize("fn, shapes, words", [
    (tg.matmul, [(2, 3), (4, 5)], ["matmul", "not aligned", "(2, 3)", "(4, 5)"]),
    (tg.add, [(2, 3), (4,)], ["add", "broadcast", "(2, 3)", "(4,)"]),
    (lambda a, b: tg.concat([a, b], axis=0), [(2, 3), (2, 4)], ["concat", "input 1", "(2, 4)"]),
    (lambda a, b: tg.stack([a, b]), [(2, 3), (3, 2)], ["stack", "equal shapes"]),
    (lambda a: tg.reshape(a, (4, 2)), [(2, 3)], ["reshape", "cannot reshape (2, 3)", "(4, 2)"]),
    (lambda a: tg.sum(a, axis=2), [(2, 3)], ["sum", "axis 2", "(2, 3)"]),
    (lambda a: tg.softmax(a, axis=-3), [(2, 3)], ["softmax", "axis -3"]),
    (lambda a: tg.transpose(a, (0, 0)), [(2, 3)], ["transpose", "permutation"]),
    (lambda a: tg.split(a, 2, axis=1), [(2, 3)], ["split", "does not split into 2"]),
    (lambda a: tg.lstm_cell(a, a), [(2, 8)], ["lstm_cell", "4*H"]),
    (tg.lstm_sequence, [(2, 3, 4), (4, 8), (8,), (2, 2), (2, 2), (3, 8)],
     ["lstm_sequence", "Wh of shape (2, 8)", "got Wx (4, 8), b (8,), h0 (2, 2), c0 (2, 2), Wh (3, 8)"]),
])
def test_shape_errors_name_op_shapes_module_and_line(fn, shapes, words):
    xs = [tg.Tensor(np.ones(s)) for s in shapes]
    model = Outer(fn)
    with pytest.raises(ValueError) as info:
        model(*xs)
    msg = str(info.value)
    for w in words + ["in module 'inner'", f"{HERE}:"]:
        assert w in msg, f"{w!r} missing from: {msg}"
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no NumPy traceback chained


def test_error_points_at_the_users_line():
    a, b = tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((2, 3)))
    where = _line(2)
    with pytest.raises(ValueError, match=where):
        a @ b


def test_embedding_out_of_range_names_id_vocab_and_module():
    class M(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tg.nn.Embedding(10, 4)

        def forward(self, ids):
            return self.embed(ids)
    with pytest.raises(ValueError) as info:
        M()(np.array([[1, 57]]))
    msg = str(info.value)
    assert "token id 57 is out of range for vocab_size 10" in msg and "in module 'embed'" in msg


def test_embedding_rejects_negative_ids_that_numpy_would_wrap():
    # seen: Embedding(5, 3)([[-1, 2]]) returned row 4; ids come from a vocabulary, -1 is a data bug
    emb = tg.nn.Embedding(5, 3)
    with pytest.raises(ValueError, match=r"token id -1 is out of range for vocab_size 5 \(ids must lie in "
                                         r"\[0, 5\)\)"):
        emb([[-1, 2]])
    x = tg.Tensor(np.arange(15.0).reshape(5, 3))
    np.testing.assert_array_equal(tg.getitem(x, np.array([-1, 2])).numpy(), x.numpy()[[-1, 2]])  # NumPy's rule


def test_embedding_rejects_float_ids():
    with pytest.raises(TypeError, match="ids must be integers"):
        tg.nn.Embedding(10, 4)(np.array([[1.0, 2.0]]))


def test_integer_tensors_never_require_grad():
    with pytest.raises(TypeError, match="only real floating point tensors"):
        tg.Tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="data of dtype complex128 is complex; a Tensor holds booleans, integers or real"):
        tg.Tensor(np.array([1 + 2j]), requires_grad=True)
    ids = tg.Tensor(np.array([1, 2]))
    assert not (ids * 2).requires_grad


@pytest.mark.parametrize("data, error, words", [
    (np.array(["a", "b"]), TypeError, "data of dtype <U1 is not numeric"),
    ([1, None], TypeError, "data of dtype object is not numeric"),
    ([[1, 2], [3]], ValueError, "cannot make a numeric array of list data (setting an array element with a sequence"),
])
def test_a_tensor_refuses_data_that_is_not_a_rectangular_array_of_numbers(data, error, words):
    with pytest.raises(error, match=re.escape("Tensor: " + words)):
        tg.Tensor(data)


def test_floats_made_from_integers_take_the_default_dtype():
    """As Python floats do (and as in PyTorch): tanh, softmax, mean of ids, or ids * 0.5, are float32
    by default, float64 under default_dtype(float64) or with a float64 array in the op."""
    ids = tg.Tensor(np.array([[1, 2, 3]]))
    for y in (tg.tanh(ids), tg.softmax(ids), tg.mean(ids), ids / 2, ids * 0.5, ids * tg.Tensor(np.ones(3, np.float32))):
        assert y.dtype == np.float32, y
    assert (ids * np.ones(3)).dtype == np.float64        # an explicit float64 array keeps NumPy's promotion
    with tg.default_dtype(np.float64):
        assert tg.softmax(ids).dtype == np.float64


def test_backward_on_non_scalar_needs_a_grad():
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"backward: grad can be implied only for a scalar.*\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="does not match the tensor's shape"):
        (x * 2).backward(np.ones(3))


def test_backward_without_grad_and_second_backward():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.Tensor(np.ones(2)).sum().backward()
    x = tg.Tensor(np.ones(2), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()


def test_mixing_devices_is_a_type_error_naming_both():
    with fake_device() as dev:
        a = tg.Tensor(np.ones(3)).to(dev)
        with pytest.raises(TypeError, match=r"mul: inputs live on different devices \(fakegpu and cpu\)"):
            _ = a * tg.Tensor(np.ones(3))


def test_missing_cuda_is_a_clear_error():
    try:
        import cupy  # noqa: F401
        if cupy.is_available():
            pytest.skip("a CUDA device is present")
    except Exception:
        pass
    with pytest.raises(DeviceError, match="no CUDA device was found"):
        tg.Tensor(np.ones(2)).to("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tg.Tensor(np.ones(2)).to("tpu")


@pytest.mark.parametrize("target, words", [
    ("gpu", "unknown device 'gpu': expected 'cpu' or 'cuda'$"),
    ("float16", r"unknown device 'float16': expected 'cpu' or 'cuda' \('float16' is a dtype: pass np.float16\)"),
    ("cuda:1", r"device 'cuda:1': one GPU is used, 'cuda' \(the current CUDA device; choose it with CUDA_VISIBLE"),
])
def test_a_device_name_that_names_no_device_here_is_refused_before_any_gpu_is_looked_for(target, words):
    for thing in (tg.Tensor(np.ones(2)), tg.nn.Linear(2, 2)):
        with pytest.raises(ValueError, match=words):
            thing.to(target)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64])
def test_a_module_converts_only_to_a_floating_point_dtype(dtype):
    """Casting the weights to integers zeroed them silently (and left them requiring grad)."""
    model = tg.nn.Linear(2, 2)
    before = model.weight.numpy().copy()
    with pytest.raises(TypeError, match=rf"Linear.to\({np.dtype(dtype).name}\): parameters convert to a floating "
                                        r"point dtype only"):
        model.to(dtype)
    np.testing.assert_array_equal(model.weight.numpy(), before)
    assert model.to(np.float64).weight.dtype == np.float64


@pytest.mark.parametrize("targets, exc, words", [
    (np.array([[0, 1]]), ValueError, "do not match logits"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "targets must be integer ids"),
    (np.array([0, 1, 9]), ValueError, "target id 9 is out of range for 4 classes"),
])
def test_cross_entropy_target_errors(targets, exc, words):
    with pytest.raises(exc, match=words):
        tg.softmax_cross_entropy(tg.Tensor(np.zeros((3, 4)), requires_grad=True), targets)


def test_lstm_input_shape_error():
    with pytest.raises(ValueError, match=r"lstm: expected input \(N, T, 3\), got \(2, 5, 4\)"):
        tg.nn.LSTM(3, 4)(tg.Tensor(np.zeros((2, 5, 4))))


def test_dropout_probability_and_repeat_type():
    with pytest.raises(ValueError, match="p must be in"):
        tg.dropout(tg.Tensor(np.ones(2)), 1.5)
    with pytest.raises(TypeError, match="repeats must be a non-negative int"):
        tg.repeat(tg.Tensor(np.ones(2)), 1.5, axis=0)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")   # sqrt's gradient at 0, on purpose
def test_detect_anomaly_in_backward():
    x = tg.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    y = tg.sqrt(x).sum()          # finite forward, infinite gradient at 0
    with tg.detect_anomaly(), pytest.raises(FloatingPointError, match="sqrt: backward produced NaN or Inf"):
        y.backward()


def test_module_without_super_init():
    class Bad(tg.nn.Module):
        def __init__(self):
            self.w = tg.nn.Parameter(np.ones(2))
    with pytest.raises(RuntimeError, match=r"call super\(\).__init__\(\)"):
        Bad()


def test_take_along_axis_names_the_dtype_of_indices_that_are_not_integers():
    with pytest.raises(TypeError, match=r"take_along_axis: indices must be an integer array, got a float64 array; "
                                        r"input shapes \(2, 3\)"):
        tg.take_along_axis(tg.Tensor(np.ones((2, 3))), np.zeros((2, 1)), axis=1)


@pytest.mark.parametrize("index", [3, 5, -4])
def test_take_along_axis_names_an_index_out_of_range(index):
    with pytest.raises(ValueError, match=rf"take_along_axis: index {index} is out of range for axis 1 of size 3"):
        tg.take_along_axis(tg.Tensor(np.ones((1, 3))), np.array([[index]]), axis=1)


def test_an_op_the_library_records_points_at_the_librarys_line_not_at_pythons_runpy(tmp_path):
    """`tinygrad-s2s graph` runs only this package's code: the loss op that Seq2seqModel records was
    shown as 'called at <frozen runpy>:88'; it is the line of the library that called the engine."""
    import re
    import subprocess
    import sys
    out = tmp_path / "s2s.html"
    r = subprocess.run([sys.executable, "-m", "tinygrad_s2s", "graph", "seq2seq", "--whole", "--format", "html",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    places = set(re.findall(r'"([^"]+\.py:\d+|<[^"]*>:\d+)"', out.read_text(encoding="utf-8")))
    assert places and not any(p.startswith("<frozen") for p in places), places
    assert any(re.search(r"tinygrad_s2s/models/base\.py:\d+$", p) for p in places), places   # the loss
    assert any(re.search(r"zoo/seq2seq\.py:\d+$", p) for p in places), places               # the plugin's ops
