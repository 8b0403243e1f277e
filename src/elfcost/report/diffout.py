"""Two estimates side by side (`elfcost diff`), as text: renders what analysis.diff and
analysis.diff_roots and analysis.diff_archives computed (elfcost.diff/1, elfcost.diff-roots/1,
elfcost.diff-archives/1)."""

from __future__ import annotations

from collections.abc import Callable

from elfcost.cost.causes import info
from elfcost.documents import DiffArchivesDoc, DiffDoc, DiffRootsDoc
from elfcost.report.console import Part, render, table
from elfcost.report.units import kib, size


def _signed(n: int, unit: Callable[[int], str] = kib) -> str:
    return ("+" if n > 0 else "") + (unit(n) if n >= 0 else "-" + unit(-n))


def diff_text(d: DiffDoc) -> str:
    t = table(
        "object", "old", "new", "change", "pages by cause (change)", right=("old", "new", "change")
    )
    for r in d.objects:
        # Labelled as the estimate table labels them; the document keeps the JSON names.
        causes = ", ".join(f"{info(c).label} {n:+d}" for c, n in r.causes.items())
        t.add_row(r.object, kib(r.old_expected), kib(r.new_expected), _signed(r.delta), causes)
    t.add_section()
    for pr in d.process:
        if pr.old_expected or pr.new_expected:
            t.add_row(
                f"[{pr.item}]", kib(pr.old_expected), kib(pr.new_expected), _signed(pr.delta), ""
            )
    t.add_section()
    tot = d.total
    t.add_row(
        "total private dirty",
        kib(tot.old.expected),
        kib(tot.new.expected),
        _signed(tot.delta_expected),
        "",
    )
    f = d.fleet
    lines: list[Part] = [(f"{d.old} -> {d.new}", "italic"), t]
    if f.instances > 1:
        lines.append(
            f"{f.instances:,} instances: {size(f.old)} -> {size(f.new)} "
            f"({_signed(f.delta, size)}, shared clean counted once)"
        )
    return render(*lines)


def roots_text(d: DiffRootsDoc) -> str:
    t = table("program", "old", "new", "change", right=("old", "new", "change"))
    for r in d.programs:
        t.add_row(r.path, kib(r.old_expected), kib(r.new_expected), _signed(r.delta))
    return render(
        ("programs by change in expected private dirty memory", "italic"),
        t,
        f"total change {_signed(d.total_delta)} per instance of each program",
    )


def archives_text(d: DiffArchivesDoc) -> str:
    """The packages that changed, then every program that did."""
    t = table(
        "package",
        "old version",
        "new version",
        "old",
        "new",
        "change",
        right=("old", "new", "change"),
    )
    pt = table("package", "program", "old", "new", "change", right=("old", "new", "change"))
    for p in d.packages:
        t.add_row(
            p.name,
            p.old_version or "(absent)",
            p.new_version or "(absent)",
            kib(p.old_expected),
            kib(p.new_expected),
            _signed(p.delta),
        )
        for r in p.programs:
            pt.add_row(p.name, r.path, kib(r.old_expected), kib(r.new_expected), _signed(r.delta))
    return render(
        (
            f"{d.old} -> {d.new}: packages by change in their programs' expected private dirty",
            "italic",
        ),
        t,
        ("programs added, removed or changed", "italic"),
        pt,
        f"{d.unchanged} packages unchanged; total change {_signed(d.total_delta)} per instance "
        f"of each program",
    )
