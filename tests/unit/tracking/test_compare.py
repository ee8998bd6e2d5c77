"""compare: runs read from their directories, labelled by what differs, drawn one line each (the
figure's data and its pixels are checked), tabulated; runs of different tasks refused."""
import json
import math

import numpy as np
import pytest

from tinygrad_s2s.tracking import TaskMismatch, compare_figure, load_runs, save_figure, table

from tiny_runs import fake_run


def test_labels_name_what_differs(tmp_path):
    base = fake_run(tmp_path, "base", [0.1, 0.2], reverse=False)
    rev = fake_run(tmp_path, "rev", [0.2, 0.5], reverse=True)
    peeky = fake_run(tmp_path, "peeky", [0.3, 0.9], reverse=True, model="peeky")
    runs = load_runs([base, rev])
    assert [r.label for r in runs] == ["input as written", "reversed input"]
    assert [r.label for r in load_runs([rev, peeky])] == ["seq2seq", "peeky"]
    assert [r.label for r in load_runs([base, peeky])] == ["seq2seq, input as written", "peeky, reversed input"]
    twin = fake_run(tmp_path, "twin", [0.0], reverse=False)
    assert [r.label for r in load_runs([base, twin])] == ["epochs=2", "epochs=1"]
    same = fake_run(tmp_path, "same", [0.3, 0.1], reverse=False)
    assert [r.label for r in load_runs([base, same])] == ["base", "same"]    # nothing differs: the names
    lr = fake_run(tmp_path, "lr", [0.3, 0.1], reverse=False, lr=0.01, model_args={"layers": 2})
    assert load_runs([base, lr])[1].label == "lr=0.01, layers=2"


def test_the_figure_draws_each_run_as_recorded(tmp_path):
    a = fake_run(tmp_path, "a", [0.1, 0.4, 0.6], reverse=False)
    b = fake_run(tmp_path, "b", [0.3, 0.8], reverse=True, epochs=5)      # stopped after 2 of 5 epochs
    runs = load_runs([a, b])
    fig = compare_figure(runs)
    acc, loss = fig.axes[:2]
    labels = ["input as written, epochs=3", "reversed input, epochs=5"]
    assert [line.get_label() for line in acc.lines] == labels
    assert [list(line.get_xdata()) for line in acc.lines] == [[1, 2, 3], [1, 2]]
    assert np.allclose(acc.lines[0].get_ydata(), [10, 40, 60]) and np.allclose(acc.lines[1].get_ydata(), [30, 80])
    assert np.allclose(loss.lines[1].get_ydata(), [2.0, 1.0])
    assert [t.get_text() for t in acc.get_legend().get_texts()] == labels
    assert runs[1].state == "stopped" and runs[0].state == "finished"


def test_the_saved_image_shows_both_lines(tmp_path):
    """Read the PNG back: the accuracy panel holds pixels of each line's colour, at the heights of
    its values (run b, at 80-90%, is drawn above run a, at 0-10%)."""
    from matplotlib import colors, image
    a = fake_run(tmp_path, "a", [0.0, 0.05, 0.1], reverse=False)
    b = fake_run(tmp_path, "b", [0.8, 0.85, 0.9], reverse=True)
    fig = compare_figure(load_runs([a, b]))
    out = save_figure(fig, tmp_path / "fig" / "cmp.png")
    pixels = image.imread(out)[..., :3]
    h, w, _ = pixels.shape
    left = pixels[:, : w // 2]      # the accuracy panel

    def rows_of(color):
        want = np.array(colors.to_rgb(color))
        return np.nonzero((np.abs(left - want).max(axis=2) < 0.03).any(axis=1))[0]
    ra, rb = rows_of(fig.axes[0].lines[0].get_color()), rows_of(fig.axes[0].lines[1].get_color())
    assert len(ra) and len(rb)
    assert np.median(rb) < np.median(ra)     # image rows grow downwards: higher accuracy, smaller row


def test_runs_of_different_tasks_are_refused(tmp_path):
    a = fake_run(tmp_path, "a", [0.1])
    d = fake_run(tmp_path, "d", [0.1], dataset="date", sha="b" * 64)
    other = fake_run(tmp_path, "other", [0.1], sha="c" * 64)       # same name, other data
    for pair in ([a, d], [a, other]):
        with pytest.raises(TaskMismatch, match="runs of different tasks cannot be compared") as e:
            load_runs(pair)
        assert str(pair[1]) in str(e.value)


def test_what_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="junk is not a run directory"):
        load_runs([tmp_path / "junk"])
    bad = fake_run(tmp_path, "bad", [0.1])
    (bad / "metrics.csv").write_text("epoch,test_accuracy\n1,lots\n")
    with pytest.raises(ValueError, match="bad/metrics.csv: not the metrics this tool writes"):
        load_runs([bad])
    (bad / "metrics.csv").write_text("epoch,step\n1,2\n")
    with pytest.raises(ValueError, match="bad/metrics.csv: lacks the epoch, train_loss or test_accuracy"):
        load_runs([bad])
    with pytest.raises(ValueError, match="image format"):
        save_figure(compare_figure(load_runs([fake_run(tmp_path, "a", [0.1])])), tmp_path / "x.gif")


def test_table_and_json(tmp_path):
    a = fake_run(tmp_path, "a", [0.1, 0.7, 0.6], reverse=False)
    b = fake_run(tmp_path, "b", [0.2], reverse=True, epochs=4)
    runs = load_runs([a, b])
    text = table(runs).splitlines()
    assert text[0].split() == ["run", "label", "best", "accuracy", "final", "accuracy", "epochs", "training", "time",
                               "state"]
    assert "70.00% (epoch 2)" in text[1] and "60.00%" in text[1] and "3/3" in text[1] and "1.5 min" in text[1]
    assert "1/4" in text[2] and text[2].rstrip().endswith("stopped")
    d = json.loads(json.dumps(runs[0].as_dict(), allow_nan=False))
    assert (d["best_accuracy"], d["best_epoch"], d["final_accuracy"], d["epochs"]) == (0.7, 2, 0.6, 3)
    assert math.isclose(d["seconds"], 90.0) and d["differs"] == {"reverse": False, "epochs": 3}
