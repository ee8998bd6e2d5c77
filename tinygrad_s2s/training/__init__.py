"""Training runs: `TrainConfig` (every default and key in one place), the `Trainer`, the run directory
(lock, files, checkpoints: `rundir`, `runfiles`), the data fingerprint a resumed run is checked against
(`fingerprint`), evaluation by exact match (`evaluation`), what the Trainer tells experiment
trackers (`loggers`; the TensorBoard and MLflow loggers are in `tinygrad_s2s.tracking`), and
data-parallel training over MPI (`distributed`, imported only under mpiexec)."""
from .config import TrainConfig
from .evaluation import beam_batched, evaluate, exact_match, generate_batched
from .loggers import RunLogger, TrackingError, TrackingWarning
from .runfiles import Run, load_run
from .trainer import Trainer, TrainingDiverged, TrainingInterrupted

__all__ = ["Run", "RunLogger", "TrainConfig", "Trainer", "TrackingError", "TrackingWarning", "TrainingDiverged",
           "TrainingInterrupted", "beam_batched", "evaluate", "exact_match", "generate_batched", "load_run"]
