import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# tests/helpers/ holds modules tests import by name (tiny_model, small_models, browser...); subprocesses
# put the same folder on their path (helpers/paths.py says where)
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

# A suite started in the background by a script (`pytest ... &`) inherits SIGINT ignored, and so would
# every process the Ctrl-C tests start: they send SIGINT as a terminal would, and would wait in vain.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Profiles chosen by HYPOTHESIS_PROFILE; CI (CI=true) gets the fixed-budget 'ci' profile.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts with float32 defaults and a seeded generator."""
    import tinygrad_s2s as tg
    tg.set_default_dtype(np.float32)
    tg.manual_seed(0)
    yield
    tg.set_default_dtype(np.float32)
