"""Text reports through rich: where they go decides their width and whether they have colour.

A report is rendered to a string (the CLI writes it, or -o FILE does), by a rich Console set up
for standard output:

- width: $COLUMNS when set, else the terminal's width; piped output with no $COLUMNS is not
  fitted to any width, so grep and awk see whole rows and whole paths;
- colour and other styling only on a terminal, and never with NO_COLOR set
  (https://no-color.org): piped output holds no escape sequence at all.

Markup, highlighting and emoji are off: paths and details are data, and "[stack]" is text.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable

import msgspec
from rich import box
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

# rich needs some width; this one no row of a report reaches (PATH_MAX is 4,096).
_UNFITTED = 65_536


class Terminal(msgspec.Struct, frozen=True):
    """How a report is laid out: colour or not, and the width to fit (None: none)."""

    colour: bool = False
    width: int | None = None


def terminal() -> Terminal:
    """The layout for standard output (see the module docstring)."""
    tty = sys.stdout.isatty()
    width: int | None = None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    elif tty:
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            width = 80
    return Terminal(colour=tty and "NO_COLOR" not in os.environ, width=width)


def console(term: Terminal) -> Console:
    """A console that lays out for `term` into a string buffer."""
    return Console(
        file=io.StringIO(),
        width=term.width or _UNFITTED,
        force_terminal=term.colour,
        # With colour, rich reads how many colours the terminal has from $COLORTERM and $TERM.
        color_system="auto" if term.colour else None,
        markup=False,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )


def table(*columns: str, right: Iterable[str] = ()) -> Table:
    """A table with a heavy header and light body, as terminal tables commonly are drawn.

    Columns named in `right` hold numbers: right-justified and never wrapped, so a narrow
    terminal cannot split "104 KiB". The others fold, at spaces where they have any: a narrow
    terminal loses nothing.
    """
    t = Table(box=box.HEAVY_HEAD, header_style="bold")
    numbers = set(right)
    for c in columns:
        if c in numbers:
            t.add_column(c, justify="right", no_wrap=True)
        else:
            t.add_column(c, overflow="fold")
    return t


def width_of(t: Table) -> int:
    """The width `t` takes when nothing is wrapped."""
    c = console(Terminal())
    return Measurement.get(c, c.options, t).maximum


# A part of a report: a table, a line, or a line in a style ("bold", "red").
Part = RenderableType | tuple[str, str]


def render(*parts: Part, term: Terminal | None = None) -> str:
    """Tables and lines as one text, laid out for `term` (by default, standard output)."""
    term = term if term is not None else terminal()
    c = console(term)
    for p in parts:
        if isinstance(p, tuple):
            p = Text(p[0], style=p[1])
        # An unfitted line stays one line; a fitted one wraps at spaces like the table cells.
        c.print(p, soft_wrap=term.width is None)
    out = c.file
    assert isinstance(out, io.StringIO)
    # A wrapped line keeps the space it was broken at; nothing is meant to trail a line.
    return "".join(line.rstrip(" ") + "\n" for line in out.getvalue().splitlines())
