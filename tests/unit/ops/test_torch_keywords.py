"""PyTorch's `dim=` and `keepdim=` on a function or method that takes NumPy's `axis=` / `keepdims=` are
refused with our keyword named ("sum() takes axis=, not dim= (NumPy's name)"), not Python's
"unexpected keyword argument 'dim'". Every public function and Tensor method with an `axis` is found
here, so a new one that does not wear `@numpy_keywords` fails."""
import inspect

import numpy as np
import pytest

import tinygrad_s2s as tg


def _takes(f, name) -> bool:
    try:
        return name in inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False


FUNCTIONS = sorted(n for n in tg.ops.__all__ if _takes(getattr(tg.ops, n), "axis"))
METHODS = sorted(n for n, f in vars(tg.Tensor).items() if callable(f) and _takes(f, "axis"))


def test_the_functions_with_an_axis_are_found():
    assert {"sum", "mean", "max", "logsumexp", "softmax", "log_softmax", "concat", "stack", "split", "squeeze",
            "expand_dims", "repeat", "unstack", "take_along_axis", "cat"} <= set(FUNCTIONS)
    assert {"sum", "mean", "max", "softmax", "argmax", "squeeze"} <= set(METHODS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_with_an_axis_names_it_for_dim(name):
    x = tg.ones(2, 3)
    f = getattr(tg, name)
    own = f.__name__
    with pytest.raises(TypeError, match=rf"^{own}\(\) takes axis=, not dim= \(NumPy's name\)$"):
        f(x, dim=1)
    if _takes(f, "keepdims"):
        with pytest.raises(TypeError, match=rf"^{own}\(\) takes keepdims=, not keepdim= \(NumPy's name\)$"):
            f(x, axis=1, keepdim=True)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_with_an_axis_names_it_for_dim(name):
    x = tg.ones(2, 3)
    own = getattr(tg.Tensor, name).__name__          # an alias (unsqueeze = expand_dims) names the op
    with pytest.raises(TypeError, match=rf"^{own}\(\) takes axis=, not dim= \(NumPy's name\)$"):
        getattr(x, name)(dim=1)


def test_the_briefs_examples_and_the_right_keywords_still_work():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match=r"sum\(\) takes axis=, not dim= \(NumPy's name\)"):
        tg.sum(x, dim=1)
    with pytest.raises(TypeError, match=r"sum\(\) takes axis=, not dim= \(NumPy's name\)"):
        x.sum(dim=1)
    with pytest.raises(TypeError, match=r"concat\(\) takes axis=, not dim="):
        tg.cat([x, x], dim=0)
    assert x.sum(axis=1, keepdims=True).shape == (2, 1) and tg.sum(x, 1).numpy().tolist() == [3.0, 12.0]
    assert tg.softmax(x, axis=0).shape == (2, 3) and x.argmax(axis=1).numpy().tolist() == [2, 2]
    assert tg.sum.__name__ == "sum" and "axis" in inspect.signature(tg.sum).parameters
