"""elfcost.diff/1, elfcost.diff-roots/1 and elfcost.diff-archives/1 (`elfcost diff`).

A part of elfcost.documents (see there), imported when one of its names is first used."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from elfcost.documents import Doc, PageSize
from elfcost.model import Cause, Range

# -- elfcost.diff/1 and elfcost.diff-roots/1 -----------------------------------------------------


class DiffObject(Doc, frozen=True):
    object: str  # soname, file name, "(executable)" or "(interpreter)": how the two are paired
    old_path: str | None
    new_path: str | None
    old_expected: int
    new_expected: int
    delta: int
    delta_pages: int
    causes: Annotated[
        dict[Cause, int],
        msgspec.Meta(description="change in pages by cause (written pages, not possible ones)"),
    ]


class DiffProcess(Doc, frozen=True):
    item: str
    old_expected: int
    new_expected: int
    delta: int


class DiffTotal(Doc, frozen=True):
    old: Range
    new: Range
    delta_expected: int
    shared_clean_delta: int


class DiffFleet(Doc, frozen=True):
    instances: int
    old: int
    new: int
    delta: int


class DiffDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.diff/1"):
    """`elfcost diff OLD NEW --format json`: two estimates, per object and per cause."""

    old: str
    new: str
    page_size: PageSize
    objects: tuple[DiffObject, ...]
    process: tuple[DiffProcess, ...]
    total: DiffTotal
    fleet: DiffFleet


class DiffProgram(Doc, frozen=True):
    path: str
    old_expected: int
    new_expected: int
    delta: int


class DiffPackage(Doc, frozen=True):
    """One package of two archives: its programs' expected private dirty memory, before and
    after."""

    name: str
    old_version: str | None  # None: not in the old archive
    new_version: str | None  # None: not in the new archive
    status: Literal["added", "removed", "changed", "same"]  # changed: another version
    old_expected: int  # summed over its programs, one instance each
    new_expected: int
    delta: int
    programs: tuple[DiffProgram, ...]  # added, removed or changed in expected (loader paths)


class DiffArchivesDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.diff-archives/1"):
    """`elfcost diff --archive OLD NEW --format json`: two archives (two releases) package by
    package; the packages whose version or programs' cost changed, the largest change first."""

    old: str
    new: str
    packages: tuple[DiffPackage, ...]
    unchanged: int  # packages in both, same version, no program's cost changed
    total_delta: int  # per instance of each program
    fleet_delta: int
    instances: int


class DiffRootsDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.diff-roots/1"):
    """`elfcost diff OLD_DIR NEW_DIR --format json`: every program found in either tree."""

    programs: tuple[DiffProgram, ...]
    total_delta: int
    fleet_delta: int
    instances: int
