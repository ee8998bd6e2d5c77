"""Time steps inside one module call: a recurrent module that loops over time without calling a
sub-module per step (an unrolled LSTM: matmul, add, split, sigmoid, ... once per step) leaves one
long run of ops. This finds the longest stretch that repeats one block of ops as time steps do, so
the drawing can give every step its own box and fold them.

Repeating op names is not enough: the two branches of one LSTMCell call (x @ Wx + b, then + h @ Wh)
and the two directions of a bidirectional LSTM repeat theirs too. A step over time is a copy of the
same computation: every step wires its ops to each other the same way, reads the same parameters at
the same places, and feeds the next step the same way (step j+1 reads what step j made, where step 1
reads a start state from outside).
"""
from __future__ import annotations

MAX_OPS = 1500       # the search is quadratic in a call's ops; longer calls are left as they are
MIN_PERIOD = 2       # a step is at least two ops (one repeated op is a chain, not a recurrence)
OUTSIDE = ("outside",)


def find_steps(sig: list, reads: list) -> tuple[int, int, int] | None:
    """(start, period, count) of the recurrent steps in a call whose ops have the signatures `sig`
    (equal signatures: the same op in the same sub-module) or None. `reads[i]` lists, per argument
    of op i in order, where it comes from: ("op", position, output index) for an op of this call,
    ("param", key) for a parameter, None for anything else. The steps cover
    sig[start : start + period * count], count >= 2, are copies of one another (see the module
    docstring), and step j+1 reads some output of step j for every j."""
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
                if (best is None or cover > best[1] * best[2]) and _recurrent(start, p, count, reads):
                    best = (start, p, count)
            run = 0
    return best


def _wiring(lo: int, p: int, reads: list, first: bool) -> list:
    """How the ops of the step at lo..lo+p read their arguments, relative to the step: ("in", offset,
    output) inside it, ("prev", offset, output) from the step before, a parameter by its key, else
    outside. In the first step the previous step's place is the start state, from outside."""
    out = []
    for i in range(lo, lo + p):
        row = []
        for src in reads[i]:
            if src is not None and src[0] == "op" and lo <= src[1] < lo + p:
                row.append(("in", src[1] - lo, src[2]))
            elif src is not None and src[0] == "op" and lo - p <= src[1] < lo and not first:
                row.append(("prev", src[1] - lo + p, src[2]))
            elif src is not None and src[0] == "param":
                row.append(src)
            else:
                row.append(OUTSIDE)
        out.append(tuple(row))
    return out


def _recurrent(start: int, p: int, count: int, reads: list) -> bool:
    second = _wiring(start + p, p, reads, first=False)
    if not any(a[0] == "prev" for row in second for a in row):
        return False                                  # no data from one step to the next
    for j in range(2, count):
        if _wiring(start + j * p, p, reads, first=False) != second:
            return False
    first = _wiring(start, p, reads, first=True)
    expected = [tuple(OUTSIDE if a[0] == "prev" else a for a in row) for row in second]
    # a start state may be a parameter (a learnt h0) where later steps read the previous step
    return all(len(f) == len(e) and all(x == y or (y == OUTSIDE and x[0] == "param") for x, y in zip(f, e))
               for f, e in zip(first, expected))
