"""Frozen records for the measured side: smaps lines, pagemap flags, per-object measurements.

Sizes are bytes (smaps prints kB; the parser converts), addresses are integers. A process's
memory is split between its ELF objects (`ObjectMeasurement`, keyed by the same `path` strings
as an `Estimate`) and named process-level buckets (`ProcessBucket`), so that the two together
add up to the whole of smaps: nothing is dropped, nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec.structs import fields

Stop = Literal["exec", "entry", "idle", "snapshot"]
"""Where the process was when it was measured.

exec: right after execve (kernel state only); entry: at AT_ENTRY, held by a hardware breakpoint;
idle: after start-up, once its CPU time stopped advancing; snapshot: whenever it was read.
"""

DELETED_SUFFIX = " (deleted)"  # fs/d_path.c d_path appends this to an unlinked file's name


class SmapsEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One mapping of /proc/PID/smaps (fs/proc/task_mmu.c show_smap), sizes in bytes."""

    start: int
    end: int
    perms: str  # "r-xp": read, write, exec, then p(rivate) or s(hared)
    offset: int  # file offset of `start` (vm_pgoff << PAGE_SHIFT), 0 for anonymous memory
    dev: str  # "fe:00": major:minor in hex, as printed
    inode: int  # 0 for anonymous memory and for the kernel's special mappings
    pathname: str  # may hold spaces, " (deleted)", "[heap]", "[anon: glibc: loader malloc]"
    size: int
    kernel_page_size: int
    mmu_page_size: int
    rss: int
    pss: int
    pss_dirty: int
    shared_clean: int
    shared_dirty: int
    private_clean: int
    private_dirty: int
    referenced: int
    anonymous: int
    anon_huge_pages: int
    swap: int
    swap_pss: int
    locked: int
    vm_flags: tuple[str, ...]
    # Every other field, in the order printed: kB fields in bytes, the rest (THPeligible,
    # ProtectionKey, ...) as printed. Newer kernels keep adding fields; they survive here.
    extra: tuple[tuple[str, int | str], ...] = ()

    @property
    def is_file(self) -> bool:
        """Backed by a file (inode != 0): a DSO, a locale archive, a memfd, shared memory."""
        return self.inode != 0

    @property
    def name(self) -> str:
        """The pathname without the " (deleted)" suffix."""
        if self.pathname.endswith(DELETED_SUFFIX):
            return self.pathname[: -len(DELETED_SUFFIX)]
        return self.pathname

    @property
    def deleted(self) -> bool:
        return self.is_file and self.pathname.endswith(DELETED_SUFFIX)

    @property
    def dev_major_minor(self) -> tuple[int, int]:
        major, _, minor = self.dev.partition(":")
        return int(major, 16), int(minor or "0", 16)

    def get(self, name: str) -> int | str | None:
        """Any field by its smaps name ("Private_Dirty", "KSM", "THPeligible"), or None."""
        known = _KNOWN_BY_NAME.get(name)
        if known is not None:
            value: int | str = getattr(self, known)
            return value
        return next((v for k, v in self.extra if k == name), None)


# smaps field name -> SmapsEntry attribute, for the fields that have their own attribute.
SMAPS_FIELDS: Mapping[str, str] = {
    "Size": "size",
    "KernelPageSize": "kernel_page_size",
    "MMUPageSize": "mmu_page_size",
    "Rss": "rss",
    "Pss": "pss",
    "Pss_Dirty": "pss_dirty",
    "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty",
    "Private_Clean": "private_clean",
    "Private_Dirty": "private_dirty",
    "Referenced": "referenced",
    "Anonymous": "anonymous",
    "AnonHugePages": "anon_huge_pages",
    "Swap": "swap",
    "SwapPss": "swap_pss",
    "Locked": "locked",
}
_KNOWN_BY_NAME = SMAPS_FIELDS


class PageFlags(msgspec.Struct, frozen=True, kw_only=True, eq=False):
    """Raw /proc/PID/pagemap entries for the pages [start, start + len(entries) * page_size).

    One uint64 per page (Documentation/admin-guide/mm/pagemap.rst); `pagemap.py` decodes them.
    """

    start: int
    page_size: int
    entries: npt.NDArray[np.uint64]

    @property
    def end(self) -> int:
        return self.start + len(self.entries) * self.page_size


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """The smaps byte counters elfcost reports, for a line, part of a line, object or bucket."""

    rss: int = 0
    pss: int = 0
    pss_dirty: int = 0
    shared_clean: int = 0
    shared_dirty: int = 0
    private_clean: int = 0
    private_dirty: int = 0
    anonymous: int = 0
    swap: int = 0
    swap_pss: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) + getattr(other, f) for f in USAGE_FIELDS})

    @property
    def uss(self) -> int:
        """Unique set size: what killing the process would free (Private_Clean + Private_Dirty)."""
        return self.private_clean + self.private_dirty


USAGE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Usage))
ZERO_USAGE = Usage()


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """The field-by-field sum (ZERO_USAGE for none)."""
    items = list(usages)
    return Usage(**{f: sum(getattr(u, f) for u in items) for f in USAGE_FIELDS})


def usage_of(entry: SmapsEntry) -> Usage:
    """The counters of a whole smaps line."""
    return Usage(**{f: getattr(entry, f) for f in USAGE_FIELDS})


class LineShare(msgspec.Struct, frozen=True, kw_only=True):
    """The part [start, end) of one smaps line that was given to an object or bucket.

    `usage` is the whole line's counters when the part is the whole line, else the line's
    counters apportioned page by page (see attribute.py).
    """

    entry: SmapsEntry
    start: int
    end: int
    usage: Usage

    @property
    def whole(self) -> bool:
        return self.start == self.entry.start and self.end == self.entry.end


class UsageFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The counters of `usage` as attributes of what they were measured for."""

    usage: Usage

    @property
    def private_dirty(self) -> int:
        return self.usage.private_dirty

    @property
    def private_clean(self) -> int:
        return self.usage.private_clean

    @property
    def shared_clean(self) -> int:
        return self.usage.shared_clean

    @property
    def shared_dirty(self) -> int:
        return self.usage.shared_dirty

    @property
    def rss(self) -> int:
        return self.usage.rss

    @property
    def pss(self) -> int:
        return self.usage.pss

    @property
    def swap(self) -> int:
        return self.usage.swap


MatchedBy = Literal["file-id", "path", "basename"]


class ObjectMeasurement(UsageFigures, frozen=True, kw_only=True):
    """What one ELF object (the executable, ld.so, a library) costs in a running process."""

    path: str  # Dso.path: the same string an Estimate uses for this object
    mapped_path: str | None  # the pathname smaps shows for it (None: not mapped)
    matched_by: MatchedBy | None
    load_base: int | None  # l_addr: runtime address minus link-time address (0 for ET_EXEC)
    span: tuple[int, int] | None  # runtime [start, end) of its PT_LOADs, page-rounded
    usage: Usage
    # Link-time page addresses (runtime page address - load_base) that this process wrote:
    # pagemap present && !file && exclusive. Empty when no pagemap was available.
    written_pages: tuple[int, ...]
    lines: tuple[LineShare, ...]


BucketName = Literal["stack", "heap", "tls", "loader_heap", "vdso", "other_anon", "other_file"]
BUCKET_NAMES: tuple[BucketName, ...] = (
    "stack",  # [stack]: the kernel's strings, auxv and pointers, then every frame since
    "heap",  # [heap]: brk (malloc's main arena; glibc static also puts TLS here)
    "tls",  # the main thread's static TLS + TCB around the thread pointer (%fs / %gs base)
    "loader_heap",  # anonymous mmaps made by the dynamic loader before AT_ENTRY
    "vdso",  # [vdso], [vvar], [vvar_vclock], [vsyscall], [uprobes]: never private dirty
    "other_anon",  # every other anonymous mapping (malloc mmaps, thread stacks, ...)
    "other_file",  # file mappings that are none of the given objects (locales, dlopen, ...)
)


class ProcessBucket(UsageFigures, frozen=True, kw_only=True):
    """Process-level memory that belongs to no ELF object."""

    name: BucketName
    usage: Usage
    written_pages: tuple[int, ...]  # runtime page addresses
    lines: tuple[LineShare, ...]


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    """One process, measured once: every smaps line given to exactly one object or bucket."""

    pid: int
    page_size: int
    stop: Stop
    objects: tuple[ObjectMeasurement, ...]  # in the order the objects were given (load order)
    buckets: tuple[ProcessBucket, ...]  # in BUCKET_NAMES order, all present (possibly zero)
    total: Usage  # the sum over objects and buckets == the sum over smaps lines
    rollup: Mapping[str, int]  # /proc/PID/smaps_rollup in bytes (empty if not read)
    entries: tuple[SmapsEntry, ...]
    has_pagemap: bool
    thread_pointer: int | None  # %fs base (%gs base for i386) of the main thread, if read
    warnings: tuple[str, ...] = ()

    def bucket(self, name: BucketName) -> ProcessBucket:
        return next(b for b in self.buckets if b.name == name)

    def object(self, path: str) -> ObjectMeasurement | None:
        return next((o for o in self.objects if o.path == path), None)


class GroupRow(msgspec.Struct, frozen=True, kw_only=True):
    """One object or bucket summed over the processes of a program (ps_mem style)."""

    name: str
    uss: int  # Σ (Private_Clean + Private_Dirty)
    pss: int  # Σ Pss: shared pages split between everything mapping them, counted once overall
    rss: int  # Σ Rss: counts shared pages once per process (an over-count)
    private_dirty: int
    swap: int

    @property
    def shared(self) -> int:
        """ps_mem's "Shared": this group's part of memory it shares (Σ Pss - Σ USS)."""
        return self.pss - self.uss


class ProgramGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Several processes of one program, summed as ps_mem does: private summed, shared once."""

    name: str
    pids: tuple[int, ...]
    total: GroupRow
    objects: tuple[GroupRow, ...]  # by object path, in first-seen order
    buckets: tuple[GroupRow, ...]

    @property
    def instances(self) -> int:
        return len(self.pids)
