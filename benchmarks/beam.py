"""Beam-5 decoding of 5,000 questions against greedy decoding, same model and questions.

    python -m benchmarks.beam [--quick] [--repeats N] [--questions 5000] [--beam 5]

The models and shapes are those of benchmarks/train_step.py. Beam search advances all
questions x beam hypotheses as one batch (in chunks of tinygrad_s2s.models.base.DECODE_CHUNK rows) and reorders the
decoder state with one gather per state array per step. Target (issue 14): beam-5 / greedy <= 6.
Both run in this one process, alternating, with whatever BLAS threads the environment gives (the
ratio compares our two decoders, not two frameworks).
"""
from __future__ import annotations

from .common import (fmt_num, fmt_ratio, fmt_time, load_average, parser, print_table, setup, target_line,
                     time_alternating)
from .train_step import START_ID, build_ours, make_batch, selected_workloads


def run(bench, workloads, questions: int, beam: int):
    rows, verdicts = [], []
    for w in workloads:
        xs, _ = make_batch(w, seed=1, n=questions)
        model = build_ours(w)
        model.eval()
        fns = {"greedy": lambda m=model, xs=xs, L=w.L: m.generate(xs, START_ID, L),
               "beam": lambda m=model, xs=xs, L=w.L: m.generate(xs, START_ID, L, beam=beam)}
        times = time_alternating(fns, bench.repeats, bench.min_sample_s)
        ratio = times["beam"] / times["greedy"]
        rows.append([f"{w.model} ({w.data})", f"{questions} x {w.L} ids", fmt_time(times["greedy"]),
                     fmt_time(times["beam"]), fmt_ratio(times["beam"], times["greedy"]),
                     fmt_num(questions / times["beam"], 0)])
        verdicts.append(target_line(f"{w.model}: beam-{beam} / greedy vs issue 14", ratio, 6.0, bench.quick))
    print_table(["model (data)", "decoded", "greedy", f"beam-{beam}", "beam/greedy", "beam q/s"], rows,
                title=f"Greedy vs beam-{beam} decoding of a whole test set (median; lower is better)")
    for line in verdicts:
        print(line)
    print(f"load average: {load_average()}")
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0], repeats=5)
    p.add_argument("--questions", type=int, default=None, help="questions decoded per call (default 5000)")
    p.add_argument("--beam", type=int, default=5, help="beam width (default 5)")
    p.add_argument("--models", default=None, help="comma-separated subset of seq2seq,peeky,attention")
    args = p.parse_args(argv)
    bench = setup(args)
    questions = args.questions or (64 if bench.quick else 5000)
    if questions < 1 or args.beam < 1:
        raise SystemExit(f"--questions and --beam must be >= 1, got {questions} and {args.beam}")
    return run(bench, selected_workloads(args.models, bench.quick), questions, args.beam)


if __name__ == "__main__":
    main()
