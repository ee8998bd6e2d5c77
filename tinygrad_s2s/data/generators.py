"""Generators for the two built-in tasks of the book's chapter 7, written in its exact line format.

A line is the question left-justified to a fixed width, then `_` and the answer left-justified:
`16+75  _91  ` (addition) or `september 27, 1994           _1994-09-27` (date). The same seed always
gives the same bytes: every random draw comes from one NumPy Generator seeded once.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from pathlib import Path
from typing import NamedTuple
from collections.abc import Callable

import numpy as np

from ..serialization import write_bytes

GENERATION_SEED = 1984
"""Seed the built-in files are generated with (the book's `load_data` seed, for symmetry)."""
EXAMPLES = 50_000

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ADDITION_DIGITS = 3
"""Operands of the addition task have 1..ADDITION_DIGITS digits."""
_LOW = np.array([0] + [10 ** k for k in range(1, ADDITION_DIGITS + 1)])   # 0, 10, 100, 1000
_FIRST_DAY = _dt.date(1970, 1, 1)
_LAST_DAY = _dt.date(2020, 12, 31)

# The written forms people use. Slashes are always month/day/year and dots always day.month.year,
# so every question has exactly one reading; a two-digit year is 19yy for 70-99 and 20yy for 00-20.
DATE_FORMATS = (
    "{MMMM} {d}, {yyyy}",          # September 27, 1994
    "{MMM} {d}, {yyyy}",           # Sep 27, 1994
    "{EEEE}, {MMMM} {d}, {yyyy}",  # Tuesday, September 27, 1994 (the widest: 29 characters)
    "{EEE}, {MMM} {d}, {yyyy}",    # Tue, Sep 27, 1994
    "{MMMM} {d} {yyyy}",           # September 27 1994
    "{d} {MMMM} {yyyy}",           # 27 September 1994
    "{d} {MMM} {yyyy}",            # 27 Sep 1994
    "{dd} {MMM} {yyyy}",           # 07 Sep 1994
    "{d} {MMMM}, {yyyy}",          # 27 September, 1994
    "{EEEE} {d} {MMMM} {yyyy}",    # Tuesday 27 September 1994
    "{M}/{d}/{yy}",                # 9/27/94
    "{MM}/{dd}/{yyyy}",            # 09/27/1994
    "{dd}.{MM}.{yy}",              # 27.09.94
    "{d}.{M}.{yyyy}",              # 27.9.1994
)
DATE_CASES = {"lower": str.lower, "title": lambda s: s, "upper": str.upper}
"""Letter cases of month and weekday names: september / September / SEPTEMBER (drawn in this order)."""
DATE_RANGE = (_FIRST_DAY, _LAST_DAY)
"""First and last day (inclusive) the date task writes."""


def format_date(day: _dt.date, fmt: str, case=lambda s: s) -> str:
    """Write `day` in one of DATE_FORMATS; `case` (e.g. str.upper) applies to month and weekday names."""
    return fmt.format(
        MMMM=case(_MONTHS[day.month - 1]), MMM=case(_MONTHS[day.month - 1][:3]),
        EEEE=case(_WEEKDAYS[day.weekday()]), EEE=case(_WEEKDAYS[day.weekday()][:3]),
        d=day.day, dd=f"{day.day:02d}", M=day.month, MM=f"{day.month:02d}",
        yyyy=f"{day.year:04d}", yy=f"{day.year % 100:02d}")


def _distinct(pairs, n: int, what: str):
    """The first n pairs with distinct questions, in draw order."""
    out, seen = [], set()
    for q, a in pairs:
        if q not in seen:
            seen.add(q)
            out.append((q, a))
            if len(out) == n:
                return out
    raise ValueError(f"could not draw {n} distinct {what} questions")


def operand_range(digits: int) -> tuple[int, int]:
    """The addition operands written with `digits` digits, as range bounds: 1 -> (0, 10), 2 -> (10, 100)."""
    if not 1 <= digits <= ADDITION_DIGITS:
        raise ValueError(f"addition operands have 1..{ADDITION_DIGITS} digits, got {digits}")
    return int(_LOW[digits - 1]), int(_LOW[digits])


def addition_examples(n: int = EXAMPLES, seed: int = GENERATION_SEED) -> list[tuple[str, str]]:
    """n distinct (question, answer) pairs `a+b` -> `a+b` summed, for a, b in 0..999.

    Each operand first draws its digit count uniformly from 1..3, then a number of exactly that many
    digits (0..9, 10..99 or 100..999), as the book's data and the Keras addition example do, so short
    numbers are common (a uniform draw from 0..999 makes 81% of questions 3-digit + 3-digit and
    leaves 1-digit operands 1% of the time). Repeated questions are skipped, so the small buckets
    hold every question they have (all 100 of 1-digit + 1-digit) and the draw continues in the
    large ones.
    """
    if not 0 < n <= 1_000_000:
        raise ValueError(f"addition: n must be in 1..1000000 (the distinct questions there are), got {n}")
    rng = np.random.default_rng(seed)

    def draws():
        while True:   # draw in blocks; duplicates are skipped, so a block may fall short
            count = rng.integers(0, ADDITION_DIGITS, size=(2, n + 1024))
            a, b = rng.integers(_LOW[count], _LOW[count + 1]).tolist()
            yield from ((f"{x}+{y}", str(x + y)) for x, y in zip(a, b))
    return _distinct(draws(), n, "addition")


def date_examples(n: int = EXAMPLES, seed: int = GENERATION_SEED) -> list[tuple[str, str]]:
    """n distinct (question, ISO answer) pairs for days from 1970-01-01 to 2020-12-31."""
    if n <= 0:
        raise ValueError(f"date: n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    span = (_LAST_DAY - _FIRST_DAY).days + 1
    cases = list(DATE_CASES.values())

    def draws():
        while True:
            days, fmts, case_ids = (rng.integers(0, k, size=n + 1024).tolist()
                                    for k in (span, len(DATE_FORMATS), len(cases)))
            for k, f, c in zip(days, fmts, case_ids):
                day = _FIRST_DAY + _dt.timedelta(days=k)
                yield format_date(day, DATE_FORMATS[f], cases[c]), day.isoformat()
    return _distinct(draws(), n, "date")


class Task(NamedTuple):
    """A built-in task: its generator `(n, seed) -> [(question, answer), ...]` and the book's widths."""
    generate: Callable[[int, int], list]
    question_width: int
    answer_width: int      # including the leading `_`
    description: str


BUILTIN_TASKS = {
    "addition": Task(addition_examples, 7, 5, "a+b, each operand 1-3 digits long with equal odds (book section 7.3)"),
    "date": Task(date_examples, 29, 11, "dates 1970-2020 in many written forms -> ISO (book section 8.4)"),
}
"""Built-in task name -> Task."""


def format_lines(examples, question_width: int | None = None, answer_width: int | None = None) -> str:
    """The book's file format: questions and `_answers` each left-justified to a fixed width (by
    default the longest one)."""
    qw = question_width or max(len(q) for q, _ in examples)
    aw = answer_width or max(len(a) for _, a in examples) + 1
    too_long = [q for q, a in examples if len(q) > qw or len(a) + 1 > aw]
    if too_long:
        raise ValueError(f"question or answer wider than {qw}/{aw} characters: {too_long[0]!r}")
    return "".join(f"{q.ljust(qw)}{('_' + a).ljust(aw)}\n" for q, a in examples)


def task_text(name: str, n: int = EXAMPLES, seed: int = GENERATION_SEED) -> str:
    """The text of built-in task `name`'s file, exactly as `write_task` writes it."""
    if name not in BUILTIN_TASKS:
        raise ValueError(f"unknown built-in task '{name}'; built-in tasks: {', '.join(BUILTIN_TASKS)}")
    task = BUILTIN_TASKS[name]
    return format_lines(task.generate(n, seed), task.question_width, task.answer_width)


def write_task(name: str, path, n: int = EXAMPLES, seed: int = GENERATION_SEED) -> Path:
    """Generate built-in task `name` into `path` (atomically: a reader never sees half a file)."""
    write_bytes(path, task_text(name, n, seed).encode("utf-8"))
    return Path(path)


STALE_TASK_FILES = {
    "addition": {"3fb149cc0811f5275dabf11fb79d579f72e1890e8bdcd43e14edf6f1d8fc0188":
                 "a and b uniform in 0..999, so 81% of questions were 3-digit + 3-digit"},
}
"""SHA-256 of the default files earlier versions of a generator wrote -> what was wrong with them.
When a generator changes, the digest of its old default file goes here, so a user's stale file
is recognised and regenerated instead of silently training on the old distribution."""


@functools.cache
def _default_digest(name: str) -> str:
    return hashlib.sha256(task_text(name).encode("utf-8")).hexdigest()


def task_file_status(name: str, data: bytes) -> tuple[str, str]:
    """Whether `data` (the bytes of a built-in task's file) is what this version generates:
    ('current', ''), ('stale', what an older generator did wrong) or ('other', '') for a file this
    tool's generators did not write at their defaults (the user's own, or a hand-edited one)."""
    digest = hashlib.sha256(data).hexdigest()
    if digest == _default_digest(name):
        return "current", ""
    if digest in STALE_TASK_FILES.get(name, {}):
        return "stale", STALE_TASK_FILES[name][digest]
    return "other", ""
