"""Where a training iteration's time goes, ours vs PyTorch's: one table per model, to aim each lever.

    python -m benchmarks.profile [--quick] [--repeats N] [--threads 1,default] [--pairs 1] [--models ...]

The workloads of benchmarks/train_step.py. Each framework alone in its own process (processes.py)
first times whole iterations untraced, split into forward + backward and the optimizer (zero_grad,
clip 5.0, Adam); then traces forward + backward over the same number of iterations and splits that
into categories, whose shares are scaled to the untraced forward + backward time:

- GEMM in the recurrent layers: ours, the NumPy matmuls inside the fused LSTM/GRU ops; PyTorch's
  recurrent layers run their GEMMs inside one fused oneDNN op, counted in the next row.
- recurrent layers, the rest: ours, the fused ops' elementwise work (compiled kernels or NumPy
  ufuncs); PyTorch's, the self time of every op named *lstm*, *gru* or *rnn*.
- other GEMM: ours, the matmul op; PyTorch's, mm, addmm, bmm, baddbmm, mv, addmv, dot, linear.
- other ops: every other op's own time (ours: the op's forward and backward; PyTorch: aten ops).
- allocation: explicit buffers (ours: np.empty, zeros, ... called inside ops; PyTorch: aten::empty*,
  zeros*, resize_); a ufunc's or an aten op's own result is in that op's time.
- dispatch and Python overhead: what the trace does not attribute to any op (ours: the engine, the
  graph and Tensor bookkeeping; PyTorch: its autograd engine's own events and its Python), also
  given per op call.

Ours is traced by wrapping every op's forward and backward (and NumPy's matmul and allocators, and
the compiled kernels); PyTorch's by torch.profiler. Both tracers cost time of their own, which lands
in the overhead row before scaling: read that row as an upper bound.
"""
from __future__ import annotations

import statistics
import time
from collections import defaultdict

from .common import fmt_time, parser, print_table, setting_label
from .processes import dispatch
from .train_step import build_ours, build_torch, make_batch, selected_workloads

CATEGORIES = ("GEMM in recurrent layers", "recurrent layers, the rest", "other GEMM", "other ops", "allocation",
              "dispatch and Python overhead", "optimizer (zero_grad, clip, Adam)")
RECURRENT = ("lstm_sequence", "gru_sequence", "lstm_cell")
ALLOCATORS = ("empty", "zeros", "empty_like", "zeros_like", "ones", "full")
TORCH_GEMM = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mv", "aten::addmv", "aten::dot",
              "aten::_addmm_activation", "aten::linear"}
TORCH_ALLOC = ("aten::empty", "aten::zeros", "aten::resize_", "aten::new_empty", "aten::new_zeros")


class Tracer:
    """Self time per category of nested wrapped calls (a call's time minus that of the wrapped calls
    inside it); `parent` names the op a GEMM or an allocation ran in."""

    def __init__(self):
        self.self_time = defaultdict(float)
        self.calls = defaultdict(int)
        self._child = [0.0]
        self._ops = ["-"]

    def wrap(self, kind, fn, op=None):
        tracer = self

        def wrapped(*args, **kwargs):
            tracer._child.append(0.0)
            if op:
                tracer._ops.append(op)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = tracer._child.pop()
                if op:
                    tracer._ops.pop()
                key = (kind, op or tracer._ops[-1])
                tracer.self_time[key] += elapsed - inner
                tracer.calls[key] += 1
                tracer._child[-1] += elapsed
        return wrapped


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def trace_ours() -> Tracer:
    """Wrap every op's forward and backward, NumPy's matmul and allocators, and the compiled kernels
    (in this child process only: nothing is restored)."""
    import numpy as np

    from tinygrad_s2s.autograd import Function
    from tinygrad_s2s.backend import compiled
    tracer = Tracer()
    for cls in set(_subclasses(Function)):
        name = getattr(cls, "name", None) or cls.__name__
        for method in ("forward", "backward"):
            if method in vars(cls):
                setattr(cls, method, tracer.wrap("op", vars(cls)[method], op=name))
    np.matmul = tracer.wrap("gemm", np.matmul)
    for name in ALLOCATORS:
        setattr(np, name, tracer.wrap("alloc", getattr(np, name)))
    if compiled.available():
        kernels = compiled.kernels(np, np.float32)
        for name in dir(kernels):
            if hasattr(getattr(kernels, name), "py_func"):
                setattr(kernels, name, tracer.wrap("kernel", getattr(kernels, name)))
    return tracer


def categorize_ours(tracer: Tracer, traced_s: float) -> tuple[dict, int]:
    parts = dict.fromkeys(CATEGORIES[:-1], 0.0)
    ops = 0
    for (kind, op), s in tracer.self_time.items():
        rec = op in RECURRENT
        if kind == "op":
            ops += tracer.calls[(kind, op)]
            cat = "recurrent layers, the rest" if rec else "other GEMM" if op.lower() == "matmul" else "other ops"
        elif kind == "gemm":
            cat = "GEMM in recurrent layers" if rec else "other GEMM"
        elif kind == "kernel":
            cat = "recurrent layers, the rest"
        else:
            cat = "allocation"
        parts[cat] += s
    parts["dispatch and Python overhead"] = max(0.0, traced_s - sum(parts.values()))
    return parts, ops


def categorize_torch(events, traced_s: float) -> tuple[dict, int]:
    parts = dict.fromkeys(CATEGORIES[:-1], 0.0)
    ops = 0
    for e in events:
        name, s = e.key, e.self_cpu_time_total / 1e6
        low = name.lower()
        if name.startswith("autograd::engine"):
            continue                                # the engine's own time: left to the overhead row
        ops += e.count if name.startswith("aten::") else 0
        if any(w in low for w in ("lstm", "gru", "rnn")):
            cat = "recurrent layers, the rest"
        elif name in TORCH_GEMM:
            cat = "other GEMM"
        elif name.startswith(TORCH_ALLOC):
            cat = "allocation"
        else:
            cat = "other ops"
        parts[cat] += s
    parts["dispatch and Python overhead"] = max(0.0, traced_s - sum(parts.values()))
    return parts, ops


def phases(framework, model, xs, ts, torch=None):
    """(forward + backward, optimizer) callables of one training iteration, as train_step's."""
    if framework == "torch":
        params = list(model.parameters())
        opt = torch.optim.Adam(params, lr=1e-3)
        xs, ts = torch.from_numpy(xs), torch.from_numpy(ts)

        def optimize():
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        return (lambda: model.loss(xs, ts).backward()), optimize
    import tinygrad_s2s as tg
    params = model.parameters()
    opt = tg.optim.Adam(params, lr=1e-3)

    def optimize():
        tg.optim.clip_grad_norm(params, 5.0)
        opt.step()
        opt.zero_grad()
    return (lambda: model(xs, ts).backward()), optimize


def _timed(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def measure(bench, workloads) -> dict:
    """In one child: per model, untraced phase times (median of `repeats` samples), then one traced run."""
    cases = {}
    for w in workloads:
        xs, ts = make_batch(w)
        model = build_ours(w)
        torch = bench.torch
        if torch is not None:
            model = build_torch(torch, w, model)
        fwd_bwd, optimize = phases(bench.framework, model, xs, ts, torch)
        fwd_bwd(), optimize()
        start = time.perf_counter()
        fwd_bwd(), optimize()
        n = max(1, round(bench.min_sample_s / max(time.perf_counter() - start, 1e-6)))
        samples = [(_timed(fwd_bwd, n), _timed(optimize, n)) for _ in range(bench.repeats)]
        fb, op = (statistics.median(s[i] for s in samples) for i in (0, 1))
        if torch is None:
            tracer = trace_ours()
            traced = _timed(fwd_bwd, n)     # gradients accumulate: one more add per parameter, as in torch
            parts, ops = categorize_ours(tracer, traced * n)
        else:
            from torch.profiler import ProfilerActivity, profile
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                traced = _timed(fwd_bwd, n)
            parts, ops = categorize_torch(prof.key_averages(), traced * n)
        optimize()
        total = sum(parts.values())
        scaled = {k: fb * v / total for k, v in parts.items()} if total else parts
        scaled[CATEGORIES[-1]] = op
        cases[w.model] = {"seconds": fb + op, "parts": scaled, "ops": ops / n}
    return cases


def report(bench, results, workloads):
    tables = {}
    for setting in bench.settings:
        print(results.threads_text(setting))
        for w in workloads:
            cols = {fw: [c["cases"][w.model] for c in results.children(setting, fw)] for fw in bench.frameworks}
            rows = []
            for cat in CATEGORIES:
                row = [cat]
                for fw in bench.frameworks:
                    v = statistics.median(c["parts"][cat] for c in cols[fw])
                    total = statistics.median(c["seconds"] for c in cols[fw])
                    row += [fmt_time(v), f"{100 * v / total:.0f}%"]
                rows.append(row)
            per_op = []
            for fw in bench.frameworks:
                ops = statistics.median(c["ops"] for c in cols[fw])
                over = statistics.median(c["parts"]["dispatch and Python overhead"] for c in cols[fw])
                total = statistics.median(c["seconds"] for c in cols[fw])
                per_op += [fmt_time(total), f"{ops:.0f} ops, {fmt_time(over / ops) if ops else 'n/a'}/op"]
            rows.append(["whole iteration; op calls and overhead per op", *per_op])
            print_table(["share of a training iteration", *(h for fw in bench.frameworks for h in (fw, "%"))],
                        rows, title=f"Profile: {w.model} ({w.data}), {setting_label(setting)} (median over "
                                    f"{bench.pairs} process pair(s))")
            tables[(setting, w.model)] = rows
    return tables


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=5, pairs=1, sample_s=0.5)
    p.add_argument("--models", default=None, help="comma-separated subset of seq2seq,peeky,attention")
    args = p.parse_args(argv)
    workloads = selected_workloads(args.models, args.quick)
    return dispatch(__spec__.name, args, argv, lambda bench: measure(bench, workloads),
                    lambda bench, results: report(bench, results, workloads))


if __name__ == "__main__":
    main()
