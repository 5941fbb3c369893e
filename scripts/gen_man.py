#!/usr/bin/env python3
"""Write the manual pages of dlep-router, dlep-modem, dlepctl and dlep-emu.

    python scripts/gen_man.py            # writes man/*.1
    python scripts/gen_man.py --out DIR  # writes DIR/*.1

The pages are generated from the programs' own argparse parsers (the ones
``--help`` prints), so they never drift from the code: every option with its
help, every dlepctl / dlep-emu command with its own options, the epilogs.
``make man`` runs this. Reads argparse's internals (actions, sub-parsers):
argparse has no public API to walk a parser, and this runs at build time only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "man"
sys.path.insert(0, str(ROOT / "src"))


def _programs() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from dlep.cli import emu, modem, router
    from dlep.cli.common import make_parser
    from dlep.cli.dlepctl import build_parser

    return {
        "dlep-router": lambda: make_parser("router", router.DESCRIPTION),
        "dlep-modem": lambda: make_parser("modem", modem.DESCRIPTION),
        "dlepctl": lambda: build_parser(with_top=True),
        "dlep-emu": emu.build_parser,
    }


def esc(text: str) -> str:
    """Text as roff: backslashes escaped, a leading dot or quote made literal."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    params = dict(vars(action), prog=parser.prog)
    if action.choices is not None:
        params["choices"] = ", ".join(map(str, action.choices))
    try:
        return action.help % params
    except (KeyError, TypeError, ValueError):
        return action.help


def _flags(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    fmt = parser._get_formatter()
    if not action.option_strings:
        return fmt._format_args(action, action.dest.upper())  # the positional as usage shows it
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    arg = fmt._format_args(action, action.dest.upper())
    return ", ".join(f"{o} {arg}" for o in action.option_strings)


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        text = _help(parser, action)
        if text == "" and action.help == argparse.SUPPRESS:
            continue
        yield f".TP\n.B {esc(_flags(parser, action))}\n{esc(text)}"


def _commands(
    parser: argparse.ArgumentParser, prefix: str
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Every sub-command, depth first: (its full name, its help, its parser)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            full = f"{prefix} {name}"
            yield full, helps.get(name, ""), sub
            yield from _commands(sub, full)


def page(name: str, parser: argparse.ArgumentParser, version: str, date: str) -> str:
    """The roff source of one manual page."""
    desc = (parser.description or "").strip()
    # NAME is one line: the description's first sentence.
    summary = " ".join(desc.split()).split(". ")[0].rstrip(".") if desc else name
    usage = parser.format_usage().removeprefix("usage: ").strip()
    out = [
        f'.TH {name.upper()} 1 "{date}" "dlep {version}" "User Commands"',
        ".SH NAME",
        f"{esc(name)} \\- {esc(summary)}",
        ".SH SYNOPSIS",
        ".nf",
        esc(usage),
        ".fi",
        ".SH DESCRIPTION",
        esc(desc),
        ".SH OPTIONS",
        *_options(parser),
    ]
    commands = list(_commands(parser, name))
    if commands:
        out.append(".SH COMMANDS")
        for full, help_, sub in commands:
            out += [f'.SS "{esc(full)}"', esc(help_)]
            sub_usage = sub.format_usage().removeprefix("usage: ").strip()
            out += [".PP", ".nf", esc(sub_usage), ".fi"]
            if sub.description and sub.description != help_:
                out += [".PP", esc(sub.description)]
            out += list(_options(sub))
    if parser.epilog:
        out += [".SH NOTES", ".nf", esc(parser.epilog.strip()), ".fi"]
    others = [p for p in ("dlep-router", "dlep-modem", "dlepctl", "dlep-emu") if p != name]
    out += [".SH SEE ALSO", ", ".join(f"\\fB{esc(p)}\\fR(1)" for p in others)]
    out.append(
        "The configuration keys: docs/configuration.md; the management API: docs/api.md "
        "(in the source distribution)."
    )
    return "\n".join(out) + "\n"


def generate(out: Path) -> list[Path]:
    """Write one page per program into ``out``; returns the files."""
    from dlep import __version__

    out.mkdir(parents=True, exist_ok=True)
    # SOURCE_DATE_EPOCH (reproducible builds) when set, else today.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch
        else datetime.datetime.now(datetime.UTC)
    )
    date = when.date().isoformat()
    written = []
    for name, build in _programs().items():
        path = out / f"{name}.1"
        path.write_text(page(name, build(), __version__, date), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory (default man/)")
    args = ap.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
