"""Numerical gradient checks: `gradcheck` and `gradgradcheck` (float64 central differences, one shared
numerical-difference helper, as PyTorch's gradcheck.py), and whole-module / whole-model checks."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..ops import concat, reshape
from ..tensor import Tensor
from ..autograd import default_dtype, grad

__all__ = ["gradcheck", "gradcheck_module", "gradcheck_model", "gradgradcheck", "numerical_grad"]


def numerical_grad(fn, inputs, index, upstream, eps=1e-6):
    """Central-difference gradient of `sum(fn(*inputs) * upstream)` with respect to `inputs[index]`.

    Args:
        fn: a function of the inputs returning one Tensor.
        inputs: the inputs (arrays or Tensors).
        index: which input to differentiate.
        upstream: the upstream gradient, of the output's shape.
        eps: the step.

    Returns:
        numpy.ndarray: of `inputs[index]`'s shape.
    """
    x = inputs[index]
    host = backend.to_numpy(x.data)
    g = np.zeros(host.shape, dtype=np.float64)
    flat = host.reshape(-1)            # a view: edits go into the host copy below
    for k in range(flat.size):
        old = flat[k]
        vals = []
        for delta in (eps, -eps):
            flat[k] = old + delta
            x.data = backend.to_device(host, x.device) if x.device != "cpu" else host
            out = fn(*inputs)
            vals.append(float((backend.to_numpy(out.data).astype(np.float64) * upstream).sum()))
        flat[k] = old
        g.reshape(-1)[k] = (vals[0] - vals[1]) / (2 * eps)
    x.data = backend.to_device(host, x.device) if x.device != "cpu" else host
    return g


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, upstream=None, seed=0, names=None):
    """Compare the analytic gradients of `fn(*inputs)` with float64 central differences.

    Float inputs are converted to float64 Tensors that require grad; non-float inputs pass through.
    The output is contracted with a random upstream gradient (not ones), so a backward that ignores
    its incoming gradient is caught.

    Args:
        fn: a function of the inputs returning one Tensor.
        *inputs: arrays, Tensors or other arguments.
        eps: the central-difference step.
        atol: the absolute tolerance.
        rtol: the relative tolerance.
        upstream: the upstream gradient; default random (seeded).
        seed: of the random upstream gradient.
        names: the inputs' names in messages; default `input 0`, ...

    Returns:
        bool: True when every gradient matches.

    Raises:
        AssertionError: naming the input, the index and both values.
        TypeError: `fn` does not return one Tensor.
    """
    rng = np.random.default_rng(seed)
    names = names or [f"input {i}" for i in range(len(inputs))]
    ts = []
    for a in inputs:
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            ts.append(Tensor(a.data.astype(np.float64), requires_grad=True))
        elif not isinstance(a, Tensor) and np.asarray(a).dtype.kind == "f":
            ts.append(Tensor(np.asarray(a, dtype=np.float64), requires_grad=True))
        else:
            ts.append(a)
    before = [backend.to_numpy(t.data).copy() if isinstance(t, Tensor) and t.requires_grad else None for t in ts]
    with default_dtype(np.float64):
        out = _one_tensor(fn(*ts), "gradcheck")
        if upstream is None:
            upstream = rng.standard_normal(out.shape)
        out.backward(grad=upstream.astype(out.dtype) if hasattr(upstream, "astype") else upstream)
        _unchanged(ts, before, names)
        for i, t in enumerate(ts):
            if not (isinstance(t, Tensor) and t.requires_grad):
                continue
            analytic = np.zeros(t.shape) if t.grad is None else backend.to_numpy(t.grad.data)
            numeric = numerical_grad(fn, ts, i, np.asarray(upstream), eps)
            _compare(names[i], analytic, numeric, atol, rtol)
    return True


def gradgradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0, names=None):
    """Compare the second derivatives of `fn(*inputs)` with central differences of its first-order gradient.

    As `torch.autograd.gradgradcheck`: the first-order gradient is taken with a random upstream
    gradient u and `create_graph=True`; that gradient (as a function of the inputs and of u, so its
    linearity in u is checked as well) then goes through `gradcheck` with a random second-level
    upstream gradient.

    Args:
        fn: a function of the inputs returning one Tensor.
        *inputs: arrays, Tensors or other arguments.
        eps: the central-difference step.
        atol: the absolute tolerance.
        rtol: the relative tolerance.
        seed: of the random upstream gradients.
        names: the inputs' names in messages.

    Returns:
        bool: True when all match.

    Raises:
        AssertionError: naming the input ('upstream' for u), the index and both values.
    """
    rng = np.random.default_rng(seed)
    diff = [i for i, a in enumerate(inputs) if np.asarray(getattr(a, "data", a)).dtype.kind == "f"]
    with default_dtype(np.float64):
        shape = _one_tensor(fn(*[Tensor(np.asarray(getattr(a, "data", a), np.float64)) if i in diff else a
                                 for i, a in enumerate(inputs)]), "gradgradcheck").shape
    u = rng.standard_normal(shape)
    names = list(names or [f"input {i}" for i in range(len(inputs))]) + ["upstream"]
    _same_first_order(fn, inputs, diff, u, atol, rtol, names)

    def first_order(*args):
        xs, upstream = list(args[:-1]), args[-1]
        grads = grad(fn(*xs), [xs[i] for i in diff], grad_outputs=upstream, create_graph=True,
                     allow_unused=True)
        flat = [reshape(g if g is not None else Tensor(np.zeros(xs[i].shape)), (-1,))
                for i, g in zip(diff, grads)]
        return concat(flat)
    try:
        return gradcheck(first_order, *inputs, u, eps=eps, atol=atol, rtol=rtol, seed=seed + 1, names=names)
    except AssertionError as exc:      # say which check failed: the derivatives of the gradient
        raise AssertionError("gradgradcheck: second derivatives: " + str(exc).removeprefix("gradcheck: ")) from None


def _one_tensor(out, who):
    if not isinstance(out, Tensor):
        raise TypeError(f"{who}: fn must return one Tensor, got {type(out).__name__}; check each output on its "
                        "own (e.g. lambda *xs: fn(*xs)[0])")
    return out


def _unchanged(ts, before, names):
    """An op that writes into an input (or into a saved array that is one) changes what the
    numerical differences start from: say so, rather than report the gradients that then differ."""
    for name, t, b in zip(names, ts, before):
        if b is None:
            continue
        now = backend.to_numpy(t.data)
        changed = ~((now == b) | (np.isnan(now) & np.isnan(b)))
        if changed.any():
            idx = tuple(int(k) for k in np.argwhere(changed)[0])
            raise AssertionError(f"gradcheck: {name} was changed in place by the forward or backward: at index "
                                 f"{idx} it was {b[idx]:.8g} and is now {now[idx]:.8g}; an op writes into its input "
                                 "(or into a saved array that is its input)")


def _same_first_order(fn, inputs, diff, u, atol, rtol, names):
    """The gradient made with create_graph=True (through an op's reference, or its backward on
    Tensors) must be the one a plain backward gives: the second derivatives are checked against the
    first-order gradient of create_graph=True, so a difference would pass unnoticed."""
    grads = []
    with default_dtype(np.float64):
        for create_graph in (False, True):
            xs = [Tensor(np.array(getattr(a, "data", a), np.float64), requires_grad=True) if i in diff else a
                  for i, a in enumerate(inputs)]
            got = grad(fn(*xs), [xs[i] for i in diff], grad_outputs=Tensor(u), create_graph=create_graph,
                       allow_unused=True)
            grads.append([np.zeros(np.shape(getattr(xs[i], "data", xs[i]))) if g is None
                          else backend.to_numpy(g.data) for i, g in zip(diff, got)])
    for i, plain, graphed in zip(diff, *grads):
        bad = ~np.isclose(graphed, plain, atol=atol, rtol=rtol)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise AssertionError(f"gradgradcheck: {names[i]} at index {idx}: the gradient made with "
                                 f"create_graph=True is {graphed[idx]:.8g}, a plain backward gives "
                                 f"{plain[idx]:.8g} ({int(bad.sum())} of {bad.size} entries differ): an op's "
                                 "reference() or twice-differentiable backward computes another gradient")


def _compare(name, analytic, numeric, atol, rtol, index=None):
    if analytic.shape != numeric.shape:
        raise AssertionError(f"gradcheck: {name}: gradient shape {analytic.shape} != input shape "
                             f"{numeric.shape}")
    bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = idx if index is None else index
        raise AssertionError(f"gradcheck: {name} at index {where}: analytic {analytic[idx]:.8g} vs numerical "
                             f"{numeric[idx]:.8g} ({int(bad.sum())} of {bad.size} entries differ; "
                             f"atol={atol}, rtol={rtol})")


def gradcheck_module(module, loss_fn, max_entries=12, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check d(loss)/d(parameter) of a whole model against central differences.

    Args:
        module: the Module; converted to float64 in place.
        loss_fn: `loss_fn()` returns the scalar loss (deterministic: eval mode, no sampling).
        max_entries: entries drawn at random per parameter (all of a smaller one).
        eps: the central-difference step.
        atol: the absolute tolerance.
        rtol: the relative tolerance.
        seed: of the entries drawn.

    Returns:
        int: the number of entries checked.

    Raises:
        AssertionError: naming the parameter and the index.
    """
    rng = np.random.default_rng(seed)
    module.to(np.float64)
    module.zero_grad()
    with default_dtype(np.float64):
        loss_fn().backward()
        checked = 0
        for name, p in module.named_parameters():
            analytic = np.zeros(p.shape) if p.grad is None else backend.to_numpy(p.grad.data)
            host = backend.to_numpy(p.data)
            flat = host.reshape(-1)
            picks = (range(flat.size) if flat.size <= max_entries
                     else rng.choice(flat.size, size=max_entries, replace=False))
            for k in picks:
                old = flat[k]
                vals = []
                for delta in (eps, -eps):
                    flat[k] = old + delta
                    p.data = backend.to_device(host, p.device) if p.device != "cpu" else host
                    vals.append(float(backend.to_numpy(loss_fn().data)))
                flat[k] = old
                p.data = backend.to_device(host, p.device) if p.device != "cpu" else host
                idx = tuple(int(i) for i in np.unravel_index(int(k), p.shape))
                _compare(f"parameter '{name}'", np.asarray(analytic[idx]),
                         np.asarray((vals[0] - vals[1]) / (2 * eps)), atol, rtol, index=idx)
                checked += 1
    return checked


def gradcheck_model(name_or_model, vocab_size=7, src_len=5, tgt_len=4, batch=2, wordvec_size=4,
                    hidden_size=8, max_entries=6, seed=0, **extra):
    """Gradient-check a registered seq2seq model's whole loss at tiny sizes (float64, eval mode).

    Args:
        name_or_model: a model name (built with `create_model`) or a model instance.
        vocab_size: V of the test data.
        src_len: question length.
        tgt_len: answer length, without the start marker (the batch holds tgt_len + 1 columns).
        batch: questions in the batch.
        wordvec_size: D, when building by name.
        hidden_size: H, when building by name.
        max_entries: entries checked per parameter.
        seed: of the weights, data and entries.
        **extra: the model's own keyword arguments, when building by name.

    Returns:
        dict[str, int]: parameter name -> entries checked.

    Raises:
        AssertionError: naming the parameter and the index.
    """
    from ..models.registry import create_model  # noqa: PLC0415
    from ..backend.random import manual_seed  # noqa: PLC0415
    manual_seed(seed)
    with default_dtype(np.float64):
        model = (create_model(name_or_model, vocab_size, wordvec_size=wordvec_size,
                              hidden_size=hidden_size, **extra)
                 if isinstance(name_or_model, str) else name_or_model)
    model.eval()
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, vocab_size, size=(batch, src_len))
    ts = rng.integers(0, vocab_size, size=(batch, tgt_len + 1))
    counts = {}
    total = gradcheck_module(model, lambda: model(xs, ts), max_entries=max_entries, seed=seed)
    for pname, p in model.named_parameters():
        counts[pname] = min(p.size, max_entries)
    assert sum(counts.values()) == total
    return counts
