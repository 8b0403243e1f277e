"""Byte counts as text: KiB for tables, MiB past 10 MiB for totals and fleets."""

from __future__ import annotations

from elfcost.report.units import kib, size


def test_size_is_kib_below_10_mib_then_mib_then_gib() -> None:
    assert size(8 * 1024) == kib(8 * 1024) == "8 KiB"
    assert size(10 * 1024 * 1024 - 4096) == "10,236 KiB"
    assert size(14_448 * 1024) == "14.1 MiB"
    assert size(-14_448 * 1024) == "-14.1 MiB"  # a saving that is a cost
    assert size(12 * 1024**3) == "12.00 GiB"
