"""Per-page flags from /proc/PID/pagemap: pure classification over arrays, and a thin reader.

pagemap holds one little-endian uint64 per virtual page (Documentation/admin-guide/mm/pagemap.rst,
fs/proc/task_mmu.c `pte_to_pagemap_entry`). The bits used here:

    63 present   62 swapped   61 file page or shared anonymous   56 exclusively mapped (4.2+)
    55 soft-dirty (since the last clear_refs)   0-54 PFN, zero without CAP_SYS_ADMIN

A page this process wrote is `present && !file && exclusive`. The exclusive bit matters: reading
untouched .bss or any anonymous memory maps the shared zero page, which is present and not a file
page but mapped by everyone, and smaps does not count it (`vm_normal_page` returns NULL for it).
Without bit 56 such a page looks written (loader-model.md §1).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from elfcost.errors import MeasurementError
from elfcost.runtime.records import PageFlags

PM_PRESENT = np.uint64(1 << 63)
PM_SWAP = np.uint64(1 << 62)
PM_FILE = np.uint64(1 << 61)  # file page, or anonymous memory shared with another process
PM_MMAP_EXCLUSIVE = np.uint64(1 << 56)
PM_SOFT_DIRTY = np.uint64(1 << 55)

ENTRY_BYTES = 8
CHUNK_PAGES = 16384  # 128 KiB of pagemap per read: bounded memory for a huge mapping

Bools = npt.NDArray[np.bool_]
Raw = npt.NDArray[np.uint64]


def _bit(raw: Raw, mask: np.uint64) -> Bools:
    out: Bools = (raw & mask) != 0
    return out


def present(raw: Raw) -> Bools:
    return _bit(raw, PM_PRESENT)


def swapped(raw: Raw) -> Bools:
    return _bit(raw, PM_SWAP)


def file_or_shared(raw: Raw) -> Bools:
    return _bit(raw, PM_FILE)


def exclusive(raw: Raw) -> Bools:
    return _bit(raw, PM_MMAP_EXCLUSIVE)


def soft_dirty(raw: Raw) -> Bools:
    return _bit(raw, PM_SOFT_DIRTY)


def written(raw: Raw) -> Bools:
    """Pages this process wrote: present, anonymous (a COW copy or fresh), mapped only here."""
    return present(raw) & ~file_or_shared(raw) & exclusive(raw)


def zero_page(raw: Raw) -> Bools:
    """Present anonymous pages mapped elsewhere too: the shared zero page after a read fault.

    After a fork, pages shared with the parent or a child also land here (their mapcount is 2).
    """
    return present(raw) & ~file_or_shared(raw) & ~exclusive(raw)


def resident_file(raw: Raw) -> Bools:
    return present(raw) & file_or_shared(raw)


def page_addresses(flags: PageFlags, mask: Bools) -> tuple[int, ...]:
    """Runtime addresses of the pages of `flags` selected by `mask`."""
    idx = np.flatnonzero(mask)
    return tuple(int(flags.start + int(i) * flags.page_size) for i in idx)


def slice_flags(pages: Sequence[PageFlags], start: int, end: int) -> Raw | None:
    """The raw entries for the pages [start, end), or None unless one read covers all of them.

    `pages` must be sorted by start and must not overlap (one read per smaps line is).
    """
    i = bisect.bisect_right(pages, start, key=lambda p: p.start) - 1
    if i < 0:
        return None
    p = pages[i]
    if not (p.start <= start and end <= p.end):
        return None
    lo = (start - p.start) // p.page_size
    hi = (end - p.start) // p.page_size
    return p.entries[lo:hi]


def decode(data: bytes, *, start: int, page_size: int) -> PageFlags:
    """Entries read from pagemap (or a saved copy) for pages starting at `start`."""
    usable = len(data) - len(data) % ENTRY_BYTES
    entries = np.frombuffer(data[:usable], dtype="<u8").astype(np.uint64)
    return PageFlags(start=start, page_size=page_size, entries=entries)


def read_range(fd: int, start: int, end: int, *, page_size: int, path: str) -> PageFlags:
    """Read the entries for [start, end) from an open pagemap file, in bounded chunks.

    `path` names the file in errors. A short read (the range runs past the end of the user
    address space) leaves the remaining entries zero: "not present".
    """
    first, count = start // page_size, (end - start) // page_size
    out = np.zeros(count, dtype=np.uint64)
    done = 0
    while done < count:
        want = min(CHUNK_PAGES, count - done)
        try:
            data = os.pread(fd, want * ENTRY_BYTES, (first + done) * ENTRY_BYTES)
        except OSError as exc:
            raise MeasurementError(
                path, f"pages {start:#x}-{end:#x}", exc.strerror or str(exc)
            ) from None
        got = len(data) // ENTRY_BYTES
        if got == 0:
            break
        out[done : done + got] = np.frombuffer(data[: got * ENTRY_BYTES], dtype="<u8")
        done += got
    return PageFlags(start=start, page_size=page_size, entries=out)


def read_pagemap(
    pid: int, ranges: list[tuple[int, int]], *, page_size: int
) -> tuple[PageFlags, ...]:
    """Entries for each [start, end) of `ranges` from /proc/PID/pagemap (opened once)."""
    path = f"/proc/{pid}/pagemap"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise MeasurementError(path, "opening", exc.strerror or str(exc)) from None
    try:
        return tuple(read_range(fd, s, e, page_size=page_size, path=path) for s, e in ranges)
    finally:
        os.close(fd)
