"""The progress bar: drawn on a terminal's standard error only, erased at the end; elsewhere
nothing but the messages."""

from __future__ import annotations

import io

import pytest

from elfcost.report.progress import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gets_the_messages_only() -> None:
    err = io.StringIO()
    with progress("scanning", stream=err) as bar:
        bar.update(0, 4)
        bar.update(4, 4)
        bar.message("elfcost: error: /x: not an ELF file")
    assert err.getvalue() == "elfcost: error: /x: not an ELF file\n"


def test_a_terminal_gets_a_bar_that_is_erased_at_the_end() -> None:
    err = _Tty()
    with progress("scanning", stream=err) as bar:
        bar.update(0, 4)
        bar.message("elfcost: error: /x: not an ELF file")
        bar.update(4, 4)  # the last one is always drawn
    text = err.getvalue()
    assert "scanning" in text and "4/4" in text and "100%" in text
    assert "elfcost: error: /x: not an ELF file\n" in text
    assert text.count("\x1b[2K") >= 2  # redrawn in place, then cleared


def test_show_false_draws_nothing_even_on_a_terminal() -> None:
    err = _Tty()
    with progress("scanning", show=False, stream=err) as bar:
        bar.update(1, 2)
    assert err.getvalue() == ""


def test_no_color_keeps_the_bar_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    err = _Tty()
    with progress("scanning", stream=err) as bar:
        bar.update(2, 4)
    assert "\x1b[3" not in err.getvalue()  # no colour; cursor control only
