"""The text tables: widths, sections, wrapping, fitting to a terminal, colour only when asked."""

from __future__ import annotations

import pytest

from elfcost.report.table import Table, paint


def _table() -> Table:
    t = Table("title line")
    t.add_column("object", overflow="fold")
    t.add_column("why", overflow="fold", max_width=12)
    t.add_column("KiB", justify="right")
    t.add_row("/lib/x86_64-linux-gnu/libc.so.6", "reloc 6, libc 5", "44")
    t.add_section()
    t.add_row("[stack]", "kernel argv/envp/auxv + random gap", "12", style="bold")
    return t


def test_layout_is_a_box_with_a_header_rule_and_sections() -> None:
    lines = _table().render().splitlines()
    assert lines[0] == "title line"
    assert lines[1].startswith("┏") and lines[1].endswith("┓")
    assert lines[2].startswith("┃ object")
    assert lines[3].startswith("┡")
    assert lines[-1].startswith("└") and lines[-1].endswith("┘")
    assert any(x.startswith("├") for x in lines)
    # every line of the box is equally wide
    assert len({len(x) for x in lines[1:]}) == 1
    # the path is whole (no width was given), the number right-justified
    assert "│ /lib/x86_64-linux-gnu/libc.so.6 │" in lines[4]
    assert lines[4].endswith("│  44 │")


def test_max_width_wraps_at_spaces_and_loses_nothing() -> None:
    lines = _table().render().splitlines()
    stack = lines[next(i for i, x in enumerate(lines) if x.startswith("├")) + 1 : -1]
    why = [x.split("│")[2].strip() for x in stack]
    assert all(len(w) <= 12 for w in why)
    assert why[0] == "kernel"  # broken at a space
    assert "".join(why).replace(" ", "") == "kernel argv/envp/auxv + random gap".replace(" ", "")


def test_fitting_to_a_terminal_narrows_fold_columns_only() -> None:
    wide = _table().render()
    narrow = _table().render(width=40)
    assert max(len(x) for x in narrow.splitlines()[1:]) <= 40 < max(map(len, wide.splitlines()))
    # the folded path is still all there, in pieces
    cells = [x.split("│")[1].strip() for x in narrow.splitlines() if x.startswith("│")]
    assert "".join(cells).startswith("/lib/x86_64-linux-gnu/libc.so.6")


def test_ellipsis_cuts_and_marks_the_cut() -> None:
    t = Table("")
    t.add_column("summary", overflow="ellipsis", max_width=10)
    t.add_row("0123456789abcdef")
    body = [x for x in t.render().splitlines() if x.startswith("│")]
    assert body == ["│ 012345678… │"]


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in _table().render()
    coloured = _table().render(colour=True)
    assert "\x1b[1m[stack]" in coloured  # the styled row
    assert paint("x", "red", False) == "x" and paint("x", "red", True) == "\x1b[31mx\x1b[0m"


def test_a_row_must_match_the_columns() -> None:
    t = Table("")
    t.add_column("a")
    with pytest.raises(ValueError, match="row of 2 cells"):
        t.add_row("1", "2")
