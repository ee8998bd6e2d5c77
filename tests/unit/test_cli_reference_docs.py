"""docs/reference/command-line.md is what `python -m tinygrad_s2s.cli.docs` writes from the parsers: it
never drifts from them, covers every subcommand and flag, and escapes help text for its tables."""
import argparse

from paths import REPO_ROOT
from tinygrad_s2s.cli import build_parser
from tinygrad_s2s.cli.docs import _escape, render, usage

PAGE = REPO_ROOT / "docs" / "reference" / "command-line.md"
REGENERATE = "python -m tinygrad_s2s.cli.docs > docs/reference/command-line.md"


def _commands(parser):
    """parser and every subparser under it, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _commands(sub)


def test_the_committed_page_is_what_the_parsers_generate():
    # compared as text, not bytes: a checkout with CRLF line endings is still the same page
    committed = PAGE.read_text(encoding="utf-8")
    assert committed == render(), f"{PAGE.relative_to(REPO_ROOT)} is stale: run `{REGENERATE}` and commit it"


def test_every_command_flag_and_help_string_is_on_the_page():
    # the renderer itself drops nothing: a new kind of argument shows up or this fails
    page = render()
    for parser in _commands(build_parser()):
        assert f"\n## {parser.prog}\n" in page or f"\n### {parser.prog}\n" in page, parser.prog
        for action in parser._actions:
            for flag in action.option_strings:
                assert f"`{flag}`" in page, f"{parser.prog}: {flag} is not on the page"
            if action.help and action.help is not argparse.SUPPRESS:
                text = _escape(argparse.HelpFormatter(parser.prog)._expand_help(action))
                assert text in page, f"{parser.prog}: the help {action.help!r} is not on the page"


def test_each_usage_line_is_the_one_argparse_prints():
    # built by hand for a fixed width on every Python; argparse's own is the reference, modulo wrapping
    for parser in _commands(build_parser()):
        assert usage(parser).split() == parser.format_usage().split(), parser.prog


def _table_row(page: str, flag: str) -> str:
    return next(line for line in page.splitlines() if line.startswith(f"| `{flag}`"))


def test_help_text_with_table_and_html_characters_stays_in_its_cell():
    parser = argparse.ArgumentParser(prog="demo", description="a <b>demo</b>")
    parser.add_argument("--pipe", help="a|b, K <= B, `x|y` and snake_case_name")
    parser.add_argument("--count", type=int, default=3, help="%(default)s by default")
    page = render(parser)
    row = _table_row(page, "--pipe")
    assert row.replace("\\|", "").count("|") == 5, row     # four cells: no | of the help splits the row
    assert "K &lt;= B" in row and "<" not in row.replace("<code>", "").replace("</code>", "")
    assert "<code>x&#124;y</code>" in row                   # a code span still, its | no cell border
    assert "snake\\_case\\_name" in row
    assert "| `3` | 3 by default |" in _table_row(page, "--count")     # the default, and %(default)s expanded
    assert "a &lt;b&gt;demo&lt;/b&gt;" in page


def test_a_changed_help_string_makes_the_page_stale():
    # the drift test's premise: the generated page follows the parser it is given
    parser = build_parser()
    before = render(parser)
    train = next(p for p in _commands(parser) if p.prog.endswith(" train"))
    next(a for a in train._actions if "--epochs" in a.option_strings).help = "a changed help string"
    assert render(parser) != before and "a changed help string" in render(parser)
