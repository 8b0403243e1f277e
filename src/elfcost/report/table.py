"""Plain-text tables and terminal colour for the text reports (no third-party renderer).

A table is built row by row, then laid out once: each column as wide as its widest cell (up to
its `max_width`); on a terminal narrower than that, the columns marked `fold` (wrapped onto more
lines, at spaces where there are any: nothing is lost) or `ellipsis` (cut with "…") give up
width first. Piped output is not fitted to any width, so grep and awk see whole paths. Colour
is ANSI SGR, only when asked for (the caller decides from isatty and NO_COLOR,
https://no-color.org).
"""

from __future__ import annotations

import os
import sys

import msgspec

# typing is imported for the type checker only: at run time it is 2-3 ms of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Justify = Literal["left", "right"]
    Overflow = Literal["fold", "ellipsis", "keep"]

# ANSI SGR parameters by style name (ECMA-48 8.3.117).
SGR = {
    "bold": "1",
    "italic": "3",
    "red": "31",
    "bold red": "1;31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "white": "37",
    "bright_black": "90",
    "bright_red": "91",
    "bright_blue": "94",
    "bright_magenta": "95",
}

# Heavy header, light body, as terminal tables commonly are drawn.
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_HEAD_RULE = ("┡", "━", "╇", "┩")
_BODY = ("│", "│", "│")
_SECTION = ("├", "─", "┼", "┤")
_BOTTOM = ("└", "─", "┴", "┘")


def paint(text: str, style: str | None, colour: bool) -> str:
    """`text` in `style` when colour is on; unchanged otherwise."""
    if not colour or not style or not text:
        return text
    return f"\x1b[{SGR[style]}m{text}\x1b[0m"


def terminal() -> tuple[bool, int | None]:
    """(colour on?, width to fit) for standard output: a terminal gets both, a pipe neither."""
    if not sys.stdout.isatty():
        return False, None
    try:
        width: int | None = os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        width = None
    return "NO_COLOR" not in os.environ, width


class Column(msgspec.Struct, frozen=True):
    header: str
    justify: Justify = "left"
    overflow: Overflow = "keep"
    min_width: int = 0
    max_width: int | None = None  # only for fold and ellipsis columns


class Table(msgspec.Struct):
    title: str
    columns: list[Column] = msgspec.field(default_factory=list)
    # A row is its cells and a style for the whole row; None is a section rule.
    rows: list[tuple[tuple[str, ...], str | None] | None] = msgspec.field(default_factory=list)

    def add_column(
        self,
        header: str,
        justify: Justify = "left",
        overflow: Overflow = "keep",
        min_width: int = 0,
        max_width: int | None = None,
    ) -> None:
        self.columns.append(Column(header, justify, overflow, min_width, max_width))

    def add_row(self, *cells: str, style: str | None = None) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row of {len(cells)} cells in a table of {len(self.columns)}")
        self.rows.append((tuple(cells), style))

    def add_section(self) -> None:
        if self.rows and self.rows[-1] is not None:
            self.rows.append(None)

    def render(self, *, width: int | None = None, colour: bool = False) -> str:
        widths = _fit(self.columns, [r[0] for r in self.rows if r is not None], width)
        out = [paint(self.title, "italic", colour)] if self.title else []
        out.append(_rule(widths, _TOP))
        heads = tuple(c.header for c in self.columns)
        out.extend(_lines(self.columns, widths, heads, _HEAD, "bold", colour))
        out.append(_rule(widths, _HEAD_RULE))
        rows = self.rows[:-1] if self.rows and self.rows[-1] is None else self.rows
        for row in rows:
            if row is None:
                out.append(_rule(widths, _SECTION))
            else:
                out.extend(_lines(self.columns, widths, row[0], _BODY, row[1], colour))
        out.append(_rule(widths, _BOTTOM))
        return "\n".join(out) + "\n"


def _rule(widths: list[int], box: tuple[str, str, str, str]) -> str:
    left, fill, cross, right = box
    return left + cross.join(fill * (w + 2) for w in widths) + right


def _fit(columns: list[Column], rows: list[tuple[str, ...]], width: int | None) -> list[int]:
    """Column widths: natural, then narrowed (fold/ellipsis columns only) to fit `width`."""
    floors = [max(len(c.header), c.min_width, 8) for c in columns]
    widths = []
    for i, c in enumerate(columns):
        w = max([len(c.header), c.min_width, *(len(r[i]) for r in rows)])
        if c.overflow != "keep" and c.max_width is not None:
            w = min(w, max(c.max_width, floors[i]))
        widths.append(w)
    if width is None:
        return widths
    excess = sum(widths) + 3 * len(widths) + 1 - width
    while excess > 0:
        # Take from the widest column that may still give: long paths and summaries go first.
        can = [i for i, c in enumerate(columns) if c.overflow != "keep" and widths[i] > floors[i]]
        if not can:
            break
        i = max(can, key=lambda k: widths[k])
        give = min(excess, widths[i] - floors[i])
        widths[i] -= give
        excess -= give
    return widths


def _lines(
    columns: list[Column],
    widths: list[int],
    cells: tuple[str, ...],
    box: tuple[str, str, str],
    style: str | None,
    colour: bool,
) -> list[str]:
    """One table row as one or more text lines (folded cells continue on the next line)."""
    parts: list[list[str]] = []
    for c, w, text in zip(columns, widths, cells, strict=True):
        if len(text) <= w:
            parts.append([text])
        elif c.overflow == "fold":
            parts.append(_wrap(text, w))
        else:
            parts.append([text[: w - 1] + "…"])
    left, mid, right = box
    lines = []
    for k in range(max(len(p) for p in parts)):
        cells_k = []
        for c, w, p in zip(columns, widths, parts, strict=True):
            text = p[k] if k < len(p) else ""
            padded = text.rjust(w) if c.justify == "right" else text.ljust(w)
            cells_k.append(" " + paint(padded, style, colour) + " ")
        lines.append(left + mid.join(cells_k) + right)
    return lines


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width`: broken after a space when a line has one, else cut."""
    lines = []
    while len(text) > width:
        cut = text.rfind(" ", 0, width + 1)
        if cut <= 0:
            lines.append(text[:width])
            text = text[width:]
        else:
            lines.append(text[:cut].rstrip())
            text = text[cut + 1 :]
    lines.append(text)
    return lines
