"""LSTM layer forward + backward: tg.nn.LSTM vs torch.nn.LSTM (batch_first) at the same sizes.

    python -m benchmarks.lstm_layer [--quick] [--repeats N] [--threads 1,default] [--pairs 3]
                                    [--N 128 --T 8 --D 16 --H 128]

One iteration = hs = lstm(x) over a (N, T, D) batch, then backward of a fixed random upstream
gradient into the input and all weights (gradients reset to None first, as zero_grad does).
Each framework runs alone in its own process (processes.py). Target (issue 2): within 1.5x PyTorch CPU.
"""
from __future__ import annotations

import statistics

import numpy as np

from .common import (fmt_num, fmt_pct, fmt_time, gflops, parser, positive_int, print_table, setting_label,
                     target_line, time_alternating)
from .processes import dispatch, summarize


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


FUSED, UNFUSED, TORCH = "tg.nn.LSTM (fused)", "tg.nn.LSTM (fused=False, primitives)", "torch.nn.LSTM"


def measure(bench, N, T, D, H) -> dict:
    """In one child process: median fwd+bwd of this framework's LSTM(s) (ours: fused and unfused,
    alternating within the process: one framework, one thread pool)."""
    if bench.framework == "torch":
        fns = {TORCH: torch_step(bench.torch, N, T, D, H)}
    else:
        fns = {FUSED: ours_step(N, T, D, H, fused=True), UNFUSED: ours_step(N, T, D, H, fused=False)}
    return {name: {"seconds": sec} for name, sec in time_alternating(fns, bench.repeats, bench.min_sample_s).items()}


def report(bench, results, N, T, D, H):
    flops = lstm_flops(N, T, D, H)
    verdicts = []
    for setting in bench.settings:
        peak = results.peak(setting)
        rows = []
        for name in (FUSED, UNFUSED):
            s = summarize(results.values(setting, "ours", name), None)
            rows.append([name, fmt_time(s.ours), *ratio_against_torch(results, setting, name),
                         fmt_num(gflops(flops, s.ours)), fmt_pct(gflops(flops, s.ours), peak)])
        torch_runs = results.children(setting, "torch")
        if torch_runs:
            theirs = statistics.median(results.values(setting, "torch", TORCH))
            rows.append([TORCH, fmt_time(theirs), "1.00x", "", fmt_num(gflops(flops, theirs)),
                         fmt_pct(gflops(flops, theirs), peak)])
            ratio = summarize(results.values(setting, "ours", FUSED), results.values(setting, "torch", TORCH)).ratio
            verdicts.append(target_line(f"tg.nn.LSTM / torch.nn.LSTM, {setting_label(setting)}, vs issue 2", ratio, 1.5, bench.quick))
        print(results.threads_text(setting) + f" | NumPy float32 GEMM peak {fmt_num(peak)} GFLOP/s")
        print_table(["implementation", "fwd+bwd", "vs torch", f"spread ({bench.pairs})", "GFLOP/s", "of GEMM peak"],
                    rows, title=f"LSTM layer forward + backward, N={N} T={T} D={D} H={H} ({flops / 1e6:.0f} MFLOP "
                                "of matmul per iteration; median over process pairs, lower is better)")
    for line in verdicts:
        print(line)
    return results


def ratio_against_torch(results, setting, name) -> list[str]:
    """[ratio, spread] of our candidate `name` against torch.nn.LSTM over the pairs, or n/a."""
    if not results.children(setting, "torch"):
        return ["n/a", "n/a"]
    s = summarize(results.values(setting, "ours", name), results.values(setting, "torch", TORCH))
    return [s.ratio_text(), s.spread()]


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=30)
    for name, default in (("N", 128), ("T", 8), ("D", 16), ("H", 128)):
        p.add_argument(f"--{name}", type=positive_int, default=None, help=f"default {default}")
    args = p.parse_args(argv)
    small = dict(N=16, T=4, D=8, H=16) if args.quick else dict(N=128, T=8, D=16, H=128)
    sizes = {k: getattr(args, k) or v for k, v in small.items()}
    return dispatch(__spec__.name, args, argv, lambda bench: measure(bench, **sizes),
                    lambda bench, results: report(bench, results, **sizes), gemm_peak=True)


if __name__ == "__main__":
    main()
