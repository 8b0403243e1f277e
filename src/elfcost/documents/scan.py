"""elfcost.scan-result/2 and elfcost.scan/4 (`elfcost scan`): programs by their cost.

A part of elfcost.documents (see there), imported when one of its names is first used."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from elfcost.documents import Assume, Doc, EstimateDoc, Split
from elfcost.model import Role

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
