"""Page arithmetic on link-time addresses (loader-model.md §2): pg(v) = floor(v / P)."""

from __future__ import annotations

from collections.abc import Iterable


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
