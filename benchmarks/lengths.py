"""Scaling with sequence length, and a very deep graph.

    python -m benchmarks.lengths [--quick] [--repeats N] [--threads 1,default] [--pairs 3] [--chain 100000]

1. LSTM layer forward + backward (N=128, D=16, H=128) for T = 8 ... 256: time and time/T, which
   should stay flat (linear growth), for tg.nn.LSTM and torch.nn.LSTM.
2. Dot-product attention block forward + backward for encoder = decoder length T = 8 ... 256
   (scores = dec @ enc^T, softmax over T, context = weights @ enc; N=32, H=128): time and
   time/T^2, which should level off (quadratic growth) once T is past per-op overheads.
3. A chain of 100,000 ops (x -> x*c -> ... ) backpropagated without recursion: build and
   backward time, and the gradient checked against its closed form.

1 and 2 run each framework alone in its own process (processes.py); 3 is ours alone, run by the
parent once the children are done.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .common import fmt_num, fmt_time, parser, positive_int, print_table, time_alternating
from .lstm_layer import ours_step as lstm_ours_step, torch_step as lstm_torch_step
from .processes import dispatch


def sizes(quick: bool) -> dict:
    """Lengths and layer sizes of the two scaling tables."""
    if quick:
        return {"lstm": dict(lengths=[4, 8, 16], N=8, D=8, H=16), "attention": dict(lengths=[4, 8, 16], N=4, H=16)}
    return {"lstm": dict(lengths=[8, 16, 32, 64, 128, 256], N=128, D=16, H=128),
            "attention": dict(lengths=[8, 16, 32, 64, 128, 256], N=32, H=128)}


def measure(bench) -> dict:
    """In one child process: this framework's LSTM and attention fwd+bwd at every length."""
    lstm, att = sizes(bench.quick)["lstm"], sizes(bench.quick)["attention"]
    fns = {}
    for T in lstm["lengths"]:
        N, D, H = lstm["N"], lstm["D"], lstm["H"]
        fns[f"lstm {T}"] = (lstm_torch_step(bench.torch, N, T, D, H) if bench.framework == "torch"
                            else lstm_ours_step(N, T, D, H))
    for T in att["lengths"]:
        N, H = att["N"], att["H"]
        fns[f"attention {T}"] = (_attention_torch(bench.torch, N, T, H) if bench.framework == "torch"
                                 else _attention_ours(N, T, H))
    cases = {}
    for name, fn in fns.items():   # one at a time: the lengths differ too much to alternate usefully
        cases[name] = {"seconds": time_alternating({name: fn}, bench.repeats, bench.min_sample_s)[name]}
    return cases


def lstm_table(bench, results, setting, lengths, N, D, H):
    rows = []
    for T in lengths:
        s = results.summary(setting, f"lstm {T}")
        rows.append([T, fmt_time(s.ours), fmt_time(s.ours / T), fmt_time(s.torch),
                     fmt_time(None if s.torch is None else s.torch / T), s.ratio_text(), s.spread()])
    print_table(["T", "ours", "ours / T", "torch", "torch / T", "ours/torch", f"spread ({bench.pairs})"], rows,
                title=f"LSTM layer fwd+bwd vs sequence length (N={N} D={D} H={H}); "
                      "time/T flat = linear scaling")
    return rows


def _attention_ours(N, T, H, seed=0):
    import tinygrad_s2s as tg
    rng = np.random.default_rng(seed)
    enc = tg.Tensor(rng.standard_normal((N, T, H), dtype=np.float32), requires_grad=True)
    dec = tg.Tensor(rng.standard_normal((N, T, H), dtype=np.float32), requires_grad=True)
    g = rng.standard_normal((N, T, H), dtype=np.float32)

    def step():
        enc.grad = dec.grad = None
        weights = tg.softmax(tg.matmul(dec, tg.transpose(enc, (0, 2, 1))), axis=-1)
        tg.matmul(weights, enc).backward(g)
    return step


def _attention_torch(torch, N, T, H, seed=0):
    rng = np.random.default_rng(seed)
    enc = torch.tensor(rng.standard_normal((N, T, H), dtype=np.float32), requires_grad=True)
    dec = torch.tensor(rng.standard_normal((N, T, H), dtype=np.float32), requires_grad=True)
    g = torch.tensor(rng.standard_normal((N, T, H), dtype=np.float32))

    def step():
        enc.grad = dec.grad = None
        weights = torch.softmax(dec @ enc.transpose(1, 2), dim=-1)
        (weights @ enc).backward(g)
    return step


def attention_table(bench, results, setting, lengths, N, H):
    rows = []
    for T in lengths:
        s = results.summary(setting, f"attention {T}")
        rows.append([T, fmt_time(s.ours), fmt_num(s.ours / T ** 2 * 1e9, 1, " ns"), fmt_time(s.torch),
                     fmt_num(None if s.torch is None else s.torch / T ** 2 * 1e9, 1, " ns"),
                     s.ratio_text(), s.spread()])
    print_table(["T", "ours", "ours / T^2", "torch", "torch / T^2", "ours/torch", f"spread ({bench.pairs})"], rows,
                title=f"Attention block fwd+bwd vs length (N={N} H={H}, T_enc = T_dec = T); "
                      "time/T^2 levelling off = quadratic scaling")
    return rows


def report(bench, results, chain: int):
    chosen = sizes(bench.quick)
    for setting in bench.settings:
        print(results.threads_text(setting))
        lstm_table(bench, results, setting, **chosen["lstm"])
        attention_table(bench, results, setting, **chosen["attention"])
    # After the children: our framework alone, in this process (a pure-Python graph walk; threads
    # play no part in it).
    deep_chain(chain)
    return results


def deep_chain(length: int):
    """Build y = x * c**length one multiply at a time, backprop, and check dy/dx = c**length."""
    import tinygrad_s2s as tg
    c = 1.0 + 1e-6
    with tg.default_dtype(np.float64):   # float32 would round c and make the check meaningless
        x = tg.Tensor(1.5, requires_grad=True)
        t0 = time.perf_counter()
        y = x
        for _ in range(length):
            y = y * c
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        y.backward()
        backward = time.perf_counter() - t0
    expected = c ** length
    ok = math.isclose(float(x.grad.item()), expected, rel_tol=1e-9)
    print_table(["chain length", "build", "backward", "per op (bwd)", "dy/dx", "expected", "gradient"],
                [[f"{length:,}", fmt_time(built), fmt_time(backward), fmt_time(backward / length),
                  f"{float(x.grad.item()):.9f}", f"{expected:.9f}", "ok" if ok else "WRONG"]],
                title="Deep graph: a chain of multiplies backpropagated iteratively (no recursion)")
    if not ok:
        raise SystemExit(f"deep chain: gradient {x.grad.item()} != {expected}")
    return built, backward


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=7)
    p.add_argument("--chain", type=positive_int, default=None, help="ops in the deep chain (default 100000)")
    args = p.parse_args(argv)
    chain = args.chain or (5_000 if args.quick else 100_000)
    return dispatch(__spec__.name, args, argv, measure, lambda bench, results: report(bench, results, chain))


if __name__ == "__main__":
    main()
