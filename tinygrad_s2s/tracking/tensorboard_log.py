"""`TensorBoardLogger`: a run's curves as TensorBoard event files, in `RUN/tensorboard/`.

Written with the `tensorboard` package's own record writer and protocol buffers (the `tracking` extra;
no TensorFlow, no PyTorch), imported when a run starts, never when this module is. Records are written
in the training thread, not in the background thread of TensorBoard's EventFileWriter, so a failure
(a full disk) is an exception the Trainer turns into its one warning, not a traceback from a thread. One global step
axis, the run's update count: `step/loss` after every update, and at each epoch's end
`epoch/<column>` for the metrics.csv columns (test accuracy, training loss, learning rate, mean
gradient norm, time...) at the step that ended the epoch; the run's config.json as the text
`config` at the step where logging (re)started.

Resuming, each process appends a new event file to the same folder. A run killed after its last
checkpoint (step S) had logged steps past S, which the resumed run takes again. So a resume first
rewrites each earlier event file without its events past step S (one atomic write per file, only
where there are such events), and its new file starts with TensorBoard's restart marker (a SessionLog
START at step S + 1, as TensorFlow's and tensorboardX's `purge_step` write, which TensorBoard's Python
reader honours too): every reader sees each step once. The writer is flushed before each checkpoint
is written, so nothing a checkpoint covers is still in a buffer when the process dies. A run that turns TensorBoard on at a resume gets its
earlier epochs from the checkpoint's history (their per-step losses were never recorded).

Event files are appended record by record (TensorBoard's format, not one atomic write): a kill in the
middle of one leaves a truncated last record, which TensorBoard's reader skips.
"""
from __future__ import annotations

import itertools
import json
import os
import socket
import time
from pathlib import Path

from .. import serialization
from ..training.loggers import RunLogger
from .extra import require
from ..training.rundir import EVENTS_PREFIX, TENSORBOARD
from ..training.runfiles import METRIC_COLUMNS

__all__ = ["TensorBoardLogger"]

_EPOCH_TAGS = tuple(c for c in METRIC_COLUMNS if c != "step")
_FILES = itertools.count()      # event files made by this process (two in one second get distinct names)


def _drop_after(path: Path, step: int, RecordWriter) -> None:  # noqa: N803 - a class, passed in
    """Rewrite the event file `path` without its events past `step` (those a killed run logged after its
    last checkpoint, which the resumed run logs again); untouched when it has none."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader  # noqa: PLC0415
    event_pb2 = _protos()[0]
    records = list(RawEventFileLoader(str(path)).Load())    # a truncated last record is left out
    keep = [r for r in records if event_pb2.Event.FromString(r).step <= step]
    if len(keep) == len(records):
        return

    def write(f):
        writer = RecordWriter(f)
        for r in keep:
            writer.write(r)
    serialization.atomic_write(path, write)


def _protos():
    from tensorboard.compat.proto import (event_pb2, summary_pb2, tensor_pb2,  # noqa: PLC0415 - the extra
                                          tensor_shape_pb2, types_pb2)
    return event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2


class TensorBoardLogger(RunLogger):
    """Log a run to TensorBoard event files.

    Args:
        log_dir: the folder of the event files; None: the run directory's `tensorboard/`.
        flush_secs: how often buffered records are written out during an epoch (they also are at each
            epoch's end and before each checkpoint).
    """

    name = "tensorboard"

    def __init__(self, log_dir=None, flush_secs: float = 30.0):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.flush_secs = flush_secs
        self._writer = None
        self._flushed = 0.0
        self.path: Path | None = None      # the event file written to

    def start(self, trainer) -> None:
        """Open a new event file; on a resume, first drop earlier files' events past `trainer.step`.

        Args:
            trainer: the Trainer; its config is logged as text, and where the folder had no event
                file yet, its history's epochs.

        Raises:
            ValueError: neither `log_dir` nor a run directory is given.
            FileExistsError: a symbolic link or a file is where the event files' folder goes.
        """
        RecordWriter = require("tensorboard.summary.writer.record_writer", self.name).RecordWriter
        folder = self.log_dir if self.log_dir is not None else (
            Path(trainer.run_dir) / TENSORBOARD if trainer.run_dir is not None else None)
        if folder is None:
            raise ValueError("TensorBoardLogger needs a run directory (Trainer(run_dir=...)) or log_dir")
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise FileExistsError(f"{folder} is in the way: a symbolic link or a file where the event files' "
                                  "folder goes (remove it)")
        folder.mkdir(parents=True, exist_ok=True)
        serialization.remove_stale_temps(folder)      # a rewrite cut short (its name holds "tfevents" too)
        earlier = sorted(f for f in folder.iterdir() if f.name.startswith(EVENTS_PREFIX) and f.is_file()
                         and not f.is_symlink())
        fresh = not earlier
        for f in earlier:
            _drop_after(f, trainer.step, RecordWriter)
        self.path = folder / (f"{EVENTS_PREFIX}{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}."
                              f"{next(_FILES)}")
        self._writer = RecordWriter(open(self.path, "xb"))     # a new file, never through a planted link
        event_pb2 = _protos()[0]
        self._add(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        if fresh:           # logging turned on at a resume: the epochs before it, from the history
            for row in trainer.history:
                self._epoch_scalars(row)
        else:               # resumed: steps after the checkpoint that the last process logged are redone
            event_pb2 = _protos()[0]
            self._add(event_pb2.Event(wall_time=time.time(), step=trainer.step + 1, session_log=(
                event_pb2.SessionLog(status=event_pb2.SessionLog.START))))
        self._text("config", "```json\n" + json.dumps(trainer.config.to_dict(), indent=2, sort_keys=True)
                   + "\n```", trainer.step)
        self.flush()

    def _add(self, event) -> None:
        self._writer.write(event.SerializeToString())

    def _scalars(self, step: int, values: dict) -> None:
        event_pb2, summary_pb2 = _protos()[:2]
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=float(v))
                                             for t, v in values.items()])
        self._add(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _epoch_scalars(self, row: dict) -> None:
        self._scalars(row["step"], {f"epoch/{k}": row[k] for k in _EPOCH_TAGS if row.get(k) is not None})

    def _text(self, tag: str, text: str, step: int) -> None:
        event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2 = _protos()
        meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode()],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto())
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])
        self._add(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def log_step(self, step: int, values: dict) -> None:
        """Record `step/loss` (flushed when `flush_secs` have passed).

        Args:
            step: the update's number over the run (the global step axis).
            values: the update's values; its `loss` is recorded.
        """
        self._scalars(step, {"step/loss": values["loss"]})
        if time.monotonic() - self._flushed >= self.flush_secs:
            self.flush()

    def log_epoch(self, row: dict, trainer) -> None:
        """Record `epoch/<column>` for the row's columns at the step that ended the epoch, and flush.

        Args:
            row: the epoch's metrics.csv row.
            trainer: the Trainer (unused).
        """
        self._epoch_scalars(row)
        self.flush()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._flushed = time.monotonic()

    def close(self, status: str) -> None:
        """Flush and close the event file.

        Args:
            status: how `fit` ended (unused).
        """
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
