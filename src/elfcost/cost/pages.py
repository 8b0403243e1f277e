"""Page arithmetic on link-time addresses (loader-model.md §2): pg(v) = floor(v / P)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

_U = TypeVar("_U", np.uint8, np.uint32, np.uint64)


def align_down(v: int, page: int) -> int:
    return v - (v % page)


def align_up(v: int, page: int) -> int:
    return -(-v // page) * page


def pages_of(start: int, end: int, page: int) -> range:
    """Page addresses touched by the bytes [start, end); empty when end <= start."""
    if end <= start:
        return range(0)
    return range(align_down(start, page), end, page)


def count_pages(spans: Iterable[tuple[int, int]], page: int) -> int:
    """How many distinct pages the byte ranges [start, end) touch, by arithmetic: a writable
    segment may span more pages than could be listed one by one."""
    runs = sorted((align_down(a, page), align_up(b, page)) for a, b in spans if b > a)
    total, reach = 0, 0
    for a, b in runs:
        a = max(a, reach)
        if b > a:
            total += (b - a) // page
            reach = b
    return total


def distinct(a: npt.NDArray[_U]) -> npt.NDArray[_U]:
    """The sorted distinct values of an unsigned array.

    np.unique without its cost here: a plain np.unique imports numpy.ma (a fifth of numpy's
    import time) and hashes; small values are counted instead, sorted input is not re-sorted.
    """
    if a.size == 0:
        return a[:0]
    if int(a.max()) < 1 << 16:
        return np.flatnonzero(np.bincount(a.astype(np.intp))).astype(a.dtype)
    s = a if bool(np.all(a[1:] >= a[:-1])) else np.sort(a)
    first = np.empty(s.size, bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return s[first]


def tally(a: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(distinct values, how often each occurs) of a non-negative integer array, sorted.

    Counted in one pass when the values are dense enough for a table of counts (no more
    entries than four per value), else by np.unique.
    """
    if a.size == 0:
        return a[:0], a[:0]
    if int(a.max()) < 4 * a.size + 1024:
        counts = np.bincount(a)
        values = np.flatnonzero(counts)
        return values, counts[values]
    values, counts = np.unique(a, return_counts=True)
    return values, counts


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
        return distinct(first) * p
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
    return distinct(np.concatenate([first, *extra])) * p
