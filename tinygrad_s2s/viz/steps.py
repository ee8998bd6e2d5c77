"""Time steps inside one module call: a recurrent module that loops over time without calling a
sub-module per step (an unrolled LSTM: matmul, add, split, sigmoid, ... once per step) leaves one
long run of ops. This finds the longest stretch that repeats one block of ops, each repetition
reading the previous one's output, so the drawing can give every step its own box and fold them.
"""
from __future__ import annotations

MAX_OPS = 1500       # the search is quadratic in a call's ops; longer calls are left as they are
MIN_PERIOD = 2       # a step is at least two ops (one repeated op is a chain, not a recurrence)


def find_steps(sig: list, reads: list) -> tuple[int, int, int] | None:
    """(start, period, count) of the recurrent steps in a call whose ops have the signatures `sig`
    (equal signatures: the same op in the same sub-module) or None. `reads[i]` is the set of positions
    whose outputs op i reads. The steps cover sig[start : start + period * count], count >= 2, and
    step j+1 reads some output of step j for every j."""
    n = len(sig)
    if n < 2 * MIN_PERIOD or n > MAX_OPS:
        return None
    best = None
    for p in range(MIN_PERIOD, n // 2 + 1):
        run = 0
        for i in range(n - p + 1):
            if i < n - p and sig[i] == sig[i + p]:
                run += 1
                continue
            count = run // p + 1
            if count >= 2:
                start = i - run
                cover = p * count
                if (best is None or cover > best[1] * best[2]) and _linked(start, p, count, reads):
                    best = (start, p, count)
            run = 0
    return best


def _linked(start: int, p: int, count: int, reads: list) -> bool:
    for j in range(1, count):
        lo = start + j * p
        prev = range(lo - p, lo)
        if not any(r in prev for i in range(lo, lo + p) for r in reads[i]):
            return False
    return True
