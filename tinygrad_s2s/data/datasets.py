"""Datasets in the book's line format: the data root, the loader, the character vocabulary, the
seeded 90/10 split, input reversal and batches.

The data root is `$TINYGRAD_S2S_DATA` if set, else `./datasets` under the current directory. The
built-in tasks ('addition', 'date') are generated there on first use; any other file in the same
format loads by path (`--dataset my/file.txt`) or by name from the data root (`--dataset my`).

Kept whole: one file format's reader, vocabulary and split share its markers and helpers, and the
docstrings of its public names (Args/Returns/Raises, which the reference renders) are a quarter of it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .generators import BUILTIN_TASKS, task_file_status, write_task
from ..serialization import remove_stale_temps

__all__ = [
    "BUILTIN_TASKS", "DATA_ROOT",  # noqa: F822 - DATA_ROOT comes from the module's __getattr__
    "BuiltinDatasetWarning", "Dataset", "DatasetError", "SPLIT_SEED", "Vocab", "batch_indices", "data_root",
    "dataset_path", "encode_questions", "load_dataset", "read_examples", "split_indices",
]

SPLIT_SEED = 1984
"""The book's `load_data` seed: the shuffle before the 90/10 split."""
START = "_"
PAD = " "


def data_root() -> Path:
    """Where datasets live: `$TINYGRAD_S2S_DATA`, else `./datasets` under the current directory.

    Returns:
        Path: read from the environment and the working directory at each call.
    """
    env = os.environ.get("TINYGRAD_S2S_DATA")
    return Path(env) if env else Path.cwd() / "datasets"


def __getattr__(name):
    # DATA_ROOT follows the environment and the working directory at the time it is read
    if name == "DATA_ROOT":
        return data_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DatasetError(ValueError):
    """A dataset file that cannot be read (a ValueError); the message starts with `file:line:`.

    Args:
        path: the file.
        line: the 1-based line number, or None for the whole file.
        reason: what is wrong.
    """

    def __init__(self, path, line: int | None, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")


def unpad(text: str) -> str:
    """A fixed-width field without the padding it ends with (PAD only).

    A full-width space, a tab or a no-break space at the end is the data's own and stays.

    Args:
        text: the field.

    Returns:
        str: `text` without its trailing PAD characters.
    """
    return text.rstrip(PAD)


class OutOfVocabulary(DatasetError):
    """A dataset line holding a character that the given vocabulary (a trained model's) lacks.

    Args:
        path: the file.
        line: the 1-based line number.
        reason: what is wrong (the character and the vocabulary).
    """


EXCERPT = 60
"""The most characters of a line or question an error message quotes (a book line has at most 41)."""


def excerpt(text: str, length: bool = True) -> str:
    """`text` as an error message quotes it: its repr, cut to its first EXCERPT characters (and its
    length, unless the message states it) when longer, so a 100,000-character question is not echoed whole."""
    if len(text) <= EXCERPT:
        return repr(text)
    return f"{text[:EXCERPT]!r}..." + (f" ({len(text):,} characters)" if length else "")


# ---------------------------------------------------------------- vocabulary
def _codes(text: str) -> np.ndarray:
    """Unicode code points of a string as a uint32 array (no per-character Python loop). A lone
    surrogate (an invalid byte of a command-line argument) passes through: no vocabulary holds it."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class Vocab:
    """Characters <-> integer ids. Ids follow code-point order, so they are stable for a file.

    Args:
        chars: the characters (any iterable of single characters, duplicates ignored).

    Raises:
        ValueError: no characters, or an item that is not one character.
    """

    def __init__(self, chars):
        chars = sorted(set(chars))
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad or not chars:
            raise ValueError(f"Vocab: expected a non-empty set of single characters, got "
                             f"{bad[0] if bad else chars!r}")
        self.chars = chars
        self.id_to_char = dict(enumerate(chars))
        self.char_to_id = {c: i for i, c in enumerate(chars)}
        self._sorted_codes = np.array([ord(c) for c in chars], dtype=np.uint32)

    def __len__(self):
        return len(self.chars)

    def __contains__(self, char):
        return char in self.char_to_id

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.chars == other.chars

    def __repr__(self):
        return f"Vocab({''.join(self.chars)!r})"

    def encode(self, text) -> np.ndarray:
        """Characters to ids.

        Args:
            text: a string, or a list of equal-length strings.

        Returns:
            numpy.ndarray: (len,) ids for a string, (n, len) for a list.

        Raises:
            ValueError: strings of different lengths, or a character outside the vocabulary (named, with
                the string it is in).
        """
        if isinstance(text, str):
            return self._encode_flat(text, [text]).reshape(-1)
        texts = list(text)
        widths = {len(s) for s in texts}
        if len(widths) > 1:
            raise ValueError(f"Vocab.encode: strings of different lengths {sorted(widths)}; pad them first")
        width = widths.pop() if widths else 0
        return self._encode_flat("".join(texts), texts).reshape(len(texts), width)

    def _encode_flat(self, joined: str, texts) -> np.ndarray:
        codes = _codes(joined)
        ids = np.searchsorted(self._sorted_codes, codes)
        unknown = self._sorted_codes[np.minimum(ids, len(self.chars) - 1)] != codes
        if unknown.any():
            k = int(np.argmax(unknown))
            char = chr(int(codes[k]))
            offset = 0
            for s in texts:   # only on the error path: find the string holding the bad character
                if k < offset + len(s):
                    raise ValueError(f"character {char!r} in {excerpt(s)} is not in the vocabulary "
                                     f"({''.join(self.chars)!r})")
                offset += len(s)
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """Ids to the string they spell.

        Args:
            ids: any 1-D sequence of ids.

        Returns:
            str: the characters, padding included (see `unpad`).
        """
        return "".join(self.id_to_char[int(i)] for i in np.asarray(ids).reshape(-1))

    def decode_batch(self, ids) -> list[str]:
        """Rows of ids to strings.

        Args:
            ids: (n, len) ids.

        Returns:
            list[str]: n strings.
        """
        table = np.array(self.chars, dtype=object)
        return ["".join(row) for row in table[np.asarray(ids)]]


# ---------------------------------------------------------------- reading files
def read_examples(path) -> tuple[list[str], list[str]]:
    """Parse a dataset file into (questions, answers), answers with their leading `_`.

    Every line must be a question, `_`, and an answer, with the same question width and the same
    answer width on every line (the book's format; see docs/guide/data-format.md).

    Args:
        path: the file.

    Returns:
        tuple[list[str], list[str]]: the questions and the answers, padding kept.

    Raises:
        DatasetError: no such file, a directory, invalid UTF-8, an empty file, or a malformed or
            ragged line (naming the file and the line).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(path, None, "no such file") from None
    except IsADirectoryError:
        raise DatasetError(path, None, "is a directory, not a dataset file") from None
    # lines end in LF or CRLF; a file with CR but no LF (classic Mac OS) can only mean CR-ended lines,
    # as Python's text mode reads it too, where splitting on LF would make the whole file one line
    newline = b"\r" if b"\r" in raw and b"\n" not in raw else b"\n"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(newline) + 1
        raise DatasetError(path, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    lines = text.removeprefix("\ufeff").split(newline.decode())     # a byte-order mark is not part of line 1
    while lines and lines[-1] in ("", "\r"):
        lines.pop()     # the newline that ends the last line, and empty lines an editor left after it
    if not lines:
        raise DatasetError(path, 1, "the file is empty; expected lines like '16+75  _91  '")
    questions, answers = [], []
    qw = aw = None
    for n, line in enumerate(lines, 1):
        line = line.removesuffix("\r")
        k = line.find(START)
        if k < 0:
            what = "an empty line" if not line.strip() else f"no '{START}' between question and answer"
            raise DatasetError(path, n, f"{what}: {excerpt(line)}")
        if k == 0:
            raise DatasetError(path, n, f"empty question before '{START}': {excerpt(line)}")
        q, a = line[:k], line[k:]
        if len(a) < 2:
            raise DatasetError(path, n, f"empty answer after '{START}': {excerpt(line)}")
        if START in a[1:]:
            raise DatasetError(path, n, f"a second '{START}' (column {k + 2 + a[1:].index(START)}): '{START}' marks "
                                        f"where the answer starts and may appear once: {excerpt(line)}")
        if qw is None:
            qw, aw = len(q), len(a)
        elif (len(q), len(a)) != (qw, aw):
            raise DatasetError(path, n, f"ragged width: question {len(q)} and answer {len(a)} characters, "
                                        f"line 1 has {qw} and {aw} (pad every line to the same width): {excerpt(line)}")
        questions.append(q)
        answers.append(a)
    return questions, answers


# ---------------------------------------------------------------- datasets
@dataclass
class Dataset:
    """A loaded dataset (`load_dataset`): id arrays of the 90/10 split, its vocabulary and widths.

    Args:
        name: the dataset's name (a built-in task or the file's).
        path: its file.
        vocab: the Vocab that encoded it.
        x_train: training questions, (n, question_width) ids.
        t_train: training answers, (n, answer_width) ids, each starting with the `_` marker.
        x_test: test questions.
        t_test: test answers.
        question_width: the padded question length.
        answer_width: the padded answer length, marker included.
        reverse: each padded question is reversed (the book's 7.3.2).
        seed: the shuffle's seed before the split.
        train_limit: set by `limit()`: only the first examples are kept.
        test_limit: likewise for the test split.
    """
    name: str
    path: Path
    vocab: Vocab
    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    question_width: int
    answer_width: int
    reverse: bool = False
    seed: int = SPLIT_SEED
    train_limit: int | None = None
    test_limit: int | None = None

    @property
    def start_id(self) -> int:
        """Id of the `_` start marker the decoder begins with."""
        return self.vocab.char_to_id[START]

    @property
    def size(self) -> int:
        """Examples in both splits."""
        return len(self.x_train) + len(self.x_test)

    def limit(self, train: int | None = None, test: int | None = None) -> Dataset:
        """The first `train` training and `test` test examples.

        Args:
            train: how many training examples to keep; None keeps all.
            test: how many test examples to keep; None keeps all.

        Returns:
            Dataset: a new Dataset.
        """
        return replace(self, x_train=self.x_train[:train], t_train=self.t_train[:train],
                       x_test=self.x_test[:test], t_test=self.t_test[:test],
                       train_limit=train if train is not None else self.train_limit,
                       test_limit=test if test is not None else self.test_limit)

    def question_text(self, x) -> list[str]:
        """Rows of question ids as the questions were written (un-reversed, padding stripped).

        Args:
            x: (n, question_width) ids.

        Returns:
            list[str]: n questions.
        """
        rows = self.vocab.decode_batch(x)
        return [unpad(r[::-1] if self.reverse else r) for r in rows]


def dataset_path(name_or_path) -> Path:
    """The file a dataset name or path stands for.

    Args:
        name_or_path: a built-in task (`"addition"`, `"date"`: its file in the data root, generated
            on first use), the name of a file `<name>.txt` in the data root, or a path.

    Returns:
        Path: the dataset file.

    Raises:
        DatasetError: none exists, or the built-in task cannot be generated into the data root.
    """
    s = os.fspath(name_or_path)
    if s in BUILTIN_TASKS:
        path = data_root() / f"{s}.txt"
        if not path.exists():
            remove_stale_temps(path.parent)     # a generation killed half way left its temporary file
            try:
                write_task(s, path)
            except OSError as exc:
                raise DatasetError(path, None, f"cannot generate the built-in task into the data root {path.parent} "
                                               f"({exc.strerror or exc}); set TINYGRAD_S2S_DATA to a directory "
                                               "you can write to") from None
        else:
            _check_builtin_file(s, path)
        return path
    path = Path(s)
    if path.is_file():
        return path
    in_root = data_root() / (s if s.endswith(".txt") else f"{s}.txt")
    if os.sep not in s and "/" not in s and in_root.is_file():
        return in_root
    raise DatasetError(s, None, f"no such dataset: not a built-in task ({', '.join(BUILTIN_TASKS)}), "
                                f"not a file, and no {in_root}")


class BuiltinDatasetWarning(UserWarning):
    """A built-in task's file was regenerated (an older generator wrote it) or is not the generator's."""


def _check_builtin_file(name: str, path: Path) -> None:
    """Regenerate a built-in task's file an older generator wrote; warn about one it did not write."""
    if not path.is_file():
        return      # read_examples reports it
    status, why = task_file_status(name, path.read_bytes())
    if status == "stale":
        write_task(name, path)
        warnings.warn(f"{path} was written by an older '{name}' generator ({why}); regenerated it with "
                      f"this version's", BuiltinDatasetWarning, stacklevel=3)
    elif status == "other":
        warnings.warn(f"{path} is not the built-in '{name}' task this version generates (your own file, or "
                      f"one an older version wrote); using it as it is. Delete it to get the built-in task",
                      BuiltinDatasetWarning, stacklevel=3)


def split_indices(n: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The book's split: a seeded shuffle, then the last tenth is the test set (at least one example).

    Args:
        n: the number of examples.
        seed: the shuffle's seed; default the book's 1984.

    Returns:
        tuple[numpy.ndarray, numpy.ndarray]: the training and the test indices.
    """
    order = np.random.RandomState(seed).permutation(n)   # legacy stream: frozen across NumPy versions
    n_test = n // 10 if n >= 10 else min(1, n - 1)
    return order[:n - n_test], order[n - n_test:]


def load_dataset(name_or_path, reverse: bool = False, seed: int = SPLIT_SEED,
                 vocab: Vocab | None = None) -> Dataset:
    """Load a dataset (generating a built-in task on first use) and split it 90/10.

    Args:
        name_or_path: a built-in task, a file name in the data root or a path (see `dataset_path`).
        reverse: reverse each padded question (the book's 7.3.2).
        seed: the split's shuffle seed; default the book's 1984.
        vocab: encode with this vocabulary (a trained model's) instead of the file's own characters.

    Returns:
        Dataset: the id arrays of both splits, the vocabulary and the widths.

    Raises:
        DatasetError: a missing or malformed file, or fewer than 2 examples.
        OutOfVocabulary: with `vocab`, a character it lacks.
    """
    path = dataset_path(name_or_path)
    questions, answers = read_examples(path)
    if len(questions) < 2:
        raise DatasetError(path, None, f"{len(questions)} example; at least 2 are needed for a train/test split")
    qw, aw = len(questions[0]), len(answers[0])
    joined = "".join(questions) + "".join(answers)
    if vocab is None:
        vocab = Vocab(set(joined))
    try:
        x = vocab.encode(questions)
        t = vocab.encode(answers)
    except ValueError:
        known = set(vocab.chars)
        n = next(i for i, (q, a) in enumerate(zip(questions, answers)) if not set(q + a) <= known)
        bad = sorted(set(questions[n] + answers[n]) - known)
        raise OutOfVocabulary(path, n + 1, f"does not fit the model's vocabulary: character {bad[0]!r} is not in "
                                           f"{''.join(vocab.chars)!r}: {excerpt(questions[n] + answers[n])}") from None
    if reverse:
        x = np.ascontiguousarray(x[:, ::-1])
    train, test = split_indices(len(x), seed)
    name = str(name_or_path) if str(name_or_path) in BUILTIN_TASKS else path.stem
    return Dataset(name=name, path=path, vocab=vocab, x_train=x[train], t_train=t[train],
                   x_test=x[test], t_test=t[test], question_width=qw, answer_width=aw, reverse=reverse,
                   seed=seed)


def batch_indices(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's mini-batches: a fresh permutation of `range(n)` cut into `batch_size` pieces.

    The last batch may be smaller, so no example is skipped.

    Args:
        n: the number of examples.
        batch_size: examples per batch, > 0.
        rng: the generator to draw the permutation from (`tg.generator()`).

    Returns:
        list[numpy.ndarray]: the batches' indices.

    Raises:
        ValueError: `batch_size` is not positive.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _check_text(q: str) -> None:
    """ValueError for a question holding a lone surrogate: Python passes a command-line argument's bytes
    that are not UTF-8 as the surrogates U+DC80..U+DCFF (PEP 383), and no text holds them."""
    try:
        q.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(q[exc.start])
        what = (f"byte 0x{code - 0xDC00:02x} is not UTF-8" if 0xDC80 <= code <= 0xDCFF
                else f"U+{code:04X} is a lone surrogate")
        raise ValueError(f"question {excerpt(q)} is not valid text: at character {exc.start + 1}, {what}") from None


def encode_questions(questions, vocab: Vocab, width: int, reverse: bool = False) -> np.ndarray:
    """Typed questions as model input: padded to the training width (and reversed as in training).

    Args:
        questions: a list of strings.
        vocab: the model's Vocab.
        width: the question width the model was trained on.
        reverse: reverse each padded question, as the run did.

    Returns:
        numpy.ndarray: (n, width) ids.

    Raises:
        ValueError: an empty question, one too long, one holding the start marker or a character outside
            the vocabulary, or one that is not valid text (invalid UTF-8 on the command line).
    """
    padded = []
    for q in questions:
        _check_text(q)
        if not q.strip(PAD):
            raise ValueError(f"empty question {excerpt(q)}: nothing to answer")
        if START in q:     # the vocabulary has it, as the answers' start marker: no question holds it
            raise ValueError(f"question {excerpt(q)} holds '{START}', the answers' start marker, which no "
                             "training question held")
        vocab.encode(q)     # names an unknown character in the question as typed, before padding
        if len(q) > width:
            raise ValueError(f"question {excerpt(q, length=False)} is {len(q):,} characters; the model was trained on at most "
                             f"{width}")
        if len(q) < width and PAD not in vocab:
            raise ValueError(f"question {excerpt(q)} must be exactly {width} characters: the vocabulary has no "
                             "space to pad it with")
        padded.append(q.ljust(width, PAD))
    x = vocab.encode(padded) if padded else np.zeros((0, width), dtype=np.int64)
    return np.ascontiguousarray(x[:, ::-1]) if reverse else x
