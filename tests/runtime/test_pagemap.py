"""pagemap bit classification on synthetic entries, and the chunked reader on a plain file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from elfcost.runtime import pagemap as pm
from elfcost.runtime.records import PageFlags

PRESENT, SWAP, FILE, EXCL, SOFT = 1 << 63, 1 << 62, 1 << 61, 1 << 56, 1 << 55

WRITTEN = PRESENT | EXCL | SOFT  # a COWed or freshly faulted anonymous page
ZERO_PAGE = PRESENT  # anonymous, mapped by everyone: the shared zero page after a read
FILE_PAGE = PRESENT | FILE | EXCL  # page cache mapped only here (Private_Clean in smaps)
SHARED_FILE = PRESENT | FILE
SWAPPED = SWAP | EXCL | 0x1234  # swap type/offset in the low bits
ABSENT = 0


def raw(*values: int) -> pm.Raw:
    return np.array(values, dtype=np.uint64)


def test_written_is_present_anonymous_and_exclusive() -> None:
    r = raw(WRITTEN, ZERO_PAGE, FILE_PAGE, SHARED_FILE, SWAPPED, ABSENT)
    assert pm.written(r).tolist() == [True, False, False, False, False, False]
    assert pm.zero_page(r).tolist() == [False, True, False, False, False, False]
    assert pm.resident_file(r).tolist() == [False, False, True, True, False, False]
    assert pm.present(r).tolist() == [True, True, True, True, False, False]
    assert pm.swapped(r).tolist() == [False, False, False, False, True, False]
    assert pm.exclusive(r).tolist() == [True, False, True, False, True, False]
    assert pm.soft_dirty(r).tolist() == [True, False, False, False, False, False]


def test_page_addresses_are_runtime_page_starts() -> None:
    flags = PageFlags(start=0x7F0000000000, page_size=4096, entries=raw(ABSENT, WRITTEN, WRITTEN))
    assert pm.page_addresses(flags, pm.written(flags.entries)) == (0x7F0000001000, 0x7F0000002000)
    assert flags.end == 0x7F0000003000


def test_slice_flags_needs_one_read_that_covers_the_range() -> None:
    a = PageFlags(start=0x10000, page_size=4096, entries=raw(1, 2, 3, 4))
    b = PageFlags(start=0x20000, page_size=4096, entries=raw(5, 6))
    got = pm.slice_flags((a, b), 0x11000, 0x13000)
    assert got is not None and got.tolist() == [2, 3]
    assert pm.slice_flags((a, b), 0x13000, 0x15000) is None  # runs past the end of a
    assert pm.slice_flags((a, b), 0x30000, 0x31000) is None


def test_decode_reads_little_endian_entries_and_ignores_a_partial_tail() -> None:
    data = WRITTEN.to_bytes(8, "little") + FILE_PAGE.to_bytes(8, "little") + b"\x01\x02"
    flags = pm.decode(data, start=0x400000, page_size=4096)
    assert flags.entries.dtype == np.uint64
    assert flags.entries.tolist() == [WRITTEN, FILE_PAGE]


def test_read_range_seeks_by_page_reads_in_chunks_and_zero_fills_a_short_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = 4096
    first = 3
    values = [WRITTEN, ZERO_PAGE, FILE_PAGE, WRITTEN, SWAPPED]
    blob = b"\0" * (8 * first) + b"".join(v.to_bytes(8, "little") for v in values)
    path = tmp_path / "pagemap"
    path.write_bytes(blob)
    monkeypatch.setattr(pm, "CHUNK_PAGES", 2)  # force several preads
    fd = os.open(path, os.O_RDONLY)
    try:
        # Two pages more than the file holds: they read as "not present".
        flags = pm.read_range(fd, first * page, (first + 7) * page, page_size=page, path="x")
    finally:
        os.close(fd)
    assert flags.start == first * page and len(flags.entries) == 7
    assert flags.entries.tolist() == [*values, 0, 0]
