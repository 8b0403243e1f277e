"""elfcost.machine/1 (`elfcost measure --all`): every process of a machine, measured.

A part of elfcost.documents (see there), imported when one of its names is first used."""

from __future__ import annotations

from typing import Annotated

import msgspec

from elfcost.documents import Assume, Doc, NonNegative, PageSize

# -- elfcost.machine/1 -------------------------------------------------------------------------


class MachineProgram(Doc, frozen=True):
    """One program's processes summed, ps_mem's row: private memory summed, shared memory
    counted once over the machine by summing Pss."""

    program: Annotated[
        str, msgspec.Meta(description="the executable's path; [comm] when it maps none")
    ]
    pids: tuple[int, ...]
    uss: Annotated[NonNegative, msgspec.Meta(description="Private_Clean + Private_Dirty")]
    pss: NonNegative
    rss: NonNegative
    shared: Annotated[int, msgspec.Meta(description="ps_mem's Shared: pss - uss")]
    private_dirty: NonNegative
    swap: NonNegative
    linkage: Annotated[
        NonNegative | None,
        msgspec.Meta(
            description="the model's linkage overhead of all its processes (null: the program "
            "could not be estimated)"
        ),
    ]


class MachineLibrary(Doc, frozen=True):
    """One ELF object summed over every process mapping it, librank's row (its file lines and
    the bss inside its address span)."""

    path: str
    processes: NonNegative
    programs: NonNegative
    uss: NonNegative
    pss: NonNegative
    rss: NonNegative
    private_dirty: NonNegative
    swap: NonNegative


class MachineProcess(Doc, frozen=True):
    """One process, from its smaps_rollup."""

    pid: int
    program: str
    uss: NonNegative
    pss: NonNegative
    rss: NonNegative
    private_dirty: NonNegative
    swap: NonNegative


class MachineTotal(Doc, frozen=True):
    """Every process read, summed: the sums of their smaps_rollup."""

    processes: NonNegative
    uss: NonNegative
    pss: NonNegative
    rss: NonNegative
    shared: int
    private_dirty: NonNegative
    swap: NonNegative


class MachineLinkage(Doc, frozen=True):
    """The private dirty bytes the cost model attributes to the linkage (relocations, the
    loader's data and heap, TLS, libc start-up), over every process of an estimated program."""

    expected: NonNegative
    by_cause: Annotated[
        dict[str, int],
        msgspec.Meta(description="bytes by cause name (elfcost causes), and tls, loader_heap"),
    ]
    processes: NonNegative
    programs: NonNegative
    measured: Annotated[
        NonNegative,
        msgspec.Meta(
            description="for comparison: the measured private dirty bytes of libc and the "
            "dynamic loader in the same processes"
        ),
    ]
    not_estimated: Annotated[
        dict[str, str], msgspec.Meta(description="program -> why it was not estimated")
    ]


class RelinkProgram(Doc, frozen=True):
    program: str
    processes: NonNegative
    as_built: Annotated[NonNegative, msgspec.Meta(description="expected bytes, one process")]
    whatif: NonNegative
    saved: Annotated[int, msgspec.Meta(description="(as_built - whatif) x processes")]
    text: Annotated[int, msgspec.Meta(description="text bytes no longer shared")]


class MachineRelink(Doc, frozen=True):
    """`--assume`: what relinking every estimated program would save in private dirty memory,
    and spend in libc and loader text that its processes would no longer share."""

    assume: Assume
    saved: int
    text: int
    net: Annotated[int, msgspec.Meta(description="saved - text")]
    programs: tuple[RelinkProgram, ...]


class MachineSkipped(Doc, frozen=True):
    vanished: Annotated[NonNegative, msgspec.Meta(description="exited while being read")]
    unreadable: Annotated[NonNegative, msgspec.Meta(description="not the caller's to read")]
    without_memory: Annotated[NonNegative, msgspec.Meta(description="kernel threads, zombies")]


class MachineDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.machine/1"):
    """`elfcost measure --all --format json`: every process the caller may read."""

    page_size: PageSize
    total: MachineTotal
    programs: tuple[MachineProgram, ...]
    libraries: tuple[MachineLibrary, ...]
    linkage: MachineLinkage
    relink: MachineRelink | None
    skipped: MachineSkipped
    processes: tuple[MachineProcess, ...]
