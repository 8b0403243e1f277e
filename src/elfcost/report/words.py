"""Sentences the text and HTML reports print alike, from what elfcost.analysis returns: where
a program's memory goes and what a what-if saves. `size` writes a byte count (units.kib for a
terminal, the HTML's size_text, which is kib below 10 MiB)."""

from __future__ import annotations

from collections.abc import Callable

from elfcost.analysis import SPLIT_LABELS, Savings
from elfcost.documents import EstimateDoc, Split
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


def remedy_name(assume: str) -> str:
    """A remedy in words, after its --assume value."""
    return {
        "static": "linked statically",
        "musl": "linked against musl",
        "glibc": "linked against glibc",
        "musl-static": "linked statically with musl",
        "glibc-static": "linked statically with glibc",
        "bind-now": "bound at start-up (-z now)",
        "lazy": "bound lazily (-z lazy)",
    }.get(assume) or (
        f"{assume.removeprefix('static-lib=')} linked in from its static archive"
        if assume.startswith("static-lib=") and assume != "static-lib=all"
        else "every library but libc linked in from its archive"
        if assume == "static-lib=all"
        else assume
    )


def up_front(doc: EstimateDoc, size: Size = kib) -> list[str]:
    """The estimate's answer in two sentences: what one more instance costs, and the biggest
    saving of the remedies (`doc.savings`; nothing when they were not computed)."""
    if doc.savings is None:
        return []
    r = doc.total.private_dirty
    lines = [
        f"one more instance costs {size(r.expected)} of private dirty memory "
        f"(expected; {size(r.low)} .. {size(r.high)})"
    ]
    best = doc.savings[0] if doc.savings else None
    if best is None and doc.loader.path is None:
        lines.append("no remedy to weigh: the program is statically linked")
    elif best is None:
        lines.append("no remedy to weigh: relinking is a program's, and this is a shared library")
    elif best.per_instance <= 0:
        lines.append("no remedy saves anything: each costs as much or more")
    else:
        n = doc.total.fleet.instances
        line = (
            f"biggest saving: {remedy_name(best.assume)} (--assume {best.assume}) "
            f"{size(best.per_instance)} per instance"
        )
        if n > 1:
            line += f", {size(best.fleet)} for {n:,} instances"
        lines.append(line)
    return lines
