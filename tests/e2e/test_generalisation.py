"""The generalisation report (benchmarks/generalisation.py): stratified buckets that cover the whole
task, the training-split overlap, and the report of a small trained run."""
import datetime as dt
import io
import json

import numpy as np
import pytest

import tinygrad_s2s as tg
from benchmarks import generalisation as gen
from tinygrad_s2s.data import generators as datagen
from tinygrad_s2s.data import load_dataset
from tinygrad_s2s.training.runfiles import load_run
from tinygrad_s2s.training.trainer import Trainer

import tiny_model  # noqa: F401 - registers 'tiny-s2s'


def test_addition_buckets_are_stratified_exhaustive_when_small_and_seeded():
    buckets = list(gen.addition_buckets(150, np.random.default_rng(5)))
    assert [name for name, _, _ in buckets] == [(f"{a}+{b} digits",) for a in (1, 2, 3) for b in (1, 2, 3)]
    sizes = {name[0]: size for name, size, _ in buckets}
    assert sizes["1+1 digits"] == 100 and sizes["2+3 digits"] == 81_000 and sizes["3+3 digits"] == 810_000
    for name, size, pairs in buckets:
        da, db = (int(k) for k in name[0].split()[0].split("+"))
        assert len(pairs) == min(150, size) and len({q for q, _ in pairs}) == len(pairs)   # distinct
        for q, answer in pairs:
            a, b = q.split("+")
            assert (len(a), len(b)) == (da, db) and int(a) + int(b) == int(answer)
    assert {q for q, _ in buckets[0][2]} == {f"{a}+{b}" for a in range(10) for b in range(10)}
    again = list(gen.addition_buckets(150, np.random.default_rng(5)))
    assert again == buckets
    assert list(gen.addition_buckets(150, np.random.default_rng(6)))[-1] != buckets[-1]


def test_date_buckets_cover_every_format_and_case():
    buckets = list(gen.date_buckets(20, np.random.default_rng(0)))
    lettered = [f for f in datagen.DATE_FORMATS if "{MMM" in f or "{EEE" in f]
    assert len(buckets) == 3 * len(lettered) + (len(datagen.DATE_FORMATS) - len(lettered))
    assert {fmt for (fmt, _), _, _ in buckets} == set(datagen.DATE_FORMATS)
    for (fmt, case), _, pairs in buckets:
        assert len(pairs) == 20 and len({q for q, _ in pairs}) == 20
        assert case in datagen.DATE_CASES or (case == "any case" and fmt not in lettered)
        for q, answer in pairs:
            day = dt.date.fromisoformat(answer)
            assert datagen.DATE_RANGE[0] <= day <= datagen.DATE_RANGE[1]
            assert q == datagen.format_date(day, fmt, datagen.DATE_CASES.get(case, str))


def test_year_buckets_are_decades_clipped_to_the_years_asked_for():
    buckets = list(gen.year_buckets((1955, 2031), 30, np.random.default_rng(0)))
    names = [name[0] for name, _, _ in buckets]
    assert names == ["1955-1959"] + [f"{y}-{y + 9}" for y in range(1960, 2030, 10)] + ["2030-2031"]
    four_digit = [f for f in datagen.DATE_FORMATS if "{yy}" not in f]
    for (name,), size, pairs in buckets:
        first, last = (int(y) for y in name.split("-"))
        assert size == (dt.date(last, 12, 31) - dt.date(first, 1, 1)).days + 1
        assert len(pairs) == 30 and len({a for _, a in pairs}) == 30            # distinct days
        for q, answer in pairs:
            day = dt.date.fromisoformat(answer)
            assert first <= day.year <= last and str(day.year) in q
            assert any(q == datagen.format_date(day, f, c) for f in four_digit for c in datagen.DATE_CASES.values())
    assert buckets == list(gen.year_buckets((1955, 2031), 30, np.random.default_rng(0)))
    assert [len(p) for _, _, p in gen.year_buckets((2000, 2000), 1000, np.random.default_rng(0))] == [366]
    assert [gen.in_task_range(n) for n in ("1960-1969", "1970-1979", "2020-2029", "2021-2030")] == \
        ["none", "all", "part", "none"]


@pytest.mark.parametrize("bad", ["1950", "1950-", "1950-20x0", "2039-1950", "950-1960", "1950-12345"])
def test_bad_years_are_a_clear_error(bad):
    with pytest.raises(ValueError, match="--years must be"):
        gen.parse_years(bad)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A tiny model trained one epoch on 600 addition examples (its report is far from perfect)."""
    d = tmp_path_factory.mktemp("gen")
    path = datagen.write_task("addition", d / "add600.txt", n=600, seed=3)
    ds = load_dataset(path, reverse=True)
    tg.manual_seed(0)
    model = tg.create_model("tiny-s2s", len(ds.vocab), wordvec_size=4, hidden_size=8)
    Trainer(model, ds, run_dir=d / "run", config={"seed": 0}, log=io.StringIO(), progress=False).fit(1)
    return d / "run", ds


def test_report_of_a_small_run_counts_what_it_claims(small_run):
    run_dir, ds = small_run
    rep = gen.report(run_dir, task="addition", samples=40, seed=1)
    assert rep["task"] == "addition" and rep["test_examples"] == 60 and rep["training_examples"] == 540
    trained_on = set(ds.question_text(ds.x_train))
    run = load_run(run_dir)
    buckets = list(gen.addition_buckets(40, np.random.default_rng(1)))
    assert [r["bucket"] for r in rep["buckets"]] == [name[0] for name, _, _ in buckets]
    for row, (_, size, pairs) in zip(rep["buckets"], buckets):
        questions = [q for q, _ in pairs]
        answers = run.predict(questions)
        assert row["questions_in_bucket"] == size and row["sampled"] == len(pairs) == 40
        assert row["in_training_split"] == sum(q in trained_on for q in questions)
        assert row["correct"] == sum(a == want for a, (_, want) in zip(answers, pairs))
        assert row["accuracy"] == row["correct"] / 40
    assert sum(r["in_training_split"] for r in rep["buckets"]) > 0      # the 1+1 bucket is in every file
    assert 0 <= rep["test_accuracy"] <= 1


def test_command_line_prints_a_table_json_and_enforces_require(small_run, capsys):
    run_dir, _ = small_run
    assert gen.main([str(run_dir), "--task", "addition", "--samples", "10"]) == 0
    out = capsys.readouterr().out
    assert "| 1+1 digits | 100 | 10 |" in out and "test split" in out
    assert gen.main([str(run_dir), "--task", "addition", "--samples", "10", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["buckets"]) == 9
    assert gen.main([str(run_dir), "--task", "addition", "--samples", "10", "--require", "100"]) == 1
    assert "below 100.0%: test split" in capsys.readouterr().err


def test_an_unknown_task_is_a_clear_error(small_run, capsys):
    run_dir, _ = small_run
    assert gen.main([str(run_dir)]) == 1      # trained on 'add600', a file of no known task
    assert "trained on 'add600'" in capsys.readouterr().err
    assert gen.main([str(run_dir), "--task", "addition", "--years", "1950-1960"]) == 1
    assert "--years asks about other years of the date task" in capsys.readouterr().err
    assert gen.main([str(run_dir), "--task", "addition", "--years", "1950"]) == 1
    assert "--years must be FIRST-LAST" in capsys.readouterr().err
    assert gen.main([str(run_dir), "--task", "addition", "--samples", "0"]) == 1
    assert "--samples must be positive" in capsys.readouterr().err


def test_date_report_of_a_small_run_is_a_format_by_case_table(tmp_path, capsys):
    path = datagen.write_task("date", tmp_path / "date2000.txt", n=2000, seed=2)
    ds = load_dataset(path)
    tg.manual_seed(0)
    model = tg.create_model("tiny-s2s", len(ds.vocab), wordvec_size=4, hidden_size=8)
    Trainer(model, ds, run_dir=tmp_path / "run", config={"seed": 0}, log=io.StringIO(), progress=False).fit(1)
    rep = gen.report(tmp_path / "run", task="date", samples=5)
    lettered = [f for f in datagen.DATE_FORMATS if "{MMM" in f or "{EEE" in f]
    assert len(rep["buckets"]) == 3 * len(lettered) + len(datagen.DATE_FORMATS) - len(lettered)
    assert all(r["sampled"] == 5 and 0 <= r["in_training_split"] <= 5 for r in rep["buckets"])
    assert gen.main([str(tmp_path / "run"), "--task", "date", "--samples", "5"]) == 0
    table = capsys.readouterr().out
    assert "| format | lower | title | upper | any case |" in table
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(datagen.DATE_FORMATS)
    assert all(row.count("%") == (3 if row.split("`")[1] in lettered else 1) for row in rows)
    rep = gen.report(tmp_path / "run", task="date", samples=4, years=(1965, 1974))
    assert [(r["years"], r["in_task_range"], r["sampled"]) for r in rep["buckets"]] == \
        [("1965-1969", "none", 4), ("1970-1974", "all", 4)]
    assert rep["buckets"][0]["in_training_split"] == 0 and rep["years"] == [1965, 1974]
    assert gen.main([str(tmp_path / "run"), "--task", "date", "--samples", "4", "--years", "1965-1974"]) == 0
    table = capsys.readouterr().out
    assert "| years | in the task's range | days | sampled | also in training split | exact match |" in table
    assert "| 1965-1969 | none | 1,826 | 4 | 0 |" in table
