"""Text reports through rich: fitted to a terminal's width, whole in a pipe, colour only on a
terminal and never with NO_COLOR."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table

from elfcost.report import console
from elfcost.report.console import Terminal, render, table

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "build" / "samples"
DETAIL = "kernel argv/envp/auxv + random gap (R-K2) + loader and libc start-up depth"


def _table() -> Table:
    t = table("object", "why", "KiB", right=("KiB",))
    t.add_row("/lib/x86_64-linux-gnu/libc.so.6", "reloc 6, libc 5", "44 KiB")
    t.add_section()
    t.add_row("[stack]", DETAIL, "12 KiB", style="bold")
    return t


def test_unfitted_output_keeps_rows_whole() -> None:
    out = render(("title line", "italic"), _table(), term=Terminal())
    lines = out.splitlines()
    assert lines[0] == "title line"
    assert lines[1].startswith("┏") and lines[-1].startswith("└")
    assert any(x.startswith("├") for x in lines)  # the section rule
    assert "│ /lib/x86_64-linux-gnu/libc.so.6 │" in out
    assert f"│ {DETAIL} │" in out
    assert "\x1b" not in out


def test_fitted_output_wraps_text_and_keeps_numbers_whole() -> None:
    long_line = "where it goes: " + "word " * 40
    out = render(_table(), long_line, term=Terminal(width=40))
    lines = out.splitlines()
    assert max(len(x) for x in lines) <= 40
    assert sum("KiB" in x for x in lines) == 3  # header and two figures, none split
    assert "44 KiB" in out and "12 KiB" in out
    assert all(x == x.rstrip() for x in lines)


def test_colour_only_when_the_terminal_has_it() -> None:
    plain = render(_table(), ("missing: libfoo.so", "red"), term=Terminal(width=80))
    coloured = render(_table(), ("missing: libfoo.so", "red"), term=Terminal(True, 80))
    assert "\x1b[" not in plain
    assert "\x1b[1m" in coloured and "\x1b[31m" in coloured


def test_brackets_are_text_not_markup() -> None:
    assert "[stack]" in render("[stack] [bold]x[/bold]", term=Terminal())
    assert "[bold]x[/bold]" in render("[bold]x[/bold]", term=Terminal())


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (False, {}, Terminal(False, None)),
        (False, {"COLUMNS": "80"}, Terminal(False, 80)),
        (True, {"COLUMNS": "72"}, Terminal(True, 72)),
        (True, {"COLUMNS": "72", "NO_COLOR": "1"}, Terminal(False, 72)),
        (True, {}, Terminal(True, 80)),  # no size to be had from a StringIO: 80
    ],
)
def test_terminal_settings(
    monkeypatch: pytest.MonkeyPatch, tty: bool, env: dict[str, str], expected: Terminal
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "stdout", _Tty() if tty else io.StringIO())
    assert console.terminal() == expected


def _elfcost(*args: str, columns: str | None) -> str:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src")}
    if columns is not None:
        env["COLUMNS"] = columns
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize(
    "binary",
    ["/usr/bin/s6-supervise", "/bin/sleep", "bss_huge.i386", "bss_tail.musl-dyn", "textrel.pie"],
)
def test_an_estimate_fits_80_columns(binary: str) -> None:
    path = Path(binary) if binary.startswith("/") else SAMPLES / binary
    if not path.exists():
        pytest.skip(f"{path} not here")
    out = _elfcost("estimate", "-n", "3", str(path), columns="80")
    assert max(len(x) for x in out.splitlines()) <= 80
    assert "total private" in out
    # The compact table names objects by file name; their paths stay in explain and JSON.
    assert path.name in out
    wide = _elfcost("estimate", "-n", "3", str(path), columns=None)
    assert str(path) in wide and "\x1b" not in wide and "\x1b" not in out


def test_piped_output_has_no_escape_codes_and_keeps_whole_rows() -> None:
    out = _elfcost("explain", "/bin/sleep", columns=None)
    assert "\x1b" not in out
    assert any(x.startswith("  0x") and "x R_X86_64" in x for x in out.splitlines())


def test_every_sample_estimate_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from elfcost.errors import ElfcostError
    from elfcost.predict import estimate
    from elfcost.report.text import estimate_text
    from elfcost.resolve.host import Host
    from elfcost.resolve.search import resolve

    samples = sorted(p for p in SAMPLES.glob("*") if p.is_file() and ".so" not in p.name)
    if not samples:
        pytest.skip("samples not built")
    monkeypatch.setenv("COLUMNS", "80")
    host = Host()
    for exe in samples:
        try:
            est = estimate(resolve(str(exe), host))
        except ElfcostError:
            continue  # not a program this host can resolve: nothing to render
        out = estimate_text(est, instances=2)
        assert max(len(x) for x in out.splitlines()) <= 80, exe.name
