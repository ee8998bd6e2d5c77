"""Datasets: generation (determinism, the book's line format, correctness of every answer), the
loader's errors (file and line), the vocabulary, the split, reversal, padding and batches."""
import datetime as dt
import re
import warnings

import numpy as np
import pytest

from tinygrad_s2s.data import datasets as data, generators as datagen
from tinygrad_s2s.data import DatasetError, Vocab, load_dataset, read_examples


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty data root for the test."""
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def builtin_files(tmp_path_factory):
    """Both built-in files generated once with the defaults (50,000 lines each)."""
    d = tmp_path_factory.mktemp("builtin")
    return {name: datagen.write_task(name, d / f"{name}.txt") for name in datagen.BUILTIN_TASKS}


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------- data root
def test_data_root_follows_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(tmp_path / "elsewhere"))
    assert data.data_root() == tmp_path / "elsewhere"
    assert data.DATA_ROOT == tmp_path / "elsewhere"
    monkeypatch.delenv("TINYGRAD_S2S_DATA")
    monkeypatch.chdir(tmp_path)
    assert data.DATA_ROOT == tmp_path / "datasets"


# ---------------------------------------------------------------- generation
@pytest.mark.parametrize("name", ["addition", "date"])
def test_generation_is_deterministic_per_seed(tmp_path, name):
    a = datagen.write_task(name, tmp_path / "a.txt", n=3000, seed=7).read_bytes()
    b = datagen.write_task(name, tmp_path / "b.txt", n=3000, seed=7).read_bytes()
    c = datagen.write_task(name, tmp_path / "c.txt", n=3000, seed=8).read_bytes()
    assert a == b
    assert a != c


def test_first_use_generates_the_default_files_deterministically(root, builtin_files):
    for name, reference in builtin_files.items():
        ds = load_dataset(name)
        assert ds.path == root / f"{name}.txt"
        assert ds.path.read_bytes() == reference.read_bytes()   # same seed, same bytes, any directory
        assert ds.size == 50_000
        assert len(ds.x_train) == 45_000 and len(ds.x_test) == 5_000


def test_addition_file_format_and_answers(builtin_files):
    lines = builtin_files["addition"].read_text().split("\n")
    assert lines[-1] == "" and len(lines) == 50_001
    lines = lines[:-1]
    pattern = re.compile(r"^(\d{1,3})\+(\d{1,3}) *_(\d{1,4}) *$")
    questions = set()
    for line in lines:
        assert len(line) == 12 and line[7] == "_"        # question width 7, answer width 5 with '_'
        m = pattern.match(line)
        assert m, line
        a, b, s = map(int, m.groups())
        assert a + b == s and 0 <= a <= 999 and 0 <= b <= 999
        assert line[:7] == f"{a}+{b}".ljust(7) and line[7:] == f"_{s}".ljust(5)
        questions.add(line[:7])
    assert len(questions) == 50_000                      # distinct questions


def test_addition_digit_counts_are_drawn_uniformly_then_the_digits():
    """Each operand's digit count is uniform in 1..3: before duplicates are dropped every
    (digits of a, digits of b) pair is a ninth of the draws; the small buckets then hold all their
    questions (100 of 1+1 digits, 900 of 1+2) and short operands are common."""
    examples = datagen.addition_examples(50_000)
    buckets = {}
    for q, _ in examples:
        a, b = q.split("+")
        assert a == str(int(a)) and b == str(int(b))         # no leading zeros
        buckets[len(a), len(b)] = buckets.get((len(a), len(b)), 0) + 1
    assert buckets[1, 1] == 100 and buckets[1, 2] == buckets[2, 1] == 900
    for big in [(1, 3), (3, 1), (2, 2), (2, 3), (3, 2), (3, 3)]:
        assert 5_000 < buckets[big] < 12_000, buckets
    one_digit = sum(n for (da, db), n in buckets.items() if 1 in (da, db))
    assert one_digit / 50_000 > 0.25          # a uniform draw from 0..999 gave about 2%


def test_operand_range_per_digit_count():
    assert [datagen.operand_range(k) for k in (1, 2, 3)] == [(0, 10), (10, 100), (100, 1000)]
    with pytest.raises(ValueError, match="1..3 digits"):
        datagen.operand_range(4)


def test_a_stale_generated_addition_file_is_regenerated_with_a_warning(root, builtin_files):
    """A datasets/addition.txt an older version generated (a, b uniform in 0..999) must not silently
    keep the old distribution: it is recognised by its digest, replaced, and the user is told."""
    rng = np.random.default_rng(datagen.GENERATION_SEED)    # the old generator, verbatim
    old, seen = [], set()
    while len(old) < 50_000:
        a, b = rng.integers(0, 1000, size=(2, 50_000 + 1024))
        for x, y in zip(a.tolist(), b.tolist()):
            if f"{x}+{y}" not in seen and len(old) < 50_000:
                seen.add(f"{x}+{y}")
                old.append((f"{x}+{y}", str(x + y)))
    root.mkdir()
    write(root / "addition.txt", datagen.format_lines(old, 7, 5))
    assert datagen.task_file_status("addition", (root / "addition.txt").read_bytes())[0] == "stale"
    with pytest.warns(data.BuiltinDatasetWarning, match=r"older 'addition' generator .*uniform in 0..999"):
        ds = load_dataset("addition")
    assert ds.path.read_bytes() == builtin_files["addition"].read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the current file: no warning
        load_dataset("addition")


def test_another_file_under_a_builtin_name_is_kept_but_reported(root):
    root.mkdir()
    mine = write(root / "addition.txt", "1+1  _2  \n1+2  _3  \n1+3  _4  \n").read_bytes()
    with pytest.warns(data.BuiltinDatasetWarning, match=r"not the built-in 'addition' task.*Delete it"):
        ds = load_dataset("addition")
    assert ds.size == 3 and (root / "addition.txt").read_bytes() == mine    # never overwritten


_PARSE = ["%B %d, %Y", "%b %d, %Y", "%A, %B %d, %Y", "%a, %b %d, %Y", "%B %d %Y", "%d %B %Y", "%d %b %Y",
          "%d %B, %Y", "%A %d %B %Y", "%m/%d/%y", "%m/%d/%Y", "%d.%m.%y", "%d.%m.%Y"]
_DAYS = [d.lower() for d in ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]]


def _parse_date(q):
    for fmt in _PARSE:
        try:
            return dt.datetime.strptime(q, fmt).date()
        except ValueError:
            pass
    raise AssertionError(f"no known format reads {q!r}")


def test_date_file_format_and_answers(builtin_files):
    questions, answers = read_examples(builtin_files["date"])
    assert len(questions) == 50_000 and len(set(questions)) == 50_000
    assert {len(q) for q in questions} == {29} and {len(a) for a in answers} == {11}
    assert max(len(q.rstrip()) for q in questions) == 29   # the widest form fills the width
    styles = set()
    for q, a in zip(questions[:3000], answers[:3000]):
        day = _parse_date(q.rstrip())
        assert a == "_" + day.isoformat()
        assert dt.date(1970, 1, 1) <= day <= dt.date(2020, 12, 31)
        words = re.findall(r"[A-Za-z]+", q)
        for w in words:
            if w.lower() in _DAYS or w.lower() in [d[:3] for d in _DAYS]:
                assert _DAYS[day.weekday()].startswith(w.lower()), q   # the weekday fits the date
        styles.update("upper" if w.isupper() else "lower" if w.islower() else "title" for w in words)
        styles.add("numeric" if not words else "words")
    assert styles == {"upper", "lower", "title", "numeric", "words"}


def test_book_examples_are_among_the_generated_forms():
    day = dt.date(1994, 9, 27)
    forms = {datagen.format_date(day, f, c) for f in datagen.DATE_FORMATS for c in (str.lower, str, str.upper)}
    for q in ["september 27, 1994", "Sep 27, 1994", "SEPTEMBER 27, 1994", "Tuesday, September 27, 1994",
              "TUESDAY, SEPTEMBER 27, 1994", "9/27/94"]:
        assert q in forms


# ---------------------------------------------------------------- loader errors
@pytest.mark.parametrize("text, line, words", [
    ("1+1  _2  \n1+2  _3  \n1+3   3  \n", 3, "no '_'"),
    ("1+1  _2  \n12+3 _15 \n1+3 _4  \n", 3, "ragged width"),
    ("1+1  _2  \n12+3 _15 \n1+3  _4   \n", 3, "ragged width"),
    ("1+1  _2  \n\n1+3  _4  \n", 2, "empty line"),
    ("1+1  _2  \n_3  \n", 2, "empty question"),
    ("1+1  _2  \n1+3  _\n", 2, "empty answer"),
    ("", 1, "empty"),
    ("\n", 1, "the file is empty"),
    ("1+1  _2  \n1+2  _3_ \n", 2, "a second '_' (column 8): '_' marks where the answer starts and may appear once"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert f"{path}:{line}:" in str(err.value) and words in str(err.value)
    assert err.value.line == line


@pytest.mark.parametrize("bad", ["1+3 _4   ", "1+3  _4    ", "1+3\t_4   ", "   1 _2   "])
def test_errors_quote_the_line_exactly_through_the_command(tmp_path, capsys, bad):
    """In a fixed-width format the spaces are what is wrong: the message shows the line's repr, and
    the command prints it with every space kept."""
    from tinygrad_s2s.cli import main
    path = write(tmp_path / "bad.txt", f"1+1  _2  \n{bad}\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert str(err.value).endswith(repr(bad))
    assert main(["train", "seq2seq", "--dataset", str(path), "--out", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().err
    assert out.count("\n") == 1 and out.rstrip("\n").endswith(f"{path}:2: " + str(err.value).split(":2: ", 1)[1])
    assert not (tmp_path / "run").exists()


def test_non_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path / "latin1.txt", "1+1  _2  \n1+2  _3  \ncafé _4  \n".encode("latin-1"))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(path))}:3: not valid UTF-8"):
        load_dataset(path)


def test_missing_dataset_is_a_clear_error(root):
    with pytest.raises(DatasetError, match="no such dataset: not a built-in task"):
        load_dataset("no-such-task")
    with pytest.raises(DatasetError, match=r"not a file, and no .*[/\\]no-such-task\.txt$"):   # not .txt.txt
        load_dataset("no-such-task.txt")
    with pytest.raises(DatasetError, match="at least 2"):
        load_dataset(write(root.parent / "one.txt", "1+1  _2  \n"))


def test_empty_lines_an_editor_leaves_at_the_end_are_not_examples(tmp_path):
    for tail in ("\n\n", "\n\n\n", "\r\n\r\n"):
        ds = load_dataset(write(tmp_path / "tail.txt", "1+1  _2  \n1+2  _3  \n1+3  _4  " + tail))
        assert ds.size == 3, tail


def test_a_character_the_models_vocabulary_lacks_names_the_line(tmp_path):
    from tinygrad_s2s.data import OutOfVocabulary, Vocab
    path = write(tmp_path / "oov.txt", "1+1  _2  \n1+2  _3  \n1+K  _4  \n")
    with pytest.raises(OutOfVocabulary, match=re.escape(f"{path}:3: does not fit the model's vocabulary: "
                                                        "character 'K' is not in")):
        load_dataset(path, vocab=Vocab("0123456789+ _"))


# ---------------------------------------------------------------- custom files
BOOK_LINES = "16+75  _91  \n52+607 _659 \n75+22  _97  \n63+22  _85  \n795+3  _798 \n706+796_1502\n" \
             "8+4    _12  \n84+317 _401 \n9+3    _12  \n6+2    _8   \n18+8   _26  \n85+52  _137 \n"


def test_book_format_file_loads_by_path_and_by_name(root, tmp_path):
    root.mkdir(parents=True)
    path = write(root / "mine.txt", BOOK_LINES)
    by_name, by_path = load_dataset("mine"), load_dataset(path)
    assert by_name.name == by_path.name == "mine"
    assert by_name.question_width == 7 and by_name.answer_width == 5
    assert np.array_equal(by_name.x_train, by_path.x_train)
    assert len(by_name.x_train) == 11 and len(by_name.x_test) == 1      # n - n // 10 ... at least one
    questions = sorted(q.strip() for q in by_name.question_text(np.concatenate([by_name.x_train,
                                                                                 by_name.x_test])))
    assert questions == sorted(line[:7].strip() for line in BOOK_LINES.splitlines())


def test_crlf_line_endings_are_accepted(tmp_path):
    ds = load_dataset(write(tmp_path / "crlf.txt", BOOK_LINES.replace("\n", "\r\n")))
    assert ds.answer_width == 5 and "\r" not in ds.vocab


def test_cr_only_line_endings_are_lines(tmp_path):
    """Seen: a file with CR-only line endings (classic Mac OS) was one line, and its error quoted the
    whole file. With no LF in it, CR ends its lines, as Python's text mode reads it."""
    lf = load_dataset(write(tmp_path / "lf.txt", BOOK_LINES))
    cr = load_dataset(write(tmp_path / "cr.txt", BOOK_LINES.replace("\n", "\r")))
    assert cr.size == lf.size == 12 and "\r" not in cr.vocab and np.array_equal(cr.x_train, lf.x_train)
    bad = write(tmp_path / "bad.txt", (BOOK_LINES * 100).replace("75+22  _97", "75+22 _97 ").replace("\n", "\r"))
    with pytest.raises(DatasetError, match=re.escape(f"{bad}:3: ragged width")) as err:
        load_dataset(bad)
    assert str(err.value).endswith(repr("75+22 _97   "))
    bad.write_bytes(b"1+1  _2  \r1+2  _3  \r1+\xff  _4  \r")
    with pytest.raises(DatasetError, match=re.escape(f"{bad}:3: not valid UTF-8")):
        load_dataset(bad)


def test_a_long_line_is_quoted_as_a_bounded_excerpt(tmp_path):
    path = write(tmp_path / "long.txt", "1+1  _2  \n" + "1" * 100_000 + "\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    msg = str(err.value)
    assert f"{path}:2: no '_'" in msg and msg.endswith(f"{'1' * data.EXCERPT!r}... (100,000 characters)")
    assert len(msg) < len(str(path)) + 200


# ---------------------------------------------------------------- vocabulary
def test_vocab_ids_are_sorted_characters_and_stable(tmp_path):
    ds = load_dataset(write(tmp_path / "b.txt", BOOK_LINES))
    assert ds.vocab.chars == sorted(set(BOOK_LINES) - {"\n"})
    assert ds.vocab.char_to_id[" "] == 0 and ds.start_id == ds.vocab.char_to_id["_"]
    again = load_dataset(write(tmp_path / "c.txt", "".join(reversed(BOOK_LINES.splitlines(True)))))
    assert again.vocab == ds.vocab            # line order does not move ids


def test_vocab_encode_decode_roundtrip_and_unknown_characters():
    v = Vocab("0123456789+ _")
    ids = v.encode("16+75  ")
    assert ids.dtype.kind == "i" and ids.shape == (7,)
    assert v.decode(ids) == "16+75  "
    batch = v.encode(["1+2", "3+4"])
    assert batch.shape == (2, 3) and v.decode_batch(batch) == ["1+2", "3+4"]
    assert len(v) == 13 and v.id_to_char[v.char_to_id["+"]] == "+"
    with pytest.raises(ValueError, match=r"character 'x' in '1x2' is not in the vocabulary"):
        v.encode(["123", "1x2"])
    with pytest.raises(ValueError, match="different lengths"):
        v.encode(["1", "12"])


def test_foreign_vocabulary_rejects_a_file_with_new_characters(tmp_path):
    path = write(tmp_path / "b.txt", BOOK_LINES)
    with pytest.raises(DatasetError, match=r"vocabulary: character '9'"):
        load_dataset(path, vocab=Vocab("012345678+_ "))


# ---------------------------------------------------------------- split, reversal, padding, batches
def test_split_is_the_books_seeded_shuffle(root):
    ds = load_dataset("addition")
    questions, answers = read_examples(ds.path)
    full = ds.vocab.encode(questions)
    idx = np.arange(len(full))
    np.random.RandomState(1984).shuffle(idx)        # the book's load_data: np.random.seed + shuffle
    assert np.array_equal(ds.x_train, full[idx[:45_000]]) and np.array_equal(ds.x_test, full[idx[45_000:]])
    assert np.array_equal(ds.t_test, ds.vocab.encode(answers)[idx[45_000:]])
    assert (ds.t_train[:, 0] == ds.start_id).all()  # answers keep their '_' start marker
    other = load_dataset("addition", seed=1)
    assert not np.array_equal(other.x_test, ds.x_test)
    train, test = data.split_indices(50_000)
    assert len(np.intersect1d(train, test)) == 0 and len(np.union1d(train, test)) == 50_000


def test_reverse_flips_each_padded_question_only(root):
    plain, rev = load_dataset("addition"), load_dataset("addition", reverse=True)
    assert np.array_equal(rev.x_train, plain.x_train[:, ::-1]) and rev.x_train.flags.c_contiguous
    assert np.array_equal(rev.t_train, plain.t_train)
    assert rev.question_text(rev.x_test[:5]) == plain.question_text(plain.x_test[:5])
    assert rev.vocab.decode(rev.x_test[0]) == plain.vocab.decode(plain.x_test[0])[::-1]


def test_encode_questions_pads_reverses_and_checks():
    v = Vocab("0123456789+ _")
    x = data.encode_questions(["16+75", "1+2"], v, 7)
    assert v.decode_batch(x) == ["16+75  ", "1+2    "]
    assert v.decode_batch(data.encode_questions(["16+75"], v, 7, reverse=True)) == ["  57+61"]
    with pytest.raises(ValueError, match=re.escape("'16+755555' is 9 characters")):
        data.encode_questions(["16+755555"], v, 7)
    with pytest.raises(ValueError, match=re.escape("character '-' in '16-75' is not")):
        data.encode_questions(["16-75"], v, 7)
    with pytest.raises(ValueError, match="no space to pad"):
        data.encode_questions(["1"], Vocab("12_"), 3)


def test_a_question_that_is_not_text_or_is_huge_gets_a_short_clear_error():
    """Seen: bytes that are not UTF-8 on the command line (which Python passes as lone surrogates)
    failed with a 'utf-32-le' codec error; a 100,000-character question was echoed whole."""
    v = Vocab("0123456789+ _")
    with pytest.raises(ValueError, match=re.escape(r"question '1\udcff' is not valid text: at character 2, "
                                                   "byte 0xff is not UTF-8")):
        data.encode_questions(["1+2", "1\udcff"], v, 7)
    with pytest.raises(ValueError, match="U[+]D800 is a lone surrogate"):
        data.encode_questions(["\ud800"], v, 7)
    with pytest.raises(ValueError, match=r"character '\\udcff' in '1\\udcff' is not in the vocabulary"):
        v.encode("1\udcff")        # the library's own path: a surrogate is in no vocabulary
    for q, words in (("1" * 100_000, "is 100,000 characters; the model was trained on at most 7"),
                     ("1" * 99_999 + "x", "(100,000 characters) is not in the vocabulary"),
                     (" " * 100_000, "(100,000 characters): nothing to answer")):
        with pytest.raises(ValueError, match=re.escape(words)) as err:
            data.encode_questions([q], v, 7)
        assert repr("1" * data.EXCERPT)[:-1] in str(err.value) or q.isspace()
        assert len(str(err.value)) < 200


def test_batches_cover_every_example_once():
    batches = data.batch_indices(300, 128, np.random.default_rng(0))
    assert [len(b) for b in batches] == [128, 128, 44]
    assert sorted(np.concatenate(batches).tolist()) == list(range(300))
    again = data.batch_indices(300, 128, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(10, 0, np.random.default_rng(0))


def test_limit_keeps_the_first_examples(root):
    ds = load_dataset("addition")
    small = ds.limit(100, 20)
    assert np.array_equal(small.x_train, ds.x_train[:100]) and len(small.t_test) == 20
    assert (small.train_limit, small.test_limit) == (100, 20)


def test_byte_order_mark_is_ignored(tmp_path):
    ds = load_dataset(write(tmp_path / "bom.txt", "\ufeff" + BOOK_LINES))
    assert "\ufeff" not in ds.vocab and ds.question_width == 7


def test_only_the_padding_space_is_stripped_from_what_is_shown(tmp_path):
    """Answers and questions are shown without their padding spaces; a full-width space, a tab or a
    no-break space at the end is part of the data (rstrip() took those too: '東京\\u3000' was shown
    as '東京', the same as a plain '東京' line)."""
    from tinygrad_s2s.data import unpad
    from tinygrad_s2s.training.evaluation import example_rows
    lines = ["東京\u3000 _東京\u3000 ", "大阪  _大阪  ", "a\t  _b\xa0  "]
    ds = load_dataset(write(tmp_path / "ws.txt", "\n".join(lines * 4) + "\n"))
    x = np.concatenate([ds.x_train, ds.x_test])
    t = np.concatenate([ds.t_train, ds.t_test])
    rows = example_rows(ds, x, t, t[:, 1:])
    assert {(r["question"], r["expected"]) for r in rows} == {("東京\u3000", "東京\u3000"), ("大阪", "大阪"),
                                                              ("a\t", "b\xa0")}
    assert unpad("x \u3000  ") == "x \u3000"


def test_a_data_root_that_cannot_be_written_names_the_variable(tmp_path, monkeypatch):
    blocker = write(tmp_path / "file", "not a directory")
    monkeypatch.setenv("TINYGRAD_S2S_DATA", str(blocker / "datasets"))
    with pytest.raises(DatasetError, match=r"cannot generate the built-in task into the data root .*datasets "
                                           r"\(.*\); set TINYGRAD_S2S_DATA to a directory you can write to"):
        load_dataset("addition")
