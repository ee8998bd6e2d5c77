"""The allocator setting made at import: freed array memory is reused without page faults."""
import os
import subprocess
import sys

import pytest

from tinygrad_s2s.backend import allocator

# Four 20 MiB arrays made and freed ten times: with glibc's defaults the heap top is trimmed after
# every round and faulted in again on the next (~20,000 minor faults); with the setting, none.
SCRIPT = """
import resource
import numpy as np
import tinygrad_s2s

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def iteration():
    arrays = [np.ones(5 << 20, np.float32) for _ in range(4)]
    del arrays

iteration()
before = faults()
for _ in range(10):
    iteration()
print(faults() - before)
"""

glibc_only = pytest.mark.skipif(not allocator.keep_freed_memory(), reason="needs glibc's mallopt")


def minor_faults(env_value: str | None) -> int:
    env = dict(os.environ)
    env.pop(allocator.ENV_VAR, None)
    if env_value is not None:
        env[allocator.ENV_VAR] = env_value
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.machine           # counts this process's page faults
@glibc_only
def test_freed_memory_is_reused_without_page_faults():
    tuned, default = minor_faults(None), minor_faults("0")
    assert default > 5000, f"glibc's defaults no longer trim this pattern ({default} faults): update the test"
    assert tuned < default / 20, (tuned, default)


@pytest.mark.parametrize("value, expected", [(None, True), ("1", True), ("0", False), ("off", False),
                                             ("False", False)])
def test_environment_switch(monkeypatch, value, expected):
    monkeypatch.delenv(allocator.ENV_VAR, raising=False)
    if value is not None:
        monkeypatch.setenv(allocator.ENV_VAR, value)
    assert allocator.enabled_by_environment() is expected
