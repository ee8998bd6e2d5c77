"""Where things are, for tests at any depth under tests/ (and the subprocesses they start)."""
from pathlib import Path

HELPERS = Path(__file__).resolve().parent
REPO_ROOT = HELPERS.parents[1]
