"""Which read-only strings are printf formats with a floating conversion (elf/formats.py), on
strings from real binaries: the ones that are, and the ones that only look like it."""

from __future__ import annotations

import struct
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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sh_offset", 2**64 - 1),
        ("sh_offset", 2**63 + 5),
        ("sh_offset", 1 << 40),
        ("sh_size", 2**64 - 1),
    ],
)
def test_a_rodata_header_pointing_anywhere(
    samples: Path, tmp_path: Path, field: str, value: int
) -> None:
    """Section headers are not needed to load a file, and are not checked when read: a .rodata
    whose offset or size lies past the file (or past what pread takes) is searched as far as
    the file goes, never an internal error."""
    source = samples / "printf_format.pie"
    data = bytearray(source.read_bytes())
    e_shoff, shentsize = struct.unpack_from("<Q", data, 0x28)[0], data[0x3A]
    rodata = next(s for s in read_dso(str(source)).sections if s.name == ".rodata")
    for i in range(struct.unpack_from("<H", data, 0x3C)[0]):
        at = e_shoff + i * shentsize
        if struct.unpack_from("<QQ", data, at + 0x18) == (rodata.offset, rodata.size):
            struct.pack_into("<Q", data, at + (0x18 if field == "sh_offset" else 0x20), value)
            break
    else:
        raise AssertionError("no .rodata header found")
    bad = tmp_path / "bad"
    bad.write_bytes(data)
    with opened(str(bad)) as (fd, _):
        found = float_format(read_dso(str(bad)), fd)
    # Past the end: nothing to search; a size past the end: the rest of the file is searched.
    assert found == (None if field == "sh_offset" else "%s %d %ld %.3f %g %x")
