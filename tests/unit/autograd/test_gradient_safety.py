"""No silently wrong gradient: in-place changes after the forward, wrong backward outputs, failing
backwards. Each 'what was seen' case of issue 11 is reproduced here and now gives a clear error."""
import numpy as np
import pytest

import tinygrad_s2s as tg
from tinygrad_s2s.testing.battery import in_module as _Outer

HERE = __file__


def _line_of(text):
    with open(HERE) as f:
        return next(i for i, line in enumerate(f, 1) if text in line and "_line_of" not in line)


def test_data_assignment_between_forward_and_backward_raises_naming_op_tensor_and_line():
    # seen: sum(w*u), then u changed, then backward gave w.grad = [100, 100, 100] (correct: 1)
    w = tg.Tensor(np.ones(3), requires_grad=True)
    u = tg.Tensor(np.ones(3), name="u")
    loss = tg.sum(w * u)  # the forward line
    u.data = np.full(3, 100.0)
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    msg = str(info.value)
    assert msg.startswith("mul: input 1 (tensor 'u'), saved for backward, was modified in place")
    assert "(its version is now 1)" in msg and "Call backward before optimizer.step()" in msg
    assert f"forward at {HERE}:{_line_of('# the forward line')}" in msg
    assert w.grad is None


def test_optimizer_step_between_forward_and_backward_names_the_parameter_and_module():
    class Net(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tg.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)
    net = Net()
    x = tg.Tensor(np.ones((4, 3)))
    opt = tg.optim.SGD(net.parameters(), lr=0.1)
    tg.sum(net(x) * net(x)).backward()
    loss = tg.sum(net(x) * net(x))
    opt.step()                              # p.data -= ... : an in-place change the engine sees
    with pytest.raises(RuntimeError, match=r"matmul: input 1 \(parameter 'weight'\), saved for backward, "
                                           r"was modified in place.*in module 'fc'"):
        loss.backward()


@pytest.mark.parametrize("change", ["adam", "clip", "load_state_dict", "zero_", "fill_", "isub",
                                    "bump_version"])
def test_every_in_place_change_made_through_the_library_bumps_the_version(change):
    lin = tg.nn.Linear(2, 2)
    w = lin.weight
    tg.sum(lin(tg.Tensor(np.ones((1, 2)))) ** 2).backward()
    before = w.version
    grad_before = w.grad.version
    if change == "adam":
        tg.optim.Adam([w]).step()
    elif change == "clip":
        tg.optim.clip_grad_norm([w], 1e-9)
        assert w.grad.version > grad_before
        return
    elif change == "load_state_dict":
        lin.load_state_dict(lin.state_dict())
    elif change == "isub":
        w.data -= 1.0
    else:
        getattr(w, change)(*([3.0] if change == "fill_" else []))
    assert w.version > before


def test_writing_into_data_is_the_documented_escape_hatch():
    """`t.data[...] = v` writes into the array without a version bump, as PyTorch's .data does; the
    engine cannot see it unless the writer calls bump_version()."""
    w = tg.Tensor(np.ones(3), requires_grad=True)
    u = tg.Tensor(np.ones(3))
    loss = tg.sum(w * u)
    u.data[...] = 100.0
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad.numpy(), [100.0] * 3)   # what the escape hatch means
    u.bump_version()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()
    assert "escape hatch" in tg.Tensor.data.__doc__


def test_changes_to_inputs_that_backward_does_not_read_are_fine():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    y = tg.Tensor(np.ones(3), requires_grad=True)
    s = tg.sum(x + y)
    y.data = np.zeros(3)         # add saves nothing: its gradient does not depend on y's values
    s.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3))


def _custom(backward, forward=lambda self, x: x * 2.0):
    return type("Custom", (tg.Function,), {"forward": forward, "backward": backward})


def test_a_backward_of_the_wrong_shape_names_class_input_and_both_shapes():
    # seen: a (4,) weight received a (3, 4) .grad, and Adam failed later with a bare broadcast error
    Bad = _custom(lambda self, gy: np.ones((3, 5)))
    w = tg.Tensor(np.ones(4), requires_grad=True)
    out = _Outer(lambda x: Bad.apply(x))(w)  # custom forward
    with pytest.raises(ValueError) as info:
        tg.sum(out).backward()
    msg = str(info.value)
    assert msg.startswith("custom: Custom.backward returned a gradient of shape (3, 5) for input 0, "
                          "expected (4,)")
    assert "in module 'inner'" in msg and f"{HERE}:{_line_of('# custom forward')}" in msg
    assert w.grad is None


def test_a_gradient_of_the_broadcast_shape_is_summed_back_as_pytorch_does():
    Broad = _custom(lambda self, gy: np.ones((3, 4)) * gy, forward=lambda self, x: x.copy())
    w = tg.Tensor(np.ones(4), requires_grad=True)
    tg.sum(Broad.apply(w)).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0] * 4)
    assert w.grad.shape == (4,)


def test_a_backward_of_integer_dtype_or_wrong_arity_is_refused():
    w = tg.Tensor(np.ones(4), requires_grad=True)
    with pytest.raises(TypeError, match=r"Custom.backward returned dtype int64 for input 0; gradients must "
                                        "be floating point"):
        tg.sum(_custom(lambda self, gy: np.ones(4, dtype=np.int64)).apply(w)).backward()
    with pytest.raises(ValueError, match="Custom.backward returned 2 gradients for 1 inputs"):
        tg.sum(_custom(lambda self, gy: (gy, gy)).apply(w)).backward()
    with pytest.raises(TypeError, match="Custom.backward returned a list for input 0"):
        tg.sum(_custom(lambda self, gy: [1.0, 2.0, 3.0, 4.0]).apply(w)).backward()


def test_an_exception_inside_backward_names_op_module_and_forward_line():
    # seen: a raw "cannot reshape array of size 6 into shape (5,5)" with no op, module or line
    Fails = _custom(lambda self, gy: np.arange(6.0).reshape(5, 5))
    w = tg.Tensor(np.ones(6), requires_grad=True)
    out = _Outer(lambda x: Fails.apply(x))(w)  # failing forward
    with pytest.raises(ValueError) as info:
        tg.sum(out).backward()
    msg = str(info.value)
    assert msg.startswith("custom: Custom.backward failed: cannot reshape array of size 6 into shape (5,5)")
    assert "in module 'inner'" in msg and f"forward at {HERE}:{_line_of('# failing forward')}" in msg
    assert "cannot reshape" in str(info.value.__cause__)


def test_add_backward_is_only_its_math_and_the_engine_undoes_broadcasting():
    assert tg.ops.elementwise.Add().backward("gy") == ("gy", "gy")
    a = tg.Tensor(np.ones((2, 1, 3)), requires_grad=True)
    b = tg.Tensor(np.ones((4, 1)), requires_grad=True)
    tg.sum(a + b).backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((2, 1, 3), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full((4, 1), 6.0))


def test_sum_to_still_raises_on_a_shape_that_is_not_a_broadcast():
    with pytest.raises(ValueError, match=r"sum_to: a gradient of shape \(3, 4\) is not a broadcast of "
                                         r"\(3, 2\)"):
        tg.autograd.sum_to(np.ones((3, 4)), (3, 2))


def test_only_changes_after_the_forward_to_the_saved_inputs_count():
    w = tg.Tensor(np.ones(3), requires_grad=True)
    u = tg.Tensor(np.ones(3))
    other = tg.Tensor(np.ones(3))
    u.data = np.full(3, 2.0)             # before the forward: the forward saw these values
    loss = tg.sum(w * u)
    other.data = np.zeros(3)             # after it, but not an input of the graph
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0] * 3)
    assert u.version == 1 and other.version == 1


@pytest.mark.parametrize("make", [lambda w: tg.exp(w), lambda w: tg.sigmoid(w), lambda w: tg.sqrt(w),
                                  lambda w: tg.softmax(tg.reshape(w, (1, 2)))])
def test_an_output_its_backward_reads_changed_in_place_raises(make):
    """exp's backward reads exp's output: y.fill_(1) after the forward gave w.grad = [1, 1] (true:
    [e, e^2]). As for saved inputs, the version check now covers saved outputs."""
    w = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = make(w)
    y.fill_(0.5)
    with pytest.raises(RuntimeError, match=r"output 0 \(a tensor of shape .*\), which its backward reads, was "
                                           r"modified in place after the forward \(its version is now 1\)"):
        tg.sum(y).backward()
    assert w.grad is None
    y = make(w)
    z = y * 1                                  # a copy may be changed: the gradient is y's own
    z.fill_(0.5)
    tg.sum(y).backward()
    assert w.grad is not None


def test_in_place_operators_mean_what_they_mean_in_pytorch():
    lin = tg.nn.Linear(2, 2)
    tg.sum(lin(tg.Tensor(np.ones((1, 2))))).backward()
    before = [p.numpy().copy() for p in lin.parameters()]
    with tg.no_grad():                         # the hand-written SGD step: it did nothing before
        for p in lin.parameters():
            p -= 0.1 * p.grad
    for p, b in zip(lin.parameters(), before):
        np.testing.assert_allclose(p.numpy(), b - 0.1 * p.grad.numpy())
        assert p.creator is None and p.version == 1
    w = tg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\+= on a leaf tensor that requires grad .* under tg.no_grad\(\)"):
        w += 1
    loss = tg.sum(w * 2)
    loss += tg.sum(w)                          # a tensor an op made: a new node, as `loss = loss + ...`
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])
    c = tg.Tensor(np.ones(2))
    alias = c
    c *= 3                                     # needs no gradient: in place, seen through every name
    np.testing.assert_array_equal(alias.numpy(), [3.0, 3.0])
    with pytest.raises(TypeError, match=r"\+= in place on a tensor of shape \(2,\) and dtype int64: Cannot cast"):
        ids = tg.Tensor(np.ones(2, np.int64))
        ids += 0.5


def test_requires_grad_cannot_be_switched_off_inside_the_graph():
    w = tg.Tensor(np.ones(2), requires_grad=True)
    y = w * 2
    with pytest.raises(RuntimeError, match=r"requires_grad_\(False\) on a tensor an op made .* use t.detach\(\)"):
        y.requires_grad_(False)
    w.requires_grad_(False)                    # a leaf may
    assert not w.requires_grad


@pytest.mark.parametrize("change", [lambda t: t.fill_(0.0), lambda t: t.zero_()])
def test_a_view_an_op_made_cannot_be_changed_in_place(change):
    """A slice of exp's output shares its array: changing it in place changed what exp's backward
    reads, with no version bump on exp's output. The fused LSTM's hs is such a view of its state.
    (`view += 1` while recording makes a new node, see test_in_place_operators_mean_what_they_mean_in_pytorch.)"""
    w = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for view in (tg.exp(w)[0:1], tg.reshape(tg.exp(w), (2, 1)), tg.nn.LSTM(2, 3)(tg.reshape(w, (1, 1, 2)))):
        with pytest.raises(RuntimeError, match=r"on a tensor that op '\w+' made as a view of another tensor's data"):
            change(view)
    copy = tg.exp(w)[0:1] * 1                  # a copy may change
    copy.fill_(0.0)


@pytest.mark.parametrize("view", [lambda t: tg.transpose(t), lambda t: tg.reshape(t, (-1,)), lambda t: t[0],
                                  lambda t: tg.expand_dims(t, 0), lambda t: t.detach()])
def test_a_change_to_a_tensor_reaches_the_views_an_op_saved(view):
    """A parameter used through a transpose (reshape, slice...), then an optimizer step before
    backward: the saved view's own version had not moved and the gradient came out wrong."""
    W = tg.nn.Parameter(np.arange(6.0).reshape(2, 3), name="W")
    v = view(W)
    x = tg.Tensor(np.ones(v.shape), requires_grad=True)
    loss = tg.sum(x * v)
    W.grad = tg.Tensor(np.ones((2, 3)))
    tg.optim.SGD([W], lr=1.0).step()
    with pytest.raises(RuntimeError, match=r"mul: input 1 \(a tensor of shape .*, a view of parameter 'W'\), saved "
                                           r"for backward, was modified in place after the forward \(its version is now 1\)"):
        loss.backward()


def test_a_change_through_a_view_reaches_the_tensor_it_views():
    """v = reshape(a) under no_grad, then v += 100: the a that mul saved changed, with no version bump."""
    a = tg.Tensor(np.arange(6.0), name="a")
    w = tg.Tensor(np.ones(6), requires_grad=True)
    with tg.no_grad():
        v = tg.reshape(a, (2, 3))
    loss = tg.sum(a * w)
    with tg.no_grad():
        v += 100.0
    assert a.version == 1 and v.version == 1
    with pytest.raises(RuntimeError, match=r"mul: input 0 \(tensor 'a'\), saved for backward, was modified in place"):
        loss.backward()
    b = tg.Tensor(np.arange(6.0))
    copy = tg.reshape(b, (2, 3)) * 1           # not a view: changing it leaves b alone
    copy.fill_(0.0)
    assert b.version == 0
