"""Keep freed array memory in the process heap instead of handing it back to the kernel (glibc only).

Every op allocates its result, and a training loop frees and allocates the same sizes again on every
iteration. glibc serves large blocks with mmap (above 128 KiB at first; the threshold adapts up to
32 MiB) and trims the top of the heap whenever more than twice that lies free, so the next iteration
page-faults the same memory in again: 1,500 faults per seq2seq training step and 12,000 per attention
step were measured, a quarter of the step time. Raising both thresholds keeps that memory mapped and
reused. RSS then stays near its peak instead of shrinking between iterations; the peak itself does
not grow.

`tinygrad_s2s` calls `keep_freed_memory()` once at import. The setting is process-wide (it also
applies to other libraries' allocations); set TINYGRAD_S2S_KEEP_FREED_MEMORY=0 to leave the C
allocator alone.
"""
from __future__ import annotations

import ctypes
import sys

from . import envvars

ENV_VAR = "TINYGRAD_S2S_KEEP_FREED_MEMORY"
MMAP_THRESHOLD = 32 << 20      # blocks below this come from the heap (glibc's own upper bound)
TRIM_THRESHOLD = 256 << 20     # free memory kept at the heap top: an attention step frees ~100 MiB
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # mallopt parameter numbers from <malloc.h>


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds. Returns True when they were set; False on other C
    libraries and platforms, where it does nothing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):       # musl and other libcs without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def enabled_by_environment() -> bool:
    return envvars.flag(ENV_VAR, True)
