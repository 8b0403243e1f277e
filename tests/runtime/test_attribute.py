"""Attribution of smaps lines to objects and buckets, on the hand-written fixture (pure)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from elfcost.documents import encode
from elfcost.model import ET_DYN, PT_GNU_RELRO, PT_LOAD, PT_TLS, Dso, FileId, Prot, Segment
from elfcost.runtime.attribute import (
    MappedObject,
    apportion,
    attribute,
    group,
    reconcile,
    tls_range,
)
from elfcost.runtime.measure import to_json
from elfcost.runtime.records import (
    BUCKET_NAMES,
    ZERO_USAGE,
    Measurement,
    PageFlags,
    SmapsEntry,
    usage_of,
)
from elfcost.runtime.smaps import parse_rollup, parse_smaps

KB, P = 1024, 4096
R, RX, RW = Prot.R, Prot.R | Prot.X, Prot.R | Prot.W
SCHEMA = Path(__file__).resolve().parents[2] / "src/elfcost/report/schema/measurement-1.json"

Load = tuple[int, int, int, int, Prot]  # offset, vaddr, filesz, memsz, flags


def make_dso(
    path: str,
    ino: int,
    loads: list[Load],
    *,
    relro: tuple[int, int] | None = None,
    tls: tuple[int, int] | None = None,  # memsz, align
    e_type: int = ET_DYN,
    entry: int = 0,
) -> Dso:
    phdrs = [
        Segment(index=i, p_type=PT_LOAD, offset=o, vaddr=v, filesz=fs, memsz=ms, align=P, flags=f)
        for i, (o, v, fs, ms, f) in enumerate(loads)
    ]
    if relro is not None:
        phdrs.append(
            Segment(
                index=len(phdrs),
                p_type=PT_GNU_RELRO,
                offset=relro[0],
                vaddr=relro[0],
                filesz=relro[1],
                memsz=relro[1],
                align=1,
                flags=R,
            )
        )
    if tls is not None:
        phdrs.append(
            Segment(
                index=len(phdrs),
                p_type=PT_TLS,
                offset=0,
                vaddr=0,
                filesz=0,
                memsz=tls[0],
                align=tls[1],
                flags=R,
            )
        )
    return Dso(
        path=path,
        file=path,
        file_id=FileId(dev=os.makedev(0xFE, 0), ino=ino),
        file_size=0,
        elf_class=64,
        little_endian=True,
        e_machine=62,
        machine="x86_64",
        osabi=0,
        e_type=e_type,
        entry=entry,
        phdrs=tuple(phdrs),
        interp=None,
        dynamic=None,
    )


# fmt: off
# The objects of tests/data/smaps/glibc-pie-idle.txt (libc and ld.so: Debian 12's real PT_LOADs).
EXE = make_dso("/usr/local/bin/my daemon", 1001, [
    (0, 0, 0x1000, 0x1000, R), (0x1000, 0x1000, 0x3000, 0x3000, RX),
    (0x4000, 0x4000, 0x1000, 0x1000, R), (0x4D10, 0x5D10, 0x3F0, 0x1300, RW)],
    relro=(0x5D10, 0x2F0), entry=0x1100)
FOO = make_dso("/opt/My App/lib/libfoo.so.1", 2002, [
    (0, 0, 0x1000, 0x1000, R), (0x1000, 0x1000, 0x1000, 0x1000, RX),
    (0x2000, 0x2000, 0x800, 0x800, R), (0x2E00, 0x3E00, 0x220, 0x228, RW)])
LIBZ = make_dso("/lib/x86_64-linux-gnu/libz.so.1", 3003, [
    (0, 0, 0x2000, 0x2000, R), (0x2000, 0x2000, 0x10000, 0x10000, RX),
    (0x12000, 0x12000, 0x5000, 0x5000, R), (0x16D28, 0x17D28, 0x2D8, 0x2E0, RW)])
LIBC = make_dso("/lib/x86_64-linux-gnu/libc.so.6", 339380, [
    (0, 0, 0x25388, 0x25388, R), (0x26000, 0x26000, 0x1550FC, 0x1550FC, RX),
    (0x17C000, 0x17C000, 0x52C31, 0x52C31, R), (0x1CF8D0, 0x1CF8D0, 0x5190, 0x12680, RW)],
    tls=(0x90, 8))
LDSO = make_dso("/lib64/ld-linux-x86-64.so.2", 338944, [
    (0, 0, 0xD58, 0xD58, R), (0x1000, 0x1000, 0x25111, 0x25111, RX),
    (0x27000, 0x27000, 0x9C7C, 0x9C7C, R), (0x31900, 0x31900, 0x2958, 0x29D8, RW)])
ALL = [EXE, LDSO, FOO, LIBZ, LIBC]
# fmt: on


@pytest.fixture
def entries(smaps_text: dict[str, str]) -> tuple[SmapsEntry, ...]:
    return parse_smaps(smaps_text["glibc-pie-idle.txt"])


def measure(entries: tuple[SmapsEntry, ...], **kw: object) -> Measurement:
    args: dict[str, object] = {"pid": 1, "page_size": P, "stop": "idle"}
    args.update(kw)
    return attribute(entries, [MappedObject(dso=d) for d in ALL], **args)  # type: ignore[arg-type]


def synthetic_pagemap(entries: tuple[SmapsEntry, ...]) -> tuple[PageFlags, ...]:
    """Per line: the first Private_Dirty pages written, then resident file or zero pages."""
    out = []
    for e in entries:
        if e.start >= 1 << 56:
            continue
        n = (e.end - e.start) // P
        r = np.zeros(n, dtype=np.uint64)
        dirty, rest = e.private_dirty // P, (e.rss - e.private_dirty) // P
        r[:dirty] = (1 << 63) | (1 << 56)
        r[dirty : dirty + rest] = (1 << 63) | (1 << 61)
        out.append(PageFlags(start=e.start, page_size=P, entries=r))
    return tuple(out)


def test_file_lines_go_to_their_object_by_inode(entries: tuple[SmapsEntry, ...]) -> None:
    m = measure(entries)
    by = {o.path: o for o in m.objects}
    assert [o.path for o in m.objects] == [d.path for d in ALL]  # load order kept
    assert by[LIBC.path].matched_by == "file-id"
    # /lib/... given, /usr/lib/... mapped (merged /usr), and a deleted file: inode decides.
    assert by[LIBC.path].mapped_path == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert by[LIBZ.path].mapped_path == "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"
    assert by[FOO.path].mapped_path == "/opt/My App/lib/libfoo.so.1"


def test_load_base_is_the_lowest_line_minus_its_segment(entries: tuple[SmapsEntry, ...]) -> None:
    m = measure(entries)
    assert [o.load_base for o in m.objects] == [
        0x55D0C4A00000,
        0x7F9026928000,
        0x7F3A1C100000,
        0x7F3A1C200000,
        0x7F9026732000,
    ]
    exe = m.objects[0]
    assert exe.span == (0x55D0C4A00000, 0x55D0C4A08000)


def test_relro_line_data_line_and_bss_line_all_count_for_the_object(
    entries: tuple[SmapsEntry, ...],
) -> None:
    exe = measure(entries).objects[0]
    assert [(s.entry.perms, s.entry.pathname) for s in exe.lines] == [
        ("r--p", EXE.path),
        ("r-xp", EXE.path),
        ("r--p", EXE.path),
        ("r--p", EXE.path),  # RELRO
        ("rw-p", EXE.path),  # .data
        ("rw-p", ""),  # anonymous .bss inside the span
    ]
    assert exe.private_dirty == 12 * KB and exe.private_clean == 20 * KB and exe.rss == 32 * KB


def test_adjacent_anonymous_mapping_is_not_the_library_s(entries: tuple[SmapsEntry, ...]) -> None:
    m = measure(entries)
    libz = m.object(LIBZ.path)
    assert libz is not None and libz.private_dirty == 8 * KB
    assert all(s.entry.inode == 3003 for s in libz.lines)  # the loader-malloc line right after
    assert m.bucket("loader_heap").private_dirty == 8 * KB  # ... is the loader's


def test_merged_anonymous_line_is_split_at_the_span_end_by_page_count(
    entries: tuple[SmapsEntry, ...],
) -> None:
    m = measure(entries)
    libc = m.object(LIBC.path)
    assert libc is not None
    merged = [s for s in libc.lines if not s.whole]
    assert len(merged) == 1 and (merged[0].start, merged[0].end) == (0x7F9026907000, 0x7F9026914000)
    # No pagemap: 6 dirty pages split 13:3 by page count, largest remainder -> 5 + 1.
    assert merged[0].usage.private_dirty == 20 * KB
    assert libc.private_dirty == (16 + 8 + 20) * KB
    assert "no pagemap" in " ".join(m.warnings)


def test_merged_line_is_split_by_written_pages_with_pagemap(
    entries: tuple[SmapsEntry, ...],
) -> None:
    pages = list(synthetic_pagemap(entries))
    i = next(k for k, p in enumerate(pages) if p.start == 0x7F9026907000)
    r = np.zeros(16, dtype=np.uint64)
    r[[0, 1, 2, 3, 13, 14]] = (1 << 63) | (1 << 56)  # 4 pages of libc .bss, 2 beyond its end
    r[5] = 1 << 63  # a zero-page read: present, not written
    pages[i] = PageFlags(start=0x7F9026907000, page_size=P, entries=r)
    m = measure(entries, pages=tuple(pages))
    libc = m.object(LIBC.path)
    assert libc is not None
    assert libc.private_dirty == (16 + 8 + 16) * KB
    assert libc.written_pages == tuple(range(0x1CF000, 0x1D9000, P))
    assert len(libc.written_pages) * P == libc.private_dirty
    other = m.bucket("other_anon")
    assert {0x7F9026914000, 0x7F9026915000} <= set(other.written_pages)
    assert not [w for w in m.warnings if "no pagemap" in w]


def test_object_written_pages_are_link_time_addresses(entries: tuple[SmapsEntry, ...]) -> None:
    m = measure(entries, pages=synthetic_pagemap(entries))
    exe = m.objects[0]
    assert exe.written_pages == (0x5000, 0x6000, 0x7000)
    ldso = m.object(LDSO.path)
    assert ldso is not None and ldso.written_pages == (0x31000, 0x32000, 0x33000, 0x34000)


def test_buckets_idle(entries: tuple[SmapsEntry, ...]) -> None:
    m = measure(entries)
    pd = {b.name: b.private_dirty // KB for b in m.buckets}
    assert tuple(pd) == BUCKET_NAMES
    assert pd == {
        "stack": 12,
        "heap": 8,
        "tls": 0,
        "loader_heap": 8,
        "vdso": 0,
        "other_anon": 12 + 4 + 8,  # unnamed anonymous memory: after start-up, whose is unknown
        "other_file": 0,
    }
    assert m.bucket("vdso").rss == 4 * KB and m.bucket("other_file").rss == 20 * KB


def test_before_entry_unnamed_anonymous_memory_is_the_loader_s(
    entries: tuple[SmapsEntry, ...],
) -> None:
    m = measure(entries, stop="entry")
    assert m.bucket("loader_heap").private_dirty == (8 + 12 + 4 + 8) * KB
    assert m.bucket("other_anon").private_dirty == 0


def test_thread_pointer_carves_the_tls_block_out_of_its_mapping(
    entries: tuple[SmapsEntry, ...],
) -> None:
    m = measure(entries, thread_pointer=0x7F902672F740)
    tls = m.bucket("tls")
    assert [(s.start, s.end) for s in tls.lines] == [(0x7F902672F000, 0x7F9026731000)]
    assert tls.private_dirty == 8 * KB
    assert m.bucket("other_anon").private_dirty == (4 + 4 + 8) * KB


def test_tls_range_covers_the_modules_below_and_the_tcb_above() -> None:
    # libc: 0x90 bytes of TLS, below the thread pointer; the TCB above it.
    assert tls_range(0x10740, [LIBC], P, tcb_bytes=2368) == (0x10000, 0x12000)
    assert tls_range(0x10040, [LIBC], P, tcb_bytes=64) == (0xF000, 0x11000)
    assert tls_range(0x10800, [EXE], P, tcb_bytes=64) == (0x10000, 0x11000)  # no PT_TLS


def test_every_line_is_attributed_exactly_once(entries: tuple[SmapsEntry, ...]) -> None:
    for kw in ({}, {"pages": synthetic_pagemap(entries)}, {"thread_pointer": 0x7F902672F740}):
        m = measure(entries, **kw)
        total = ZERO_USAGE
        for usage in [o.usage for o in m.objects] + [b.usage for b in m.buckets]:
            total = total + usage
        assert total == m.total
        shares = [s for o in m.objects for s in o.lines] + [s for b in m.buckets for s in b.lines]
        for e in entries:
            parts = sorted((s.start, s.end) for s in shares if s.entry == e)
            assert parts[0][0] == e.start and parts[-1][1] == e.end
            assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))


def test_totals_reconcile_with_the_rollup(smaps_text: dict[str, str]) -> None:
    entries = parse_smaps(smaps_text["glibc-pie-idle.txt"])
    rollup = parse_rollup(smaps_text["glibc-pie-idle.rollup.txt"])
    m = measure(entries, rollup=rollup)
    assert reconcile(m.total, rollup, lines=len(entries)) == []
    assert m.total.private_dirty == rollup["Private_Dirty"]
    bad = dict(rollup, Rss=rollup["Rss"] + P, Pss=rollup["Pss"] + len(entries) * KB)
    assert len(reconcile(m.total, bad, lines=len(entries))) == 2


def test_an_object_not_mapped_is_reported_with_zeros(entries: tuple[SmapsEntry, ...]) -> None:
    ghost = make_dso("/lib/libghost.so", 99, [(0, 0, 0x1000, 0x1000, R)])
    m = attribute(entries, [MappedObject(dso=ghost)], pid=1, page_size=P, stop="idle")
    (o,) = m.objects
    assert o.load_base is None and o.private_dirty == 0 and o.lines == ()
    assert "/lib/libghost.so: not mapped" in " ".join(m.warnings)
    assert m.bucket("other_file").rss == sum(e.rss for e in entries if e.is_file)


def test_path_match_when_the_inode_differs(entries: tuple[SmapsEntry, ...]) -> None:
    copy = make_dso("/opt/My App/lib/libfoo.so.1", 1, FOO_LOADS)
    m = attribute(entries, [MappedObject(dso=copy)], pid=1, page_size=P, stop="idle")
    assert m.objects[0].matched_by == "path" and m.objects[0].private_dirty == 8 * KB


def test_basename_match_as_a_last_resort_warns(entries: tuple[SmapsEntry, ...]) -> None:
    sysroot = make_dso("/srv/root/lib/libfoo.so.1", 1, FOO_LOADS)
    m = attribute(entries, [MappedObject(dso=sysroot)], pid=1, page_size=P, stop="idle")
    assert m.objects[0].matched_by == "basename"
    assert "by file name only" in " ".join(m.warnings)


# fmt: off
FOO_LOADS: list[Load] = [
    (0, 0, 0x1000, 0x1000, R), (0x1000, 0x1000, 0x1000, 0x1000, RX),
    (0x2000, 0x2000, 0x800, 0x800, R), (0x2E00, 0x3E00, 0x220, 0x228, RW),
]
# fmt: on


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (6 * P, [13, 3], [5 * P, 1 * P]),
        (6 * P, [4, 2], [4 * P, 2 * P]),
        (3 * KB, [1, 1], [2 * KB, 1 * KB]),  # not whole pages: kB units
        (10, [1, 1, 1], [4, 3, 3]),
        (8 * P, [0, 0], [8 * P, 0]),
        (0, [3, 1], [0, 0]),
    ],
)
def test_apportion_is_exact_and_in_whole_units(
    total: int, weights: list[int], expected: list[int]
) -> None:
    got = apportion(total, weights, page_size=P)
    assert got == expected and sum(got) == total


def test_group_sums_private_and_counts_shared_once(entries: tuple[SmapsEntry, ...]) -> None:
    a = measure(entries, pid=10)
    b = measure(entries, pid=11)
    g = group("my daemon", [a, b])
    assert g.instances == 2 and g.pids == (10, 11)
    assert g.total.uss == 2 * a.total.uss
    assert g.total.pss == 2 * a.total.pss
    assert g.total.shared == g.total.pss - g.total.uss
    libc = next(r for r in g.objects if r.name == LIBC.path)
    assert libc.private_dirty == 2 * (16 + 8 + 20) * KB


def test_json_follows_the_schema(entries: tuple[SmapsEntry, ...]) -> None:
    m = measure(entries, pages=synthetic_pagemap(entries), thread_pointer=0x7F902672F740)
    doc = json.loads(encode(to_json(m)))
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["schema"] == "elfcost.measurement/1"
    assert list(doc["process"]) == list(BUCKET_NAMES)
    assert doc["objects"][0]["written_pages"] == [0x5000, 0x6000, 0x7000]
    assert json.loads(json.dumps(doc)) == doc
    bad = dict(doc, total=dict(doc["total"], extra=1))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


def test_usage_of_a_line_matches_its_fields(entries: tuple[SmapsEntry, ...]) -> None:
    u = usage_of(entries[21])
    assert (u.rss, u.shared_clean, u.pss) == (964 * KB, 964 * KB, 160 * KB)
