"""One training iteration (forward + backward + clip 5.0 + Adam) of the zoo models vs PyTorch.

    python -m benchmarks.train_step [--quick] [--repeats N] [--threads 1,default] [--pairs 3]
                                    [--models seq2seq,peeky]

Workloads (batch 128, random int ids, no dataset files): `seq2seq` and `peeky` on addition-like
shapes (vocab 13, D=16, H=128, question 7 ids, answer 1+4 ids incl. the start marker) and `attention`
on date-like shapes (vocab 59 as in the book, whose date data has one character fewer than our
date.txt; D=16, H=256, question 29 ids, answer 1+10). The PyTorch side runs the same models
(tinygrad_s2s/torch_export/torch_model.py, the modules `export --format torch` writes) loaded with the same weights; the table shows both losses on the same batch as a check that the two compute the same function. GFLOP/s counts the models' matmul
FLOPs analytically (nominal: work a framework skips, such as products with a zero start state, is
counted all the same) and is compared with NumPy's own float32 GEMM rate at the same thread setting,
measured in each of our processes. Each framework runs alone in its own process (processes.py).
Targets (issue 15): ours/torch <= 0.9x at one thread and <= 1.0x at the default thread count.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .common import (fmt_num, fmt_pct, fmt_time, gflops, issue15_target, parser, print_table, setting_label,
                     target_line, time_alternating)
from .processes import dispatch

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


def build_torch(torch, w: Workload, model):
    """The PyTorch twin of our `model`, with its weights: the module the PyTorch export writes
    (tinygrad_s2s/torch_export/torch_model.py), in train mode as ours is."""
    from tinygrad_s2s.torch_export import torch_model, torch_state
    weights = {k: torch.from_numpy(v) for k, v in torch_state(model).items()}
    return torch_model.from_weights(w.model, model.config, weights).train()


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


def torch_train_step(torch, model, xs, ts, lr=1e-3, max_norm=5.0, device="cpu"):
    """The same for the PyTorch twin (already on `device`)."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    xs, ts = torch.from_numpy(xs).to(device), torch.from_numpy(ts).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(xs, ts)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        opt.step()
        return loss
    return step


def measure(bench, workloads) -> dict:
    """In one child process: this framework's median training iteration and first loss per model."""
    cases = {}
    for w in workloads:
        xs, ts = make_batch(w)
        model = build_ours(w)
        if bench.framework == "torch":
            torch = bench.torch
            model = build_torch(torch, w, model)
            with torch.no_grad():
                loss = float(model.loss(torch.from_numpy(xs), torch.from_numpy(ts)).item())
            step = torch_train_step(torch, model, xs, ts)
        else:
            import tinygrad_s2s as tg
            with tg.no_grad():
                loss = float(model(xs, ts).item())
            step = ours_train_step(model, xs, ts)
        seconds = time_alternating({w.model: step}, bench.repeats, bench.min_sample_s)[w.model]
        cases[w.model] = {"seconds": seconds, "loss": loss}
    return cases


def check_same_loss(results, workloads) -> None:
    """Both frameworks start from the same weights: their first losses must agree."""
    for by in results.by.values():
        if "torch" not in by:
            continue
        for w in workloads:
            ours, theirs = by["ours"][0]["cases"][w.model]["loss"], by["torch"][0]["cases"][w.model]["loss"]
            if not np.isclose(ours, theirs, rtol=1e-4, atol=1e-5):
                raise SystemExit(f"{w.model}: the PyTorch twin computes a different loss ({theirs:.6f}) "
                                 f"than ours ({ours:.6f}) on the same weights; fix tinygrad_s2s/torch_export/torch_model.py")


def report(bench, results, workloads):
    """One table per thread setting, then the targets' verdicts."""
    check_same_loss(results, workloads)
    verdicts = []
    for setting in bench.settings:
        peak = results.peak(setting)
        rows = []
        for w in workloads:
            s = results.summary(setting, w.model)
            losses = [results.children(setting, fw)[0]["cases"][w.model]["loss"] for fw in bench.frameworks]
            flops = train_flops(w)
            rate_ours, rate_torch = gflops(flops, s.ours), gflops(flops, s.torch)
            rows.append([f"{w.model} ({w.data})", w.label(), f"{flops / 1e9:.2f}", fmt_time(s.ours),
                         fmt_time(s.torch), s.ratio_text(), s.spread(),
                         fmt_num(rate_ours), fmt_pct(rate_ours, peak), fmt_num(rate_torch), fmt_pct(rate_torch, peak),
                         " / ".join(f"{v:.5f}" for v in losses)])
            if s.ratio is not None:
                verdicts.append(target_line(f"{w.model}, {setting_label(setting)}: ours/torch vs issue 15",
                                            s.ratio, issue15_target(setting), bench.quick))
        print(results.threads_text(setting) + f" | NumPy float32 GEMM peak {fmt_num(peak)} GFLOP/s")
        print_table(["model (data)", "shapes", "GFLOP", "ours", "torch", "ours/torch", f"spread ({bench.pairs})",
                     "ours GFLOP/s", "ours %peak", "torch GFLOP/s", "torch %peak", "loss ours / torch"], rows,
                    title="Training iteration: forward + backward + clip 5.0 + Adam "
                          "(median over process pairs; lower is better)")
    for line in verdicts:
        print(line)
    return results


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
    p = parser(__doc__.splitlines()[0], repeats=7, sample_s=0.5)
    p.add_argument("--models", default=None, help="comma-separated subset of seq2seq,peeky,attention")
    args = p.parse_args(argv)
    workloads = selected_workloads(args.models, args.quick)
    return dispatch(__spec__.name, args, argv, lambda bench: measure(bench, workloads),
                    lambda bench, results: report(bench, results, workloads), gemm_peak=True)


if __name__ == "__main__":
    main()
