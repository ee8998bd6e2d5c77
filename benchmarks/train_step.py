"""One training iteration (forward + backward + clip 5.0 + Adam) of the zoo models vs PyTorch.

    python -m benchmarks.train_step [--quick] [--repeats N] [--threads N] [--models seq2seq,peeky]

Workloads (batch 128, random int ids, no dataset files): `seq2seq` and `peeky` on addition-like
shapes (vocab 13, D=16, H=128, question 7 ids, answer 1+4 ids incl. the start marker) and `attention`
on date-like shapes (vocab 59, D=16, H=256, question 29 ids, answer 1+10). The PyTorch side runs the
same models (benchmarks/torch_models.py) loaded with the same weights; the table shows both losses on
the same batch as a check that the two compute the same function. GFLOP/s counts the models' matmul
FLOPs analytically (nominal: work a framework skips, such as products with a zero start state, is
counted all the same) and is compared with NumPy's own float32 GEMM rate measured in the same run.
Targets (issue 6): ours/torch <= 1.0 for each model; >= 60% of GEMM peak for seq2seq and attention.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .common import (fmt_num, fmt_ratio, fmt_time, gflops, parser, print_gemm_peak, print_table, setup,
                     target_line, time_alternating)

START_ID = 0   # the start marker's id; any id works for timing


@dataclass(frozen=True)
class Workload:
    """One model on one data shape. T_tgt counts the start marker (the decoder reads T_tgt - 1)."""
    model: str
    data: str
    vocab: int
    D: int
    H: int
    T_src: int
    T_tgt: int
    N: int = 128

    @property
    def L(self) -> int:
        return self.T_tgt - 1

    def label(self) -> str:
        return (f"V={self.vocab} D={self.D} H={self.H} T={self.T_src}->{self.L}+1 N={self.N}")


WORKLOADS = [
    Workload("seq2seq", "addition", vocab=13, D=16, H=128, T_src=7, T_tgt=5),
    Workload("peeky", "addition", vocab=13, D=16, H=128, T_src=7, T_tgt=5),
    Workload("attention", "date", vocab=59, D=16, H=256, T_src=29, T_tgt=11),
]


def quick_workload(w: Workload) -> Workload:
    """Tiny sizes for a smoke run."""
    return replace(w, D=8, H=16, N=8, T_src=min(w.T_src, 6), T_tgt=min(w.T_tgt, 4))


def forward_matmul_flops(w: Workload) -> int:
    """Matmul FLOPs of one forward pass (2 per multiply-add), from the book's layer sizes."""
    N, T, L, V, D, H = w.N, w.T_src, w.L, w.vocab, w.D, w.H

    def lstm(steps, inputs):   # x@Wx and h@Wh at every step
        return 2 * N * steps * (inputs + H) * 4 * H

    encoder = lstm(T, D)
    if w.model == "seq2seq":
        return encoder + lstm(L, D) + 2 * N * L * H * V
    if w.model == "peeky":    # decoder input [h, x]; affine input [h, hs]
        return encoder + lstm(L, H + D) + 2 * N * L * 2 * H * V
    if w.model == "attention":   # scores dec@enc^T and context a@enc; affine input [c, hs]
        return encoder + lstm(L, D) + 2 * (2 * N * L * T * H) + 2 * N * L * 2 * H * V
    raise ValueError(f"no FLOP count for model '{w.model}'")


def train_flops(w: Workload) -> int:
    """Forward + backward: every forward GEMM has two gradient GEMMs of the same size (all operands
    need gradients: the first LSTM's input is an embedding output)."""
    return 3 * forward_matmul_flops(w)


def make_batch(w: Workload, seed: int = 0, n: int | None = None):
    """Random question ids (n, T_src) and answers (n, T_tgt) that start with START_ID."""
    rng = np.random.default_rng(seed)
    n = w.N if n is None else n
    xs = rng.integers(0, w.vocab, (n, w.T_src), dtype=np.int64)
    ts = rng.integers(0, w.vocab, (n, w.T_tgt), dtype=np.int64)
    ts[:, 0] = START_ID
    return xs, ts


def build_ours(w: Workload, seed: int = 0):
    """The zoo model from the registry, as a user gets it."""
    import tinygrad_s2s as tg
    tg.manual_seed(seed)
    return tg.create_model(w.model, vocab_size=w.vocab, wordvec_size=w.D, hidden_size=w.H)


def build_torch(torch, w: Workload, state: dict):
    """The PyTorch twin, loaded with the same weights (`state`: our model's state_dict())."""
    from .torch_models import MODELS
    model = MODELS[w.model](w.vocab, w.D, w.H)
    model.copy_from(state)
    return model


def ours_train_step(model, xs, ts, lr=1e-3, max_norm=5.0):
    """A callable: one training iteration (zero grads, loss, backward, clip, Adam step)."""
    import tinygrad_s2s as tg
    params = model.parameters()
    opt = tg.optim.Adam(params, lr=lr)

    def step():
        opt.zero_grad()
        loss = model(xs, ts)
        loss.backward()
        tg.optim.clip_grad_norm(params, max_norm)
        opt.step()
        return loss
    return step


def torch_train_step(torch, model, xs, ts, lr=1e-3, max_norm=5.0):
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    xs, ts = torch.from_numpy(xs), torch.from_numpy(ts)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(xs, ts)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        opt.step()
        return loss
    return step


def same_loss(bench, ours_model, torch_model, xs, ts):
    """(our loss, torch's loss) on one batch with identical weights, before any update."""
    import tinygrad_s2s as tg
    with tg.no_grad():
        mine = float(ours_model(xs, ts).item())
    if torch_model is None:
        return mine, None
    with bench.torch.no_grad():
        theirs = float(torch_model(bench.torch.from_numpy(xs), bench.torch.from_numpy(ts)).item())
    return mine, theirs


def run(bench, workloads):
    peak = print_gemm_peak(bench)
    torch = bench.torch
    rows, verdicts = [], []
    for w in workloads:
        xs, ts = make_batch(w)
        ours_model = build_ours(w)
        torch_model = build_torch(torch, w, ours_model.state_dict()) if torch is not None else None
        loss_ours, loss_torch = same_loss(bench, ours_model, torch_model, xs, ts)
        if loss_torch is not None and not np.isclose(loss_ours, loss_torch, rtol=1e-4, atol=1e-5):
            raise SystemExit(f"{w.model}: the PyTorch twin computes a different loss ({loss_torch:.6f}) "
                             f"than ours ({loss_ours:.6f}) on the same weights; fix torch_models.py")
        fns = {"ours": ours_train_step(ours_model, xs, ts)}
        if torch_model is not None:
            fns["torch"] = torch_train_step(torch, torch_model, xs, ts)
        times = time_alternating(fns, bench.repeats, bench.min_sample_s)
        ours, theirs = times["ours"], times.get("torch")
        flops = train_flops(w)
        rate_ours, rate_torch = gflops(flops, ours), gflops(flops, theirs)
        pct_torch = None if rate_torch is None else 100 * rate_torch / peak
        rows.append([f"{w.model} ({w.data})", w.label(), f"{flops / 1e9:.2f}", fmt_time(ours),
                     fmt_time(theirs), fmt_ratio(ours, theirs),
                     fmt_num(rate_ours), fmt_num(100 * rate_ours / peak, 0, "%"),
                     fmt_num(rate_torch), fmt_num(pct_torch, 0, "%"),
                     f"{loss_ours:.5f}" + ("" if loss_torch is None else f" / {loss_torch:.5f}")])
        if theirs is not None:
            verdicts.append(target_line(f"{w.model}: ours/torch vs issue 6", ours / theirs, 1.0))
        if w.model in ("seq2seq", "attention"):
            eff = 100 * rate_ours / peak
            verdicts.append(f"{w.model}: {eff:.0f}% of NumPy GEMM peak (target >= 60%: "
                            f"{'met' if eff >= 60 else 'NOT met'})")
    print_table(["model (data)", "shapes", "GFLOP", "ours", "torch", "ours/torch", "ours GFLOP/s",
                 "ours %peak", "torch GFLOP/s", "torch %peak", "loss ours / torch"], rows,
                title="Training iteration: forward + backward + clip 5.0 + Adam (median; lower is better)")
    if torch is None:
        print(bench.torch_note)
    for line in verdicts:
        print(line)
    return rows


def selected_workloads(names: str | None, quick: bool):
    chosen = WORKLOADS
    if names:
        wanted = names.split(",")
        known = {w.model for w in WORKLOADS}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SystemExit(f"--models: unknown model(s) {unknown}; known: {sorted(known)}")
        chosen = [w for w in WORKLOADS if w.model in wanted]
    return [quick_workload(w) for w in chosen] if quick else chosen


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=20)
    p.add_argument("--models", default=None, help="comma-separated subset of seq2seq,peeky,attention")
    args = p.parse_args(argv)
    bench = setup(args)
    run(bench, selected_workloads(args.models, bench.quick))


if __name__ == "__main__":
    main()
