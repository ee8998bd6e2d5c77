"""Smoke tests of the benchmark entry points (`--quick`: tiny sizes, seconds each) and their helpers.

Each benchmark runs twice: as installed (PyTorch columns when torch is importable, the 'skipped'
note when not) and with torch hidden, so both paths are exercised whichever environment runs this.
The numbers themselves are not checked (they depend on the machine); the tables' shape, the
correctness checks built into the benchmarks (same loss, same decoded ids, exact deep-chain gradient)
and the per-process harness (each framework alone in its own process, at the thread settings asked
for, pairs in alternating order) are.
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from paths import REPO_ROOT
from extras import need

if str(REPO_ROOT) not in sys.path:   # benchmarks/ is run from the repo root, not installed as a package
    sys.path.insert(0, str(REPO_ROOT))
BENCHMARKS = ["op_overhead", "lstm_layer", "train_step", "evaluate", "memory", "lengths", "scaling"]
SKIPPED = "PyTorch: skipped (not installed)"


def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["as-installed", "torch-hidden"])
def torch_mode(request, monkeypatch):
    """'as-installed' uses torch if importable; 'torch-hidden' makes `import torch` fail."""
    if request.param == "torch-hidden":
        monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` now raises ImportError
    return request.param == "as-installed" and torch_installed()


def run_main(name, capsys, *extra):
    module = importlib.import_module(f"benchmarks.{name}")
    module.main(["--quick", "--threads", "1", "--pairs", "1", *extra])
    return capsys.readouterr().out


def table_rows(out: str, first_header: str) -> list[list[str]]:
    """Rows (cells split on runs of 2+ spaces) of the table whose header starts with first_header."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(first_header))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.strip():
            break
        rows.append(re.split(r"\s{2,}", ln.strip()))
    return rows


def check_header_and_torch(out: str, with_torch: bool) -> None:
    assert out.startswith("CPU: "), out[:200]
    assert "NumPy" in out and "threads: 1 -> " in out
    assert "load average (1, 5, 15 min) at start" in out and "load average (1, 5, 15 min) at end" in out
    if with_torch:
        assert SKIPPED not in out
        assert "PyTorch 2" in out
    else:
        assert SKIPPED in out


def test_op_overhead_covers_every_op(torch_mode, capsys):
    from tinygrad_s2s.testing.op_table import OPS
    out = run_main("op_overhead", capsys)
    check_header_and_torch(out, torch_mode)
    rows = table_rows(out, "op ")
    assert [r[0] for r in rows] == [spec.name for spec in OPS]
    for r in rows:
        assert re.fullmatch(r"[\d.]+ (us|ms|s)", r[2]), r
        assert (r[4].endswith("x") or r[4] == "n/a") if torch_mode else r[4] == "n/a"
    if torch_mode:
        assert "vs issue 2" in out and "vs issue 6" in out


@pytest.mark.extras
def test_every_op_has_a_pytorch_twin_computing_the_same():
    """The per-op row of the speed table is a geometric mean over every op of the table: each op's
    PyTorch twin exists and gives our op's output on the benchmark's own example."""
    torch = need("torch", "bench")
    import tinygrad_s2s as tg
    from benchmarks.op_overhead import _torch_ops, tiny_example
    from tinygrad_s2s.testing.op_table import OPS
    twins = _torch_ops(torch)
    assert sorted(twins) == sorted(spec.name for spec in OPS)
    for spec in OPS:
        arrays, kwargs = tiny_example(spec)
        ours = spec.fn(*[tg.Tensor(a) for a in arrays], **kwargs).numpy()
        theirs = twins[spec.name](*[torch.tensor(a) for a in arrays], **kwargs).detach().numpy()
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5, err_msg=spec.name)


@pytest.mark.parametrize("model", ["seq2seq", "peeky", "attention"])
def test_the_pytorch_twins_train_as_ours_do(model):
    """The train-step benchmark times the same training: from the same weights, five steps of
    forward, backward, clip and Adam give the same losses (the twins' second LSTM bias, trainable,
    made them part after a few steps)."""
    torch = need("torch", "bench")
    from benchmarks.train_step import (WORKLOADS, build_ours, build_torch, make_batch, ours_train_step,
                                       quick_workload, torch_train_step)
    w = quick_workload(next(w for w in WORKLOADS if w.model == model))
    xs, ts = make_batch(w)
    ours = build_ours(w)
    twin = build_torch(torch, w, ours)
    ours.to(np.float64)
    twin.double()
    steps = ours_train_step(ours, xs, ts, lr=0.01, max_norm=0.5), torch_train_step(torch, twin, xs, ts, lr=0.01,
                                                                                  max_norm=0.5)
    losses = [[float(step().item()) for _ in range(5)] for step in steps]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-9)


def test_op_overhead_examples_are_deterministic():
    from benchmarks.op_overhead import MIN_ELEMENTS, describe_example, tiny_example
    from tinygrad_s2s.testing.op_table import BY_NAME
    for name in ("add", "matmul", "getitem"):
        first, second = tiny_example(BY_NAME[name]), tiny_example(BY_NAME[name])
        assert describe_example(*first) == describe_example(*second)
        assert all((a == b).all() for a, b in zip(first[0], second[0]))
        assert all(a.size >= MIN_ELEMENTS and a.dtype.name == "float32" for a in first[0])


def test_lstm_layer(torch_mode, capsys):
    out = run_main("lstm_layer", capsys)
    check_header_and_torch(out, torch_mode)
    names = [r[0] for r in table_rows(out, "implementation")]
    assert names[:2] == ["tg.nn.LSTM (fused)", "tg.nn.LSTM (fused=False, primitives)"]
    assert ("torch.nn.LSTM" in names) == torch_mode
    assert "GEMM peak" in out


@pytest.mark.numerics     # the benchmarks' agreement checks under every kernel family
def test_train_step_same_loss_both_frameworks(torch_mode, capsys):
    out = run_main("train_step", capsys)
    check_header_and_torch(out, torch_mode)
    rows = table_rows(out, "model (data)")
    assert [r[0] for r in rows] == ["seq2seq (addition)", "peeky (addition)", "attention (date)"]
    for r in rows:
        losses = [float(v) for v in r[-1].split(" / ")]
        assert len(losses) == (2 if torch_mode else 1)
        assert losses[-1] == pytest.approx(losses[0], rel=1e-4), f"torch twin disagrees: {r}"


@pytest.mark.machine       # exact argmax agreement of two BLAS libraries (ours and PyTorch's)
def test_evaluate_decodes_the_same_ids(torch_mode, capsys):
    out = run_main("evaluate", capsys, "--models", "seq2seq,attention")
    check_header_and_torch(out, torch_mode)
    rows = table_rows(out, "model (data)")
    assert [r[0] for r in rows] == ["seq2seq (addition)", "attention (date)"]
    for r in rows:
        assert r[-1] == ("100.00%" if torch_mode else "n/a")


@pytest.mark.machine       # a heap-growth bound: this allocator's behaviour
def test_memory_runs_fresh_children(torch_mode, capsys):
    out = run_main("memory", capsys, "--iters", "4")
    check_header_and_torch(out, torch_mode)
    rows = table_rows(out, "framework")
    assert [r[0] for r in rows] == (["ours", "torch"] if torch_mode else ["ours"])
    for r in rows:
        assert float(r[6]) > 0   # peak RSS in MiB
        assert abs(float(r[5])) < 50   # live-heap growth between the two halves, in MiB
    assert "growth 2->4" in out


def test_profile_splits_an_iteration_into_its_categories(torch_mode, capsys):
    from benchmarks.profile import CATEGORIES
    out = run_main("profile", capsys, "--models", "seq2seq")
    check_header_and_torch(out, torch_mode)
    assert "fused recurrent layers: " in out
    rows = table_rows(out, "share of a training iteration")
    assert [r[0] for r in rows[:-1]] == list(CATEGORIES)
    for col in range(2, len(rows[0]), 2):      # each framework's shares add up to the whole (rounded)
        assert 93 <= sum(int(r[col].rstrip("%")) for r in rows[:-1]) <= 107, rows
    assert re.search(r"\d+ ops, [\d.]+ [um]?s/op", rows[-1][2])


def test_profile_tracer_counts_self_time():
    from benchmarks.profile import Tracer
    tracer = Tracer()
    inner = tracer.wrap("gemm", lambda: sum(range(1000)))
    outer = tracer.wrap("op", lambda: inner() + inner(), op="lstm_sequence")
    outer()
    assert tracer.calls == {("gemm", "lstm_sequence"): 2, ("op", "lstm_sequence"): 1}
    assert all(v >= 0 for v in tracer.self_time.values())


@pytest.mark.numerics     # the benchmarks' agreement checks under every kernel family
def test_lengths_and_deep_chain(torch_mode, capsys):
    out = run_main("lengths", capsys, "--chain", "2000")
    check_header_and_torch(out, torch_mode)
    assert [r[0] for r in table_rows(out, "T ")][:1] == ["4"]
    chain = table_rows(out, "chain length")
    assert chain[0][0] == "2,000" and chain[0][-1] == "ok"


def test_summary_needs_torch(monkeypatch):
    from benchmarks import summary
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SystemExit, match="compares with PyTorch: install it"):
        summary.main(["--quick"])


@pytest.mark.extras
def test_summary_prints_the_readme_table_and_writes_it_into_the_page(capsys, tmp_path):
    need("torch", "bench")
    from benchmarks import summary
    page = tmp_path / "speed.md"
    page.write_text("# Speed\n\nmethod\n\n## Measured\n\nold table\n\n## Where the time goes\n\nprose\n")
    summary.main(["--quick", "--threads", "1", "--repeats", "2", "--kernels", "own,auto", "--write", str(page)])
    out = capsys.readouterr().out
    families = summary.resolve_families(["own", "auto"])
    assert re.match(r"benchmarks.summary: \d+ benchmark runs, \d+ child processes; estimated \d+ min", out)
    for name in ("train_step", "evaluate", "lstm_layer", "op_overhead", "memory", "profile"):
        assert f"==== python -m benchmarks.{name} --quick --threads 1 --repeats 2 --pairs 1" in out
    tables = out.split("==== README speed table")[1:]
    assert len(tables) == len(families)
    for i, table in enumerate(tables):
        lines = table.splitlines()
        assert lines[0].startswith(", kernels: " + ("OpenBLAS's own choice" if i == 0 else "OPENBLAS_CORETYPE="))
        assert lines[2].startswith("machine: ") and lines[3].startswith("kernels: ") and " | command: " in lines[4]
        assert "| benchmark | 1 thread |" in lines
        rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith(("| benchmark", "| ---"))]
        # training x3, decoding x3, LSTM layer; per-op overhead and peak RSS under the first family only
        assert len(rows) == (3 + 3 + 3 if i == 0 else 3 + 3 + 1)
        for row in rows:
            assert re.fullmatch(r"\| .+ \(--quick sizes: meaningless\) \| [\d.]+x \([\d.]+-[\d.]+\): .+ vs .+ \|",
                                row), row
        assert sum("target <= " in row and "not judged (--quick)" in row for row in rows) == 3 + 3 + (i == 0)
    assert re.search(r"Load average \(1, 5, 15 min\): [\d. ]+ before, [\d. ]+ after; the run took [\d.]+ min "
                     r"\(estimated \d+\)", out)
    written = page.read_text()
    assert written.startswith("# Speed\n\nmethod\n\n## Measured\n\n### kernels: ") and "old table" not in written
    assert written.endswith("## Where the time goes\n\nprose\n")
    assert written.count("### kernels: ") == len(families) and written.count("| benchmark | 1 thread |") == len(families)


def test_summary_plans_pairs_and_families_and_estimates_its_length():
    from benchmarks import summary
    args = summary.parser("x", repeats=1).parse_args([])
    args.kernels = ["own", "Haswell"]
    steps = summary.plan(["own", "Haswell"], args)
    pairs = {(fam, name): n for fam, name, n in steps}
    assert pairs[("own", "train_step")] == pairs[("own", "evaluate")] == 7 and pairs[("own", "profile")] == 1
    assert ("Haswell", "op_overhead") not in pairs and ("Haswell", "train_step") in pairs
    minutes = summary.estimate_seconds(steps, ["1", "default"], args) / 60
    assert 20 < minutes < 90
    before = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "MKL_ENABLE_INSTRUCTIONS")}
    with summary.family_env("Haswell"):
        assert os.environ["OPENBLAS_CORETYPE"] == "Haswell" and os.environ["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert {k: os.environ.get(k) for k in before} == before      # the user's own pin (if any) is back


def test_recipe_times_the_quick_start_against_pytorch_and_writes_its_section(capsys, tmp_path):
    need("torch", "bench")
    from benchmarks import recipe
    page = tmp_path / "speed.md"
    page.write_text("# Speed\n\n## Measured\n\nkept\n")
    recipe.main(["--quick", "--write", str(page)])
    out = capsys.readouterr().out
    times = re.findall(r"pair 1 (ours|torch): ([\d.]+) s, final test accuracy ([\d.]+)%", out)
    assert sorted(t[0] for t in times) == ["ours", "torch"] and all(float(t[1]) > 0 for t in times), out
    row = next(ln for ln in out.splitlines() if ln.startswith("| wall time, start to exit | "))
    ours, theirs, ratio = (float(x) for x in re.fullmatch(r"\| wall time, start to exit \| ([\d.]+) s \| ([\d.]+) s "
                                                          r"\| ([\d.]+)x \(.+\) \|", row).groups())
    assert ratio == pytest.approx(ours / theirs, rel=0.02)
    assert "not judged: --quick" in out
    written = page.read_text()
    assert written.startswith("# Speed\n\n## Measured\n\nkept\n\n## The quick start against PyTorch\n\nmachine: ")
    assert row in written and "fused recurrent layers: " in written


def test_summary_refuses_a_kernel_family_the_cpu_lacks(monkeypatch):
    from benchmarks import summary
    monkeypatch.setattr(summary, "cpu_flags", lambda: {"sse2", "avx"})
    with pytest.raises(SystemExit, match="--kernels Haswell: this CPU lacks avx2, fma"):
        summary.resolve_families(["own", "Haswell"])
    assert summary.resolve_families(["own", "auto"])[-1] in ("Sandybridge", "own")


@pytest.mark.parametrize("name", [*BENCHMARKS, "summary", "gpu_check", "profile", "recipe"])
def test_each_benchmark_documents_its_command(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert f"python -m benchmarks.{name}" in module.__doc__
    assert f"python -m benchmarks.{name}" in (REPO_ROOT / "benchmarks" / "README.md").read_text()
    assert callable(module.main)


def test_module_entry_point_runs():
    """`python -m benchmarks.<name>` from the repository root, as the README says."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.lstm_layer", "--quick", "--no-torch",
                           "--threads", "1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "PyTorch: skipped (--no-torch)" in proc.stdout
    assert "tg.nn.LSTM (fused)" in proc.stdout


def test_bad_flags_give_clear_errors(capsys):
    from benchmarks import op_overhead, train_step
    with pytest.raises(SystemExit, match="unknown op"):
        op_overhead.main(["--quick", "--no-torch", "--ops", "add,frobnicate"])
    with pytest.raises(SystemExit, match="unknown model"):
        train_step.main(["--quick", "--no-torch", "--models", "seq2seq,nope"])
    with pytest.raises(SystemExit) as exc:
        train_step.main(["--quick", "--no-torch", "--repeats", "0"])
    assert exc.value.code == 2 and "--repeats: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_time_alternating_and_tables(capsys):
    from benchmarks.common import fmt_ratio, fmt_time, geomean, print_table, time_alternating
    calls = []
    medians = time_alternating({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               repeats=4, min_sample_s=0.0)
    assert set(medians) == {"a", "b"} and all(v >= 0 for v in medians.values())
    timed = calls[4:]            # after two calibration calls each
    assert timed == ["a", "b", "b", "a", "a", "b", "b", "a"]   # ABBA order
    assert fmt_time(2.5e-6) == "2.5 us" and fmt_time(0.0123) == "12.30 ms" and fmt_time(None) == "n/a"
    assert fmt_ratio(3.0, 2.0) == "1.50x" and fmt_ratio(1.0, None) == "n/a"
    assert geomean([2.0, 8.0]) == pytest.approx(4.0) and geomean([None]) is None
    print_table(["name", "value"], [["x", "1"], ["longer", "22"]])
    assert capsys.readouterr().out.splitlines() == ["name    value", "------  -----", "x           1",
                                                    "longer     22", ""]


def test_thread_settings_flag():
    from benchmarks.common import parser
    p = parser("x", repeats=1)
    assert p.parse_args([]).threads == ["1", "default"]       # one thread and what a user gets
    assert p.parse_args(["--threads", "4"]).threads == ["4"]
    assert p.parse_args(["--threads", "2,default,02"]).threads == ["2", "default"]


def test_sample_seconds_per_benchmark_and_from_the_flag(capsys):
    from benchmarks.common import parser, setup
    p = parser("x", repeats=1, sample_s=0.5)
    assert setup(p.parse_args(["--no-torch"])).min_sample_s == 0.5            # the benchmark's own default
    assert setup(p.parse_args(["--no-torch", "--quick"])).min_sample_s == 0.002
    assert setup(p.parse_args(["--no-torch", "--sample-seconds", "1.5"])).min_sample_s == 1.5
    assert setup(parser("x", repeats=1).parse_args(["--no-torch"])).min_sample_s == 0.05
    for bad in ("0", "-1", "nan", "inf", "half"):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(["--sample-seconds", bad])
        assert exc.value.code == 2 and "--sample-seconds" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "two", "1,,default", "-1"])
def test_bad_thread_settings_exit_2_naming_the_flag(bad, capsys):
    from benchmarks.common import parser
    with pytest.raises(SystemExit) as exc:
        parser("x", repeats=1).parse_args(["--threads", bad])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_child_environment_per_setting(monkeypatch):
    from benchmarks import THREAD_ENV
    from benchmarks.processes import child_env
    monkeypatch.setenv("OMP_NUM_THREADS", "7")      # the user's own setting is not 'default'
    monkeypatch.setenv("SOMETHING_ELSE", "kept")
    default = child_env("default")
    assert not any(var in default for var in THREAD_ENV) and default["SOMETHING_ELSE"] == "kept"
    assert [child_env("3")[var] for var in THREAD_ENV] == ["3"] * len(THREAD_ENV)


def test_pairs_alternate_which_framework_goes_first(monkeypatch):
    from benchmarks import processes
    from benchmarks.common import Bench
    calls = []

    def fake_child(module, argv, framework, setting):
        calls.append((framework, setting))
        return {"framework": framework, "cases": {"x": {"seconds": 1.0 if framework == "ours" else 2.0}}}

    monkeypatch.setattr(processes, "run_child", fake_child)
    bench = Bench(None, True, 1, 3, ["1", "default"], ["ours", "torch"])
    results = processes.run_pairs(bench, "benchmarks.train_step", [])
    assert calls == [("ours", "1"), ("torch", "1"), ("ours", "default"), ("torch", "default"),
                     ("torch", "1"), ("ours", "1"), ("torch", "default"), ("ours", "default"),
                     ("ours", "1"), ("torch", "1"), ("ours", "default"), ("torch", "default")]
    assert len(results.children("default", "torch")) == 3
    assert results.summary("1", "x").ratio == pytest.approx(0.5)


def test_summary_is_median_and_spread_over_pairs():
    from benchmarks.processes import summarize
    s = summarize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert (s.ours, s.torch, s.ratio, s.lo, s.hi) == (2.0, 2.0, 1.0, 0.5, 1.5)
    assert s.spread() == "0.50-1.50x" and s.ratio_text() == "1.00x"
    alone = summarize([3.0, 1.0, 2.0], None)
    assert alone.ours == 2.0 and alone.ratio is None and alone.spread() == "n/a"


def test_each_framework_runs_alone_in_its_own_process(torch_mode, capsys):
    """The default settings (1 thread and nothing set), two pairs: every child is its own process
    with the thread variables of its setting, and torch never loads in our process."""
    from benchmarks import THREAD_ENV, train_step
    results = train_step.main(["--quick", "--pairs", "2", "--models", "seq2seq"])
    out = capsys.readouterr().out
    assert set(results.by) == {"1", "default"}
    assert "threads: 1 -> " in out and "threads: default (nothing set) -> " in out
    pids = set()
    for setting, by in results.by.items():
        assert set(by) == ({"ours", "torch"} if torch_mode else {"ours"})
        for framework, children in by.items():
            assert len(children) == 2
            for child in children:
                pids.add(child["pid"])
                env = child["threads"]["env"]
                assert [env[v] for v in THREAD_ENV] == ([None] * 3 if setting == "default" else ["1"] * 3)
                if setting == "1" and child["threads"]["blas_threads"] is not None:
                    assert child["threads"]["blas_threads"] == 1
                if framework == "torch" and setting == "1":
                    assert child["threads"]["torch_threads"] == 1
                if framework == "ours":
                    assert child["peak_gflops"] > 0
    assert len(pids) == 2 * 2 * (2 if torch_mode else 1) and os.getpid() not in pids
    for setting in ("1", "default"):
        assert results.summary(setting, "seq2seq").ours > 0


def test_a_failing_child_names_itself():
    from benchmarks.processes import run_child
    with pytest.raises(SystemExit, match=r"the ours process at threads=1 failed"):
        run_child("benchmarks.no_such_benchmark", [], "ours", "1")


def test_accuracy_runs_train_with_one_blas_thread_unless_told(monkeypatch):
    import benchmarks
    accuracy = importlib.import_module("benchmarks.accuracy")
    threads = benchmarks.THREAD_ENV
    for var in threads:             # as a user's shell might hold them
        monkeypatch.setenv(var, "2")
    monkeypatch.setattr(benchmarks, "_USER_SET_THREADS", False)
    env = accuracy.training_env()
    assert [env[v] for v in threads] == ["1"] * 3
    monkeypatch.setattr(benchmarks, "_USER_SET_THREADS", True)
    assert [accuracy.training_env()[v] for v in threads] == ["2"] * 3
    script = "import benchmarks.accuracy as a; print(a.training_env()['OPENBLAS_NUM_THREADS'])"
    clean = {k: v for k, v in os.environ.items() if k not in threads}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=clean, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "1", out.stderr


def test_beam_benchmark_quick(capsys):
    """benchmarks.beam --quick: greedy and beam-5 timed on every workload, a verdict per model."""
    from benchmarks import beam
    rows = beam.main(["--quick", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "beam-5 / greedy vs issue 14" in out and "load average" in out
    assert len(rows) == 3


def test_summary_combines_saved_runs_into_one_table(tmp_path, capsys):
    from benchmarks import summary

    def saved(run, r1, r2):
        path = tmp_path / f"run{run}.txt"
        path.write_text("noise before\n==== README speed table (...)\n\n| benchmark | 1 thread | default threads (2 here) |\n"
                        "| --- | --- | --- |\n"
                        f"| training iteration, seq2seq | {r1}x (0.70-0.90): {run}.00 ms vs 6.00 ms; ours 50% of GEMM peak "
                        f"| {r2}x (1.00-1.20): 5.{run}0 ms vs 5.00 ms |\n\nload average ...\n")
        return str(path)
    paths = [saved(1, "0.81", "1.08"), saved(2, "0.80", "1.09"), saved(3, "0.82", "1.20")]
    summary.main(["--combine", *paths])
    out = capsys.readouterr().out
    assert "| benchmark | 1 thread: runs 1 / 2 / 3 | default threads (2 here): runs 1 / 2 / 3 |" in out
    assert ("| training iteration, seq2seq | 0.81x / 0.80x / 0.82x (2.00 ms vs 6.00 ms) "
            "| 1.08x / 1.09x / 1.20x (5.20 ms vs 5.00 ms) |") in out
    (tmp_path / "other.txt").write_text("not a summary\n")
    with pytest.raises(SystemExit, match="other.txt has no '==== README speed table' section"):
        summary.main(["--combine", paths[0], str(tmp_path / "other.txt")])


@pytest.mark.extras
def test_torch_export_check_on_a_tiny_run(tmp_path, capsys):
    """benchmarks/torch_export_check: the whole test split of a tiny trained run, ours against its export."""
    from extras import need
    need("torch", "bench")
    need("safetensors", "export")
    import tiny_model
    from benchmarks import torch_export_check
    from benchmarks.common import replace_section
    run_dir = tiny_model.finished_run(tmp_path, "peeky")
    assert torch_export_check.main([str(run_dir), "--markdown", str(tmp_path / "export.md")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"peeky: (\d+)/\1 identical answers", out), out
    page = (tmp_path / "export.md").read_text()
    assert page.startswith("# Export results\n\n## PyTorch") and "| peeky | add | D=4 H=8" in page and "commit " in page
    # a rerun replaces its own section and keeps the others
    onnx = "## ONNX\n\nanother tool's table\n"
    assert replace_section(page + "\n" + onnx, "## PyTorch\n\nnew\n", "## PyTorch") == (
        "# Export results\n\n## PyTorch\n\nnew\n\n" + onnx)
    assert replace_section("# T\n\n" + onnx, "## PyTorch\n\nnew\n", "## PyTorch") == (
        "# T\n\n" + onnx + "\n## PyTorch\n\nnew\n")
