"""The command-line reference page, generated from the argparse parsers of `build_parser()`.

`python -m tinygrad_s2s.cli.docs > docs/reference/command-line.md` writes it. The page is committed
(it reads on GitHub, and the site builds without running project code in a mkdocs hook), and
tests/unit/test_cli_reference_docs.py fails when it differs from this module's output: a changed flag,
help string or default is a regenerated page in the same commit, never a hand edit.

The usage lines are built here from each parser's actions rather than by argparse's formatter: its
wrapping depends on the terminal width and on the Python version, and the page must come out the
same under every interpreter the tests run on.
"""
from __future__ import annotations

import argparse
import re
import sys

from . import build_parser

USAGE_WIDTH = 88    # the usage blocks' line length: the site's code column and GitHub's both fit it
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _escape(text: str) -> str:
    """Help text as one Markdown table cell: its `code spans` kept (the help strings use them for
    commands), everything else literal: `|` would end the cell, `<` open an HTML tag, `*`, `_`, `[`
    start emphasis or a link."""
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos:m.start()]))
        out.append(_code(m.group(2)) if "|" in m.group(2) else m.group(0))
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    return " ".join("".join(out).split())     # one line: a newline would end the table row


def _escape_plain(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([|*_\[\]`])", r"\\\1", text)


def _code(text: str) -> str:
    """`text` as a code span inside a table cell. One holding `|` is written as HTML: GitHub ends the
    cell at a bare `|` even inside backticks, and Python-Markdown prints the backslash of a `\\|`
    there; `&#124;` is neither."""
    if "|" not in text:
        return f"`{text}`"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")
    return f"<code>{text}</code>"


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    # argparse's own metavar and %(default)s expansion, so the page spells values as --help does
    return argparse.HelpFormatter(parser.prog)


def _value(fmt: argparse.HelpFormatter, action: argparse.Action) -> str:
    """What follows the flag (`N`, `{cpu,cuda}`, `KEY=VALUE`); empty for a switch."""
    if action.nargs == 0:
        return ""
    return fmt._format_args(action, fmt._get_default_metavar_for_optional(action))


def _usage_part(fmt: argparse.HelpFormatter, action: argparse.Action) -> str:
    if not action.option_strings:
        return fmt._format_args(action, fmt._get_default_metavar_for_positional(action))
    if isinstance(action, argparse.BooleanOptionalAction):
        part = " | ".join(action.option_strings)
    else:
        part = " ".join(filter(None, [action.option_strings[0], _value(fmt, action)]))
    return part if action.required else f"[{part}]"


def usage(parser: argparse.ArgumentParser) -> str:
    """The parser's usage line (optionals, then positionals, as argparse orders them), wrapped at
    USAGE_WIDTH between arguments, never inside one."""
    if parser._mutually_exclusive_groups:     # argparse draws them as (a | b): this page would drop that
        raise NotImplementedError(f"{parser.prog}: mutually exclusive groups are not rendered yet")
    fmt = _formatter(parser)
    actions = [a for a in parser._actions if a.help is not argparse.SUPPRESS]
    parts = [_usage_part(fmt, a) for a in actions if a.option_strings]
    parts += [_usage_part(fmt, a) for a in actions if not a.option_strings]
    head = f"usage: {parser.prog}"
    lines, line, empty = [], head, True
    for part in parts:
        if len(line) + 1 + len(part) > USAGE_WIDTH and not empty:   # a part longer than a line gets its own
            lines.append(line)
            line = " " * len(head)
        line, empty = f"{line} {part}", False
    lines.append(line)
    return "\n".join(lines)


def _default(action: argparse.Action) -> str:
    """The parser's default for a flag that takes a value; empty where it means nothing to a reader
    (None: the help says what happens; a switch's False; append's empty list)."""
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.default == []:
        return ""
    return _code(str(action.default))


def _help(fmt: argparse.HelpFormatter, action: argparse.Action) -> str:
    return _escape(fmt._expand_help(action)) if action.help else ""


def _subcommands(parser: argparse.ArgumentParser):
    """(name, summary, parser) of each subcommand, in the order --help lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield choice.dest, choice.help or "", action.choices[choice.dest]


def _anchor(prog: str) -> str:
    # the heading's id on the site (toc's slugify) and on GitHub alike: lowercase, spaces to hyphens
    return prog.lower().replace(" ", "-")


def _section(parser: argparse.ArgumentParser, level: int) -> list[str]:
    fmt = _formatter(parser)
    out = [f"{'#' * level} {parser.prog}", ""]
    if parser.description:
        out += [_escape(parser.description), ""]
    out += ["```text", usage(parser), "```", ""]
    subs = list(_subcommands(parser))
    if subs:
        out += ["| Command | What it does |", "| --- | --- |"]
        out += [f"| [{_code(name)}](#{_anchor(sub.prog)}) | {_escape(summary)} |" for name, summary, sub in subs]
        out.append("")
    positionals = [a for a in parser._actions if not a.option_strings and a.help is not argparse.SUPPRESS
                   and not isinstance(a, argparse._SubParsersAction)]
    if positionals:
        out += ["| Argument | Default | Description |", "| --- | --- | --- |"]
        out += [f"| {_code(_usage_part(fmt, a))} | {_default(a)} | {_help(fmt, a)} |" for a in positionals]
        out.append("")
    optionals = [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]
    if optionals:
        out += ["| Option | Value | Default | Description |", "| --- | --- | --- | --- |"]
        for a in optionals:
            flags = ", ".join(_code(s) for s in a.option_strings)
            value = _value(fmt, a)
            out.append(f"| {flags} | {_code(value) if value else ''} | {_default(a)} | {_help(fmt, a)} |")
        out.append("")
    if parser.epilog:
        out += [_escape(parser.epilog), ""]
    for _, _, sub in subs:
        out += _section(sub, level + 1)
    return out


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole page for `parser` (default: the `tinygrad-s2s` parser, every subcommand)."""
    parser = parser or build_parser()
    head = ["# Command-line reference", "",
            "<!-- Generated by `python -m tinygrad_s2s.cli.docs` from the argparse parsers: do not edit. -->", "",
            "Every command of `tinygrad-s2s` with its options, generated from the parsers the command itself "
            "uses, so it says what `--help` says. [The command](../guide/command-line.md) explains them "
            "with examples.", ""]
    return "\n".join(head + _section(parser, 2)).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
