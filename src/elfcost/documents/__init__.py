"""The JSON documents elfcost writes and reads back, as frozen msgspec Structs.

JSON output is an API. Each document is one Struct here, tagged with its name and version in a
`"schema"` field (`elfcost.estimate/1`, ...), so encoding writes the tag first and decoding
checks it: a saved report, a scan's JSON Lines, a cache entry or a baseline is decoded back into
its Struct with validation, and a malformed one is a clean error naming the file. The schema
files under report/schema/ are generated from these Structs (`make schemas`), never edited.

Sizes are integers in bytes, addresses integers. Field order is the order in the JSON.

The documents of `elfcost estimate` (and `deps`, and an error in their place) are defined here;
each other command's are in a module of this package (measurement, machine, comparison, check,
scan, diff), imported when one of their names is first used: `elfcost.documents.ScanDoc` names
every document, and an estimate does not make the fifty Structs it never writes.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec

from elfcost.errors import InputError
from elfcost.model import Attempt, Cause, LoaderFamily, Phase, Range, Role

if TYPE_CHECKING:  # the names of the other modules, as the type checker sees them
    # One statement per module, each name re-exported (`X as X`).
    # isort: off
    from elfcost.documents.check import (
        WaiverDoc as WaiverDoc,
        ViolationDoc as ViolationDoc,
        CheckedBinary as CheckedBinary,
        Skipped as Skipped,
        CheckDoc as CheckDoc,
    )
    from elfcost.documents.comparison import (
        MismatchDoc as MismatchDoc,
        ComparedObject as ComparedObject,
        PredictedTotal as PredictedTotal,
        ComparedTotal as ComparedTotal,
        ComparisonDoc as ComparisonDoc,
    )
    from elfcost.documents.diff import (
        DiffObject as DiffObject,
        DiffProcess as DiffProcess,
        DiffTotal as DiffTotal,
        DiffFleet as DiffFleet,
        DiffDoc as DiffDoc,
        DiffProgram as DiffProgram,
        DiffPackage as DiffPackage,
        DiffArchivesDoc as DiffArchivesDoc,
        DiffRootsDoc as DiffRootsDoc,
    )
    from elfcost.documents.machine import (
        MachineProgram as MachineProgram,
        MachineLibrary as MachineLibrary,
        MachineProcess as MachineProcess,
        MachineTotal as MachineTotal,
        MachineLinkage as MachineLinkage,
        RelinkProgram as RelinkProgram,
        MachineRelink as MachineRelink,
        MachineSkipped as MachineSkipped,
        MachineDoc as MachineDoc,
    )
    from elfcost.documents.measurement import (
        UsageDoc as UsageDoc,
        MeasuredObject as MeasuredObject,
        MeasuredBucket as MeasuredBucket,
        Stop as Stop,
        MeasurementDoc as MeasurementDoc,
        GroupRow as GroupRow,
        MeasurementGroupDoc as MeasurementGroupDoc,
    )
    from elfcost.documents.scan import (
        ScanResultDoc as ScanResultDoc,
        InstalledPackage as InstalledPackage,
        ArchiveRoot as ArchiveRoot,
        ScanSummary as ScanSummary,
        ProgramCost as ProgramCost,
        WhatIfTotal as WhatIfTotal,
        LibraryCost as LibraryCost,
        Ranking as Ranking,
        ScanDoc as ScanDoc,
    )
    # isort: on

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


# -- elfcost.error/1 -------------------------------------------------------------------------------


class ErrorDoc(Doc, frozen=True, tag_field="schema", tag="elfcost.error/1"):
    """An input that could not be analysed, in a JSON output (`--format json`/`jsonl`) in its
    place: the line stderr has too, without `elfcost: error: `, and the exit status it sets."""

    path: str | None  # the input (or a file read for it); None for an error in elfcost
    message: str
    exit_code: int


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
    if not pretty:
        return encode_line(doc).decode()
    try:
        raw = msgspec.json.encode(doc)
    except UnicodeEncodeError:
        import json  # the rare document with a name that is not UTF-8

        return json.dumps(msgspec.to_builtins(doc), indent=2, ensure_ascii=True)
    return msgspec.json.format(raw, indent=2).decode()


def encode_line(doc: msgspec.Struct | dict[str, Any]) -> bytes:
    """`encode(doc, pretty=False)` as UTF-8 bytes: what a scan's worker sends and caches (a
    program's document is ~60 kB; no round trip through str on the way)."""
    try:
        return msgspec.json.encode(doc)
    except UnicodeEncodeError:
        import json  # as in encode

        return json.dumps(
            msgspec.to_builtins(doc), separators=(",", ":"), ensure_ascii=True
        ).encode()


# A \udc80-\udcff escape: a byte of a name that is not UTF-8, as encode() writes it.
_ESCAPED_BYTE = re.compile(rb"\\u[dD][cC][89a-fA-F][0-9a-fA-F]")


def _raw(data: bytes | str) -> bytes:
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data


_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, which RFC 8259 lets a reader ignore


def _json_decode(data: bytes | str, kind: Any) -> Any:
    """msgspec's decode, validated as `kind`; a document holding a name that is not UTF-8
    (written by encode() with \\udcXX escapes, which msgspec's decoder refuses as a lone
    surrogate) is parsed by Python's json module, then validated the same way (convert). Not
    JSON either way: msgspec's own error, which says where. A leading byte order mark (an
    editor's, on a hand-edited baseline) is skipped."""
    data = _raw(data).removeprefix(_BOM)
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError as exc:
        if not _ESCAPED_BYTE.search(data):
            raise
        import json  # the rare document with such a name

        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            raise exc from None
    try:
        return msgspec.convert(value, type=kind)
    except UnicodeEncodeError:
        # msgspec cannot print such a text where a number or a flag was expected: the same
        # conversion with each \\udcXX shown as its escape raises the error it meant, with
        # the field's path.
        msgspec.convert(_escaped(value), type=kind)
        raise msgspec.ValidationError("a text that is not UTF-8 where it is not allowed") from None


def _escaped(value: Any) -> Any:
    """`value` (as json.loads gives it) with every lone surrogate in its texts as \\udcXX."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    return value


def decode(data: bytes | str, kind: type[T], *, source: str) -> T:
    """`data` as a `kind` document, validated; a clean InputError naming `source` if it is
    not one (not JSON, another document, a missing or mistyped field)."""
    try:
        result: T = _json_decode(data, kind)
        return result
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
        doc = _json_decode(data, EstimateDoc | EstimateDoc2 | EstimateDoc1)
    except msgspec.ValidationError as exc:
        raise InputError(
            source, "not an elfcost.estimate/3 (or /2, /1) document", str(exc)
        ) from None
    except msgspec.DecodeError as exc:
        if b"\n{" in _raw(data).strip():  # `--format json` of several binaries: JSON Lines
            why = "JSON Lines of several documents: one estimate is read"
            raise InputError(source, "not one document", why) from None
        raise InputError(source, "not JSON", str(exc)) from None
    except RecursionError:
        raise InputError(source, "not JSON", TOO_DEEP) from None
    return estimate_of(doc)


def _name(kind: type[Any]) -> str:
    if kind is Baseline:  # a plain mapping, not a Struct with a tag
        return "elfcost baseline"
    tag = getattr(kind, "__struct_config__", None)
    return str(tag.tag) if tag is not None and tag.tag else kind.__name__


# Where each document defined elsewhere is: its name → its module in this package.
_ELSEWHERE = {
    "UsageDoc": "measurement",
    "MeasuredObject": "measurement",
    "MeasuredBucket": "measurement",
    "Stop": "measurement",
    "MeasurementDoc": "measurement",
    "GroupRow": "measurement",
    "MeasurementGroupDoc": "measurement",
    "MachineProgram": "machine",
    "MachineLibrary": "machine",
    "MachineProcess": "machine",
    "MachineTotal": "machine",
    "MachineLinkage": "machine",
    "RelinkProgram": "machine",
    "MachineRelink": "machine",
    "MachineSkipped": "machine",
    "MachineDoc": "machine",
    "MismatchDoc": "comparison",
    "ComparedObject": "comparison",
    "PredictedTotal": "comparison",
    "ComparedTotal": "comparison",
    "ComparisonDoc": "comparison",
    "WaiverDoc": "check",
    "ViolationDoc": "check",
    "CheckedBinary": "check",
    "Skipped": "check",
    "CheckDoc": "check",
    "ScanResultDoc": "scan",
    "InstalledPackage": "scan",
    "ArchiveRoot": "scan",
    "ScanSummary": "scan",
    "ProgramCost": "scan",
    "WhatIfTotal": "scan",
    "LibraryCost": "scan",
    "Ranking": "scan",
    "ScanDoc": "scan",
    "DiffObject": "diff",
    "DiffProcess": "diff",
    "DiffTotal": "diff",
    "DiffFleet": "diff",
    "DiffDoc": "diff",
    "DiffProgram": "diff",
    "DiffPackage": "diff",
    "DiffArchivesDoc": "diff",
    "DiffRootsDoc": "diff",
}


if not TYPE_CHECKING:  # the type checker sees the names imported above, and no other

    def __getattr__(name: str) -> Any:
        """A document of another command: its module imported on first use (PEP 562)."""
        module = _ELSEWHERE.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
