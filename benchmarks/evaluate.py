"""Batched greedy decoding of 5,000 questions: `model.generate` vs a PyTorch `no_grad` greedy loop.

    python -m benchmarks.evaluate [--quick] [--repeats N] [--threads 1,default] [--pairs 3] [--questions 5000]

The models and shapes are those of benchmarks/train_step.py (seq2seq and peeky answer 4 ids on
addition-like questions, attention 10 ids on date-like ones), with the same weights on both sides;
the table also shows how many of the decoded ids agree between the two (they should all, up to
float round-off breaking a near-tie). Each framework runs alone in its own process (processes.py).
Targets (issue 15): ours/torch <= 0.9x at one thread and <= 1.0x at the default thread count.
"""
from __future__ import annotations

import numpy as np

from .common import (fmt_num, fmt_time, issue15_target, parser, positive_int, print_table, setting_label,
                     target_line, time_alternating)
from .processes import dispatch
from .train_step import START_ID, build_ours, build_torch, make_batch, selected_workloads


def measure(bench, workloads, questions: int) -> dict:
    """In one child process: this framework's median time to decode `questions` in one batch, and the
    decoded ids (the parent checks that both frameworks agree)."""
    cases = {}
    for w in workloads:
        xs, _ = make_batch(w, seed=1, n=questions)
        model = build_ours(w)
        if bench.framework == "torch":
            model = build_torch(bench.torch, w, model).eval()
            xs_t = bench.torch.from_numpy(xs)

            def decode(m=model, xs=xs_t, L=w.L):
                return m.generate(xs, L, start_id=START_ID).numpy()
        else:
            model.eval()

            def decode(m=model, xs=xs, L=w.L):
                return m.generate(xs, START_ID, L)
        ids = decode()
        seconds = time_alternating({w.model: decode}, bench.repeats, bench.min_sample_s)[w.model]
        cases[w.model] = {"seconds": seconds, "ids": ids.astype(int).ravel().tolist()}
    return cases


def report(bench, results, workloads, questions: int):
    verdicts = []
    for setting in bench.settings:
        rows = []
        for w in workloads:
            s = results.summary(setting, w.model)
            agree = "n/a"
            if s.torch is not None:
                ours_ids, torch_ids = (np.array(results.children(setting, fw)[0]["cases"][w.model]["ids"])
                                       for fw in ("ours", "torch"))
                agree = f"{100 * (ours_ids == torch_ids).mean():.2f}%"
                verdicts.append(target_line(f"{w.model}, {setting_label(setting)}: ours/torch vs issue 15",
                                            s.ratio, issue15_target(setting), bench.quick))
            rows.append([f"{w.model} ({w.data})", f"{questions} x {w.L} ids", fmt_time(s.ours), fmt_time(s.torch),
                         s.ratio_text(), s.spread(), fmt_num(questions / s.ours, 0),
                         fmt_num(None if s.torch is None else questions / s.torch, 0), agree])
        print(results.threads_text(setting))
        print_table(["model (data)", "decoded", "ours", "torch", "ours/torch", f"spread ({bench.pairs})",
                     "ours q/s", "torch q/s", "ids agreeing"], rows,
                    title="Greedy decoding of a whole test set in one batch (median over process pairs; "
                          "lower is better)")
    for line in verdicts:
        print(line)
    return results


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=7, sample_s=0.5)
    p.add_argument("--questions", type=positive_int, default=None, help="questions decoded per call (default 5000)")
    p.add_argument("--models", default=None, help="comma-separated subset of seq2seq,peeky,attention")
    args = p.parse_args(argv)
    questions = args.questions or (64 if args.quick else 5000)
    workloads = selected_workloads(args.models, args.quick)
    return dispatch(__spec__.name, args, argv, lambda bench: measure(bench, workloads, questions),
                    lambda bench, results: report(bench, results, workloads, questions))


if __name__ == "__main__":
    main()
