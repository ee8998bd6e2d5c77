"""tg.onnx.export: a traced function as a checked ONNX model, parameters named by module path, the
recurrent layers as ONNX's LSTM/GRU nodes (gate mapping), errors and warnings naming op, module and line."""
import re
import warnings

import numpy as np
import pytest
from extras import need

import tinygrad_s2s as tg
from tinygrad_s2s import nn
from tinygrad_s2s.autograd import Function
from tinygrad_s2s.onnx import OnnxExportError, TracerWarning, run_model, to_model
from tinygrad_s2s.testing import OpSpec, check_op
from tinygrad_s2s.testing.strategies import arrays

pytestmark = pytest.mark.extras


@pytest.fixture(autouse=True)
def _extra():
    need("onnx", "export")
    need("onnxruntime", "export")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 3)
        self.fc = nn.Linear(3, 4)

    def forward(self, ids):
        return tg.softmax(self.fc(self.embed(ids)), axis=-1)


def _run(model, xs):
    return run_model(model, {i.name: x for i, x in zip(model.graph.input, xs)})


def test_export_writes_a_checked_model_with_module_names_and_a_dynamic_batch(tmp_path):
    onnx = need("onnx", "export")
    net = Net()
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    path = tg.onnx.export(net, [ids], tmp_path / "net.onnx", input_names=["ids"], output_names=["probs"],
                          dynamic_axes={"ids": {0: "batch"}, "probs": {0: "batch"}})
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    assert {i.name for i in model.graph.initializer} >= {"embed.weight", "fc.weight", "fc.bias"}
    assert [i.name for i in model.graph.input] == ["ids"] and [o.name for o in model.graph.output] == ["probs"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    more = np.array([[0, 1, 2], [3, 3, 3], [6, 5, 4], [2, 2, 0]])        # another batch size
    with tg.no_grad():
        want = net(more).numpy()
    np.testing.assert_allclose(_run(model, [more])[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, node", [(nn.LSTM, "LSTM"), (nn.GRU, "GRU")])
def test_recurrent_layers_become_onnx_nodes_whose_gates_map_exactly(layer, node):
    """LSTM: ONNX's i, o, f, c are the book's blocks 2, 3, 0, 1; GRU: ONNX's z is our 1 - z (the z
    blocks negated), linear_before_reset=0. Weights drawn large, so a wrong block would show."""
    tg.manual_seed(3)
    rnn = layer(3, 5)
    for p in rnn.parameters():
        p.data[...] = np.random.default_rng(1).standard_normal(p.shape).astype(np.float32)
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    h0 = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)

    def fn(x, h0):
        return rnn(x, h0=h0), rnn.h
    model, host, expected = to_model(fn, [x, h0])
    assert node in [n.op_type for n in model.graph.node]
    for got, want in zip(_run(model, host), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_lstm_with_a_zero_start_and_a_bias_per_sequence_is_one_lstm_node():
    """The peeky decoder's `static` input: a bias per sequence, fed as inputs through an identity block."""
    lstm = nn.LSTM(5, 4)
    x, s = (np.random.default_rng(i).standard_normal(shape).astype(np.float32) for i, shape in
            enumerate([(3, 2, 3), (3, 2)]))
    model, host, expected = to_model(lambda x, s: lstm(x, static=s), [x, s])
    assert [n.op_type for n in model.graph.node].count("LSTM") == 1
    np.testing.assert_allclose(_run(model, host)[0], expected[0], rtol=1e-5, atol=1e-5)


def test_float64_recurrent_layers_are_written_as_their_reference_composition():
    """onnxruntime runs LSTM and GRU in float32 only: in float64 the lowering declines."""
    with tg.default_dtype(np.float64):
        lstm = nn.LSTM(2, 3)
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    model, host, expected = to_model(lambda x: lstm(x), [x])
    assert "LSTM" not in [n.op_type for n in model.graph.node]
    np.testing.assert_allclose(_run(model, host)[0], expected[0], rtol=1e-10, atol=1e-12)


class Cube(Function):
    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return 3 * gy * self.x ** 2


def test_an_op_without_a_lowering_is_an_error_naming_op_module_and_line():
    from tinygrad_s2s.testing.battery import in_module
    model = in_module(lambda x: Cube.apply(tg.tanh(x)))     # the line the error must name
    with pytest.raises(OnnxExportError) as info:
        to_model(model, [np.ones((1, 2), np.float32)])
    msg = str(info.value)
    line = next(i for i, text in enumerate(open(__file__), 1) if "the line the error must name" in text)
    assert "op 'cube' (Cube) has no ONNX lowering" in msg and "in module 'inner'" in msg
    assert re.search(rf"test_export.py:{line}\b", msg), msg


def test_data_dependent_control_flow_warns_naming_what_was_read():
    def fn(x):
        return tg.exp(x) if (x.sum() > 0).item() else tg.neg(x)
    with pytest.warns(TracerWarning, match=r"item\(\)|comparison"):
        to_model(fn, [np.ones(3, np.float32)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TracerWarning)     # a branch on a constant is no warning
        to_model(lambda x: tg.exp(x) if tg.Tensor(np.ones(1)).item() else x, [np.ones(3, np.float32)])


def test_dropout_while_training_warns_that_its_mask_is_baked():
    with pytest.warns(TracerWarning, match="dropout in training mode"):
        to_model(lambda x: tg.dropout(x, 0.5), [np.ones((2, 3), np.float32)])


class Cubed(Cube):
    def onnx(self, g, x):
        return g.op("Mul", x, g.op("Mul", x, x))


def _cube_spec(cls):
    from hypothesis import strategies as st
    return OpSpec("cube", lambda x: cls.apply(x), lambda x: x ** 3, st.tuples(arrays((2, 3)).map(lambda a: [a]),
                                                                              st.just({})))


def test_a_users_own_op_gets_the_same_onnx_check():
    check_op(_cube_spec(Cubed), checks=["onnx"], max_examples=5)
    with pytest.raises(AssertionError, match=r"cube: onnx: .*has no ONNX lowering"):
        check_op(_cube_spec(Cube), checks=["onnx"], max_examples=5)


def test_the_op_table_runs_the_onnx_check_on_every_op():
    from tinygrad_s2s.testing import op_test_cases
    from tinygrad_s2s.testing.op_table import OPS
    cases = {c.id for c in op_test_cases(OPS)}
    assert all(f"{spec.name}-onnx" in cases for spec in OPS)
