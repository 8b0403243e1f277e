"""elfcost.comparison/2 (`elfcost validate`): a prediction beside a measurement.

A part of elfcost.documents (see there), imported when one of its names is first used."""

from __future__ import annotations

from typing import Annotated

import msgspec

from elfcost.documents import Doc, NonNegative, PageSize
from elfcost.documents.measurement import Stop
from elfcost.model import Cause

# -- elfcost.comparison/2 ----------------------------------------------------------------------


class MismatchDoc(Doc, frozen=True):
    """A page predicted but clean, or dirty but not predicted."""

    vaddr: int
    sections: tuple[str, ...]
    cause: Annotated[
        Cause | None,
        msgspec.Meta(
            description="the predicted page's cause; for an unpredicted page the cause of the "
            "possible-write or other page the model had there, null if none"
        ),
    ]
    why: str  # in words: the likely writer of an unpredicted page, or the predicted cause
    certain: bool


class ComparedObject(Doc, frozen=True):
    path: str
    predicted_pages: NonNegative
    measured_pages: NonNegative
    exact: bool
    predicted_clean: tuple[MismatchDoc, ...]
    unpredicted_dirty: tuple[MismatchDoc, ...]


class PredictedTotal(Doc, frozen=True):
    low: int
    expected: int
    high: int


class ComparedTotal(Doc, frozen=True):
    predicted: PredictedTotal
    measured_private_dirty: int
    within_bounds: bool


class ComparisonDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.comparison/2"):
    """`elfcost validate --format json`: an estimate against one measurement."""

    binary: str
    stop: Stop
    page_size: PageSize
    ok: bool
    tolerance_pages: int
    objects: tuple[ComparedObject, ...]
    total: ComparedTotal
