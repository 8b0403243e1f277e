"""Byte counts as text, for every report."""

from __future__ import annotations


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
