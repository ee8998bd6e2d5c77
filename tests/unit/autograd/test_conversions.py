"""A Tensor where NumPy, matplotlib and Python expect an array or a number (np.asarray, float, int,
item), what it refuses to hold (complex), and tg.grad's grad_outputs given as one array."""
import math

import numpy as np
import pytest

import tinygrad_s2s as tg


def test_numpy_and_matplotlib_read_a_tensor_as_its_array():
    """np.asarray(t) walked the tensor by __len__ / __getitem__ and failed with 'getitem: index 5 is
    out of bounds'."""
    t = tg.Tensor(np.arange(5.0), requires_grad=True)
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype == t.dtype
    np.testing.assert_array_equal(a, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(np.asarray(t, dtype=np.int64), [0, 1, 2, 3, 4])
    copy = np.array(t)
    copy[0] = 9                                           # np.array copies, as for any array
    assert t.numpy()[0] == 0
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    (line,) = ax.plot(t)
    np.testing.assert_array_equal(line.get_ydata(), [0, 1, 2, 3, 4])
    plt.close(fig)


def test_float_int_and_item_of_a_one_element_tensor():
    assert float(tg.Tensor(np.array([[2.5]]))) == 2.5 and isinstance(float(tg.Tensor(2.5)), float)
    assert int(tg.Tensor(np.array([3]))) == 3 and int(tg.Tensor(3.9)) == 3
    assert tg.Tensor(np.array(7)).item() == 7 and math.isnan(float(tg.Tensor(np.nan)))
    for convert in (float, int, lambda t: t.item()):
        with pytest.raises(ValueError, match=r"only a one-element tensor converts to a Python scalar, this one "
                                             r"has shape \(2,\)"):
            convert(tg.Tensor(np.ones(2)))


@pytest.mark.parametrize("make", [lambda z: tg.tanh(z), lambda z: tg.Tensor(z), lambda z: tg.Tensor(np.ones(1)) * z,
                                  lambda z: tg.Tensor(np.ones(1)).to(np.complex64)])
def test_complex_data_is_refused(make):
    """tg.tanh accepted complex64 though a Tensor holds booleans, integers and real floats."""
    with pytest.raises(TypeError, match=r"complex64 is complex; a Tensor holds booleans, integers or real floating"):
        make(np.array([1 + 1j], dtype=np.complex64))


@pytest.mark.parametrize("upstream", [np.array(3.0), 3.0, tg.Tensor(np.array(3.0)), [np.array(3.0)]])
def test_grad_takes_one_upstream_gradient_as_an_array_a_number_or_a_tensor(upstream):
    """grad_outputs=np.array(1.0) failed with 'len() of unsized object'."""
    t = tg.Tensor(np.array(2.0), requires_grad=True)
    (g,) = tg.grad(t * t, [t], grad_outputs=upstream)
    assert g.item() == 12.0


def test_size_is_numpys_int_and_calling_it_as_torch_does_names_shape():
    import json
    import pickle
    x = tg.zeros(2, 3)
    assert x.size == 6 and isinstance(x.size, int) and x.size + 1 == 7 and 12 // x.size == 2
    assert type(x.size * 2) is int and f"{x.size:,}" == "6" and hash(x.size) == hash(6)
    assert json.dumps({"n": x.size}) == '{"n": 6}' and np.zeros(x.size).shape == (6,) and np.asarray(x.size) == 6
    assert type(pickle.loads(pickle.dumps(x.size))) is int
    assert list(range(x.size)) == list(range(6)) and np.arange(12)[x.size] == 6
    for call in (lambda: x.size(), lambda: x.size(1)):
        with pytest.raises(TypeError, match=r"size is an int \(NumPy\); use \.shape: .*number of elements \(6\), "
                                            r"torch's x.size\(\) is x.shape here and x.size\(d\) is x.shape\[d\]"):
            call()
