"""Byte counts as text for every report, and sizes as people write them (`64K`) as bytes."""

from __future__ import annotations

import math
import re


def _scaled(n: int, unit: int, places: int) -> str:
    """n / unit to `places` decimals, thousands grouped; exact for an integer too large for a
    float (a saved report given to `diff` may hold any integer), where division overflows."""
    try:
        return f"{n / unit:,.{places}f}"
    except OverflowError:
        q = (abs(n) * 10**places + unit // 2) // unit
        whole, frac = divmod(q, 10**places)
        return f"{'-' if n < 0 else ''}{whole:,}.{frac:0{places}d}"


def kib(n: int) -> str:
    """Bytes in KiB, thousands grouped ("1,048,584 KiB"): every figure in the same unit, so
    rows compare at a glance; a tenth when the bytes are not whole KiB."""
    if n % 1024 == 0:
        return f"{n // 1024:,} KiB"
    return f"{_scaled(n, 1024, 1)} KiB"


def size(n: int) -> str:
    """Bytes for people: KiB below 10 MiB (pages are KiB multiples), then MiB, then GiB. For
    totals and fleets; per-object tables keep `kib`, so their rows compare at a glance."""
    if abs(n) < 10 * 1024 * 1024:
        return kib(n)
    if abs(n) < 10 * 1024**3:
        return f"{n / 1024**2:,.1f} MiB"
    return f"{_scaled(n, 1024**3, 2)} GiB"


MAX_SIZE = 1 << 60  # 1 EiB: beyond any memory, and still a 64-bit number in JSON


def parse_size(text: str | int) -> int:
    """`64K`, `1M`, `1.5MiB`, `4096` (bytes; K/M/G are powers of 1024)."""
    if isinstance(text, bool) or not isinstance(text, int | str):  # a policy file's value
        raise ValueError(f"{text!r} is not a size (e.g. 4096, 64K, 1.5MiB)")
    if isinstance(text, int):
        if not 0 <= text <= MAX_SIZE:
            raise ValueError(f"{text} is not a size from 0 to {MAX_SIZE // 1024**6} EiB")
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgG]?)(i?[bB])?\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 4096, 64K, 1.5MiB)")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    size = float(m.group(1)) * mult
    if not math.isfinite(size) or size > MAX_SIZE:
        raise ValueError(f"{text!r} is larger than {MAX_SIZE // 1024**6} EiB")
    return int(size)
