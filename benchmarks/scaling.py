"""Scaling with sequence length, and a very deep graph.

    python -m benchmarks.scaling [--quick] [--repeats N] [--threads N] [--chain 100000]

1. LSTM layer forward + backward (N=128, D=16, H=128) for T = 8 ... 256: time and time/T, which
   should stay flat (linear growth), for tg.nn.LSTM and torch.nn.LSTM.
2. Dot-product attention block forward + backward for encoder = decoder length T = 8 ... 256
   (scores = dec @ enc^T, softmax over T, context = weights @ enc; N=32, H=128): time and
   time/T^2, which should level off (quadratic growth) once T is past per-op overheads.
3. A chain of 100,000 ops (x -> x*c -> ... ) backpropagated without recursion: build and
   backward time, and the gradient checked against its closed form.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .common import fmt_num, fmt_ratio, fmt_time, parser, print_table, setup, time_alternating
from .lstm_layer import ours_step as lstm_ours_step, torch_step as lstm_torch_step


def lstm_scaling(bench, lengths, N=128, D=16, H=128):
    rows = []
    for T in lengths:
        fns = {"ours": lstm_ours_step(N, T, D, H)}
        if bench.torch is not None:
            fns["torch"] = lstm_torch_step(bench.torch, N, T, D, H)
        times = time_alternating(fns, bench.repeats, bench.min_sample_s)
        ours, theirs = times["ours"], times.get("torch")
        rows.append([T, fmt_time(ours), fmt_time(ours / T), fmt_time(theirs),
                     fmt_time(None if theirs is None else theirs / T), fmt_ratio(ours, theirs)])
    print_table(["T", "ours", "ours / T", "torch", "torch / T", "ours/torch"], rows,
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


def attention_scaling(bench, lengths, N=32, H=128):
    rows = []
    for T in lengths:
        fns = {"ours": _attention_ours(N, T, H)}
        if bench.torch is not None:
            fns["torch"] = _attention_torch(bench.torch, N, T, H)
        times = time_alternating(fns, bench.repeats, bench.min_sample_s)
        ours, theirs = times["ours"], times.get("torch")
        rows.append([T, fmt_time(ours), fmt_num(ours / T ** 2 * 1e9, 1, " ns"), fmt_time(theirs),
                     fmt_num(None if theirs is None else theirs / T ** 2 * 1e9, 1, " ns"),
                     fmt_ratio(ours, theirs)])
    print_table(["T", "ours", "ours / T^2", "torch", "torch / T^2", "ours/torch"], rows,
                title=f"Attention block fwd+bwd vs length (N={N} H={H}, T_enc = T_dec = T); "
                      "time/T^2 levelling off = quadratic scaling")
    return rows


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
    p.add_argument("--chain", type=int, default=None, help="ops in the deep chain (default 100000)")
    args = p.parse_args(argv)
    bench = setup(args)
    if bench.quick:
        lstm_scaling(bench, [4, 8, 16], N=8, D=8, H=16)
        attention_scaling(bench, [4, 8, 16], N=4, H=16)
    else:
        lstm_scaling(bench, [8, 16, 32, 64, 128, 256])
        attention_scaling(bench, [8, 16, 32, 64, 128, 256])
    if bench.torch is None:
        print(bench.torch_note)
        print()
    deep_chain(args.chain or (5_000 if bench.quick else 100_000))


if __name__ == "__main__":
    main()
