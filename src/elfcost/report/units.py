"""Byte counts as text for every report, and sizes as people write them (`64K`) as bytes."""

from __future__ import annotations

import re


def kib(n: int) -> str:
    """Bytes in KiB, thousands grouped ("1,048,584 KiB"): every figure in the same unit, so
    rows compare at a glance; a tenth when the bytes are not whole KiB."""
    if n % 1024 == 0:
        return f"{n // 1024:,} KiB"
    return f"{n / 1024:,.1f} KiB"


def size(n: int) -> str:
    """Bytes for people: KiB below 10 MiB (pages are KiB multiples), then MiB, then GiB. For
    totals and fleets; per-object tables keep `kib`, so their rows compare at a glance."""
    if abs(n) < 10 * 1024 * 1024:
        return kib(n)
    if abs(n) < 10 * 1024**3:
        return f"{n / 1024**2:,.1f} MiB"
    return f"{n / 1024**3:,.2f} GiB"


def parse_size(text: str | int) -> int:
    """`64K`, `1M`, `1.5MiB`, `4096` (bytes; K/M/G are powers of 1024)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]?)(i?[bB])?\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 4096, 64K, 1.5MiB)")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)
