"""Byte counts as text, for every report."""

from __future__ import annotations


def kib(n: int) -> str:
    """Bytes in KiB, thousands grouped ("1,048,584 KiB"): every figure in the same unit, so
    rows compare at a glance; a tenth when the bytes are not whole KiB."""
    if n % 1024 == 0:
        return f"{n // 1024:,} KiB"
    return f"{n / 1024:,.1f} KiB"
