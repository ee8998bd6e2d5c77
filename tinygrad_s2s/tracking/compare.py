"""Several runs of one task side by side, as the book compares them (Fig. 7-23: reversed input against
the baseline; Fig. 7-26: peeky against reversed): test accuracy and training loss per epoch, one line
per run, each labelled by what differs between the runs' configs, and a table of their results.

Runs are read from their directories (config.json, metrics.csv), never from their checkpoints, so a
run still training is read as far as its last finished epoch. Runs of different tasks (another
dataset, or the same name with other data) are refused: their accuracies measure different things.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from .. import serialization
from ..training import rundir
from ..training.config import TrainConfig
from ..training.runfiles import RunFileError, read_metrics, read_run_config

__all__ = ["LABEL_KEYS", "RunSummary", "TaskMismatch", "compare_figure", "load_runs", "save_figure", "table"]

LABEL_KEYS = ("model", "reverse", "wordvec", "hidden", "batch_size", "lr", "lr_schedule", "max_grad", "seed",
              "limit", "test_limit", "epochs", "model_args")
"""The settings a label may name (in this order) when they differ between the compared runs; the
model's own constructor config is compared too (`model_config`, its sizes left to wordvec/hidden)."""
_SIZES = ("vocab_size", "wordvec_size", "hidden_size")
FORMATS = ("png", "svg", "pdf")


class TaskMismatch(ValueError):
    """The runs given to compare were trained on different tasks."""


@dataclass
class RunSummary:
    """One run as compare reads it: its config, its metrics rows, and what the table shows.

    Args:
        path: the run directory.
        config: its config.json, as a dict.
        history: its metrics.csv rows (dicts with at least epoch, train_loss, test_accuracy).
        state: "finished", "training" (another process holds it) or "stopped".
        label: the legend's name for it (set by `load_runs`).
        differs: the settings in its label and their values (set by `load_runs`).
    """
    path: Path
    config: dict
    history: list
    state: str                   # "finished", "training" (another process holds it) or "stopped"
    label: str = ""
    differs: dict = field(default_factory=dict)    # the label's settings and their values

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def best(self) -> dict | None:
        """The row of the best test accuracy (the first, on ties)."""
        return max(self.history, key=lambda h: h["test_accuracy"]) if self.history else None

    def as_dict(self) -> dict:
        """The run as `compare --json` shows it.

        Returns:
            A JSON-ready dict: run, label, differs, state, model, dataset, epochs, planned_epochs,
            best_accuracy and best_epoch, final_accuracy, final_loss (None without epochs), seconds
            (training time summed over epochs) and the history.
        """
        best, last = self.best, (self.history[-1] if self.history else None)
        return {"run": str(self.path), "label": self.label, "differs": self.differs, "state": self.state,
                "model": self.config.get("model"), "dataset": self.config.get("dataset"),
                "epochs": self.epochs, "planned_epochs": self.config.get("epochs"),
                "best_accuracy": best["test_accuracy"] if best else None, "best_epoch": best["epoch"] if best else None,
                "final_accuracy": last["test_accuracy"] if last else None,
                "final_loss": last["train_loss"] if last else None,
                "seconds": round(sum(h.get("seconds", 0.0) for h in self.history), 3), "history": self.history}


def _task(config: dict) -> tuple:
    return config.get("dataset"), config.get("dataset_sha256")


def _read(path: Path) -> RunSummary:
    kind, _ = rundir.state(path)
    if kind != "run":
        raise FileNotFoundError(f"{path} is not a run directory of this tool ({kind}); compare takes the "
                                "--out folders of `train`")
    config = read_run_config(path)
    try:
        history = read_metrics(path) if (path / rundir.METRICS).is_file() else []
    except (ValueError, KeyError, csv.Error) as exc:
        raise RunFileError(f"{path / rundir.METRICS}: not the metrics this tool writes ({exc})") from None
    if any("epoch" not in h or "test_accuracy" not in h or "train_loss" not in h for h in history):
        raise RunFileError(f"{path / rundir.METRICS}: lacks the epoch, train_loss or test_accuracy column")
    if rundir.holder(path) is not None:
        state = "training"
    else:
        state = "finished" if history and len(history) >= (config.get("epochs") or 0) else "stopped"
    return RunSummary(path=path, config=config, history=history, state=state)


def _settings(config: dict) -> dict:
    """The comparable settings of a run (book values filled in) with the model's config flattened."""
    cfg = TrainConfig.from_dict(config).resolved().to_dict()
    out = {k: cfg.get(k) for k in LABEL_KEYS if k != "model_args"}
    for group in ("model_args", "model_config"):
        out.update({f"{k}": v for k, v in sorted((cfg.get(group) or {}).items()) if k not in _SIZES})
    return out


def _show(key: str, value) -> str:
    if key == "model":
        return str(value)
    if key == "reverse":
        return "reversed input" if value else "input as written"
    if isinstance(value, float):
        return f"{key}={value:g}"
    return f"{key}={value}"


def label_runs(runs: list[RunSummary]) -> None:
    """Give each run the label of its settings that differ from another run's (run directory names
    where nothing, or not enough, differs)."""
    settings = [_settings(r.config) for r in runs]
    keys = [k for k in dict.fromkeys(k for s in settings for k in s)
            if len({repr(s.get(k)) for s in settings}) > 1]
    for run, s in zip(runs, settings):
        run.differs = {k: s.get(k) for k in keys}
        run.label = ", ".join(_show(k, s.get(k)) for k in keys) or run.path.name
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.path.name})" if run.differs else run.path.name


def load_runs(paths) -> list[RunSummary]:
    """Read runs from their directories and label each by the settings that differ between them.

    Args:
        paths: run directories (the `--out` folders of `train`), str or Path.

    Returns:
        A list of RunSummary, in the order of `paths`.

    Raises:
        ValueError: `paths` is empty.
        TaskMismatch: the runs were trained on different datasets (by name or SHA-256).
        FileNotFoundError: a path is not a run directory of this tool.
        RunFileError: a run's config.json or metrics.csv is not what this tool writes.
    """
    runs = [_read(Path(p)) for p in paths]
    if not runs:
        raise ValueError("compare: no runs given")
    tasks = {_task(r.config) for r in runs}
    if len(tasks) > 1:
        listed = "; ".join(f"{r.path} on {r.config.get('dataset')} (sha256 {str(r.config.get('dataset_sha256'))[:12]})"
                           for r in runs)
        raise TaskMismatch(f"runs of different tasks cannot be compared (their accuracies measure different "
                           f"things): {listed}")
    label_runs(runs)
    return runs


def compare_figure(runs: list[RunSummary], title: str | None = None):
    """The runs' learning curves side by side, as the book's Fig. 7-23 and 7-26.

    Args:
        runs: the runs, as `load_runs` returns them.
        title: the figure's title; None: "<dataset>: <N> runs".

    Returns:
        A matplotlib Figure with two panels, test accuracy (%) and training loss per epoch, one line per
        run labelled by its `label` (a run still training is marked so); a notebook shows it inline.
    """
    from ..viz.figures import InlineFigure  # noqa: PLC0415 - matplotlib is heavy: only here

    fig = InlineFigure(figsize=(10, 4), dpi=100)
    acc, loss = fig.subplots(1, 2)
    for run in runs:
        epochs = [h["epoch"] for h in run.history]
        name = run.label + (" (training)" if run.state == "training" else "")
        acc.plot(epochs, [100 * h["test_accuracy"] for h in run.history], marker="o", markersize=3, label=name)
        loss.plot(epochs, [h["train_loss"] for h in run.history], marker="o", markersize=3, label=name)
    acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(-2, 102), title="test accuracy")
    loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
    acc.legend(loc="best", fontsize=8)
    task = runs[0].config.get("dataset") if runs else ""
    fig.suptitle(title if title is not None else f"{task}: {len(runs)} runs")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> Path:
    """Write a figure to an image file in one atomic write, making its folder if needed.

    Args:
        fig: a matplotlib Figure (such as `compare_figure`'s).
        path: the file; its extension (.png, .svg or .pdf) picks the format.

    Returns:
        `path` as a Path.

    Raises:
        ValueError: the extension is not png, svg or pdf.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: cannot tell the image format; use .{', .'.join(FORMATS)}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    serialization.write_bytes(path, buf.getvalue())
    return path


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def table(runs: list[RunSummary]) -> str:
    """The runs' results as a plain-text table for the terminal.

    Args:
        runs: the runs, as `load_runs` returns them.

    Returns:
        One line per run under a header, columns aligned: directory, label, best accuracy (and its
        epoch), final accuracy, epochs done/planned, training time, state.
    """
    rows = [("run", "label", "best accuracy", "final accuracy", "epochs", "training time", "state")]
    for r in runs:
        d = r.as_dict()
        rows.append((str(r.path), r.label, _pct(d["best_accuracy"]) + (f" (epoch {d['best_epoch']})" if r.best else ""),
                     _pct(d["final_accuracy"]), f"{r.epochs}/{d['planned_epochs']}", _minutes(d["seconds"]), r.state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
