"""Batched greedy decoding of 5,000 questions: `model.generate` vs a PyTorch `no_grad` greedy loop.

    python -m benchmarks.evaluate [--quick] [--repeats N] [--threads N] [--questions 5000]

The models and shapes are those of benchmarks/train_step.py (seq2seq and peeky answer 4 ids on
addition-like questions, attention 10 ids on date-like ones), with the same weights on both sides;
the table also shows how many of the decoded ids agree between the two (they should all, up to
float round-off breaking a near-tie). Target (issue 6): ours/torch <= 1.0.
"""
from __future__ import annotations

from .common import fmt_num, fmt_ratio, fmt_time, parser, print_table, setup, target_line, time_alternating
from .train_step import START_ID, build_ours, build_torch, make_batch, selected_workloads


def run(bench, workloads, questions: int):
    torch = bench.torch
    rows, verdicts = [], []
    for w in workloads:
        xs, _ = make_batch(w, seed=1, n=questions)
        ours_model = build_ours(w)
        ours_model.eval()
        fns = {"ours": lambda m=ours_model, xs=xs, L=w.L: m.generate(xs, START_ID, L)}
        agree = "n/a"
        if torch is not None:
            torch_model = build_torch(torch, w, ours_model.state_dict()).eval()
            xs_t = torch.from_numpy(xs)
            fns["torch"] = lambda m=torch_model, xs=xs_t, L=w.L: m.generate(xs, START_ID, L)
            same = (fns["ours"]() == fns["torch"]().numpy()).mean()
            agree = f"{100 * same:.2f}%"
        times = time_alternating(fns, bench.repeats, bench.min_sample_s)
        ours, theirs = times["ours"], times.get("torch")
        rows.append([f"{w.model} ({w.data})", f"{questions} x {w.L} ids", fmt_time(ours), fmt_time(theirs),
                     fmt_ratio(ours, theirs), fmt_num(questions / ours, 0),
                     fmt_num(None if theirs is None else questions / theirs, 0), agree])
        if theirs is not None:
            verdicts.append(target_line(f"{w.model}: ours/torch vs issue 6", ours / theirs, 1.0))
    print_table(["model (data)", "decoded", "ours", "torch", "ours/torch", "ours q/s", "torch q/s",
                 "ids agreeing"], rows,
                title="Greedy decoding of a whole test set in one batch (median; lower is better)")
    if torch is None:
        print(bench.torch_note)
    for line in verdicts:
        print(line)
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=7)
    p.add_argument("--questions", type=int, default=None, help="questions decoded per call (default 5000)")
    p.add_argument("--models", default=None, help="comma-separated subset of seq2seq,peeky,attention")
    args = p.parse_args(argv)
    bench = setup(args)
    questions = args.questions or (64 if bench.quick else 5000)
    if questions < 1:
        raise SystemExit(f"--questions must be >= 1, got {questions}")
    run(bench, selected_workloads(args.models, bench.quick), questions)


if __name__ == "__main__":
    main()
