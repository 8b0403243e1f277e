"""`elfcost diff --archive OLD NEW`: two archives (repo.py), each scanned as one root, compared
package by package (analysis.diff_archives renders nothing, report/diffout.py renders it)."""

from __future__ import annotations

import os
from contextlib import nullcontext

from elfcost import analysis
from elfcost.documents import DiffArchivesDoc
from elfcost.errors import Each, ElfcostError, InputError
from elfcost.pipeline import AS_BUILT, Scenario
from elfcost.scan.run import Scan, ScanOptions


def diff_archives(
    old: str,
    new: str,
    scenario: Scenario = AS_BUILT,
    *,
    instances: int = 1,
    jobs: int | None = None,
    each: Each = nullcontext,
) -> DiffArchivesDoc:
    """elfcost.diff-archives/1 of two archives (scan/repo.py: directories of packages or
    Debian repositories), each scanned as one root. A package or program that could not be
    analysed is raised under `each` and compared as absent."""
    for side in (old, new):
        if not os.path.isdir(side):
            raise InputError(side, "", "not a directory: an archive is a directory of packages")
    sides = []
    for side in (old, new):
        sc = Scan(
            [side],
            ScanOptions(
                archive=True,
                page_size=scenario.page_size,
                assume=scenario.assume,  # type: ignore[arg-type]  # one of --assume's
                jobs=jobs,
                no_cache=True,
            ),
        )
        programs = []
        for r in sc.results():
            if r.error is not None:
                with each():
                    raise ElfcostError(r.path, "", r.error.removeprefix(f"{r.path}: "))
            elif r.doc is not None and r.package is not None:
                programs.append((r.package, r.loader_path, r.doc.total.private_dirty.expected))
        roots = sc.summary.archive_roots
        if not roots:  # the archive itself was refused (no package in it): raised above
            raise InputError(side, "", "no archive to compare")
        sides.append((roots[0], programs))
    (a, pa), (b, pb) = sides
    return analysis.diff_archives(a, b, pa, pb, instances=instances)
