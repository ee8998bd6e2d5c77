"""What the Trainer tells experiment trackers, and the rule that tracking never costs a run.

A logger is any object with some of these methods (`RunLogger` has them all, doing nothing):

- `start(trainer)`: `fit` begins (the run directory is locked, config.json and a checkpoint exist);
  `trainer.step` and `trainer.history` say where a resumed run stands;
- `log_step(step, values)`: after each weight update (`loss`, `lr`, `grad_norm` of that step);
- `log_epoch(row, trainer)`: at each epoch's end, after metrics.csv, the learning curve and best.npz
  are written and before last.npz is, so a run killed between the two redoes (and logs again) an
  epoch the tracker already holds: a logger that must hold each epoch once deduplicates on resume;
- `flush()`: before each checkpoint is written: what it covers must be stored by then;
- `close(status)`: `fit` ends: "finished", "interrupted", "diverged" or "failed".

The run's own metrics.csv and learning_curve.png are not a logger: they are part of the run
directory (compare, info and resume read them) and are written whenever there is one; `csv` is the
name the command line gives them.

`Tracking` calls the loggers for the Trainer. A logger that raises (an unreachable server, a locked or
read-only database, a full disk) gets one `TrackingWarning` naming it and the reason, and is not
called again; training goes on and the run directory is untouched. With `strict=True` the failure is
a `TrackingError` instead (the Trainer saves a checkpoint, then raises it).
"""
from __future__ import annotations

import warnings

__all__ = ["RunLogger", "Tracking", "TrackingError", "TrackingWarning"]


class TrackingWarning(UserWarning):
    """A logger failed and was turned off; the run itself goes on."""


class TrackingError(RuntimeError):
    """A logger failed in strict mode (`--log-strict`, `Trainer(..., log_strict=True)`)."""


class RunLogger:
    """Base of the Trainer's loggers: every hook, doing nothing. `name` appears in warnings."""

    name = "logger"

    def start(self, trainer) -> None:
        """`fit` begins (the run directory is locked, config.json and a checkpoint exist).

        Args:
            trainer: the Trainer; `trainer.history`/`trainer.step` tell where a resumed run stands,
                `trainer.run_dir` (None without one), `trainer.config` what it trains.
        """

    def log_step(self, step: int, values: dict) -> None:
        """After each weight update.

        Args:
            step: the update's number, counted from 1 over the whole run (resumes included).
            values: that update's `loss`, `lr` and `grad_norm`, as floats.
        """

    def log_epoch(self, row: dict, trainer) -> None:
        """An epoch ended: metrics.csv, the learning curve and best.npz are written, last.npz not yet.

        Args:
            row: the epoch's metrics.csv row, column name to value (also `trainer.history[-1]`).
            trainer: the Trainer.
        """

    def flush(self) -> None:
        """A checkpoint is about to be written: store what was logged so far."""

    def close(self, status: str) -> None:
        """`fit` ended (also called on a logger turned off after a failure, with "failed").

        Args:
            status: "finished", "interrupted", "diverged" or "failed".
        """


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Tracking:
    """The Trainer's loggers, each called behind the rule above."""

    def __init__(self, loggers=(), strict: bool = False):
        loggers = list(loggers or ())
        for lg in loggers:
            if not any(callable(getattr(lg, m, None)) for m in ("start", "log_step", "log_epoch", "close")):
                raise TypeError(f"Trainer: loggers must have start/log_step/log_epoch/close methods (see "
                                f"tinygrad_s2s.training.loggers.RunLogger), got {type(lg).__name__}")
        self.loggers, self.strict = loggers, strict
        self.failed: dict[str, str] = {}      # logger name -> why it was turned off
        self._open = False

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def _call(self, method: str, *args) -> None:
        for lg in list(self.loggers):
            fn = getattr(lg, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception as exc:        # noqa: BLE001 - any failure of a tracker, never the run's
                name = getattr(lg, "name", type(lg).__name__)
                self.loggers.remove(lg)
                self.failed[name] = _reason(exc)
                if self.strict:
                    raise TrackingError(f"{name} logging failed: {_reason(exc)}") from exc
                warnings.warn(f"{name} logging stopped: {_reason(exc)}; training goes on without it (the run "
                              "directory is unaffected; --log-strict makes this an error)", TrackingWarning,
                              stacklevel=3)
                if method != "close":
                    self._close_quietly(lg)

    @staticmethod
    def _close_quietly(lg) -> None:
        try:
            lg.close("failed")
        except Exception:       # noqa: BLE001 - it already failed; its warning was given
            pass

    def start(self, trainer) -> None:
        self._open = True
        self._call("start", trainer)

    def step(self, step: int, values: dict) -> None:
        if self.loggers:
            self._call("log_step", step, values)

    def epoch(self, row: dict, trainer) -> None:
        self._call("log_epoch", row, trainer)

    def flush(self) -> None:
        if self._open:
            self._call("flush")

    def close(self, status: str) -> None:
        if self._open:
            self._open = False
            self._call("close", status)
