"""Which read-only strings are printf formats with a floating conversion (elf/formats.py), on
strings from real binaries: the ones that are, and the ones that only look like it."""

from __future__ import annotations

from pathlib import Path

import pytest

from elfcost.elf.formats import _is_printf_format, float_format
from elfcost.elf.reader import opened, read_dso


@pytest.mark.parametrize(
    "text",
    [
        b"%s %d %ld %.3f %g %x",  # sample_binaries/src/printf_format.c
        b"%6.3f:1, %6.3f bits/byte, %5.2f%% saved, %s in, %s out.\n",  # bzip2
        b"[%s <%12.06f>] ",  # dmesg
        b"%.0Lf",  # cksum
        b"%1$.*2$f",  # positional arguments
    ],
)
def test_printf_formats(text: bytes) -> None:
    assert _is_printf_format(text)


@pytest.mark.parametrize(
    "text",
    [
        b"%p%t%g%t%m%t%f",  # glibc's LC_NAME format: %t is no printf conversion
        b"100%\xff%f",  # not text
        b"%Y-%m-%d %H:%M:%S %Z",  # strftime
    ],
)
def test_not_printf_formats(text: bytes) -> None:
    assert not _is_printf_format(text)


def test_the_float_samples_and_no_others(samples: Path, link_modes: tuple[str, ...]) -> None:
    """printf_format's "%.3f %g" is found in every link mode; trivial has none, and neither
    has a static glibc program, whose libc carries "%fs base" and a locale's "%t%f"."""
    seen = {}
    for mode in link_modes:
        for name in ("printf_format", "trivial", "opendir_daemon"):
            path = samples / f"{name}.{mode}"
            if path.exists():
                with opened(str(path)) as (fd, _):
                    seen[path.name] = float_format(read_dso(str(path)), fd)
    assert {n for n, f in seen.items() if f is not None} == {
        n for n in seen if n.startswith("printf_format.")
    }
    assert set(f for f in seen.values() if f) == {"%s %d %ld %.3f %g %x"}
    assert any(n.endswith(".static") for n in seen)
