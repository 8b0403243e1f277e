"""Estimate × Measurement → Comparison: per object, page by page, and for the process total.

Pure: values in, values out. At the entry point the comparison is exact (the kernel and the
loader have written what the rules say, or the rules are wrong); when idle, program and libc
behaviour after `main` is only bounded, so the total is checked against [low, high].
"""

from __future__ import annotations

from typing import Any

import msgspec

from elfcost.documents import (
    ComparedObject,
    ComparedTotal,
    ComparisonDoc,
    MismatchDoc,
    PredictedTotal,
)
from elfcost.model import Cause, Estimate, ObjectEstimate, PageCost
from elfcost.runtime.records import Measurement, ObjectMeasurement


class PageMismatch(msgspec.Struct, frozen=True, kw_only=True):
    vaddr: int
    sections: tuple[str, ...]
    # The cause the model gave the page (for an unpredicted one, the possible-write or other
    # page the model had there; None outside every predicted page), and the likely writer in
    # words. `cause` is always a name of the cause registry.
    cause: Cause | None
    why: str
    certain: bool


class ObjectComparison(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    predicted_pages: int
    measured_pages: int
    predicted_clean: tuple[PageMismatch, ...]  # predicted dirty, measured not written
    unpredicted_dirty: tuple[PageMismatch, ...]  # written, not predicted

    @property
    def exact(self) -> bool:
        # Counts too: a page predicted without an address and not written has no address to
        # be listed at among the pages predicted but clean.
        return (
            not self.predicted_clean
            and not self.unpredicted_dirty
            and self.predicted_pages == self.measured_pages
        )

    @property
    def certain_misses(self) -> int:
        return sum(1 for p in self.predicted_clean if p.certain)


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    binary: str
    stop: str  # "entry" or "idle"
    page_size: int
    objects: tuple[ObjectComparison, ...]
    predicted_low: int
    predicted_expected: int
    predicted_high: int
    measured_total: int  # Private_Dirty + Swap over the whole process
    tolerance_pages: int

    @property
    def within_bounds(self) -> bool:
        return self.predicted_low <= self.measured_total <= self.predicted_high

    @property
    def ok(self) -> bool:
        """At entry: every object within tolerance (certain pages never missed beyond it).
        Idle: the measured total inside the predicted [low, high]."""
        if self.stop == "entry":
            return all(
                len(o.unpredicted_dirty) + o.certain_misses <= self.tolerance_pages
                for o in self.objects
            )
        return self.within_bounds


def compare(est: Estimate, m: Measurement, *, stop: str, tolerance_pages: int = 0) -> Comparison:
    """Compare per object (matched by path) the pages predicted written by `stop`."""
    phases = ("entry",) if stop == "entry" else ("entry", "idle")
    measured_by_path = {o.path: o for o in m.objects}
    objects = []
    for oe in est.objects:
        om = measured_by_path.get(oe.path)
        objects.append(_compare_object(oe, om, phases))
    total = est.total
    return Comparison(
        binary=est.binary,
        stop=stop,
        page_size=est.page_size,
        objects=tuple(objects),
        predicted_low=total.at_entry if stop == "entry" else total.low,
        predicted_expected=total.at_entry if stop == "entry" else total.expected,
        predicted_high=total.high,
        measured_total=m.total.private_dirty + m.total.swap,
        tolerance_pages=tolerance_pages,
    )


def _compare_object(
    oe: ObjectEstimate, om: ObjectMeasurement | None, phases: tuple[str, ...]
) -> ObjectComparison:
    by_vaddr: dict[int, PageCost] = {p.vaddr: p for p in oe.pages if p.vaddr is not None}
    predicted = {v for v, p in by_vaddr.items() if p.phase in phases}
    # Pages predicted without an address (a library initialiser's typical page, a libc
    # start-up page not located in this build): each is one page of the object written
    # somewhere the estimate did not place, which one written page it did not predict is.
    # A page it did not list at all goes first (a library initialiser's page takes the place
    # of the first possible write in the listing: cost/estimate.py), then possible writes.
    unplaced = sum(1 for p in oe.pages if p.vaddr is None and p.phase in phases)
    measured = set(om.written_pages) if om is not None else set()
    open_pages = [
        v for v in measured - predicted if v not in by_vaddr or by_vaddr[v].phase == "possible"
    ]
    placed_here = set(sorted(open_pages, key=lambda v: (v in by_vaddr, v))[:unplaced])
    clean = [
        PageMismatch(
            vaddr=v,
            sections=by_vaddr[v].sections,
            cause=by_vaddr[v].cause,
            why=f"predicted {by_vaddr[v].cause.value}",
            certain=by_vaddr[v].certain,
        )
        for v in sorted(predicted - measured)
    ]
    dirty = []
    for v in sorted(measured - predicted - placed_here):
        p = by_vaddr.get(v)
        if p is None:
            # The listing holds every writable page unless some are only counted, or one
            # gave its place to a page predicted without an address.
            if unplaced or oe.possible_unlisted:
                likely = "constructor or program write (a writable page not listed)"
            else:
                likely = "outside every writable segment (text relocation or runtime patching?)"
            dirty.append(PageMismatch(vaddr=v, sections=(), cause=None, why=likely, certain=False))
            continue
        likely = "constructor or program write" if p.phase == "possible" else p.cause.value
        dirty.append(
            PageMismatch(vaddr=v, sections=p.sections, cause=p.cause, why=likely, certain=False)
        )
    return ObjectComparison(
        path=oe.path,
        predicted_pages=len(predicted) + unplaced,
        measured_pages=len(measured),
        predicted_clean=tuple(clean),
        unpredicted_dirty=tuple(dirty),
    )


def comparison_doc(c: Comparison) -> ComparisonDoc:
    """The comparison as its document, `elfcost.comparison/2`."""

    def pages(ps: tuple[PageMismatch, ...]) -> tuple[MismatchDoc, ...]:
        return tuple(
            MismatchDoc(
                vaddr=p.vaddr, sections=p.sections, cause=p.cause, why=p.why, certain=p.certain
            )
            for p in ps
        )

    stop: Any = c.stop  # one of documents.Stop: compare() is only called with those
    page_size: Any = c.page_size
    return ComparisonDoc(
        binary=c.binary,
        stop=stop,
        page_size=page_size,
        ok=c.ok,
        tolerance_pages=c.tolerance_pages,
        objects=tuple(
            ComparedObject(
                path=o.path,
                predicted_pages=o.predicted_pages,
                measured_pages=o.measured_pages,
                exact=o.exact,
                predicted_clean=pages(o.predicted_clean),
                unpredicted_dirty=pages(o.unpredicted_dirty),
            )
            for o in c.objects
        ),
        total=ComparedTotal(
            predicted=PredictedTotal(
                low=c.predicted_low, expected=c.predicted_expected, high=c.predicted_high
            ),
            measured_private_dirty=c.measured_total,
            within_bounds=c.within_bounds,
        ),
    )
