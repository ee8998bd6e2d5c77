"""Graph semantics, Tensor API, dtypes and module scopes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_s2s as tg


def test_a_chain_of_100000_ops_backprops_without_recursion():
    x = tg.Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_shared_input_gradients_accumulate():
    x = tg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, dtype=np.float64)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_grad_accumulates_across_backward_calls_until_zero_grad():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_retain_graph_allows_a_second_backward():
    x = tg.Tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0])


def test_intermediate_tensors_get_no_grad_and_unused_branches_are_fine():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    h = x * 2
    _unused = h * 5
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(x.grad.numpy(), 8 * np.ones(3))


def test_no_grad_builds_no_graph():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    with tg.no_grad():
        y = tg.tanh(x * 2)
        with tg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad and z.creator is not None
    assert tg.is_grad_enabled()


def test_default_dtype_float32_and_switches():
    assert tg.Tensor([1.0, 2.0]).dtype == np.float32
    assert tg.Tensor([1, 2]).dtype.kind == "i"
    assert tg.Tensor(np.zeros(2)).dtype == np.float64          # an explicit ndarray keeps its dtype
    assert tg.nn.Parameter(np.zeros(2)).dtype == np.float32
    with tg.default_dtype(np.float64):
        assert tg.Tensor([1.0]).dtype == np.float64
        assert tg.nn.Linear(2, 3).weight.dtype == np.float64
    assert tg.get_default_dtype() == np.float32
    tg.set_default_dtype(np.float64)
    assert tg.Tensor(0.5).dtype == np.float64
    with pytest.raises(TypeError, match="floating dtype"):
        tg.set_default_dtype(np.int32)


def test_python_scalars_keep_the_tensor_dtype():
    x = tg.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    for y in (x * 2.5, 2.5 - x, 1 / x, x ** 2, np.float64(2.0) * x):
        assert y.dtype == np.float32
    y = np.ones(2) + x                    # ndarray on the left defers to the Tensor
    assert isinstance(y, tg.Tensor)


def test_tensor_api():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tg.Tensor(a)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert np.shares_memory(t.numpy(), a)
    t.data[0, 0] = 7.0                    # .data is the backend array itself
    assert a[0, 0] == 7.0
    assert t.T.shape == (3, 2) and t.transpose(1, 0).shape == (3, 2)
    assert t.reshape(3, 2).shape == (3, 2) and t.reshape((6,)).shape == (6,)
    assert t[1].tolist() == [3.0, 4.0, 5.0]
    assert tg.Tensor([3.5]).item() == 3.5
    assert (t > 3).dtype == bool
    assert t.sum(axis=0).shape == (3,) and t.mean().item() == pytest.approx(a.mean())
    assert "requires_grad=True" in repr(tg.Tensor([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="one-element"):
        t.item()


def test_module_paths_are_recorded_on_every_node():
    class Weight(tg.nn.Module):
        def forward(self, hs, h):
            return tg.softmax(tg.sum(hs * tg.repeat(h, hs.shape[1], axis=1), axis=2), axis=1)

    class Attention(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = Weight()

        def forward(self, hs, h):
            return self.weight(hs, h)

    class Decoder(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = Attention()

        def forward(self, hs, h):
            return self.attention(hs, h) * 2.0

    class Model(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = Decoder()

        def forward(self, hs, h):
            return self.decoder(hs, h)

    hs = tg.Tensor(np.ones((2, 4, 3)), requires_grad=True)
    h = tg.Tensor(np.ones((2, 1, 3)), requires_grad=True)
    out = Model()(hs, h)
    assert out.creator.module == "decoder"
    seen, stack = {}, [out.creator]
    while stack:
        fn = stack.pop()
        seen[fn.op] = fn.module
        stack += [t.creator for t in fn.inputs if t.creator is not None]
    assert seen["softmax"] == seen["repeat"] == "decoder.attention.weight"
    assert tg.current_module_path() == ""


def test_multi_output_op_with_an_unused_output():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    a, b, c = tg.unstack(x, axis=1)
    (a * 2 + c).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2, 0, 1], [2, 0, 1]])


def test_detach_and_to_dtype():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.creator is None
    y = x.to(np.float32)
    assert y.dtype == np.float32 and y.requires_grad and y.is_leaf


@given(data=st.data())
def test_scatter_add_of_repeated_rows_matches_numpy_add_at(data):
    rows, cols = data.draw(st.integers(1, 5)), data.draw(st.integers(0, 3))
    index = np.array(data.draw(st.lists(st.integers(-rows, rows - 1), max_size=12)), dtype=np.int64)
    index = index.reshape(data.draw(st.sampled_from([(-1,), (1, -1), (-1, 1)])))
    values = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(index.shape + (cols,))
    target = np.random.default_rng(1).standard_normal((rows, cols))
    expected = target.copy()
    np.add.at(expected, index, values)
    sorted_path = target.copy()
    tg.backend.scatter_add(target, index, values)   # a one-hot GEMM at these sizes
    np.testing.assert_allclose(target, expected, rtol=1e-12, atol=1e-12)
    tg.backend._add_rows(sorted_path, index, values, one_hot_limit=0)
    np.testing.assert_allclose(sorted_path, expected, rtol=1e-12, atol=1e-12)


def test_factories_follow_the_default_dtype():
    # seen: tg.Tensor(np.zeros(...)) stays float64 and turns a float32 model into a float64 one
    for t in (tg.zeros(2, 3), tg.ones((2, 3)), tg.full((2, 3), 0.5), tg.arange(0.0, 1.0, 0.25)):
        assert t.dtype == np.float32 and not t.requires_grad
    assert tg.zeros(2, 3).shape == tg.ones((2, 3)).shape == (2, 3)
    with tg.default_dtype(np.float64):
        assert tg.zeros(2).dtype == tg.ones(2).dtype == tg.full(2, 1.5).dtype == np.float64
        assert tg.arange(0.0, 2.0).dtype == np.float64
    assert tg.full((2,), 3).dtype == np.int64 and tg.full((2,), True).dtype == np.bool_
    assert tg.arange(4).tolist() == [0, 1, 2, 3] and tg.arange(4).dtype == np.int64
    assert tg.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert tg.zeros(3, dtype=np.float64).dtype == np.float64
    w = tg.zeros(3, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    lin = tg.nn.Linear(3, 2)
    assert (lin(tg.ones(4, 3)) + tg.zeros(2)).dtype == np.float32    # the float32 model stays float32


def test_like_factories_keep_shape_dtype_and_device():
    from tinygrad_s2s.testing.fake_device import fake_device
    x = tg.Tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    z, o = tg.zeros_like(x), tg.ones_like(x, dtype=np.float32)
    assert z.shape == (2, 3) and z.dtype == np.float64 and float(z.numpy().sum()) == 0
    assert o.dtype == np.float32 and float(o.numpy().sum()) == 6
    with fake_device() as dev:
        d = x.to(dev)
        assert tg.zeros_like(d).device == dev and tg.ones(2, device=dev).device == dev
        assert tg.arange(3, device=dev).device == dev


def test_clipping_leaves_that_received_one_shared_gradient_scales_each_once():
    """a + b hands both leaves the same upstream array: each .grad must be its own copy, or clipping
    scales the shared array once per leaf (a norm of 0.167 after clipping to 1.0)."""
    a, b = (tg.Tensor(np.ones(3), requires_grad=True, dtype=np.float64) for _ in range(2))
    ((a + b) * 10.0).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    assert tg.optim.clip_grad_norm([a, b], 1.0) == pytest.approx(np.sqrt(600))
    total = np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in (a, b)))
    assert total == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy())


def test_gradients_of_a_product_broadcast_over_a_new_leading_axis_and_a_size_one_axis():
    """(1, 3) * (1, 4, 3): a's gradient sums b over the new axis and the broadcast size-one axis."""
    a_np = np.arange(3.0).reshape(1, 3) + 1
    b_np = np.arange(12.0).reshape(1, 4, 3) - 5
    a, b = tg.Tensor(a_np, requires_grad=True), tg.Tensor(b_np, requires_grad=True)
    g = np.random.default_rng(0).standard_normal((1, 4, 3))
    (a * b).backward(tg.Tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), (g * b_np).sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), g * a_np, rtol=1e-6)
    (b * a).backward(tg.Tensor(g))                         # the other operand order, accumulated
    np.testing.assert_allclose(a.grad.numpy(), 2 * (g * b_np).sum(axis=1), rtol=1e-6)
