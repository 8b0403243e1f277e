"""The numpy paths a scan takes once numpy is loaded give what the plain-Python paths give, on
real objects of this machine: relocation records by address (relocs.records_at) and the
function symbols by address (ctors._Symbols), aliases included. Which path runs depends on
what the process analysed before, so any difference would make a result depend on the order
of a scan's files. Likewise the constructor disassembly's direct reading of capstone's
structures (ctors._Lean) gives, instruction by instruction, what reading them through
capstone's Python objects gives (ctors._convert, used with another capstone release), and
the writes recorded while the blocks run to their fixed point are those a run after it
records."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from elfcost.elf import ctors
from elfcost.elf.facts import InitWrites
from elfcost.elf.reader import opened, read_dso
from elfcost.elf.relocs import records_at
from elfcost.model import Dso, Prot

pytestmark = pytest.mark.integration

# C++ libraries and programs: thousands of records and symbols, constructors with aliases
# (C1/C2) at one address.
CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
    "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
    "/usr/bin/c++filt",
    "/usr/bin/gdb",
    "/usr/bin/node",
)


def objects() -> list[Dso]:
    found = [p for p in CANDIDATES if os.path.isfile(p)]
    found += sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libicu*.so.*"))[:2]
    if len(found) < 2:
        pytest.skip("too few C++ objects on this machine")
    return [read_dso(os.path.realpath(p), path=p) for p in found]


def writable(dso: Dso) -> list[tuple[int, int]]:
    return [(s.vaddr, s.vaddr + s.memsz) for s in dso.loads if s.flags & Prot.W]


@pytest.mark.parametrize("symbolic_anywhere", [True, False])
def test_records_at_numpy_equals_python(symbolic_anywhere: bool) -> None:
    compared = 0
    for dso in objects():
        ranges = writable(dso)
        python = records_at(dso, ranges, symbolic_anywhere=symbolic_anywhere, small=1 << 40)
        numpy = records_at(dso, ranges, symbolic_anywhere=symbolic_anywhere, small=0)
        assert numpy == python, dso.path
        compared += len(python)
    assert compared > 1000


def test_records_at_overlapping_and_empty_ranges() -> None:
    # The init arrays and the GOT, as ctors asks: small ranges, here overlapping, nested,
    # touching and empty ones too; the Python path bisects merged ranges, numpy tests each.
    compared = 0
    for dso in objects():
        ranges = []
        for a, b in writable(dso):
            mid = (a + b) // 2
            ranges += [(a, a + 64), (a + 32, a + 96), (a + 40, a + 48), (a + 96, a + 128)]
            ranges += [(mid, mid), (mid + 8, mid), (b - 24, b + 8)]
        python = records_at(dso, ranges, symbolic_anywhere=False, small=1 << 40)
        numpy = records_at(dso, ranges, symbolic_anywhere=False, small=0)
        assert numpy == python, dso.path
        compared += len(python)
    assert compared > 10


@contextlib.contextmanager
def symbols(dso: Dso) -> Iterator[tuple[ctors._Symbols, list[int]]]:
    """`dso`'s function symbols, read as the analysis reads them (its file open while they are
    asked about: a large string table is read a name at a time), and their addresses."""
    with opened(dso.file) as (fd, _):
        s = ctors._Symbols(dso, fd)
        s._read_names()
        assert s._values is not None
        yield s, sorted(set(s._values))


def test_symbol_index_numpy_equals_python(monkeypatch: pytest.MonkeyPatch) -> None:
    aliases = 0
    for dso in objects():
        indexes = []
        for large in (1 << 40, 0):  # every table in Python, then every table in numpy
            monkeypatch.setattr(ctors, "LARGE_SYMBOL_TABLE", large)
            monkeypatch.setattr(ctors, "LARGE_SYMBOL_TABLE_NUMPY_LOADED", large)
            with symbols(dso) as (s, values):
                # what the analysis asks: each address's names in order, and whether a
                # function starts there (an address between symbols too)
                indexes.append(
                    (
                        values,
                        [s.names(v) for v in values],
                        [s.function_at(v) for v in values],
                        [s.function_at(v + 1) for v in values],
                    )
                )
        assert indexes[0] == indexes[1], dso.path
        values = indexes[0][0]
        aliases += sum(len(names) > 1 for names in indexes[0][1])
    assert aliases > 0  # the order among names at one address was compared


def test_names_read_a_piece_at_a_time_equal_the_whole_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large string table is read a name at a time (ctors._Symbols._string), in pieces of
    STRING_PIECE bytes: every function's names are those the whole table gives, with pieces
    short enough that most names cross one."""
    compared = 0
    for dso in objects():
        found = []
        for small, piece in ((1 << 40, 512), (0, 7)):
            monkeypatch.setattr(ctors, "SMALL_STRING_TABLE", small)
            monkeypatch.setattr(ctors, "STRING_PIECE", piece)
            with symbols(dso) as (s, values):
                found.append([s.names(v) for v in values])
        assert found[0] == found[1], dso.path
        compared += sum(len(names) for names in found[0])
    assert compared > 1000


def test_shared_instructions_are_not_tracked_by_the_garbage_collector() -> None:
    """The instructions kept across objects (ctors._SHARED_INSNS), their operands and the
    tuples holding them are not walked by the garbage collector: a scan's full collections
    would walk them all, each time."""
    import gc

    ctors._SHARED_INSNS.clear()
    for d in objects():
        with opened(d.file) as (fd, _):
            ctors.initialiser_writes(d, fd)
    gc.collect()
    shared = list(ctors._SHARED_INSNS.values())
    assert len(shared) > 100
    for insn in shared:
        held = (insn, insn.ops, insn.stores, insn.written, *insn.ops)
        assert not any(gc.is_tracked(x) for x in held), insn


def test_instructions_shared_between_objects_change_no_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Converted instructions are shared by their bytes across objects (ctors._SHARED_INSNS):
    each object's initialiser writes are the same analysed alone, unshared, and after the
    others in either order."""
    dsos = [d for d in objects() if d.dynamic is not None]

    def analyse(order: list[Dso]) -> dict[str, InitWrites]:
        out: dict[str, InitWrites] = {}
        for d in order:
            with opened(d.file) as (fd, _):
                out[d.path] = ctors.initialiser_writes(d, fd)
        return out

    class Unshared(dict[tuple[int, bytes], ctors._Insn]):
        def __setitem__(self, key: tuple[int, bytes], insn: ctors._Insn) -> None:
            pass  # kept nowhere: every instruction is converted

    with monkeypatch.context() as m:  # every instruction converted from capstone's objects
        m.setattr(ctors._lean(), "usable", False)
        m.setattr(ctors, "_SHARED_INSNS", Unshared())
        alone = analyse(dsos)
    monkeypatch.setattr(ctors, "_SHARED_INSNS", {})
    forward = analyse(dsos)
    shared = len(ctors._SHARED_INSNS)
    monkeypatch.setattr(ctors, "_SHARED_INSNS", {})
    backward = analyse(dsos[::-1])
    assert forward == alone == backward
    assert shared > 100 and any(w.writes for w in alone.values())


def _fields(insn: ctors._Insn | None) -> object:
    if insn is None:
        return None
    ops = [tuple(getattr(o, k) for k in ctors._Op.__struct_fields__) for o in insn.ops]
    return (insn.address, insn.next, insn.id, insn.mnemonic, insn.flow, insn.rep, insn.written, ops)


def test_lean_conversion_equals_capstones_objects(samples: Path) -> None:
    lean = ctors._lean()
    if not lean.usable:
        pytest.skip("capstone is not the release whose structures _Lean reads")
    from capstone import x86

    dsos = objects() + [read_dso(str(samples / n)) for n in ("ctor.i386", "ctor.i386-static")]
    compared = {4: 0, 8: 0}
    for dso in dsos:
        arch = ctors._arch(dso.machine)
        assert arch is not None
        md = ctors._disassembler(arch.mode)
        names = ctors._REGISTER_NAMES[arch.word]
        with opened(dso.file) as (fd, _):
            for seg in (s for s in dso.loads if s.flags & Prot.X and s.filesz):
                code = os.pread(fd, min(seg.filesz, 48 << 10), seg.offset)
                # the same run decoded both ways, instruction by instruction
                plain = list(md.disasm(code, seg.vaddr))
                found, n = lean.disasm(md, code, seg.vaddr, 0)
                try:
                    assert n == len(plain)
                    for i, ci in enumerate(plain):
                        fast = lean.insn(md, found[i], x86, names)
                        slow = ctors._convert(ci, md, x86, names)
                        assert _fields(fast) == _fields(slow), (dso.path, hex(ci.address))
                        compared[arch.word] += 1
                finally:
                    lean.free(found, n)
    assert compared[8] > 20000 and compared[4] > 2000, compared


def test_writes_recorded_during_the_fixed_point_equal_a_run_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """_solve keeps what each block's last run to the fixed point recorded; running every
    block once more from the settled states (what it does when a callee was cut short for the
    instruction limit) records the same writes and lines, on every object."""
    dsos = objects()

    def analyse() -> dict[str, InitWrites]:
        ctors._SHARED_INSNS.clear()
        out: dict[str, InitWrites] = {}
        for d in dsos:
            with opened(d.file) as (fd, _):
                out[d.path] = ctors.initialiser_writes(d, fd)
        return out

    class AlwaysAgain(ctors._Analysis):
        """The blocks run again after every fixed point, as if a callee had been cut."""

        @property  # type: ignore[override]
        def cut(self) -> int:
            self.tries = getattr(self, "tries", 0) + 1
            return self.tries

        @cut.setter
        def cut(self, value: int) -> None:
            pass

    kept = analyse()
    monkeypatch.setattr(ctors, "_Analysis", AlwaysAgain)
    again = analyse()
    assert kept == again
    assert any(w.writes for w in kept.values())
