"""The op battery, public: every check the op table runs on this library's primitives, for your own ops.

Describe an op with an `OpSpec` (the function, a NumPy reference, a Hypothesis strategy for valid
inputs) and run `check_op(spec)`, or generate one pytest test per op and check:

    import pytest
    from . import check_op, op_test_cases
    from my_ops import SPECS

    @pytest.mark.parametrize("spec, check", op_test_cases(SPECS))
    def test_my_op(spec, check):
        check_op(spec, checks=[check])

Each check draws inputs with Hypothesis (so a failure is shrunk to the smallest shape) and fails with
an AssertionError naming the op, the check, the input, the element and both values.
"""
from __future__ import annotations

import importlib.util
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from ..nn import Module
from ..tensor import Tensor
from ..autograd import detect_anomaly
from .numeric import gradcheck, gradgradcheck
from .fake_device import fake_device

__all__ = ["CHECKS", "OpSpec", "check_onnx", "check_op", "in_module", "onnx_available", "op_test_cases", "run_op"]


@dataclass(frozen=True)
class OpSpec:
    """One op under test by `check_op` (the op battery: gradients, dtypes, devices, errors, second order).

    Args:
        name: shown in every failure, and the op name `detect_anomaly` must report (unless `first_op`).
        fn: `fn(*tensors, **kwargs) -> Tensor`, the op as called.
        ref: `ref(*arrays, **kwargs) -> ndarray`, its NumPy reference.
        inputs: a Hypothesis strategy drawing `(arrays, kwargs)`: the float arrays become the Tensors
            whose gradients are checked, kwargs carry everything else (axes, ids, masks).
        atol: the gradient tolerance against central differences.
        kinks: a strategy drawing inputs at ties and kinks, or None.
        subgradient: `subgradient(arrays, upstream, **kwargs)` -> the documented gradient at the
            kinks, checked exactly.
        first_op: the op name `detect_anomaly` reports, when it is not `name` (a composite's first op).
        no_second_order: why the op is not twice differentiable (skips that check); empty if it is.
    """
    name: str
    fn: Callable
    ref: Callable
    inputs: st.SearchStrategy
    atol: float = 1e-5
    kinks: st.SearchStrategy | None = None
    subgradient: Callable | None = None
    first_op: str | None = None
    no_second_order: str = ""

    def __repr__(self):
        return self.name


def run_op(spec, arrays, kw, dtype=np.float64, device="cpu", upstream_seed=0):
    """Forward and backward with a random upstream gradient; returns (inputs, output, upstream)."""
    xs = [Tensor(a.astype(dtype)).to(device).requires_grad_() for a in arrays]
    out = spec.fn(*xs, **kw)
    g = np.random.default_rng(upstream_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(Tensor(g).to(device))
    return xs, out, g


def _close(what, got, expected, rtol, atol):
    """Assert elementwise closeness, naming the first differing element and both values."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {expected.shape}")
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what} at element {idx}: got {got[idx]!r}, expected {expected[idx]!r} "
                             f"({int(bad.sum())} of {bad.size} differ; rtol={rtol}, atol={atol})")


def check_gradient(spec, arrays, kw):
    """Gradients against float64 central differences, with a random upstream gradient."""
    gradcheck(lambda *ts: spec.fn(*ts, **kw), *arrays, atol=spec.atol)


def check_second_order(spec, arrays, kw):
    """Second derivatives (create_graph=True) against central differences of the first-order ones."""
    gradgradcheck(lambda *ts: spec.fn(*ts, **kw), *arrays, atol=spec.atol * 10)


def _check_forward(dtype):
    def check(spec, arrays, kw):
        xs, out, _ = run_op(spec, arrays, kw, dtype)
        expected = spec.ref(*[a.astype(dtype) for a in arrays], **kw)
        if out.dtype != dtype:
            raise AssertionError(f"output dtype {out.dtype} for {np.dtype(dtype).name} inputs")
        tol = 1e-5 if dtype == np.float32 else 1e-12
        _close("output", out.numpy(), expected, rtol=tol * 10, atol=tol)
        for i, x in enumerate(xs):
            if x.grad.dtype != dtype or x.grad.shape != x.shape:
                raise AssertionError(f"input {i}: gradient {x.grad.dtype} {x.grad.shape}, input "
                                     f"{x.dtype} {x.shape}")
    check.__doc__ = f"The forward against the NumPy reference in {np.dtype(dtype).name}; dtypes kept."
    return check


def check_invariants(spec, arrays, kw):
    """Inputs not mutated, no gradient aliasing an input or another gradient, graph freed."""
    before = [a.copy() for a in arrays]
    xs, out, _ = run_op(spec, arrays, kw)
    for i, (x, b) in enumerate(zip(xs, before)):
        _close(f"input {i} after forward and backward (mutated)", x.numpy(), b, rtol=0, atol=0)
    grads = [x.grad.numpy() for x in xs]
    for i, g in enumerate(grads):
        for j, x in enumerate(xs):
            if np.shares_memory(g, x.numpy()):
                raise AssertionError(f"the gradient of input {i} aliases input {j}")
        for j in range(i):
            if np.shares_memory(g, grads[j]):
                raise AssertionError(f"the gradients of inputs {i} and {j} share memory")
    fn = out.creator
    if fn.inputs is not None:
        raise AssertionError("the graph was kept after backward without retain_graph")
    ref = weakref.ref(fn)
    del out, fn   # no gc.collect(): the graph must not hold reference cycles
    if ref() is not None:
        raise AssertionError("the op's node outlived its output (a reference cycle?)")


def check_device(spec, arrays, kw):
    """On the strict fake GPU device: same output and gradients as on the CPU, on the device."""
    cpu_xs, cpu_out, _ = run_op(spec, arrays, kw)
    with fake_device() as dev:
        xs, out, _ = run_op(spec, arrays, kw, device=dev)
        if out.device != dev:
            raise AssertionError(f"output on {out.device}, inputs on {dev}")
        _close("output on the device", out.numpy(), cpu_out.numpy(), rtol=1e-12, atol=1e-12)
        for i, (x, c) in enumerate(zip(xs, cpu_xs)):
            if x.grad.device != dev:
                raise AssertionError(f"the gradient of input {i} is on {x.grad.device}, not {dev}")
            _close(f"gradient of input {i} on the device", x.grad.numpy(), c.grad.numpy(),
                   rtol=1e-12, atol=1e-12)


class in_module(Module):  # noqa: N801 - used like a function: in_module(fn)(*xs)
    """A model whose sub-module `inner` calls `fn`: ops run by fn record the module path 'inner', and
    errors they raise must name it (the anomaly check and the error tests use it)."""

    def __init__(self, fn):
        super().__init__()
        self.inner = _Calls(fn)

    def forward(self, *xs):
        return self.inner(*xs)


class _Calls(Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def check_anomaly(spec, arrays, kw):
    """NaN inputs under detect_anomaly: a FloatingPointError naming the op and the module path. NumPy's
    warnings about the NaN this check feeds on purpose (`invalid value encountered in logaddexp`) are
    not shown: they would say nothing about the op."""
    if np.size(spec.ref(*arrays, **kw)) == 0:
        return                      # an empty result holds no NaN to report
    xs = [Tensor(np.full(a.shape, np.nan), requires_grad=True) for a in arrays]
    model = in_module(lambda *ts: spec.fn(*ts, **kw))
    try:
        with detect_anomaly(), np.errstate(all="ignore"):
            model(*xs)
    except FloatingPointError as exc:
        msg, want = str(exc), (spec.first_op or spec.name) + ": forward produced NaN"
        if not msg.startswith(want) or "in module 'inner'" not in msg:
            raise AssertionError(f"expected an error starting {want!r} in module 'inner', got: {msg}") from None
        return
    raise AssertionError("NaN inputs under detect_anomaly raised no FloatingPointError")


def check_kinks(spec, arrays, kw):
    """At ties and kinks, the documented subgradient exactly."""
    from ..autograd import sum_to  # noqa: PLC0415
    xs, out, g = run_op(spec, arrays, kw)
    for i, (x, e) in enumerate(zip(xs, spec.subgradient(arrays, g, **kw))):
        e = sum_to(np.asarray(e), x.shape)      # a broadcast input's subgradient, summed back
        _close(f"gradient of input {i} at ties/kinks {arrays[i].tolist()}", x.grad.numpy(), e,
               rtol=1e-12, atol=0)


def onnx_available() -> bool:
    """Whether onnx and onnxruntime (the `export` extra) are installed: the `onnx` check runs only then,
    unless asked for by name."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def check_onnx(spec, arrays, kw):
    """The op alone exported to ONNX (`tg.onnx.to_model`, checked by onnx.checker) and run in
    onnxruntime, in float32 and float64: its outputs equal our forward's within `tg.onnx.TOLERANCES`
    (float32: rtol 1e-4, atol 1e-5; float64: rtol 1e-9, atol 1e-11: the runtime's kernels are not ours).
    An op needs an `onnx` method (or a `reference` of ops that have one). A random op's mask (dropout)
    is baked into the graph, which is what this check compares, so its TracerWarning is not shown."""
    from ..onnx import TracerWarning, check_outputs, run_model, to_model  # noqa: PLC0415 - the export extra
    for dtype in (np.float32, np.float64):
        xs = [Tensor(a.astype(dtype)) for a in arrays]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TracerWarning)
            model, host, expected = to_model(lambda *ts: spec.fn(*ts, **kw), xs)
        got = run_model(model, {i.name: h for i, h in zip(model.graph.input, host)})
        check_outputs(got, expected, [o.name for o in model.graph.output],
                      where=f"the exported op in {np.dtype(dtype).name}")


CHECKS = {"gradient": check_gradient, "second_order": check_second_order,
          "forward_float32": _check_forward(np.float32), "forward_float64": _check_forward(np.float64),
          "invariants": check_invariants, "device": check_device, "anomaly": check_anomaly,
          "kinks": check_kinks, "onnx": check_onnx}
"""Every check by name: each takes (spec, arrays, kwargs) for one drawn input and raises AssertionError.
`onnx` runs by default only where the `export` extra is installed (`onnx_available`)."""


def _applies(spec, check, default: bool = True) -> bool:
    if check == "onnx" and default:
        return onnx_available()
    if check == "kinks":
        return spec.kinks is not None
    return not (check == "second_order" and spec.no_second_order)


def check_op(spec: OpSpec, checks=None, max_examples: int | None = None) -> None:
    """Run the battery (all of CHECKS, or the named `checks`) on `spec`, each over Hypothesis draws.

    Each check draws `max_examples` inputs with no per-example deadline, so a loaded or slow machine
    never fails a correct op (a second-order check of a layer takes seconds).

    Args:
        spec: the OpSpec.
        checks: names of CHECKS to run; None runs them all.
        max_examples: inputs drawn per check; default the active Hypothesis profile's (100 unless a
            profile changed it).

    Raises:
        AssertionError: `'<op>: <check>: ...'` at the first failure (after Hypothesis shrinks the
            input), also when the op itself raised (its exception is the cause).
        ValueError: an unknown check name.
    """
    for name in checks or CHECKS:
        if name not in CHECKS:
            raise ValueError(f"check_op: unknown check {name!r}; choose from {sorted(CHECKS)}")
        if not _applies(spec, name, default=checks is None):
            continue
        if name == "onnx" and not onnx_available():
            from ..onnx.export import require  # noqa: PLC0415 - fails naming the extra
            require("onnx"), require("onnxruntime")
        # one failure, the first found and shrunk: several distinct ones would come as an ExceptionGroup
        check = given(drawn=spec.kinks if name == "kinks" else spec.inputs)(_one_draw(spec, name))
        budget = {} if max_examples is None else {"max_examples": max_examples}
        settings(report_multiple_bugs=False, deadline=None, **budget)(check)()


def _one_draw(spec, name):
    def run(drawn):
        arrays, kw = drawn
        try:
            CHECKS[name](spec, arrays, kw)
        except HypothesisException:
            raise
        except Exception as exc:        # an op's own error too: say which check ran it, on what input
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            what = str(exc) if isinstance(exc, AssertionError) else f"raised {type(exc).__name__}: {exc}"
            raise AssertionError(f"{spec.name}: {name}: {what} (input shapes {shapes}; kwargs {kw})") from (
                None if isinstance(exc, AssertionError) else exc)
    return run


def op_test_cases(specs, checks=None) -> list:
    """pytest parameters `(spec, check)`, one per op and applicable check, with ids `'op-check'`.

    For `@pytest.mark.parametrize("spec, check", op_test_cases(SPECS))`.

    Args:
        specs: the OpSpecs.
        checks: names of CHECKS; None for all.

    Returns:
        list: `pytest.param` objects.
    """
    import pytest  # noqa: PLC0415 - only test files call this
    return [pytest.param(s, c, id=f"{s.name}-{c}", marks=[pytest.mark.extras] * (c == "onnx"))
            for s in specs for c in (checks or CHECKS) if _applies(s, c, default=checks is None or c != "onnx")]
