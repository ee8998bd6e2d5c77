"""The tracking backends by the names the command line gives them (`train --log NAME`)."""
from __future__ import annotations

from pathlib import Path

from ..training.rundir import EVENTS_PREFIX, MLFLOW, TENSORBOARD

__all__ = ["LOGGERS", "loggers_for", "used_backends"]

LOGGERS = ("csv", "tensorboard", "mlflow")
"""`--log` choices. `csv` is the run directory's own metrics.csv and learning curve, always written;
the others add a logger."""


def loggers_for(names, *, mlflow_uri: str | None = None) -> list:
    """The Trainer's loggers for the `--log` backends `names`.

    Args:
        names: backend names from `LOGGERS` (repeats are made once).
        mlflow_uri: the MLflow tracking URI; None: the store a resumed run used, else the default
            SQLite database beside the run directory.

    Returns:
        A list of new loggers in the order of `names`: a TensorBoardLogger, an MLflowLogger; `csv`
        adds none (the run directory's own files are always written).

    Raises:
        ValueError: a name is not one of `LOGGERS`.
    """
    from .mlflow_log import MLflowLogger  # noqa: PLC0415
    from .tensorboard_log import TensorBoardLogger  # noqa: PLC0415
    unknown = sorted(set(names) - set(LOGGERS))
    if unknown:
        raise ValueError(f"unknown tracking backend {', '.join(unknown)}; the backends are {', '.join(LOGGERS)}")
    made = {"tensorboard": TensorBoardLogger, "mlflow": lambda: MLflowLogger(mlflow_uri)}
    return [made[n]() for n in dict.fromkeys(names) if n in made]


def used_backends(run_dir) -> list[str]:
    """The backends a run logged to before, found by their files in its directory.

    Args:
        run_dir: the run directory (str or Path).

    Returns:
        ["csv"], then "tensorboard" where `tensorboard/` holds an event file and "mlflow" where
        mlflow.json exists.
    """
    p = Path(run_dir)
    events = p / TENSORBOARD
    tb = events.is_dir() and any(f.name.startswith(EVENTS_PREFIX) for f in events.iterdir())
    return ["csv"] + (["tensorboard"] if tb else []) + (["mlflow"] if (p / MLFLOW).is_file() else [])

