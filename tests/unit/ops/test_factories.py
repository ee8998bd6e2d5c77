"""PyTorch's factories under PyTorch's names: `tg.tensor` copies its data (where `tg.Tensor(ndarray)`
shares it), `tg.randn`, `tg.rand` and `tg.randint` draw from the library's one generator, so
`tg.manual_seed` fixes them; `tg.cat` is `tg.concat`."""
import subprocess
import sys

import numpy as np
import pytest
from extras import need

import tinygrad_s2s as tg


def test_tensor_copies_its_data_and_takes_torchs_keywords():
    a = np.ones(3)
    t = tg.tensor(a)
    a[0] = 7.0
    assert t.numpy().tolist() == [1.0, 1.0, 1.0] and t.dtype == np.float64     # an array keeps its dtype
    shared = tg.Tensor(a)
    a[1] = 5.0
    assert shared.numpy()[1] == 5.0                                             # the constructor shares
    x = tg.tensor([1., 2.], requires_grad=True, dtype=None)
    assert x.dtype == np.float32 and x.requires_grad and x.is_leaf              # Python floats: the default dtype
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert tg.tensor(3).dtype == np.int64 and tg.tensor(3).item() == 3
    y = tg.tensor(x)                                                            # a Tensor: a copy, a new leaf
    x.data[0] = 9.0
    assert y.numpy().tolist() == [1.0, 2.0] and not y.requires_grad and y.is_leaf


@pytest.mark.extras
def test_tensor_copies_what_another_librarys_array_shares():
    torch = need("torch", "bench")
    src = torch.ones(3)
    t = tg.tensor(src)
    src[0] = 5.0
    assert t.numpy().tolist() == [1.0, 1.0, 1.0] and t.dtype == np.float32


def test_tensor_refuses_a_gradient_on_integers_as_the_constructor_does():
    with pytest.raises(TypeError, match="cannot require grad"):
        tg.tensor([1, 2], requires_grad=True)


def test_tg_tensor_is_the_factory_and_the_module_of_Tensor_still_imports():
    r = subprocess.run([sys.executable, "-W", "error", "-c", """
import sys, tinygrad_s2s as tg
import tinygrad_s2s.tensor as m
from tinygrad_s2s.tensor import Tensor
assert m is tg.tensor is sys.modules['tinygrad_s2s.tensor'] and m.Tensor is Tensor is tg.Tensor
assert isinstance(tg.tensor([1.0]), tg.Tensor) and tg.ops.tensor is tg.ops.factories.tensor
from tinygrad_s2s import *
assert tensor([2.0]).item() == 2.0
"""], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("draw", [lambda: tg.randn(2, 3), lambda: tg.rand((2, 3)), lambda: tg.randint(0, 10, (2, 3)),
                                  lambda: tg.randint(10, (2, 3))])
def test_random_factories_draw_from_the_librarys_generator(draw):
    tg.manual_seed(3)
    a = draw()
    b = draw()
    tg.manual_seed(3)
    again = draw()
    assert a.shape == (2, 3)
    np.testing.assert_array_equal(a.numpy(), again.numpy())
    assert not np.array_equal(a.numpy(), b.numpy())


def test_random_factories_dtypes_and_ranges():
    tg.manual_seed(0)
    assert tg.randn(4).dtype == np.float32 and tg.rand(4, dtype=np.float64).dtype == np.float64
    u = tg.rand(1000).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    i = tg.randint(2, 5, (1000,))
    assert i.dtype == np.int64 and set(i.numpy().tolist()) == {2, 3, 4}
    assert tg.randint(0, 3, 4, dtype=np.int32).dtype == np.int32
    w = tg.randn(2, 2, requires_grad=True)
    assert w.requires_grad and w.is_leaf


def test_random_factories_refuse_what_they_cannot_draw():
    with pytest.raises(TypeError, match=r"randn\(\): dtype int64 is not float32 or float64"):
        tg.randn(2, dtype=np.int64)
    with pytest.raises(TypeError, match=r"randint\(\) needs a size"):
        tg.randint(0, 10)
    with pytest.raises(TypeError, match=r"randint\(\): dtype float32 is not an integer dtype"):
        tg.randint(0, 10, (2,), dtype=np.float32)


def test_cat_is_concat():
    assert tg.cat is tg.concat is tg.ops.cat
    assert "cat" in tg.__all__ and "cat" in tg.ops.__all__
    assert tg.cat([tg.ones(2), tg.zeros(1)]).numpy().tolist() == [1.0, 1.0, 0.0]
