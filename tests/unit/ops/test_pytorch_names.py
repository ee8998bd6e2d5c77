"""PyTorch's tensor spellings: where the meaning is ours, the name works and is the same op (`view` is
reshape, `permute` transpose, `unsqueeze` expand_dims, `numel()` size); where it is not, or the op is
missing, the AttributeError says what to write here (`Tensor.PYTORCH_NAMES`), names the op function
(`x.add` -> `tg.add(x, ...)`) or suggests the nearest attribute."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_s2s as tg
from paths import REPO_ROOT
from tinygrad_s2s.tensor import PYTORCH_NAMES

ALIASES = ["view", "permute", "flatten", "numel", "dim", "t", "unsqueeze"]
GUIDE = REPO_ROOT / "docs" / "guide" / "from-pytorch.md"


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=3)), st.randoms())
def test_view_permute_flatten_unsqueeze_are_our_ops_with_their_gradients(a, rnd):
    axes = list(range(a.ndim))
    rnd.shuffle(axes)
    where = rnd.randint(-a.ndim - 1, a.ndim)
    cases = [(lambda x: x.view(-1, *a.shape[1:]), lambda x: tg.reshape(x, (-1, *a.shape[1:]))),
             (lambda x: x.view(a.size), lambda x: tg.reshape(x, a.size)),
             (lambda x: x.permute(*axes), lambda x: tg.transpose(x, axes)),
             (lambda x: x.permute(tuple(axes)), lambda x: tg.transpose(x, axes)),
             (lambda x: x.flatten(), lambda x: tg.reshape(x, -1)),
             (lambda x: x.unsqueeze(where), lambda x: tg.expand_dims(x, where))]
    for ours, theirs in cases:
        x1, x2 = tg.Tensor(a.copy(), requires_grad=True), tg.Tensor(a.copy(), requires_grad=True)
        y1, y2 = ours(x1), theirs(x2)
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())
        w = np.arange(y1.size, dtype=np.float64).reshape(y1.shape)
        (y1 * w).sum().backward()
        (y2 * w).sum().backward()
        np.testing.assert_array_equal(x1.grad.numpy(), x2.grad.numpy())
    x = tg.Tensor(a)
    assert x.numel() == a.size == x.size and isinstance(x.numel(), int) and x.dim() == a.ndim


def test_t_transposes_up_to_two_axes_and_refuses_more():
    m = tg.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.t().numpy(), m.numpy().T)
    assert tg.ones(3).t().shape == (3,)
    with pytest.raises(ValueError, match=r"t\(\) takes a tensor of at most 2 axes, not shape \(2, 3, 4\)"):
        tg.ones(2, 3, 4).t()


def test_permute_wants_every_axis():
    x = tg.ones(2, 3, 4)
    with pytest.raises(TypeError, match=r"permute\(\) takes the order of all 3 axes, e.g. x.permute\(2, 1, 0\)"):
        x.permute()
    with pytest.raises(ValueError):
        x.permute(0, 1)


def test_view_of_a_non_contiguous_tensor_copies_instead_of_failing():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3)).T        # torch: view() needs contiguous(); here it copies
    assert x.view(6).numpy().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


@pytest.mark.parametrize("name", sorted(PYTORCH_NAMES))
def test_a_pytorch_name_we_spell_otherwise_says_what_to_write(name):
    assert not hasattr(tg.Tensor, name), f"Tensor.{name} exists now: take it out of PYTORCH_NAMES"
    with pytest.raises(AttributeError) as info:
        getattr(tg.ones(2), name)
    assert str(info.value) == f"'Tensor' object has no attribute '{name}': PyTorch's x.{name} is {PYTORCH_NAMES[name]}"


def test_an_op_missing_as_a_method_names_the_function_and_a_typo_the_nearest_names():
    x = tg.ones(2)
    with pytest.raises(AttributeError, match=r"no attribute 'add': use the op function, tg.add\(x, ...\)$"):
        x.add(x)
    with pytest.raises(AttributeError, match=r"no attribute 'permut'; did you mean 'permute'\?$"):
        x.permut(0)
    with pytest.raises(AttributeError, match=r"^'Tensor' object has no attribute 'zzqx'$"):
        _ = x.zzqx
    with pytest.raises(AttributeError, match=r"^'Tensor' object has no attribute '_repr_svg_'$"):
        _ = x._repr_svg_            # a protocol probe: no search, no suggestion
    assert not hasattr(x, "contiguous") and getattr(x, "clone", None) is None


def test_the_guide_lists_every_pytorch_name_and_alias():
    text = GUIDE.read_text(encoding="utf-8")
    missing = [n for n in [*PYTORCH_NAMES, *ALIASES] if f"x.{n}" not in text]
    assert not missing, f"docs/guide/from-pytorch.md does not mention {missing}"
