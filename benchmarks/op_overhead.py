"""Per-op overhead: forward + backward of every op in the op table on tiny tensors, vs PyTorch eager.

    python -m benchmarks.op_overhead [--quick] [--repeats N] [--threads 1,default] [--pairs 3] [--ops add,matmul]

Each op's input is one deterministic tiny example drawn from its own strategy in
`tinygrad_s2s.testing.op_table.OPS` (Hypothesis `find` with a fixed seed and no shrinking: the first
example whose arrays all hold >= 4 elements), cast to float32. On tensors this small the time is
almost all framework overhead (graph recording, dispatch, gradient bookkeeping), not arithmetic.
Each framework runs alone in its own process (processes.py).
Targets: <= 3x PyTorch (issue 2), <= 1.5x (issue 6), judged on the geometric mean over ops.
"""
from __future__ import annotations

import statistics

import numpy as np

from .common import fmt_time, geomean, parser, print_table, setting_label, target_line, time_alternating
from .processes import Summary, dispatch, summarize

MIN_ELEMENTS = 4


def tiny_example(spec):
    """(float32 arrays, kwargs): the same example on every run and machine."""
    from hypothesis import HealthCheck, Phase, find, settings
    chosen = settings(database=None, derandomize=True, max_examples=500, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
    arrays, kwargs = find(spec.inputs, lambda v: all(a.size >= MIN_ELEMENTS for a in v[0]),
                          settings=chosen)
    return [np.asarray(a, np.float32) for a in arrays], kwargs


def describe_example(arrays, kwargs) -> str:
    shapes = " ".join(str(tuple(a.shape)).replace(" ", "") for a in arrays)
    extra = ",".join(f"{k}={_short(v)}" for k, v in kwargs.items() if v is not None)
    return shapes + (f" {extra}" if extra else "")


def _short(v):
    if isinstance(v, np.ndarray):
        return f"<{v.dtype.name}{tuple(v.shape)}>".replace(" ", "")
    return str(v).replace(" ", "")


# ---------------------------------------------------------------- PyTorch equivalents
def _dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def _torch_ops(torch):
    """op-table name -> torch function taking (*tensors, **the op table's kwargs)."""
    F = torch.nn.functional

    def t(a):   # NumPy kwargs (indices, masks, targets) as torch tensors
        return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a

    def reduce(fn):
        def run(x, axis, keepdims):
            if x.ndim == 0:
                return fn(x)
            return fn(x, dim=_dims(axis, x.ndim), keepdim=keepdims)
        return run

    def getitem(x, index):
        if isinstance(index, tuple):
            index = tuple(t(i) for i in index)
        return x[t(index)]

    def cross_entropy(x, targets, ignore_index):
        return F.cross_entropy(x.reshape(-1, x.shape[-1]), t(targets).reshape(-1),
                               ignore_index=-100 if ignore_index is None else ignore_index)

    def dropout(x, p):
        # the op table reseeds ours on every call too (one fixed mask); torch.manual_seed would
        # also reseed every other device's generator (~100 us), so reseed only the CPU one
        torch.default_generator.manual_seed(0)
        return F.dropout(x, p, training=True)

    def lstm_step(a, c):   # the book's gate order f, g, i, o, from primitives as eager PyTorch runs it
        f, g, i, o = a.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.tanh(g) * torch.sigmoid(i)
        return torch.sigmoid(o) * torch.tanh(c), c

    def gru_sequence(x, Wx, b, h, Wh):   # the book's GRU (z, r, h~), as the op table's reference
        H, hs = h.shape[-1], []
        Wz, Wr, Wn = Wh.split(H, dim=1)
        for step in (x @ Wx + b).unbind(1):
            xz, xr, xn = step.split(H, dim=-1)
            z, r = torch.sigmoid(xz + h @ Wz), torch.sigmoid(xr + h @ Wr)
            h = (1 - z) * h + z * torch.tanh(xn + (r * h) @ Wn)
            hs.append(h)
        return torch.cat([torch.stack(hs, 1), h[:, None]], 1)

    def take_along_axis(x, indices, axis):   # NumPy's negative indices count from the end; gather's may not
        return torch.take_along_dim(x, t(indices % x.shape[axis]), dim=axis)

    def lstm_sequence(x, Wx, b, *rest, zero=(False, False)):
        # the op table leaves h0 / c0 out where `zero` says so: the zero start state, as ours takes None
        given = iter(rest[:-1])
        h, c = (torch.zeros(x.shape[0], rest[-1].shape[0], dtype=x.dtype) if z else next(given) for z in zero)
        Wh, hs = rest[-1], []
        b = b[:, None] if b.ndim == 2 else b      # one bias per sequence (N, 4H), the same at every step
        for step in (x @ Wx + b).unbind(1):
            h, c = lstm_step(step + h @ Wh, c)
            hs.append(h)
        return torch.cat([torch.stack(hs, 1), h[:, None], c[:, None]], 1)

    return {
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "neg": torch.neg,
        "pow": torch.pow, "pow_scalar": lambda x, exponent: x ** exponent,
        "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "sigmoid": torch.sigmoid,
        "tanh": torch.tanh, "relu": torch.relu, "matmul": torch.matmul,
        "softmax": lambda x, axis: torch.softmax(x, dim=axis),
        "log_softmax": lambda x, axis: torch.log_softmax(x, dim=axis),
        "sum": reduce(torch.sum), "mean": reduce(torch.mean), "max": reduce(torch.amax),
        "logsumexp": reduce(torch.logsumexp), "abs": torch.abs, "maximum": torch.maximum,
        "minimum": torch.minimum, "clip": lambda x, lo, hi: torch.clamp(x, lo, hi),
        "squeeze": lambda x, axis: x.squeeze() if axis is None else x.squeeze(axis),
        "expand_dims": lambda x, axis: x.unsqueeze(axis), "take_along_axis": take_along_axis,
        "gru_sequence": gru_sequence,
        "reshape": lambda x, shape: x.reshape(shape),
        "transpose": lambda x, axes: x.permute(*(reversed(range(x.ndim)) if axes is None else axes)),
        "broadcast_to": lambda x, shape: torch.broadcast_to(x, shape),
        "repeat": lambda x, repeats, axis: torch.repeat_interleave(x, repeats, dim=axis),
        "concat": lambda *xs, axis: torch.cat(xs, dim=axis),
        "stack": lambda *xs, axis: torch.stack(xs, dim=axis),
        "split": lambda x, sections, axis: torch.cat(torch.tensor_split(x, sections, dim=axis), dim=axis),
        "unstack": lambda x, axis: torch.stack(torch.unbind(x, dim=axis), dim=axis),
        "where": lambda a, b, cond: torch.where(t(cond), a, b),
        "getitem": getitem,
        "dropout": dropout,
        "softmax_cross_entropy": cross_entropy,
        "lstm_cell": lambda a, c: torch.stack(lstm_step(a, c)),
        "lstm_sequence": lstm_sequence,
    }


# ---------------------------------------------------------------- one op, both frameworks
def ours_step(spec, arrays, kwargs):
    """A callable running forward + backward of the op once (leaf grads reset, as zero_grad does)."""
    from tinygrad_s2s import Tensor
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = spec.fn(*leaves, **kwargs)
    grad = np.ones(out.shape, out.dtype)

    def step():
        for leaf in leaves:
            leaf.grad = None
        spec.fn(*leaves, **kwargs).backward(grad)
    return step


def torch_step(torch, fn, arrays, kwargs):
    """The same for a torch function; raises if the torch function cannot take this example."""
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves, **kwargs)
    grad = torch.ones_like(out)

    def step():
        for leaf in leaves:
            leaf.grad = None
        fn(*leaves, **kwargs).backward(grad)
    step()   # fail here, not in the timing loop
    return step


def measure(bench, only=None) -> dict:
    """In one child process: median fwd+bwd per call of every selected op, for this framework alone."""
    from tinygrad_s2s.testing.op_table import OPS
    equivalents = _torch_ops(bench.torch) if bench.framework == "torch" else {}
    cases = {}
    for spec in OPS:
        if only and spec.name not in only:
            continue
        arrays, kwargs = tiny_example(spec)
        if bench.framework == "ours":
            step = ours_step(spec, arrays, kwargs)
        elif spec.name not in equivalents:
            cases[spec.name] = {"seconds": None, "note": "no torch equivalent"}
            continue
        else:
            try:
                step = torch_step(bench.torch, equivalents[spec.name], arrays, kwargs)
            except Exception as exc:   # e.g. an index torch does not support
                cases[spec.name] = {"seconds": None, "note": f"torch: {type(exc).__name__}"}
                continue
        seconds = time_alternating({spec.name: step}, bench.repeats, bench.min_sample_s)[spec.name]
        cases[spec.name] = {"seconds": seconds, "example": describe_example(arrays, kwargs)}
    return cases


def geomean_summary(results, setting) -> Summary:
    """The geometric mean over ops of ours/torch, per pair; its median and spread over the pairs
    (ours and torch: the geometric means of the per-op times)."""
    pairs = list(zip(results.children(setting, "ours"), results.children(setting, "torch")))
    per_pair, ours_gm, torch_gm = [], [], []
    for ours, theirs in pairs:
        names = [n for n, c in theirs["cases"].items() if c["seconds"] is not None]
        per_pair.append(geomean([ours["cases"][n]["seconds"] / theirs["cases"][n]["seconds"] for n in names]))
        ours_gm.append(geomean([ours["cases"][n]["seconds"] for n in names]))
        torch_gm.append(geomean([theirs["cases"][n]["seconds"] for n in names]))
    return Summary(statistics.median(ours_gm), statistics.median(torch_gm), statistics.median(per_pair),
                   min(per_pair), max(per_pair))


def report(bench, results):
    verdicts = []
    for setting in bench.settings:
        ours_runs, torch_runs = results.children(setting, "ours"), results.children(setting, "torch")
        rows = []
        for name, case in ours_runs[0]["cases"].items():
            ours = [run["cases"][name]["seconds"] for run in ours_runs]
            theirs = [run["cases"][name]["seconds"] for run in torch_runs]
            note = torch_runs[0]["cases"][name].get("note", "") if torch_runs else ""
            s = summarize(ours, theirs if theirs and None not in theirs else None)
            rows.append([name, case["example"], fmt_time(s.ours), fmt_time(s.torch), s.ratio_text(), s.spread(),
                         note])
        print(results.threads_text(setting))
        print_table(["op", "example (float32)", "ours fwd+bwd", "torch fwd+bwd", "ours/torch",
                     f"spread ({bench.pairs})", "note"], rows,
                    title="Per-op overhead, forward + backward on tiny tensors "
                          "(median per call over process pairs; lower is better)")
        if not torch_runs:
            continue
        gm = geomean_summary(results, setting)
        compared = sum(c["seconds"] is not None for c in torch_runs[0]["cases"].values())
        print(f"{setting_label(setting)}: ops compared {compared} of {len(rows)}; geometric mean ours/torch "
              f"{gm.ratio:.2f}x (spread over pairs {gm.spread()})\n")
        verdicts.append(target_line(f"geometric mean ours/torch, {setting_label(setting)}, vs issue 2", gm.ratio, 3.0, bench.quick))
        verdicts.append(target_line(f"geometric mean ours/torch, {setting_label(setting)}, vs issue 6", gm.ratio, 1.5, bench.quick))
    for line in verdicts:
        print(line)
    return results


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=15)
    p.add_argument("--ops", default=None, help="comma-separated op names (default: every op in the table)")
    args = p.parse_args(argv)
    only = set(args.ops.split(",")) if args.ops else None
    if only:
        from tinygrad_s2s.testing.op_table import BY_NAME
        unknown = only - set(BY_NAME)
        if unknown:
            raise SystemExit(f"--ops: unknown op(s) {sorted(unknown)}; known: {sorted(BY_NAME)}")
    return dispatch(__spec__.name, args, argv, lambda bench: measure(bench, only), report)


if __name__ == "__main__":
    main()
