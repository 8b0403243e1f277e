"""The dynamic section's strings, elfcost's reader against LIEF (an independent parser).

The reader takes the strings DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH and the version
tables point at from the first STRTAB_WINDOW bytes of .dynstr when they lie there, and reads
any other on its own: the host's libraries hold both kinds.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from elfcost.elf import reader
from elfcost.elf.reader import read_dso
from elfcost.model import DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, Dso

lief = pytest.importorskip("lief")
pytestmark = pytest.mark.integration

LIBDIR = Path("/lib/x86_64-linux-gnu")
STRING_TAGS = (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH)
MAX_BYTES = 4 << 20  # LIEF parses a whole file: the smaller libraries keep the test quick


def _libraries() -> list[tuple[Dso, int]]:
    """Host libraries with their furthest dynamic string's offset in .dynstr."""
    out = []
    for f in sorted(os.listdir(LIBDIR)) if LIBDIR.is_dir() else ():
        p = LIBDIR / f
        if ".so" not in f or p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_BYTES:
            continue
        try:
            d = read_dso(str(p))
        except Exception:
            continue
        if d.dynamic is None:
            continue
        offsets = [e.value for e in d.dynamic.entries if e.tag in STRING_TAGS]
        if offsets:
            out.append((d, max(offsets)))
    return out


def _lief_strings(path: str) -> dict[str, object]:
    b = lief.ELF.parse(path)
    tag = lief.ELF.DynamicEntry.TAG
    entries = list(b.dynamic_entries)

    def paths(t: object) -> list[str]:
        return [p for e in entries if e.tag == t for p in e.paths]

    soname = [e.name for e in entries if e.tag == tag.SONAME]
    return {
        "needed": [e.name for e in entries if e.tag == tag.NEEDED],
        "soname": soname[-1] if soname else None,
        "rpath": paths(tag.RPATH),
        "runpath": paths(tag.RUNPATH),
        "verneed": [
            (v.name, sorted(a.name for a in v.get_auxiliary_symbols()))
            for v in b.symbols_version_requirement
        ],
    }


def _elfcost_strings(d: Dso) -> dict[str, object]:
    dyn = d.dynamic
    assert dyn is not None
    return {
        "needed": list(dyn.needed),
        "soname": dyn.soname,
        "rpath": list(dyn.rpath),
        "runpath": list(dyn.runpath),
        "verneed": [(v.file, sorted(v.versions)) for v in dyn.verneed],
    }


def test_dynamic_strings_inside_and_beyond_the_window_match_lief() -> None:
    libs = _libraries()
    beyond = [d for d, furthest in libs if furthest >= reader.STRTAB_WINDOW][:12]
    inside = [d for d, furthest in libs if furthest < reader.STRTAB_WINDOW][:12]
    if not beyond or not inside:
        pytest.skip(f"{LIBDIR}: no library with dynamic strings both sides of the window")
    for d in beyond + inside:
        assert _elfcost_strings(d) == _lief_strings(d.file), d.file


def test_a_read_without_version_tables_differs_only_in_them() -> None:
    """versions=False (a scan's calling process classifying what it finds): the same object
    but DT_VERNEED and DT_VERDEF, which the full read has as LIEF does."""
    libs = [d for d, _ in _libraries() if d.dynamic is not None and d.dynamic.verneed][:12]
    if not libs:
        pytest.skip(f"{LIBDIR}: no library that needs symbol versions")
    for d in libs:
        lean = read_dso(d.file, versions=False)
        assert lean.dynamic is not None and d.dynamic is not None
        assert lean.dynamic.verneed == () and lean.dynamic.verdef is None, d.file
        assert _elfcost_strings(d)["verneed"] == _lief_strings(d.file)["verneed"], d.file
        whole = msgspec.structs.replace(lean.dynamic, verneed=d.dynamic.verneed)
        whole = msgspec.structs.replace(whole, verdef=d.dynamic.verdef)
        assert msgspec.structs.replace(lean, dynamic=whole) == d, d.file
    assert any(d.dynamic is not None and d.dynamic.verdef for d in libs)  # both tables met
