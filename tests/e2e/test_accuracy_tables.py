"""benchmarks/accuracy.py writes both accuracy tables (RESULTS.md and the docs page's, between its
markers) from the recorded runs: each row with its provenance line, or, for a run recorded before
provenance was kept, that fact and the commit that holds its files."""
from __future__ import annotations

import sys

import pytest
from paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from benchmarks import accuracy  # noqa: E402

METRICS = "epoch,loss,test_accuracy,seconds\n1,1.0,0.5,30\n2,0.5,0.9,30\n3,0.4,0.8,30\n"


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    here, page = tmp_path / "accuracy", tmp_path / "accuracy.md"
    for name in ("peeky-addition-reversed", "seq2seq-addition"):
        (here / name).mkdir(parents=True)
        (here / name / "metrics.csv").write_text(METRICS)
    (here / "peeky-addition-reversed" / accuracy.PROVENANCE).write_text("CPU X, 2 cores | BLAS y | commit abc1234 | "
                                                                       "2026-12-07 16:00 UTC | python -m ...\n")
    page.write_text(f"# Accuracy\n\nbefore\n\n{accuracy.MARKERS[0]}\nold table\n{accuracy.MARKERS[1]}\n\nafter\n")
    monkeypatch.setattr(accuracy, "HERE", here)
    monkeypatch.setattr(accuracy, "DOCS_PAGE", page)
    return here, page


def test_both_tables_are_written_with_each_rows_provenance(recorded):
    here, page = recorded
    accuracy.write_results()
    text = page.read_text()
    assert "old table" not in text and text.startswith("# Accuracy\n\nbefore\n") and text.endswith("\nafter\n")
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["peeky-addition-reversed"].endswith(
        "| 80.00% | 90.00% (2) | 3 | 1.5 | CPU X, 2 cores; BLAS y; commit abc1234; 2026-12-07 16:00 UTC; python -m ... |")
    assert all(line.count(" | ") == 6 for line in rows.values()), "a cell holds a column separator"
    assert "measured before provenance was recorded" in rows["seq2seq-addition"]
    assert "attention-date" not in rows                 # not recorded: only RESULTS.md lists it, as not measured
    results = (here / "RESULTS.md").read_text()
    assert "| attention-date |" in results and "not measured" in results and "commit abc1234" in results


def test_a_page_without_the_markers_is_refused(recorded):
    _, page = recorded
    page.write_text("# Accuracy\n")
    with pytest.raises(SystemExit, match="markers"):
        accuracy.write_results()


def test_the_scripts_own_outputs_do_not_mark_the_commit_dirty(tmp_path):
    """provenance() reads `git status` leaving out what the script writes (benchmarks/accuracy/ and the
    docs page), so a run's own results never read as uncommitted changes of the code that measured."""
    import subprocess
    from benchmarks import common
    root = tmp_path / "repo"
    (root / "benchmarks" / "accuracy").mkdir(parents=True)
    (root / "docs" / "results").mkdir(parents=True)
    for f in ("benchmarks/accuracy/RESULTS.md", "docs/accuracy.md", "docs/results/speed.md", "code.py"):
        (root / f).write_text("a\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    fake = root / "benchmarks" / "common.py"            # commit() finds the repository from its own file
    fake.write_text("")
    mp = pytest.MonkeyPatch()
    mp.setattr(common, "__file__", str(fake))
    try:
        outputs = (root / "benchmarks" / "accuracy", root / "docs" / "accuracy.md")
        (root / "benchmarks" / "accuracy" / "RESULTS.md").write_text("b\n")
        (root / "docs" / "accuracy.md").write_text("b\n")
        (root / "docs" / "results" / "speed.md").write_text("b\n")     # what every --write fills
        assert not common.commit(outputs).endswith("uncommitted changes")
        (root / "code.py").write_text("b\n")
        assert common.commit(outputs).endswith("+ uncommitted changes")
    finally:
        mp.undo()
