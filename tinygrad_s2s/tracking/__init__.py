"""Runs side by side and in the tools of the field: `compare` (several runs' curves in one figure, a
table of their results) and the Trainer's TensorBoard and MLflow loggers.

Importing this package is cheap: tensorboard and mlflow (the `tracking` extra) load when a logger
starts, matplotlib when a figure is drawn.
"""
from .backends import LOGGERS, loggers_for, used_backends
from .compare import RunSummary, TaskMismatch, compare_figure, load_runs, save_figure, table
from .mlflow_log import MLflowLogger
from .tensorboard_log import TensorBoardLogger

__all__ = ["LOGGERS", "MLflowLogger", "RunSummary", "TaskMismatch", "TensorBoardLogger", "compare_figure",
           "load_runs", "loggers_for", "save_figure", "table", "used_backends"]
