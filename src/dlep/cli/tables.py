"""Plain aligned tables for ``dlepctl``: every value in full.

A value is never cut. Without a width (a pipe, a file) every column is
printed at its natural width, however long the lines get. With a width (a
terminal) whole columns are left out, least important first, until the
table fits; if the columns that are always shown still do not fit, their
widest cells fold onto further lines (at ", " or a space where possible),
each piece complete, so the value can still be read whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len

__all__ = ["Rendered", "render_table"]

#: Between two columns.
GAP = "  "
#: A column is never folded below this (or its header), so it stays readable.
MIN_FOLD = 8


@dataclass
class Rendered:
    """A table as lines: ``header`` (header line and rule, or nothing),
    ``body`` and the names of the columns left out for width."""

    header: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)


def _pad(text: str, width: int, right: bool) -> str:
    room = max(0, width - cell_len(text))
    return " " * room + text if right else text + " " * room


def _fold(text: str, width: int) -> list[str]:
    """``text`` in pieces of at most ``width`` cells, broken after ", " or a
    space where there is one (the pieces joined give ``text`` back)."""
    out: list[str] = []
    rest = text
    while cell_len(rest) > width:
        cut = width
        while cut > 0 and cell_len(rest[:cut]) > width:
            cut -= 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > 0:
            cut = space + 1
        cut = max(cut, 1)
        out.append(rest[:cut].rstrip())
        rest = rest[cut:]
    out.append(rest)
    return out


def render_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    headers: bool = True,
    right: frozenset[str] = frozenset(),
    drop_rank: Mapping[str, int] | None = None,
) -> Rendered:
    """Lay out ``rows`` under ``columns``.

    ``width``: the terminal's (None: unlimited). ``right``: right-aligned
    column names. ``drop_rank``: column name -> rank; when the table is too
    wide the columns of the highest rank go first (absent or 0: always kept).
    """
    ranks = drop_rank or {}
    natural = [
        max([cell_len(c) if headers else 0, *(cell_len(r[i]) for r in rows)])
        for i, c in enumerate(columns)
    ]
    keep = list(range(len(columns)))

    def total(idx: Sequence[int], widths: Sequence[int]) -> int:
        return sum(widths[i] for i in idx) + len(GAP) * max(0, len(idx) - 1)

    hidden: list[str] = []
    if width is not None:
        for rank in sorted({ranks.get(c, 0) for c in columns} - {0}, reverse=True):
            if total(keep, natural) <= width:
                break
            hidden += [columns[i] for i in keep if ranks.get(columns[i], 0) == rank]
            keep = [i for i in keep if ranks.get(columns[i], 0) != rank]
    widths = list(natural)
    if width is not None:
        # Still too wide: narrow the widest columns one cell at a time; their
        # cells fold below.
        floor = [max(cell_len(c) if headers else 1, MIN_FOLD) for c in columns]
        while total(keep, widths) > width:
            can = [i for i in keep if widths[i] > floor[i]]
            if not can:
                break  # a terminal this narrow wraps the lines itself
            widest = max(can, key=lambda i: widths[i])
            widths[widest] -= 1

    def lines_of(cells: Sequence[str]) -> list[str]:
        pieces = [_fold(cells[i], widths[i]) for i in keep]
        height = max((len(p) for p in pieces), default=1)
        out = []
        for n in range(height):
            parts = [
                _pad(p[n] if n < len(p) else "", widths[i], columns[i] in right)
                for p, i in zip(pieces, keep, strict=True)
            ]
            out.append(GAP.join(parts).rstrip())
        return out

    result = Rendered(hidden=hidden)
    if headers:
        result.header = [*lines_of(columns), "─" * total(keep, widths)]
    for r in rows:
        result.body += lines_of(r)
    return result
