"""Sentences the text and HTML reports print alike, from what elfcost.analysis returns: where
a program's memory goes and what a what-if saves. `size` writes a byte count (units.kib for a
terminal, the HTML's size_text, which is kib below 10 MiB)."""

from __future__ import annotations

from collections.abc import Callable

from elfcost.analysis import SPLIT_LABELS, Savings
from elfcost.documents import Split
from elfcost.report.units import kib

Size = Callable[[int], str]


def where_it_goes(split: Split, size: Size = kib) -> str:
    """The s6-supervise question in one line: how much is the program, how much the linkage."""
    parts = "; ".join(f"{SPLIT_LABELS[k]} {size(p.expected)}" for k, p in split.parts)
    return f"where {size(split.total)} goes: {parts}"


def saves(n: int, size: Size = kib) -> str:
    return f"saves {size(n)}" if n >= 0 else f"costs {size(-n)} more"


def savings(s: Savings, size: Size = kib) -> str:
    """A what-if against the program as built: per instance, for the fleet, per object."""
    line = (
        f"against the program as built: {size(s.as_built)} -> {size(s.whatif)} expected, "
        f"{saves(s.per_instance, size)} per instance"
    )
    if s.instances > 1:
        line += f"; {s.instances:,} instances: {saves(s.fleet, size)} (shared clean counted once)"
    changed = [o for o in s.objects if o.saved]
    if changed:
        line += "; per object: " + ", ".join(
            f"{o.object} {size(o.as_built)} -> {size(o.whatif)}" for o in changed
        )
    return line
