"""The two ways of grouping relocation records (plain Python for small tables, numpy for large
ones) give the same groups, on real objects of every link mode and machine, and agree with the
record-by-record decode."""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from elfcost.elf.machines import BY_NAME, RelocClass
from elfcost.elf.reader import is_elf, read_dso
from elfcost.elf.relocs import (
    GRAIN,
    RELR,
    Relocs,
    _group_numpy,
    _group_records,
    _relr_groups,
    _relr_python,
    decode_relr,
    group_relocs,
    read_relocs,
)
from elfcost.errors import MalformedElfError
from elfcost.model import Dso

DATA = Path(__file__).resolve().parents[1] / "data" / "elf"
HOST = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-musl-x86_64.so.1",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
]


def _objects(samples: Path) -> list[str]:
    fixtures = json.loads((DATA / "expected.json").read_text())["files"]
    found = [str(DATA / name) for name in sorted(fixtures)]  # 8 machines, both byte orders
    found += [p for p in HOST if Path(p).exists()]
    found += sorted(str(p) for p in samples.rglob("*") if p.is_file() and is_elf(str(p)))
    return found


def test_python_and_numpy_groups_are_equal(samples: Path) -> None:
    objects = _objects(samples)
    assert len(objects) > 150
    checked = 0
    for path in objects:
        d = read_dso(path)
        by_python = group_relocs(d, small=1 << 62)
        by_numpy = group_relocs(d, small=-1)
        assert by_python == by_numpy, path
        checked += len(by_python) > 0
    assert checked > 100


def test_groups_account_for_every_record(samples: Path) -> None:
    """Each record is in one group, except COPY records, which are listed as copies; the
    straddles are the other records whose write crosses their 4 KiB page."""
    for path in [*HOST[:1], *(str(samples / f"copy_reloc.{m}") for m in ("pie", "nopie"))]:
        if not Path(path).exists():
            continue
        d = read_dso(path)
        r = read_relocs(d)
        g = group_relocs(d)
        copy_types = {
            t for t, info in BY_NAME[d.machine].relocs.items() if info.kind is RelocClass.COPY
        }

        def is_copy(t: int, table: int) -> bool:
            return table != RELR and t in copy_types  # noqa: B023 (used in this iteration only)

        expect: Counter[tuple[int, int, int]] = Counter()
        for off, t, table in zip(
            r.offset.tolist(), r.r_type.tolist(), r.table.tolist(), strict=True
        ):
            if not is_copy(t, table):
                expect[(off - off % GRAIN, t, table)] += 1
        assert {(p, t, k): n for p, t, k, n in g.groups} == dict(expect)
        assert g.records == len(r)
        assert all(is_copy(t, k) for _, t, _, k in g.copies)
        copies = len(g.copies)
        assert copies == sum(
            1 for t, k in zip(r.r_type.tolist(), r.table.tolist(), strict=True) if is_copy(t, k)
        )
        if "copy_reloc" in path:
            assert copies >= 1
        machine = BY_NAME[d.machine]
        crossing = [
            (off, t, sym, k)
            for off, t, sym, k in zip(
                r.offset.tolist(), r.r_type.tolist(), r.sym.tolist(), r.table.tolist(), strict=True
            )
            if not is_copy(t, k)
            and off % GRAIN + (8 if k == RELR else machine.reloc(t, 8).width) > GRAIN
        ]
        assert list(g.straddles) == crossing


def test_a_leading_bitmap_is_not_applied() -> None:
    import array

    words = [0b1011, 0x1000, 0b11]  # bitmap before any address, address, bitmap
    expect = [0x1000, 0x1008]
    assert _relr_python(array.array("Q", words), 8) == expect
    assert decode_relr(np.array(words, np.uint64), 8).tolist() == expect


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the objects")
def test_a_packed_relr_table_groups_the_same_both_ways(tmp_path: Path) -> None:
    # A real DT_RELR table (ld -z pack-relative-relocs): pointers in runs that cross pages, so
    # bitmaps split between two pages, and single ones (address entries). The numpy path
    # counts its words by page; the plain-Python path expands every record; lief counts them.
    import lief

    src = tmp_path / "relr.c"
    src.write_text(
        "int v[4096];\n"
        "int *run[3000] = {" + ", ".join(f"&v[{i % 4096}]" for i in range(3000)) + "};\n"
        "int *gaps[2000] = {" + ", ".join(f"[{i * 7}] = &v[{i}]" for i in range(280)) + "};\n"
        "int main(void) { return *run[1] + *gaps[7]; }\n"
    )
    out = tmp_path / "relr"
    cc = ["gcc", "-O1", "-fPIE", "-pie", "-Wl,-z,pack-relative-relocs", "-o", str(out), str(src)]
    subprocess.run(cc, check=True)
    d = read_dso(str(out))
    assert any(t.kind == "relr" for t in d.dynamic.tables) if d.dynamic else False
    by_python, by_numpy = group_relocs(d, small=1 << 62), group_relocs(d, small=-1)
    assert by_python == by_numpy
    relr = sum(c for _, _, k, c in by_numpy.groups if k == RELR)
    parsed = lief.ELF.parse(str(out))
    packed = [r for r in parsed.relocations if r.encoding == lief.ELF.Relocation.ENCODING.RELR]
    assert relr == len(packed) >= 3000 + 280
    assert len({p for p, _, k, _ in by_numpy.groups if k == RELR}) >= 6  # pages crossed


@st.composite
def _relr_table(draw: st.DrawFn) -> tuple[list[int], int]:
    """A DT_RELR table: addresses (even; word-aligned or, crafted, not; some near the top of
    the words' range) and bitmaps (odd), in any order, for 64- or 32-bit words. (Addresses are
    worked out in 64 bits for both, as decode_relr does.)"""
    word = draw(st.sampled_from([8, 4]))
    top = (1 << (8 * word)) - 1
    address = st.one_of(
        st.integers(0, 1 << 20).map(lambda a: a * 8),
        st.integers(0, top // 2).map(lambda a: a * 2),  # even, maybe not word-aligned
        st.integers(0, 64).map(lambda a: (top - 1 - a * 2) & ~1),  # wraps past the top
    )
    bitmap = st.integers(0, top >> 1).map(lambda b: b << 1 | 1)
    return draw(st.lists(st.one_of(address, bitmap), max_size=40)), word


@given(_relr_table())
def test_a_relr_table_counted_by_page_is_its_records_counted(table: tuple[list[int], int]) -> None:
    # The numpy path counts a DT_RELR table's records by page from its words, never expanding
    # it (an 8 MB crafted table stands for 63 million records): the same counts, total and
    # page-crossing records as the records it stands for, one by one.
    words, word = table
    records = decode_relr(np.array(words, np.uint64), word).tolist()
    by_page, n, crossing = _relr_groups(np.array(words, np.uint64), word)
    assert (by_page, n) == (dict(Counter(r - r % GRAIN for r in records)), len(records))
    assert crossing == sorted(r for r in records if r % GRAIN > GRAIN - word)


@pytest.mark.parametrize("small", [-1, 1 << 62])
def test_empty_and_static_tables(samples: Path, small: int) -> None:
    static = samples / "ifunc.static"  # IRELATIVE from .rela.iplt, no PT_DYNAMIC
    g = group_relocs(read_dso(str(static)), small=small)
    assert g.records >= 1 and all(k == 4 for _, _, k, _ in g.groups)  # "iplt"


@pytest.mark.parametrize("small", [-1, 1 << 62])
def test_zero_entry_size_with_an_overlapping_plt_table_is_one_error(
    tmp_path: Path, small: int
) -> None:
    """riscv64's DT_RELASZ covers .rela.plt; DT_RELAENT = 0 must be refused as malformed before
    the overlap is worked out (found by the long mutation run: a ZeroDivisionError)."""
    src = DATA / "riscv64" / "hello.nosections"
    d = read_dso(str(src))
    assert d.dynamic is not None and d.dynamic.table("jmprel") is not None
    entry = next(e for e in d.dynamic.entries if e.tag == 9)  # DT_RELAENT
    dyn = next(p for p in d.phdrs if p.p_type == 2)  # PT_DYNAMIC
    data = bytearray(src.read_bytes())
    data[dyn.offset + entry.index * 16 + 8 : dyn.offset + entry.index * 16 + 16] = bytes(8)
    bad = tmp_path / "hello"
    bad.write_bytes(bytes(data))
    with pytest.raises(MalformedElfError, match="DT_RELA: entry size 0, expected 24"):
        group_relocs(read_dso(str(bad)), small=small)


_X86_64_TYPES = [0, 1, 5, 6, 7, 8, 16, 18, 37, 1000]  # NONE, 64, COPY, GLOB_DAT, ..., unknown


@st.composite
def _records(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """Records as the decoders give them: anywhere in the address space (dense or sparse),
    unaligned, any table; RELR records are type 0."""
    spread = draw(st.sampled_from([1 << 14, 1 << 20, 1 << 40, 2**64 - 1]))
    out = []
    for _ in range(draw(st.integers(0, 60))):
        table = draw(st.integers(0, 4))
        t = 0 if table == RELR else draw(st.sampled_from(_X86_64_TYPES))
        out.append((draw(st.integers(0, spread)), t, draw(st.integers(0, 9)), table))
    return out


@given(_records())
def test_numpy_and_record_by_record_grouping_agree(
    records: list[tuple[int, int, int, int]],
) -> None:
    dso = _trivial()
    relocs = Relocs(
        offset=np.array([r[0] for r in records], np.uint64),
        r_type=np.array([r[1] for r in records], np.uint32),
        sym=np.array([r[2] for r in records], np.uint32),
        table=np.array([r[3] for r in records], np.uint8),
    )
    # The records as the plain-Python path reads them: one run of columns per stretch of the
    # same table, in order.
    runs = [
        (kind, [r[0] for r in run], [r[1] for r in run], [r[2] for r in run])
        for kind, group in itertools.groupby(records, key=lambda r: r[3])
        for run in [list(group)]
    ]
    assert _group_numpy(dso, relocs) == _group_records(dso, runs)


@functools.cache
def _trivial() -> Dso:
    return read_dso("/bin/sleep")  # any x86_64 object: only its class and machine are used
