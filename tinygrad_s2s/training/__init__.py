"""Training runs: `TrainConfig` (every default and key in one place), the `Trainer`, the run directory
(lock, files, checkpoints: `rundir`, `runfiles`), the data fingerprint a resumed run is checked against
(`fingerprint`), evaluation by exact match (`evaluation`), and data-parallel training over MPI
(`distributed`, imported only under mpiexec)."""
from .config import TrainConfig
from .evaluation import beam_batched, evaluate, exact_match, generate_batched
from .runfiles import Run, load_run
from .trainer import Trainer, TrainingDiverged, TrainingInterrupted

__all__ = ["Run", "TrainConfig", "Trainer", "TrainingDiverged", "TrainingInterrupted", "beam_batched", "evaluate",
           "exact_match", "generate_batched", "load_run"]
