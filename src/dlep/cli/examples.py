"""The example configurations, wherever the package is installed.

A wheel carries ``examples/`` as ``dlep/examples`` (pyproject.toml,
``force-include``), so a ``pip install`` user can run what ``--help`` points
at: ``dlep-modem --print-example-config > modem.toml``. In a source tree
(an editable install, ``PYTHONPATH=src``) they are read from ``examples/``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The example configurations of each role (file names without ``.toml``).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "router": ("router", "router-tls", "router-kernel"),
    "modem": ("modem", "modem-tls", "modem-feed"),
}


def example_text(name: str) -> str:
    """The text of ``examples/<name>.toml``; FileNotFoundError if absent."""
    # Imported here: every daemon start builds the parser, few print examples.
    from importlib import resources

    installed = resources.files("dlep") / "examples" / f"{name}.toml"
    if installed.is_file():
        return installed.read_text(encoding="utf-8")
    # A source tree: src/dlep/cli/examples.py -> <root>/examples.
    here = Path(__file__).resolve().parents[3] / "examples" / f"{name}.toml"
    return here.read_text(encoding="utf-8")


class PrintExampleConfig(argparse.Action):
    """``--print-example-config [NAME]``: print an example configuration
    and exit (before the check of the required ``--config``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, role: str, **kw: Any) -> None:
        names = EXAMPLES[role]
        kw.setdefault(
            "help",
            f"print an example configuration ({', '.join(names)}; default {role}) "
            "to start from, and exit",
        )
        super().__init__(
            option_strings,
            dest,
            nargs="?",
            const=role,
            choices=names,
            metavar="NAME",
            default=argparse.SUPPRESS,
            **kw,
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        try:
            text = example_text(str(values))
        except OSError as exc:
            parser.exit(1, f"{parser.prog}: example {values} not found: {exc}\n")
        print(text, end="")
        parser.exit()
