"""LSTM layer forward + backward: tg.nn.LSTM vs torch.nn.LSTM (batch_first) at the same sizes.

    python -m benchmarks.lstm_layer [--quick] [--repeats N] [--threads N] [--N 128 --T 8 --D 16 --H 128]

One iteration = hs = lstm(x) over a (N, T, D) batch, then backward of a fixed random upstream
gradient into the input and all weights (gradients reset to None first, as zero_grad does).
Target (issue 2): within 1.5x PyTorch CPU.
"""
from __future__ import annotations

import numpy as np

from .common import (fmt_num, fmt_ratio, fmt_time, gflops, parser, print_gemm_peak, print_table, setup,
                     target_line, time_alternating)


def lstm_flops(N: int, T: int, D: int, H: int) -> int:
    """Matmul FLOPs of forward + backward: the forward GEMMs (x@Wx and h@Wh, 2*N*T*(D+H)*4H) and
    their two gradient GEMMs each (input and weight), i.e. three times the forward."""
    return 3 * 2 * N * T * (D + H) * 4 * H


def ours_step(N, T, D, H, fused=True, seed=0):
    """A callable: one forward + backward of tg.nn.LSTM on fixed random data."""
    import tinygrad_s2s as tg
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lstm = tg.nn.LSTM(D, H, fused=fused)
    x = tg.Tensor(rng.standard_normal((N, T, D), dtype=np.float32), requires_grad=True)
    g = rng.standard_normal((N, T, H), dtype=np.float32)
    params = lstm.parameters()

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        lstm(x).backward(g)
    return step


def torch_step(torch, N, T, D, H, seed=0):
    """The same for torch.nn.LSTM(D, H, batch_first=True)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lstm = torch.nn.LSTM(D, H, batch_first=True)
    x = torch.tensor(rng.standard_normal((N, T, D), dtype=np.float32), requires_grad=True)
    g = torch.tensor(rng.standard_normal((N, T, H), dtype=np.float32))
    params = list(lstm.parameters())

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        hs, _ = lstm(x)
        hs.backward(g)
    return step


def run(bench, N, T, D, H):
    peak = print_gemm_peak(bench)
    torch = bench.torch
    fns = {"tg.nn.LSTM (fused)": ours_step(N, T, D, H, fused=True),
           "tg.nn.LSTM (fused=False, primitives)": ours_step(N, T, D, H, fused=False)}
    if torch is not None:
        fns["torch.nn.LSTM"] = torch_step(torch, N, T, D, H)
    times = time_alternating(fns, bench.repeats, bench.min_sample_s)
    theirs = times.get("torch.nn.LSTM")
    flops = lstm_flops(N, T, D, H)
    rows = []
    for name, sec in times.items():
        rate = gflops(flops, sec)
        rows.append([name, fmt_time(sec), fmt_ratio(sec, theirs) if name != "torch.nn.LSTM" else "1.00x",
                     fmt_num(rate), fmt_num(None if rate is None else 100 * rate / peak, 0, "%")])
    print_table(["implementation", "fwd+bwd", "vs torch", "GFLOP/s", "of GEMM peak"], rows,
                title=f"LSTM layer forward + backward, N={N} T={T} D={D} H={H} "
                      f"({flops / 1e6:.0f} MFLOP of matmul per iteration; median, lower is better)")
    if torch is None:
        print(bench.torch_note)
        return times
    ours = times["tg.nn.LSTM (fused)"]
    print(target_line("tg.nn.LSTM / torch.nn.LSTM vs issue 2", ours / theirs, 1.5))
    return times


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=30)
    for name, default in (("N", 128), ("T", 8), ("D", 16), ("H", 128)):
        p.add_argument(f"--{name}", type=int, default=None, help=f"default {default}")
    args = p.parse_args(argv)
    bench = setup(args)
    small = dict(N=16, T=4, D=8, H=16) if bench.quick else dict(N=128, T=8, D=16, H=128)
    sizes = {k: getattr(args, k) or v for k, v in small.items()}
    run(bench, **sizes)


if __name__ == "__main__":
    main()
