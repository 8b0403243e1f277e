"""elfcost.measurement/1 (`elfcost measure`) and its group form (`measure --pid PID...`).

A part of elfcost.documents (see there), imported when one of its names is first used."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from elfcost.documents import Doc, NonNegative, PageSize

# -- elfcost.measurement/1 ---------------------------------------------------------------------


class UsageDoc(Doc, frozen=True):
    """smaps counters, in bytes."""

    private_dirty: NonNegative
    private_clean: NonNegative
    shared_clean: NonNegative
    shared_dirty: NonNegative
    rss: NonNegative
    pss: NonNegative
    swap: NonNegative


class MeasuredObject(Doc, frozen=True):
    path: str
    mapped_path: str | None
    load_base: int | None
    private_dirty: NonNegative
    private_clean: NonNegative
    shared_clean: NonNegative
    shared_dirty: NonNegative
    rss: NonNegative
    pss: NonNegative
    swap: NonNegative
    written_pages: Annotated[
        tuple[int, ...],
        msgspec.Meta(description="link-time page addresses (runtime - load_base) written"),
    ]


class MeasuredBucket(UsageDoc, frozen=True):
    """A process bucket's smaps counters (in bytes) and the pages it wrote."""

    written_pages: Annotated[
        tuple[int, ...], msgspec.Meta(description="runtime page addresses written")
    ]


Stop = Annotated[
    Literal["exec", "entry", "idle", "snapshot"],
    msgspec.Meta(
        description="exec: right after execve; entry: at AT_ENTRY (hardware breakpoint); "
        "idle: after start-up once CPU time stopped advancing; snapshot: whenever it was read"
    ),
]


class MeasurementDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.measurement/1"):
    """`elfcost measure --format json`: one process, every smaps line given to one owner."""

    pid: int
    page_size: PageSize
    stop: Stop
    objects: tuple[MeasuredObject, ...]
    process: dict[str, MeasuredBucket]
    total: UsageDoc
    rollup: Annotated[
        dict[str, int],
        msgspec.Meta(description="/proc/PID/smaps_rollup by field name; kB fields in bytes"),
    ]
    has_pagemap: bool
    thread_pointer: int | None
    warnings: tuple[str, ...]


class GroupRow(Doc, frozen=True):
    name: str
    uss: int
    pss: int
    rss: int
    shared: int
    private_dirty: int
    swap: int


class MeasurementGroupDoc(
    Doc,
    frozen=True,
    tag_field="schema",
    tag="elfcost.measurement-group/1",
):
    """`elfcost measure --pid ... --format json`: several processes of one program."""

    name: str
    pids: tuple[int, ...]
    total: GroupRow
    objects: tuple[GroupRow, ...]
    process: tuple[GroupRow, ...]
