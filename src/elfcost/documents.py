"""The JSON documents elfcost writes and reads back, as frozen msgspec Structs.

JSON output is an API. Each document is one Struct here, tagged with its name and version in a
`"schema"` field (`elfcost.estimate/1`, ...), so encoding writes the tag first and decoding
checks it: a saved report, a scan's JSON Lines, a cache entry or a baseline is decoded back into
its Struct with validation, and a malformed one is a clean error naming the file. The schema
files under report/schema/ are generated from these Structs (`make schemas`), never edited.

Sizes are integers in bytes, addresses integers. Field order is the order in the JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from elfcost.errors import InputError
from elfcost.model import Attempt, Cause, LoaderFamily, Phase, Range, Role

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
PageSize = Literal[4096, 16384, 65536]


class Doc(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A part of a document: immutable, keyword-built, and strict when read back (a field
    this version does not know is an error, not silently dropped)."""


class Loader(Doc, frozen=True):
    family: LoaderFamily
    path: str | None


class Missing(Doc, frozen=True):
    """A DT_NEEDED entry no candidate satisfied, with every path the loader would try."""

    needed: str
    parent: str
    tried: tuple[Attempt, ...]


# -- elfcost.deps/1 ----------------------------------------------------------------------------


class DepsObject(Doc, frozen=True):
    path: str
    soname: str | None
    role: Role
    needed: tuple[str, ...]
    found_via: str
    parent: str | None
    machine: str
    elf_class: Literal[32, 64]


class DepsDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.deps/1"):
    """`elfcost deps --format json`: the loader's load order and how each object was found."""

    binary: str
    loader: Loader
    objects: tuple[DepsObject, ...]
    missing: tuple[Missing, ...]
    warnings: tuple[str, ...]


# -- elfcost.estimate/3 ------------------------------------------------------------------------


class PageDoc(Doc, frozen=True):
    """One predicted private-dirty page and why (`cause` is a name of `elfcost causes`)."""

    vaddr: Annotated[
        int | None,
        msgspec.Meta(
            description="page address (link-time); null: calibrated page whose location is "
            "unknown for this build"
        ),
    ]
    cause: Cause
    certain: bool
    phase: Phase
    detail: str
    sections: tuple[str, ...] = ()
    relocations: NonNegative = 0
    relocation_types: tuple[str, ...] = ()


class ObjectDoc(Doc, frozen=True):
    path: str
    soname: str | None
    role: Role
    writable_pages: NonNegative
    pages: tuple[PageDoc, ...]
    private_dirty: Range
    shared_clean: NonNegative
    notes: tuple[str, ...]
    possible_unlisted: Annotated[
        NonNegative,
        msgspec.Meta(
            description="possible-write pages counted in private_dirty.high but not listed in "
            "pages (beyond the listing limit, or not listed by a what-if)"
        ),
    ] = 0


class ProcessDoc(Doc, frozen=True):
    """A per-process item (stack, heap, TLS, the loader's heap): a Range with its reason."""

    at_entry: NonNegative
    low: NonNegative
    expected: NonNegative
    high: NonNegative
    certain: bool
    detail: str
    pages: Annotated[
        tuple[PageDoc, ...],
        msgspec.Meta(
            description="pages predicted from the libc functions the program links (vaddr "
            "null: anonymous), each with its cause and the import behind it; phase idle pages "
            "are in expected, possible ones only in high (new in /3)"
        ),
    ] = ()

    @property
    def private_dirty(self) -> Range:
        return Range(at_entry=self.at_entry, low=self.low, expected=self.expected, high=self.high)


class Fleet(Doc, frozen=True):
    """N instances: private dirty N times, shared clean pages once."""

    instances: Annotated[int, msgspec.Meta(ge=1)]
    shared_clean: int
    private_dirty: Range
    total_expected: int


class Total(Doc, frozen=True):
    private_dirty: Range
    shared_clean: int
    fleet: Fleet


# An --assume value: a relinking or binding what-if, or static-lib=SONAME (a library linked in
# from its static archive; static-lib=all for every library but libc and the loader).
Assume = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(static|musl|glibc|musl-static|glibc-static|bind-now|lazy|static-lib=.+)$"
    ),
]


class SavingDoc(Doc, frozen=True):
    """One remedy (an `--assume` what-if) against the program as built: what it is predicted
    to cost, and what it saves; a negative saving is a cost."""

    assume: Annotated[Assume, msgspec.Meta(description="the --assume value of the what-if")]
    expected: Annotated[
        NonNegative,
        msgspec.Meta(description="the what-if's expected private dirty bytes, one instance"),
    ]
    per_instance: Annotated[
        int, msgspec.Meta(description="expected private dirty bytes saved by one instance")
    ]
    fleet: Annotated[
        int,
        msgspec.Meta(
            description="bytes saved by total.fleet.instances instances, shared clean pages "
            "counted once"
        ),
    ]


class _EstimateFields(Doc, frozen=True):
    """The fields elfcost.estimate/1, /2 and /3 share, in their order (/1 and /2 have no
    process pages: read back, they are empty)."""

    binary: str
    page_size: PageSize
    machine: str
    loader: Loader
    profile: str
    objects: tuple[ObjectDoc, ...]
    process: dict[str, ProcessDoc]
    total: Total
    missing: tuple[Missing, ...]
    warnings: tuple[str, ...]
    assumptions: tuple[str, ...]


class EstimateDoc1(_EstimateFields, frozen=True, tag_field="schema", tag="elfcost.estimate/1"):
    """elfcost.estimate/1, as earlier versions wrote it: still read back (`elfcost diff` of a
    saved report), as an EstimateDoc with `savings` null (`estimate_of`)."""


SavingsField = Annotated[
    tuple[SavingDoc, ...] | None,
    msgspec.Meta(
        description="each --assume what-if that changes anything, the largest saving "
        "first; null: not computed (a what-if's own estimate, scan's per-program estimates)"
    ),
]


class EstimateDoc2(_EstimateFields, frozen=True, tag_field="schema", tag="elfcost.estimate/2"):
    """elfcost.estimate/2, as earlier versions wrote it: /3 less the static-lib=SONAME values
    of `savings[].assume`; still read back, as an EstimateDoc whose process items list
    no pages (`estimate_of`)."""

    savings: SavingsField = None


class EstimateDoc(_EstimateFields, frozen=True, tag_field="schema", tag="elfcost.estimate/3"):
    """`elfcost estimate --format json`: one process, every object in load order, and what
    each remedy saves."""

    savings: SavingsField = None


def estimate_of(doc: EstimateDoc | EstimateDoc2 | EstimateDoc1) -> EstimateDoc:
    """A saved estimate of any version as the current one (/1 has no savings: null; /1 and
    /2 list no process pages)."""
    if isinstance(doc, EstimateDoc):
        return doc
    return EstimateDoc(**msgspec.structs.asdict(doc))


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


# -- elfcost.check/3 ---------------------------------------------------------------------------


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


class CheckDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.check/3"):
    """`elfcost check --format json`: the verdict on every binary."""

    ok: bool
    binaries: tuple[CheckedBinary, ...]
    skipped: Skipped


# -- elfcost.error/1 -------------------------------------------------------------------------------


class ErrorDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.error/1"):
    """An input that could not be analysed, in a JSON output (`--format json`/`jsonl`) in its
    place: the line stderr has too, without `elfcost: error: `, and the exit status it sets."""

    path: str | None  # the input (or a file read for it); None for an error in elfcost
    message: str
    exit_code: int


# -- elfcost.scan-result/2 and elfcost.scan/4 ----------------------------------------------------


class ScanResultDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.scan-result/2"):
    """One line of `elfcost scan --format jsonl`: one program's estimate."""

    path: str
    loader_path: str
    cached: bool
    error: str | None
    package: Annotated[
        str | None,
        msgspec.Meta(description="scan --archive: the package the program comes from"),
    ] = None
    estimate: EstimateDoc | None = None


class InstalledPackage(Doc, frozen=True):
    """One package installed in an archive's root."""

    name: str
    version: str
    file: str  # the package file


class ArchiveRoot(Doc, frozen=True):
    """An archive scanned as one root (`scan --archive`): a directory of packages or a
    Debian repository, every package installed."""

    path: str  # as named
    kind: Literal["repository", "packages"]
    architecture: str | None  # the packages' architecture, as the package format names it
    machine: str | None  # the same, as the kernel names it (uname -m): the root's machine
    packages: tuple[InstalledPackage, ...]
    errors: int = 0  # packages not installed (corrupt, another architecture...), each reported
    conflicts: int = 0  # paths shipped by two packages: the first keeps them


class ScanSummary(Doc, frozen=True):
    """What a scan looked at, counted."""

    files_seen: int = 0  # regular files examined: named, found under directories, unpacked
    elf_files: int = 0
    executables: int = 0  # estimates made: programs, and libraries named explicitly
    libraries: int = 0  # shared libraries found under directories (dependencies, not roots)
    skipped_non_elf: int = 0  # files under directories that are not ELF
    not_loadable: int = 0  # ELF files under directories that no loader maps (object files)
    symlinks: int = 0  # symbolic links under directories, not followed
    duplicates: int = 0  # a file reached again (hard link, named twice): examined once
    archives: int = 0  # archives unpacked
    errors: int = 0  # inputs that could not be analysed (each is a ScanResult with error)
    cache_hits: int = 0
    missing: int = 0  # programs estimated with a library or their interpreter not found
    uncalibrated: int = 0  # programs estimated with another machine's profile
    archive_roots: tuple[ArchiveRoot, ...] = ()  # scan --archive: each archive scanned


class SplitPart(Doc, frozen=True):
    """One part of a program's expected private dirty memory, and what it adds up."""

    expected: NonNegative
    of: Annotated[
        tuple[str, ...],
        msgspec.Meta(description="its objects by file name, its process items as [name]"),
    ]


class Split(Doc, frozen=True):
    """Where a program's expected private dirty memory goes (elfcost.analysis.where_it_goes):
    how much is the program, how much its linkage. The parts add up to the total."""

    program: Annotated[SplitPart, msgspec.Meta(description="the executable and its own libraries")]
    libc: Annotated[
        SplitPart,
        msgspec.Meta(
            description="libc's objects and the dynamic loader: what a static link replaces"
        ),
    ]
    loader: Annotated[SplitPart, msgspec.Meta(description="the dynamic loader's heap and TLS")]
    process: Annotated[
        SplitPart, msgspec.Meta(description="the stack, the heap and any other process item")
    ]

    @property
    def parts(self) -> tuple[tuple[str, SplitPart], ...]:
        """(field name, part) in the order every report shows them."""
        return (
            ("program", self.program),
            ("libc", self.libc),
            ("loader", self.loader),
            ("process", self.process),
        )

    @property
    def total(self) -> int:
        return sum(p.expected for _, p in self.parts)


class ProgramCost(Doc, frozen=True):
    """One program of a scan, by its expected private dirty memory."""

    path: str
    private_dirty: int  # expected bytes, one instance
    high: int
    objects: int
    at_entry: int
    low: int
    shared_clean: int  # file-backed pages, shared by every instance
    split: Split  # where private_dirty goes
    missing: Annotated[
        tuple[str, ...],
        msgspec.Meta(
            description="libraries (DT_NEEDED names, each once) and the interpreter not found: "
            "the estimate leaves them out"
        ),
    ] = ()
    uncalibrated: Annotated[
        bool,
        msgspec.Meta(
            description="the start-up figures come from another machine's profile: approximate"
        ),
    ] = False
    instances: Annotated[
        int,
        msgspec.Meta(description="instances it runs as (scan --weights; 1 when not given)"),
    ] = 1


class WhatIfTotal(Doc, frozen=True):
    """One what-if summed over a scan's programs (scan --remedies): what it saves in all."""

    assume: Assume
    programs: int  # programs it applies to
    saved: int  # expected private dirty bytes saved, each program times its instances
    instances: int  # the instances of those programs


class LibraryCost(Doc, frozen=True):
    """One library of a scan: its cost summed over the programs that load it."""

    path: str  # the loader path, prefixed like the programs' paths in a root or archive
    soname: str | None
    private_dirty: int  # expected bytes summed over the programs that load it, x instances
    programs: tuple[str, ...]  # reverse dependencies: every program that loads it
    role: Role  # the interpreter counts as a library: every dynamic program pays for it
    per_process: Annotated[
        int,
        msgspec.Meta(
            description="expected bytes in one process: the most any of those programs pays"
        ),
    ]


class Ranking(Doc, frozen=True):
    programs: tuple[ProgramCost, ...]  # most expensive first (times their instances)
    libraries: tuple[LibraryCost, ...]
    savings: tuple[WhatIfTotal, ...] = ()  # scan --remedies: the largest total saving first


class ScanDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.scan/4"):
    """`elfcost scan --format json` (and the last line of `--format jsonl`): the counts and
    the ranking."""

    summary: ScanSummary
    ranking: Ranking


# -- elfcost check's baseline ------------------------------------------------------------------

# A plain JSON object, binary path → expected private dirty bytes (the ratchet of `check
# --baseline`); kept untagged so baselines written by earlier versions still read.
Baseline = dict[str, NonNegative]


# -- reading documents back --------------------------------------------------------------------

# A saved document is read whole; past this it is not one elfcost wrote for a single program.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024

T = TypeVar("T")


def encode(doc: msgspec.Struct | dict[str, Any], *, pretty: bool = True) -> str:
    """A document as JSON text: indented for one document, one line for JSON Lines.

    A name that is not UTF-8 (a DT_NEEDED string, a file name) arrives as a str with lone
    surrogates (os.fsdecode), which UTF-8 cannot carry; such a document is written with
    those characters escaped (\\udcXX), as Python's json module writes them.
    """
    try:
        raw = msgspec.json.encode(doc)
    except UnicodeEncodeError:
        import json  # the rare document with a name that is not UTF-8

        builtins = msgspec.to_builtins(doc)
        if pretty:
            return json.dumps(builtins, indent=2, ensure_ascii=True)
        return json.dumps(builtins, separators=(",", ":"), ensure_ascii=True)
    return (msgspec.json.format(raw, indent=2) if pretty else raw).decode()


def decode(data: bytes | str, kind: type[T], *, source: str) -> T:
    """`data` as a `kind` document, validated; a clean InputError naming `source` if it is
    not one (not JSON, another document, a missing or mistyped field)."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise InputError(source, f"not an {_name(kind)} document", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InputError(source, "not JSON", str(exc)) from None
    except RecursionError:
        raise InputError(source, "not JSON", TOO_DEEP) from None


# msgspec decodes (and skips) nested arrays and objects recursively: a thousand levels of them
# end in RecursionError, which no elfcost document comes near.
TOO_DEEP = "arrays or objects nested too deeply"


def decode_estimate(data: bytes | str, *, source: str) -> EstimateDoc:
    """A saved estimate report, elfcost.estimate/3, /2 or /1 (read as /3: `savings` null for
    /1, no process pages for /1 and /2)."""
    try:
        doc = msgspec.json.decode(data, type=EstimateDoc | EstimateDoc2 | EstimateDoc1)
    except msgspec.ValidationError as exc:
        raise InputError(
            source, "not an elfcost.estimate/3 (or /2, /1) document", str(exc)
        ) from None
    except msgspec.DecodeError as exc:
        raise InputError(source, "not JSON", str(exc)) from None
    except RecursionError:
        raise InputError(source, "not JSON", TOO_DEEP) from None
    return estimate_of(doc)


def _name(kind: type[Any]) -> str:
    if kind is Baseline:  # a plain mapping, not a Struct with a tag
        return "elfcost baseline"
    tag = getattr(kind, "__struct_config__", None)
    return str(tag.tag) if tag is not None and tag.tag else kind.__name__


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
