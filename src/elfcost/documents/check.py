"""elfcost.check/4 (`elfcost check`): binaries against a budget.

A part of elfcost.documents (see there), imported when one of its names is first used."""

from __future__ import annotations

from typing import Annotated

import msgspec

from elfcost.documents import Doc

# -- elfcost.check/4 ---------------------------------------------------------------------------


class WaiverDoc(Doc, frozen=True):
    reason: str
    expires: str | None  # ISO date


class ViolationDoc(Doc, frozen=True):
    limit: str
    allowed: int | bool
    actual: int | bool
    excess: int
    why: str
    waiver: WaiverDoc | None


class CheckedBinary(Doc, frozen=True):
    path: str
    ok: bool
    private_dirty: int
    objects: int
    missing: Annotated[
        tuple[str, ...],
        msgspec.Meta(description="libraries (each once) and the interpreter not found"),
    ]
    uncalibrated: Annotated[
        bool,
        msgspec.Meta(
            description="the start-up figures come from another machine's profile: approximate"
        ),
    ]
    checked: tuple[str, ...]
    violations: tuple[ViolationDoc, ...]
    cannot_start: Annotated[
        tuple[str, ...],
        msgspec.Meta(
            description="why the real loader would stop before main: a candidate it refuses, "
            "a symbol version not found, an ISA level the CPU lacks"
        ),
    ] = ()


class Skipped(Doc, frozen=True):
    non_elf: int
    shared_libraries: int
    not_loadable: int  # ELF files no loader maps (ET_REL objects, kernel modules, cores)


class CheckDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.check/4"):
    """`elfcost check --format json`: the verdict on every binary."""

    ok: bool
    binaries: tuple[CheckedBinary, ...]
    skipped: Skipped
