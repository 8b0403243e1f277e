"""Frozen msgspec Structs and enums passed between the pipeline's stages; no logic, no I/O.

Names follow the ELF specification (p_vaddr, p_filesz, DT_NEEDED, ...) and the loaders' own
sources. Integers are bytes unless the name ends in `_pages`; `vaddr` is a link-time virtual
address and `offset` a file offset.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Sequence
from functools import cached_property
from typing import Annotated, Literal

import msgspec

# A size in bytes: never negative (checked when a saved document is decoded).
Bytes = Annotated[int, msgspec.Meta(ge=0)]

# Program header types (ELF gABI; GNU extensions from binutils include/elf/common.h).
PT_NULL = 0
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PT_NOTE = 4
PT_PHDR = 6
PT_TLS = 7
PT_GNU_EH_FRAME = 0x6474E550
PT_GNU_STACK = 0x6474E551
PT_GNU_RELRO = 0x6474E552
PT_GNU_PROPERTY = 0x6474E553

# e_type
ET_EXEC = 2
ET_DYN = 3

# Dynamic tags used by the loaders (gABI; glibc elf/elf.h).
DT_NULL = 0
DT_NEEDED = 1
DT_PLTRELSZ = 2
DT_PLTGOT = 3
DT_HASH = 4
DT_STRTAB = 5
DT_SYMTAB = 6
DT_RELA = 7
DT_RELASZ = 8
DT_RELAENT = 9
DT_STRSZ = 10
DT_SYMENT = 11
DT_SONAME = 14
DT_RPATH = 15
DT_SYMBOLIC = 16
DT_REL = 17
DT_RELSZ = 18
DT_RELENT = 19
DT_PLTREL = 20
DT_DEBUG = 21
DT_TEXTREL = 22
DT_JMPREL = 23
DT_BIND_NOW = 24
DT_RUNPATH = 29
DT_FLAGS = 30
DT_RELRSZ = 35
DT_RELR = 36
DT_RELRENT = 37
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM = 0x6FFFFFF0
DT_FLAGS_1 = 0x6FFFFFFB
DT_VERDEF = 0x6FFFFFFC
DT_VERDEFNUM = 0x6FFFFFFD
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

# Symbol versioning flags (vd_flags, vna_flags).
VER_FLG_BASE = 0x1
VER_FLG_WEAK = 0x2

DF_ORIGIN = 0x1
DF_SYMBOLIC = 0x2
DF_TEXTREL = 0x4
DF_BIND_NOW = 0x8
DF_STATIC_TLS = 0x10
DF_1_NOW = 0x1
DF_1_NODEFLIB = 0x800
DF_1_PIE = 0x08000000

# Section header bits needed for static binaries' IRELATIVE table (csu/libc-start.c apply_irel).
SHT_RELA = 4
SHT_REL = 9
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2


class Prot(enum.IntFlag):
    """Segment permissions; the same bits as p_flags PF_X / PF_W / PF_R."""

    NONE = 0
    X = 1
    W = 2
    R = 4

    def rwx(self) -> str:
        return "".join(
            c if self & b else "-" for c, b in (("r", Prot.R), ("w", Prot.W), ("x", Prot.X))
        )


PF_W = int(Prot.W)  # as a plain int (Segment.writable)


class FileId(msgspec.Struct, frozen=True, kw_only=True):
    """The identity the loaders use to load a file only once (glibc _dl_file_id_match_p)."""

    dev: int
    ino: int


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """One program header, as linked."""

    index: int  # position in the program header table
    p_type: int
    offset: int  # p_offset
    vaddr: int  # p_vaddr
    filesz: int  # p_filesz
    memsz: int  # p_memsz
    align: int  # p_align
    flags: Prot  # p_flags

    @property
    def end(self) -> int:
        """One past the last byte of the segment in memory (p_vaddr + p_memsz)."""
        return self.vaddr + self.memsz

    @property
    def writable(self) -> bool:
        # On ints: Prot's own `&` is a Python call that makes a Prot, and an estimate asks this
        # a few hundred times.
        return bool(int(self.flags) & PF_W)


class Section(msgspec.Struct, frozen=True, kw_only=True):
    """One section header: optional detail for reports, never needed to load."""

    name: str
    sh_type: int
    flags: int
    addr: int
    offset: int
    size: int
    entsize: int


RelocKind = Literal["rel", "rela", "relr", "jmprel"]


class RelocTableRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where a dynamic relocation table lies, as the dynamic section says (DT_RELA/DT_RELASZ...)."""

    kind: RelocKind
    vaddr: int
    size: int
    entsize: int
    rela: bool  # entries carry an addend (DT_RELA, or DT_JMPREL with DT_PLTREL == DT_RELA)


class DynEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the dynamic section, with its index (for in-place rewrites)."""

    index: int  # position in PT_DYNAMIC; glibc rewrites some d_ptr in place (R-G3)
    tag: int
    value: int


class VersionNeed(msgspec.Struct, frozen=True, kw_only=True):
    """One Elf_Verneed entry of DT_VERNEED and its Elf_Vernaux list: the versions an object
    requires of one of its dependencies."""

    file: str  # vn_file: the dependency, named as in DT_NEEDED
    versions: tuple[str, ...]  # vna_name of each required version, in table order
    weak: tuple[str, ...] = ()  # those marked VER_FLG_WEAK (a missing one is not fatal)


class DynamicInfo(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """The dynamic section read through PT_DYNAMIC (what ld.so's elf_get_dynamic_info sees)."""

    entries: tuple[DynEntry, ...]
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...]  # DT_RPATH split on ':' (tokens not expanded)
    runpath: tuple[str, ...]
    flags: int  # DT_FLAGS
    flags_1: int  # DT_FLAGS_1
    tables: tuple[RelocTableRef, ...]
    pltgot: int | None
    symtab: int | None
    syment: int
    strtab: int | None
    textrel: bool
    verneed: tuple[VersionNeed, ...] = ()  # DT_VERNEED
    # DT_VERDEF: the first name of each Elf_Verdef (the VER_FLG_BASE one included, as glibc's
    # match_symbol compares them all); None when the object has no DT_VERDEF at all.
    verdef: tuple[str, ...] | None = None

    @cached_property  # asked for each object of each program a scan estimates
    def bind_now(self) -> bool:
        return bool(
            any(e.tag == DT_BIND_NOW for e in self.entries)
            or self.flags & DF_BIND_NOW
            or self.flags_1 & DF_1_NOW
        )

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def has_debug(self) -> bool:
        return any(e.tag == DT_DEBUG for e in self.entries)

    def table(self, kind: RelocKind) -> RelocTableRef | None:
        return next((t for t in self.tables if t.kind == kind), None)


class Dso(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """Any ELF object the loader maps, the main executable included."""

    path: str  # the path as the loader would open it (inside the root, if one is used)
    file: str  # where elfcost read it on this machine (the root prefixed)
    file_id: FileId
    file_size: int
    elf_class: int  # 32 or 64
    little_endian: bool
    e_machine: int
    machine: str  # elfcost's short name from elf.machines ("x86_64", "aarch64", ...)
    osabi: int
    e_type: int
    entry: int
    phdrs: tuple[Segment, ...]  # every program header, in table order
    interp: str | None  # PT_INTERP
    dynamic: DynamicInfo | None
    sections: tuple[Section, ...] = ()
    build_id: str | None = None
    # GNU_PROPERTY_X86_ISA_1_NEEDED from PT_GNU_PROPERTY (x86 only): bit 0 baseline, 1 x86-64-v2,
    # 2 v3, 3 v4. glibc refuses to start a program with an object the CPU's levels do not cover.
    x86_isa_needed: int = 0
    warnings: tuple[str, ...] = ()  # odd but loadable: reported, never fatal

    @cached_property  # asked for many times per object by the cost rules
    def loads(self) -> tuple[Segment, ...]:
        return tuple(p for p in self.phdrs if p.p_type == PT_LOAD)

    def _first(self, p_type: int) -> Segment | None:
        return next((p for p in self.phdrs if p.p_type == p_type), None)

    @property
    def relro(self) -> Segment | None:
        return self._first(PT_GNU_RELRO)

    @property
    def tls(self) -> Segment | None:
        return self._first(PT_TLS)

    @property
    def dynamic_phdr(self) -> Segment | None:
        return self._first(PT_DYNAMIC)

    @property
    def gnu_stack(self) -> Segment | None:
        return self._first(PT_GNU_STACK)

    @property
    def needed(self) -> tuple[str, ...]:
        return self.dynamic.needed if self.dynamic else ()

    @property
    def soname(self) -> str | None:
        return self.dynamic.soname if self.dynamic else None

    @property
    def is_static(self) -> bool:
        """No PT_INTERP: nothing but the kernel maps it (static or static-pie, or a bare DSO)."""
        return self.interp is None

    @property
    def is_pie(self) -> bool:
        """ET_DYN (PIE or shared object): loaded at a non-zero bias, so l_addr != 0."""
        return self.e_type == ET_DYN

    @property
    def is_program(self) -> bool:
        """Meant to be run: ET_EXEC, a PIE or static-pie (DF_1_PIE), or PT_INTERP without a
        DT_SONAME (a PIE from a linker that does not set DF_1_PIE).

        libc.so.6 has PT_INTERP only so that running it prints its version: its DT_SONAME
        makes it a library, as are plugins and other shared objects without PT_INTERP.
        """
        if self.e_type == ET_EXEC:
            return True
        if self.e_type != ET_DYN:
            return False
        if self.dynamic is not None and self.dynamic.flags_1 & DF_1_PIE:
            return True
        return self.interp is not None and self.soname is None

    @property
    def span(self) -> tuple[int, int]:
        """[min p_vaddr, max(p_vaddr + p_memsz)) over PT_LOAD, link-time addresses."""
        loads = self.loads
        if not loads:
            return (0, 0)
        return (min(s.vaddr for s in loads), max(s.end for s in loads))

    def section_names_at(self, start: int, end: int) -> tuple[str, ...]:
        """Names of the allocated sections overlapping [start, end), in address order. (For
        many questions about one object, build its SectionIndex once.)"""
        return SectionIndex.of(self.sections).names_at(start, end)


class SectionIndex(msgspec.Struct, frozen=True):
    """An object's allocated sections in address order, to ask which overlap a range.

    `reach[i]` is the furthest end among rows[:i + 1]: a range's sections are found by a binary
    search for the rows that start before its end, then a walk back while a row can still reach
    its start. A large .bss has hundreds of thousands of pages; each is asked about in O(log n).
    """

    rows: tuple[tuple[int, int, str], ...]  # (sh_addr, sh_addr + sh_size, name), by address
    starts: tuple[int, ...]
    reach: tuple[int, ...]

    @classmethod
    def of(cls, sections: tuple[Section, ...]) -> SectionIndex:
        rows = tuple(
            (s.addr, s.addr + s.size, s.name)
            for s in sorted(sections, key=lambda s: s.addr)
            if s.flags & SHF_ALLOC and s.size
        )
        reach, furthest = [], 0
        for _, stop, _ in rows:
            furthest = max(furthest, stop)
            reach.append(furthest)
        return cls(rows=rows, starts=tuple(r[0] for r in rows), reach=tuple(reach))

    def names_at(self, start: int, end: int) -> tuple[str, ...]:
        """Names of the sections overlapping [start, end), in address order."""
        i = bisect.bisect_left(self.starts, end)  # rows[:i] start before the end
        found = []
        while i > 0 and self.reach[i - 1] > start:
            i -= 1
            _, stop, name = self.rows[i]
            if stop > start:
                found.append(name)
        return tuple(reversed(found))


# ---------------------------------------------------------------------------------------------
# Resolution


class LoaderFamily(enum.Enum):
    GLIBC = "glibc"
    MUSL = "musl"
    NONE = "none"  # static executable: nothing but the kernel


# musl resolves these names to itself (ldso/dynlink.c load_library, "reserved").
MUSL_RESERVED = ("c", "pthread", "rt", "m", "dl", "util", "xnet")


def inside(vaddr: int, ranges: Sequence[tuple[int, int]]) -> bool:
    """Whether `vaddr` is in one of `ranges` [start, end). A loop, not any() over a generator:
    a generator left early is closed by raising GeneratorExit in it, which costs more than the
    few comparisons (a relocated library asks it for each of its thousands of pages)."""
    for a, b in ranges:  # noqa: SIM110 (see above)
        if a <= vaddr < b:
            return True
    return False


def musl_reserved(name: str) -> bool:
    """A name musl answers with its own libc (ldso/dynlink.c load_library: "libc.so.6",
    "libm.so.6", "libpthread.so.0", ... are all the one libc.so)."""
    return name.startswith("lib") and any(name[3:].startswith(r + ".") for r in MUSL_RESERVED)


class FoundVia(enum.Enum):
    """How a library was found, in the loader's search order (libtree's how_t)."""

    MAIN = "main"  # the file the user named
    INTERP = "interpreter"  # PT_INTERP of the main program
    SLASH = "path in DT_NEEDED"  # DT_NEEDED contained a '/'
    RPATH = "rpath"
    LD_LIBRARY_PATH = "LD_LIBRARY_PATH"
    RUNPATH = "runpath"
    LD_SO_CACHE = "ld.so.cache"
    DEFAULT = "default path"
    MUSL_PATH_FILE = "ld-musl path file"
    LOADED = "already loaded"  # matched by soname or file identity


Role = Literal["executable", "interpreter", "library"]


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One candidate path the loader would try, and what became of it."""

    path: str
    via: FoundVia
    outcome: str  # "found", "no such file", "wrong ELF class", "wrong machine", "not ELF", ...
    origin: str | None = None  # whose RPATH/RUNPATH supplied the directory


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """One DT_NEEDED edge, with its explanation."""

    needed: str
    parent: str  # path of the object whose DT_NEEDED this is
    found: str | None  # path of the object it resolved to
    via: FoundVia | None
    via_object: str | None  # for RPATH: the object in the chain whose DT_RPATH matched
    tried: tuple[Attempt, ...]
    # Not a DT_NEEDED entry but a preloaded object, and where it was named: "LD_PRELOAD" (elfcost
    # --preload) or "/etc/ld.so.preload"; `parent` is then the main program, which it is
    # searched for (glibc elf/rtld.c do_preload).
    preload: str | None = None


class VersionProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A version in an object's DT_VERNEED that the loaded object it names does not define
    (glibc elf/dl-version.c match_symbol, checked for every object at start-up)."""

    parent: str  # path of the object whose DT_VERNEED requires the version
    file: str  # vn_file, the dependency as named
    found: str  # path of the loaded object that name resolved to
    version: str | None  # None: `found` has no DT_VERDEF at all
    fatal: bool  # "version `X' not found": the loader stops; else a message only

    @property
    def message(self) -> str:
        """glibc's wording."""
        if self.version is None:
            return f"{self.found}: no version information available (required by {self.parent})"
        weak = "" if self.fatal else "weak "
        return f"{self.found}: {weak}version `{self.version}' not found (required by {self.parent})"


class LoadedObject(msgspec.Struct, frozen=True, kw_only=True):
    """An object in the process: the file, its role and how the loader found it."""

    dso: Dso
    role: Role
    found_via: FoundVia
    parent: str | None  # the object whose DT_NEEDED first brought it in


# ---------------------------------------------------------------------------------------------
# Cost


class Cause(enum.Enum):
    """Why a page is private dirty. Declaration order is precedence: the most specific wins."""

    TEXTREL = "textrel"  # relocation applied to a non-writable segment (DT_TEXTREL)
    COPY_RELOC = "copy-reloc"  # R_*_COPY: the symbol's bytes copied into the executable
    RELOCATION = "relocation"  # the loader stores relocated values into the page
    DYNAMIC = "dynamic"  # glibc rewrites d_ptr entries of .dynamic in place (R-G3)
    DEBUG = "dt-debug"  # DT_DEBUG of the main executable set to &_r_debug (R-G4, R-M3)
    GOT_HEADER = "got-header"  # lazy binding: GOT[1], GOT[2] (R-G5)
    IRELATIVE = "irelative"  # static start-up applying IRELATIVE (R-S1)
    BSS_TAIL = "bss-tail"  # zeroing of the partial page after p_filesz (R-K1, R-G1, R-M1)
    GAP_DONATION = "gap-donation"  # musl donates the page tail after p_memsz to malloc (R-M4)
    LOADER_DATA = "loader-data"  # the dynamic loader's own writable segment (R-G8)
    LIBC_STARTUP = "libc-startup"  # libc's start-up writes into its own data (R-G9, R-M6, R-S3)
    CONSTRUCTOR = "constructor"  # a library initialiser's writes (R-G12): a calibrated guess
    # After main, by the libc functions the program links (R-A1..R-A3): calibrated per libc.
    LIBC_HEAP = "libc-heap"  # malloc's first pages, opendir's DIR buffer, NSS
    STDIO_BUFFER = "stdio-buffer"  # a stream's buffer, malloc'd on its first read or write
    STACK_AFTER_MAIN = "stack-after-main"  # libc functions' frames deeper than start-up's
    POSSIBLE_WRITE = "possible-write"  # writable page nothing is known to write (high bound)


Phase = Literal["entry", "idle", "possible"]


class PageCost(msgspec.Struct, frozen=True, kw_only=True):
    """Exactly one per predicted private-dirty page of an object."""

    vaddr: int | None  # page-aligned link-time address; None: calibrated, location unknown
    cause: Cause
    certain: bool  # derived from relocations or layout (True) or calibrated (False)
    phase: Phase  # written before AT_ENTRY, by idle after start-up, or only possibly
    detail: str  # "37 x R_X86_64_RELATIVE", "memset 0x3e14..0x4000"
    sections: tuple[str, ...] = ()
    reloc_count: int = 0
    reloc_types: tuple[str, ...] = ()


class Range(msgspec.Struct, frozen=True, kw_only=True):
    """Four figures, in bytes: written by AT_ENTRY, lower bound, expected when idle, upper bound."""

    at_entry: Bytes
    low: Bytes
    expected: Bytes
    high: Bytes

    def __add__(self, other: Range) -> Range:
        return Range(
            at_entry=self.at_entry + other.at_entry,
            low=self.low + other.low,
            expected=self.expected + other.expected,
            high=self.high + other.high,
        )

    def scaled(self, n: int) -> Range:
        return Range(
            at_entry=self.at_entry * n,
            low=self.low * n,
            expected=self.expected * n,
            high=self.high * n,
        )


ZERO = Range(at_entry=0, low=0, expected=0, high=0)


class ObjectEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """The predicted dirty pages of one object, each with its cause, and their totals."""

    path: str
    soname: str | None
    role: Role
    writable_pages: int  # pages of PT_LOAD segments that are or become writable
    pages: tuple[PageCost, ...]  # sorted by vaddr, one per page
    private_dirty: Range
    shared_clean: int  # file-backed read-only pages expected resident (text/rodata), bytes
    notes: tuple[str, ...] = ()
    # Possible-write pages beyond the listing limit: in `high`, not in `pages` (a writable
    # segment of a gigabyte of .bss is a count, not a quarter of a million entries).
    possible_unlisted: int = 0


class ProcessItem(msgspec.Struct, frozen=True, kw_only=True):
    """A per-process anonymous item: stack, heap, TLS, the loader's heap."""

    name: str
    private_dirty: Range
    certain: bool
    detail: str
    # Pages predicted from the libc functions the program links (cost/aftermain.py), each with
    # its cause and the import behind it: phase "idle" in `expected`, "possible" only in
    # `high`. Anonymous memory has no link-time address: vaddr is None.
    pages: tuple[PageCost, ...] = ()


class Estimate(msgspec.Struct, frozen=True, kw_only=True):
    """One process: every object in load order, the process-wide items and the total."""

    binary: str
    page_size: int
    machine: str
    loader_family: LoaderFamily
    loader_path: str | None
    profile: str  # name of the calibrated profile used
    objects: tuple[ObjectEstimate, ...]  # in load order
    process: tuple[ProcessItem, ...]
    missing: tuple[Resolution, ...]
    warnings: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = msgspec.field(default=())
    # Of the libc functions the profile asks about, those each object links, by object file
    # name (cost/aftermain.py): kept for the what-ifs, which relink the same program.
    libc_imports: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def total(self) -> Range:
        total = ZERO
        for o in self.objects:
            total = total + o.private_dirty
        for p in self.process:
            total = total + p.private_dirty
        return total

    @property
    def shared_clean(self) -> int:
        return sum(o.shared_clean for o in self.objects)
