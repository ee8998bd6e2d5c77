"""The tracking backends by the names the command line gives them (`train --log NAME`)."""
from __future__ import annotations

from pathlib import Path

from ..training.rundir import EVENTS_PREFIX, MLFLOW, TENSORBOARD

__all__ = ["LOGGERS", "loggers_for", "used_backends"]

LOGGERS = ("csv", "tensorboard", "mlflow")
"""`--log` choices. `csv` is the run directory's own metrics.csv and learning curve, always written;
the others add a logger."""


def loggers_for(names, *, mlflow_uri: str | None = None) -> list:
    """Logger objects for backend `names` (each at most once; `csv` adds none)."""
    from .mlflow_log import MLflowLogger  # noqa: PLC0415
    from .tensorboard_log import TensorBoardLogger  # noqa: PLC0415
    unknown = sorted(set(names) - set(LOGGERS))
    if unknown:
        raise ValueError(f"unknown tracking backend {', '.join(unknown)}; the backends are {', '.join(LOGGERS)}")
    made = {"tensorboard": TensorBoardLogger, "mlflow": lambda: MLflowLogger(mlflow_uri)}
    return [made[n]() for n in dict.fromkeys(names) if n in made]


def used_backends(run_dir) -> list[str]:
    """The backends a run logged to before, found by their files in `run_dir` (csv always)."""
    p = Path(run_dir)
    events = p / TENSORBOARD
    tb = events.is_dir() and any(f.name.startswith(EVENTS_PREFIX) for f in events.iterdir())
    return ["csv"] + (["tensorboard"] if tb else []) + (["mlflow"] if (p / MLFLOW).is_file() else [])

