"""Page arithmetic on link-time addresses (loader-model.md §2): pg(v) = floor(v / P)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def align_down(v: int, page: int) -> int:
    return v - (v % page)


def align_up(v: int, page: int) -> int:
    return -(-v // page) * page


def pages_of(start: int, end: int, page: int) -> range:
    """Page addresses touched by the bytes [start, end); empty when end <= start."""
    if end <= start:
        return range(0)
    return range(align_down(start, page), end, page)


def span_pages(
    offset: npt.NDArray[np.uint64], width: npt.NDArray[np.int64], page: int
) -> npt.NDArray[np.uint64]:
    """Distinct page addresses written by writes of `width` bytes at `offset` (width > 0)."""
    if offset.size == 0:
        return np.zeros(0, np.uint64)
    p = np.uint64(page)
    first = offset // p
    end = offset + width.astype(np.uint64) - np.uint64(1)
    # A write running past 2**64 stops at the last page instead of wrapping around.
    last = np.where(end < offset, np.uint64(np.iinfo(np.uint64).max), end) // p
    if np.array_equal(first, last):
        return np.unique(first) * p
    # Merge overlapping runs first, so that many long writes over the same pages (a crafted
    # table of COPY relocations) cost no more than the pages they cover.
    order = np.argsort(first, kind="stable")
    f, la = first[order], np.maximum.accumulate(last[order])
    new_run = np.ones(f.size, bool)
    new_run[1:] = f[1:] > la[:-1]
    starts = f[new_run]
    ends = np.append(la[np.flatnonzero(new_run)[1:] - 1], la[-1])
    extra = [
        np.arange(a, b + 1, dtype=np.uint64)
        for a, b in zip(starts[starts != ends].tolist(), ends[starts != ends].tolist(), strict=True)
    ]
    return np.unique(np.concatenate([first, *extra])) * p
