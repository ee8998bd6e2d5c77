"""Gradients of gradients: backward(create_graph=True), tg.grad, gradgradcheck, against PyTorch."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_s2s as tg
from tinygrad_s2s.testing import gradcheck, gradgradcheck
from tinygrad_s2s.testing.strategies import arrays
from extras import need


def test_tanh_derivatives_up_to_the_third_are_exact():
    xs = np.linspace(-2.5, 2.5, 11)
    x = tg.Tensor(xs, requires_grad=True)
    d1, = tg.grad(tg.sum(tg.tanh(x)), x, create_graph=True)
    d2, = tg.grad(tg.sum(d1), x, create_graph=True)
    d3, = tg.grad(tg.sum(d2), x)
    t = np.tanh(xs)
    np.testing.assert_allclose(d1.numpy(), 1 - t * t, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(d2.numpy(), -2 * t * (1 - t * t), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d3.numpy(), -2 * (1 - t * t) * (1 - 3 * t * t), rtol=1e-13, atol=1e-15)


def test_backward_create_graph_gives_grads_that_differentiate_again():
    w = tg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    v = np.array([1.0, 2.0, -1.0])
    loss = tg.sum(w ** 3)
    loss.backward(create_graph=True)
    assert w.grad.requires_grad and not w.grad.is_leaf
    np.testing.assert_allclose(w.grad.numpy(), 3 * w.numpy() ** 2)
    hvp, = tg.grad(tg.sum(w.grad * v), w)         # Hessian-vector product: diag(6w) v
    np.testing.assert_allclose(hvp.numpy(), 6 * w.numpy() * v)
    loss.backward()                                # the graph was retained (create_graph implies it)
    np.testing.assert_allclose(w.grad.numpy(), 6 * w.numpy() ** 2)


def test_grad_leaves_dot_grad_untouched_and_takes_intermediates():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    y = tg.sum(h * h)
    gx, gh = tg.grad(y, [x, h], retain_graph=True)
    assert x.grad is None and h.grad is None
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())
    np.testing.assert_allclose(gx.numpy(), 18 * x.numpy())
    g2, = tg.grad([y, tg.sum(x)], x, grad_outputs=[tg.Tensor(np.array(2.0)), None])
    np.testing.assert_allclose(g2.numpy(), 36 * x.numpy() + 1)


def test_grad_argument_errors_and_allow_unused():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    z = tg.Tensor(np.ones(2), requires_grad=True)
    y = tg.sum(x * 2.0)
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(2,\)\) is not used by the outputs' graph; "
                                           "pass allow_unused=True"):
        tg.grad(y, [x, z], retain_graph=True)
    gx, gz = tg.grad(y, [x, z], allow_unused=True, retain_graph=True)
    assert gz is None and gx.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="input 0 does not require grad"):
        tg.grad(y, tg.Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="grad can be implied only for a scalar output"):
        tg.grad(x * 2.0, x)
    with pytest.raises(ValueError, match=r"grad shape \(3,\) does not match the tensor's shape \(2,\)"):
        tg.grad(x * 2.0, x, grad_outputs=tg.Tensor(np.ones(3)))
    y2 = tg.sum(tg.exp(x))
    tg.grad(y2, x)                                  # retain_graph defaults to create_graph (False)
    with pytest.raises(RuntimeError, match="freed"):
        tg.grad(y2, x)


def test_an_op_with_an_array_only_backward_refuses_create_graph_clearly():
    class Cube(tg.Function):
        def forward(self, x):
            self.x = x
            return x ** 3

        def backward(self, gy):
            return gy * 3 * self.x ** 2
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = tg.sum(Cube.apply(x))
    with pytest.raises(RuntimeError, match="cube: Cube.backward runs on arrays only, so create_graph=True "
                                           "cannot differentiate it; set twice_differentiable"):
        tg.grad(y, x, create_graph=True)


def test_a_users_twice_differentiable_function_and_one_with_a_reference():
    class Cube(tg.Function):
        twice_differentiable = True
        x = tg.saved_input(0)

        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            return gy * 3 * self.x ** 2

    class CubeFused(tg.Function):           # array-only backward, differentiated through its reference
        x = tg.saved_input(0)

        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            return gy * 3 * self.x ** 2

        def reference(self, x):
            return x * x * x
    for cls in (Cube, CubeFused):
        assert gradgradcheck(lambda x, cls=cls: cls.apply(x), np.array([0.5, -1.5, 2.0]))


def test_gradgradcheck_catches_a_backward_that_treats_saved_values_as_constants():
    class Cube(tg.Function):
        twice_differentiable = True          # a false promise: self.x is a plain array

        def forward(self, x):
            self.x = x
            return x ** 3

        def backward(self, gy):
            return gy * 3 * self.x ** 2
    assert gradcheck(lambda x: Cube.apply(x), np.array([0.5, 2.0]))
    with pytest.raises(AssertionError, match="^gradgradcheck: second derivatives: input 0 at index"):
        gradgradcheck(lambda x: Cube.apply(x), np.array([0.5, 2.0]))


class _SwishFused(tg.Function):
    """x * sigmoid(x) with an array-only backward; subclasses bring a reference."""
    x = tg.saved_input(0)

    def forward(self, x):
        self.s = 1 / (1 + np.exp(-x))
        return x * self.s

    def backward(self, gy):
        return gy * (self.s + self.x * self.s * (1 - self.s))


def test_gradgradcheck_catches_a_reference_whose_value_is_right_and_gradient_wrong():
    class ConstantSigmoid(_SwishFused):     # the sigmoid computed on arrays: a constant to the graph
        def reference(self, x):
            return x * tg.Tensor(1 / (1 + np.exp(-x.numpy())))

    class Right(_SwishFused):
        def reference(self, x):
            return x * tg.sigmoid(x)
    assert gradgradcheck(lambda x: Right.apply(x), np.array([0.5, -1.0]))
    with pytest.raises(AssertionError, match=r"gradgradcheck: input 0 at index \(\d,\): the gradient made with "
                                             r"create_graph=True is \S+, a plain backward gives \S+ \(2 of 2"):
        gradgradcheck(lambda x: ConstantSigmoid.apply(x), np.array([0.5, -1.0]))


def test_a_reference_is_compared_with_the_outputs_only_while_they_are_unchanged():
    class Off(_SwishFused):
        def reference(self, x):
            return x * tg.sigmoid(x) + 1
    x = tg.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    y = Off.apply(x)
    with pytest.raises(RuntimeError, match=r"off: Off.reference does not compute what its forward "
                                           r"computed: output 0 at element \(0,\) is 1.3112297, the forward gave "
                                           r"0.31122967 \(2 of 2 differ\)"):
        tg.grad(tg.sum(y), x, create_graph=True)
    y = Off.apply(x)
    y.data = y.data + 1                     # the user's own in-place change: nothing left to compare with
    (gx,) = tg.grad(tg.sum(y), x, create_graph=True)
    s = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(gx.numpy(), s + x.numpy() * s * (1 - s))


def test_the_checks_want_one_tensor_from_fn():
    for check in (gradcheck, gradgradcheck):
        with pytest.raises(TypeError, match=f"{check.__name__}: fn must return one Tensor, got tuple; check each "
                                            r"output on its own \(e.g. lambda \*xs: fn\(\*xs\)\[0\]\)"):
            check(lambda x: (tg.tanh(x), x * 2), np.array([0.5, 1.0]))


def test_gradcheck_names_an_input_that_the_op_changed_in_place():
    class Doubles(_SwishFused):
        def backward(self, gy):
            self.x[...] *= 2                 # writes into the saved input
            return super().backward(gy)
    with pytest.raises(AssertionError, match=r"gradcheck: input 0 was changed in place by the forward or backward: "
                                             r"at index \(0,\) it was 0.5 and is now 1"):
        gradcheck(lambda x: Doubles.apply(x), np.array([0.5, -1.0]))


def test_in_place_changes_are_refused_in_the_recorded_backward_too():
    w = tg.Tensor(np.ones(3), requires_grad=True)
    loss = tg.sum(w * w)
    w.data = np.zeros(3)
    with pytest.raises(RuntimeError, match="modified in place"):
        tg.grad(loss, w, create_graph=True)


def test_gradient_penalty_trains_the_parameters_through_the_input_gradient():
    """WGAN-GP style: penalty = (||d critic / d x|| - 1)^2, differentiated w.r.t. the critic's weights
    (checked against central differences of the whole penalty)."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 3))

    def penalty(W):
        x = tg.Tensor(xs, requires_grad=True)
        score = tg.sum(tg.tanh(x @ W))
        gx, = tg.grad(score, x, create_graph=True)
        norm = tg.sqrt(tg.sum(gx * gx, axis=1))
        return tg.mean((norm - 1.0) ** 2)
    assert gradcheck(penalty, rng.standard_normal((3, 2)))


_UNARY = [("tanh", lambda m, x: m.tanh(x)), ("sigmoid", lambda m, x: m.sigmoid(x)),
          ("exp", lambda m, x: m.exp(x * 0.3)), ("square", lambda m, x: x * x),
          ("softmax", lambda m, x: m.softmax(x, -1)), ("sum", lambda m, x: x * _sum(m, x)),
          ("log_softmax", lambda m, x: m.log_softmax(x, -1)), ("transpose", lambda m, x: x.T)]
_BINARY = [("add", lambda m, a, b: a + b), ("sub", lambda m, a, b: a - b), ("mul", lambda m, a, b: a * b),
           ("div", lambda m, a, b: a / (b * b + 1.0)), ("matmul", lambda m, a, b: a @ b.T)]


def _sum(m, x):
    return m.sum(x, -1, keepdims=True) if m is tg else x.sum(-1, keepdim=True)


@st.composite
def _composition(draw):
    n = draw(st.integers(1, 3))
    leaves = [draw(arrays((n, n), -1.5, 1.5)) for _ in range(draw(st.integers(1, 3)))]
    steps = draw(st.lists(st.tuples(st.booleans(), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)),
                          min_size=1, max_size=8))
    return leaves, steps, draw(st.integers(0, 2 ** 16))


def _build(m, xs, steps):
    pool = list(xs)
    for binary, i, j, k in steps:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        pool.append(_BINARY[k % len(_BINARY)][1](m, a, b) if binary else _UNARY[k % len(_UNARY)][1](m, a))
    return m.sum(pool[-1] * pool[0])


@pytest.mark.extras
@given(_composition())
def test_hessian_vector_products_equal_pytorch_double_backward(comp):
    torch = need("torch", "bench")
    leaves, steps, seed = comp
    vs = [np.random.default_rng(seed + i).standard_normal(a.shape) for i, a in enumerate(leaves)]
    xs = [tg.Tensor(a, requires_grad=True) for a in leaves]
    gs = tg.grad(_build(tg, xs, steps), xs, create_graph=True, allow_unused=True)
    dot = sum((tg.sum(g * v) for g, v in zip(gs, vs) if g is not None), tg.Tensor(np.array(0.0)))
    ours = tg.grad(dot, xs, allow_unused=True) if dot.requires_grad else [None] * len(xs)
    ts = [torch.tensor(a, requires_grad=True) for a in leaves]
    tgs = torch.autograd.grad(_build(torch, ts, steps), ts, create_graph=True, allow_unused=True)
    tdot = sum((torch.sum(g * torch.from_numpy(v)) for g, v in zip(tgs, vs) if g is not None),
               torch.tensor(0.0, dtype=torch.float64))
    theirs = (torch.autograd.grad(tdot, ts, allow_unused=True) if tdot.requires_grad else [None] * len(ts))
    for o, t, a in zip(ours, theirs, leaves):
        o = np.zeros(a.shape) if o is None else o.numpy()
        t = np.zeros(a.shape) if t is None else t.detach().numpy()
        np.testing.assert_allclose(o, t, rtol=1e-8, atol=1e-8)
