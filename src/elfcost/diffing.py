"""`elfcost diff` as a library: two builds, each a binary, a saved estimate report or a tree.

Each side becomes an elfcost.estimate/1 document (a saved report decoded with validation, or
made by analysing the binary); two trees are paired by the programs' paths relative to their
tops. analysis.diff and analysis.diff_roots compare; report/diffout.py renders.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext

from msgspec.structs import replace

from elfcost import analysis
from elfcost.documents import (
    MAX_DOCUMENT_BYTES,
    DiffDoc,
    DiffRootsDoc,
    EstimateDoc,
    decode_estimate,
)
from elfcost.elf.reader import ELF_MAGIC
from elfcost.errors import Each, ElfcostError, InputError
from elfcost.files import open_regular, read_bounded
from elfcost.pipeline import AS_BUILT, Scenario, analyse, programs_in
from elfcost.report import jsonout
from elfcost.resolve.host import Host

_BOM = b"\xef\xbb\xbf"
_JSON_STARTS = b'{["-0123456789tfn'


def estimate_doc_of(side: str, host: Host, scenario: Scenario = AS_BUILT) -> EstimateDoc:
    """A saved estimate JSON report (decoded with validation), or a fresh analysis of a
    binary (inside `host`'s root: named as the program sees it there, or by its path on this
    machine; a report may also be outside the root)."""
    file = (host.user_file(side) if host.confined else None) or side
    fd, _ = open_regular(file)  # a FIFO or a device is refused here, never read
    try:
        head = os.pread(fd, 64, 0)
    except OSError as exc:
        raise InputError(side, "", exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    # Text that starts as JSON does (a value, after white space or a UTF-8 byte order mark,
    # which RFC 8259 lets a reader ignore) is a report, whatever it holds: its error says
    # what is wrong with it ("not an elfcost.estimate/3 document"), not "not an ELF file".
    text = head.removeprefix(_BOM).lstrip()
    if not head.startswith(ELF_MAGIC) and text[:1] and text[:1] in _JSON_STARTS:
        data = read_bounded(file, "saved report", MAX_DOCUMENT_BYTES)
        return decode_estimate(data, source=side)  # (a byte order mark skipped there too)
    return jsonout.estimate_doc(analyse(host.loader_path(side), host, scenario).estimate)


def diff_builds(
    old: str,
    new: str,
    old_host: Host,
    new_host: Host,
    scenario: Scenario = AS_BUILT,
    *,
    instances: int = 1,
) -> DiffDoc:
    """elfcost.diff/1 of two binaries or saved reports; their page sizes must agree."""
    a = estimate_doc_of(old, old_host, scenario)
    b = estimate_doc_of(new, new_host, scenario)
    if a.page_size != b.page_size:
        raise ElfcostError(
            new,
            "",
            f"page size {b.page_size} differs from {old}'s {a.page_size}: compare like with like",
        )
    return analysis.diff(a, b, instances=instances)


def pair_trees(
    old: str, old_programs: Sequence[str], new: str, new_programs: Sequence[str]
) -> list[tuple[str, str | None, str | None]]:
    """(path relative to the tops, old program or None, new program or None), by that path."""
    rel_old = {os.path.relpath(p, old): p for p in old_programs}
    rel_new = {os.path.relpath(p, new): p for p in new_programs}
    return [(rel, rel_old.get(rel), rel_new.get(rel)) for rel in sorted({*rel_old, *rel_new})]


def diff_trees(
    pairs: Sequence[tuple[str, str | None, str | None]],
    old_host: Host,
    new_host: Host,
    scenario: Scenario = AS_BUILT,
    *,
    instances: int = 1,
    each: Each = nullcontext,
) -> DiffRootsDoc:
    """elfcost.diff-roots/1 of paired programs (pair_trees). `each` runs each side's analysis;
    a side that could not be analysed is compared as absent."""
    docs: list[tuple[str, EstimateDoc | None, EstimateDoc | None]] = []
    for rel, old, new in pairs:
        sides: list[EstimateDoc | None] = []
        for path, host in ((old, old_host), (new, new_host)):
            doc = None
            if path is not None:
                with each():
                    doc = estimate_doc_of(path, host, scenario)
            sides.append(doc)
        docs.append((rel, sides[0], sides[1]))
    return analysis.diff_roots(docs, instances=instances)


def diff(
    old: str,
    new: str,
    host: Host,
    scenario: Scenario = AS_BUILT,
    *,
    new_root: str | None = None,
    instances: int = 1,
    each: Each = nullcontext,
) -> DiffDoc | DiffRootsDoc:
    """`elfcost diff`: two directory trees (diff_trees, each program under `each`), else two
    binaries or saved reports (diff_builds). NEW is resolved inside `new_root` when given,
    else in `host`'s root as OLD is."""
    new_host = host if new_root is None else replace(host, root=new_root)
    tops = [(h.user_file(p) if h.confined else p) or p for p, h in ((old, host), (new, new_host))]
    if all(os.path.isdir(t) for t in tops):
        found = [programs_in([t], each=each) for t in tops]
        pairs = pair_trees(tops[0], found[0].programs, tops[1], found[1].programs)
        return diff_trees(pairs, host, new_host, scenario, instances=instances, each=each)
    return diff_builds(old, new, host, new_host, scenario, instances=instances)
