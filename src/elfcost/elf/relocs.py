"""Dynamic relocation tables: decoded as numpy arrays, and grouped by the page they write.

The tables are found as the loaders find them: through DT_RELA/DT_REL/DT_RELR/DT_JMPREL and
their sizes in the dynamic section, translated to file offsets over PT_LOAD (glibc
`elf/dynamic-link.h ELF_DYNAMIC_RELOCATE`, musl `ldso/dynlink.c reloc_all`). A non-PIE static
executable has no PT_DYNAMIC; its IRELATIVE table is the allocated SHT_RELA/SHT_REL section that
`csu/libc-start.c apply_irel` walks between `__rela_iplt_start` and `__rela_iplt_end`.

DT_RELR (glibc `ELF_DYNAMIC_DO_RELR`): an even word is an address to relocate, after which
`where = address + word`; an odd word is a bitmap: bit i (1..63, or 1..31 on 32-bit) relocates
`where + (i-1)·word`, then `where += 63·word`.

The cost model needs the records grouped: how many of each type start in each page, plus the
few records that write past the page they start in. `group_relocs` gives that. Large tables
(libLLVM: 382,145 records) are decoded and grouped as numpy arrays, never one Python object per
record; tables of a few thousand entries, which is most objects, are grouped in plain Python,
because importing numpy costs more than a small program's whole estimate. Both give the same
groups (tests/unit/test_relocs_groups.py checks them against each other).
"""

from __future__ import annotations

import array
import bisect
import os
import struct
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING

import msgspec

from elfcost.elf.facts import GRAIN, IPLT, NO_GROUPS, RELR, TABLE_KINDS, Record, RelocGroups
from elfcost.elf.machines import BY_NAME, RelocClass, RelocType, reloc_type
from elfcost.elf.reader import opened, vaddr_to_offset
from elfcost.errors import MalformedElfError
from elfcost.model import SHF_ALLOC, SHT_REL, SHT_RELA, Dso, RelocTableRef

# numpy is imported only for tables past 32,768 records (it takes ~100 ms): its names are the
# type checker's only.
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    U64 = npt.NDArray[np.uint64]
    U32 = npt.NDArray[np.uint32]
    U8 = npt.NDArray[np.uint8]

# Up to this many records (a DT_RELR word counts as all it may stand for), an object is grouped
# in plain Python, at about 0.9 us a record (libcrypto.so.3's 21,113: 18 ms), where importing
# numpy costs 120-160 ms on the same machine. The bound is per object, so it is kept well under
# that break-even (about 150,000): ten objects just under it cost about 0.3 s in Python. Once
# numpy is loaded for a larger object, it is the faster way down to smaller tables.
SMALL_TABLES = 32768
SMALL_TABLES_NUMPY_LOADED = 256


class Relocs(msgspec.Struct, frozen=True, eq=False):
    """All load-time relocation records of one object, in application order."""

    offset: U64  # r_offset: link-time address written
    r_type: U32  # 0 for RELR entries, which are RELATIVE by definition
    sym: U32  # symbol index into DT_SYMTAB (0: none)
    table: U8  # index into TABLE_KINDS

    def __len__(self) -> int:
        return int(self.offset.size)

    @property
    def is_relr(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.table == RELR
        return mask

    def select(self, mask: npt.NDArray[np.bool_]) -> Relocs:
        return Relocs(
            offset=self.offset[mask],
            r_type=self.r_type[mask],
            sym=self.sym[mask],
            table=self.table[mask],
        )


# -- finding the tables -------------------------------------------------------------------------


class _Table(msgspec.Struct, frozen=True):
    ref: RelocTableRef
    offset: int  # in the file
    kind: int  # index into TABLE_KINDS
    skip: tuple[int, int] | None = None  # entries [a, b) applied by another table, not this one


def _tables(dso: Dso) -> list[_Table]:
    """Every table the loader (or static start-up) applies, with its file offset."""
    out: list[_Table] = []
    for t in dso.dynamic.tables if dso.dynamic else ():
        off = vaddr_to_offset(dso.phdrs, t.vaddr, t.size)
        if off is None:
            raise MalformedElfError(
                dso.file,
                f"DT_{t.kind.upper()}",
                f"table 0x{t.vaddr:x}+0x{t.size:x} is not inside the file part of a PT_LOAD",
            )
        out.append(_Table(t, off, TABLE_KINDS.index(t.kind)))
    if dso.dynamic is None:
        # Static ET_EXEC: the IRELATIVE table is only known from its section (apply_irel).
        for s in dso.sections:
            if s.sh_type in (SHT_RELA, SHT_REL) and s.flags & SHF_ALLOC and s.size:
                rela = s.sh_type == SHT_RELA
                ref = RelocTableRef(
                    kind="rela" if rela else "rel",
                    vaddr=s.addr,
                    size=s.size,
                    entsize=s.entsize or (3 if rela else 2) * dso.elf_class // 8,
                    rela=rela,
                )
                out.append(_Table(ref, s.offset, IPLT))
    for table in out:
        _check_entsize(dso, table)
    return _drop_overlaps(out)


def _what(t: _Table) -> str:
    return f"DT_{t.ref.kind.upper()}" if t.kind != IPLT else "IRELATIVE section"


def _fields(t: _Table) -> int:
    """Words per entry: 1 for DT_RELR, 3 with an addend, else 2."""
    return 1 if t.ref.kind == "relr" else 3 if t.ref.rela else 2


def _check_entsize(dso: Dso, t: _Table) -> None:
    """The entry size the loader assumes (glibc asserts DT_RELAENT/DT_RELENT/DT_RELRENT)."""
    word = dso.elf_class // 8
    r = t.ref
    if r.kind == "relr":
        if r.entsize != word:
            raise MalformedElfError(dso.file, _what(t), f"DT_RELRENT {r.entsize}, expected {word}")
    elif r.entsize != _fields(t) * word:
        raise MalformedElfError(
            dso.file, _what(t), f"entry size {r.entsize}, expected {_fields(t) * word}"
        )


def _drop_overlaps(tables: list[_Table]) -> list[_Table]:
    """Some linkers (riscv, older x86 ones) make DT_RELASZ cover .rela.plt too.

    glibc then skips the overlap (elf/dynamic-link.h _ELF_DYNAMIC_DO_RELOC: "ranges[0].size
    -= ranges[1].size" when they are adjacent); apply each record once.
    """
    jt = next((t.ref for t in tables if t.ref.kind == "jmprel"), None)
    if jt is None:
        return tables
    out = []
    for t in tables:
        r = t.ref
        if (
            r.kind in ("rela", "rel")
            and r.vaddr <= jt.vaddr
            and r.vaddr + r.size >= jt.vaddr + jt.size
        ):
            first = (jt.vaddr - r.vaddr) // r.entsize
            t = _Table(r, t.offset, t.kind, (first, first + jt.size // r.entsize))
        out.append(t)
    return out


def _read(dso: Dso, fd: int, file_size: int, t: _Table) -> tuple[bytes, int]:
    """The table's bytes, whole entries only, and its entry size in words (1 for RELR)."""
    r = t.ref
    if t.offset + r.size > file_size:
        raise MalformedElfError(
            dso.file, _what(t), f"size 0x{r.size:x} runs past the end of the file"
        )
    word = dso.elf_class // 8
    fields = _fields(t)
    raw = os.pread(fd, r.size, t.offset)
    return raw[: len(raw) - len(raw) % (fields * word)], fields


def _most_records(dso: Dso, tables: list[_Table]) -> int:
    """The most records the tables can hold: a DT_RELR bitmap word stands for up to 63 (31)."""
    bits = dso.elf_class - 1
    return sum(
        t.ref.size // max(1, t.ref.entsize) * (bits if t.ref.kind == "relr" else 1) for t in tables
    )


# -- numpy: any size ----------------------------------------------------------------------------


def read_relocs(dso: Dso, fd: int | None = None) -> Relocs:
    """Every relocation record the loader (or static start-up) applies to `dso`, as arrays
    (read through `fd` when given: see reader.opened)."""

    tables = _tables(dso)
    if not tables:
        return _empty()
    with opened(dso.file, fd) as (fd, size):
        return _concatenate([_decode(dso, fd, size, t) for t in tables])


def _empty() -> Relocs:
    import numpy as np

    return Relocs(
        offset=np.zeros(0, np.uint64),
        r_type=np.zeros(0, np.uint32),
        sym=np.zeros(0, np.uint32),
        table=np.zeros(0, np.uint8),
    )


def _decode(dso: Dso, fd: int, file_size: int, t: _Table) -> Relocs:
    import numpy as np

    raw, fields = _read(dso, fd, file_size, t)
    word = dso.elf_class // 8
    order = "<" if dso.little_endian else ">"
    words = np.frombuffer(raw, dtype=f"{order}u{word}")
    if fields == 1:
        offsets = decode_relr(words.astype(np.uint64), word)
        n = offsets.size
        return Relocs(
            offset=offsets,
            r_type=np.zeros(n, np.uint32),
            sym=np.zeros(n, np.uint32),
            table=np.full(n, t.kind, np.uint8),
        )
    arr = words.reshape(-1, fields)
    if t.skip is not None:
        arr = np.concatenate([arr[: t.skip[0]], arr[t.skip[1] :]])
    r_offset = arr[:, 0].astype(np.uint64)
    info = arr[:, 1].astype(np.uint64)
    if word == 8:
        r_type = (info & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        sym = (info >> np.uint64(32)).astype(np.uint32)
    else:
        r_type = (info & np.uint64(0xFF)).astype(np.uint32)
        sym = (info >> np.uint64(8)).astype(np.uint32)
    return Relocs(
        offset=r_offset, r_type=r_type, sym=sym, table=np.full(r_offset.size, t.kind, np.uint8)
    )


def _relr_words(words: U64, word: int) -> tuple[U64, U64, U64]:
    """A DT_RELR table's address entries, and each applied bitmap's base (the address its
    bit 1 relocates) and its 63 (31) bits (bit 0, the marker, shifted out), in table order.
    A bitmap before any address has no base and is not applied."""
    import numpy as np

    u = np.uint64
    is_addr = (words & u(1)) == u(0)
    group = np.cumsum(is_addr) - 1  # index of the governing address entry
    addrs = words[is_addr]
    addr_pos = np.flatnonzero(is_addr)
    bm_idx = np.flatnonzero(~is_addr & (group >= 0))
    k = (bm_idx - addr_pos[group[bm_idx]] - 1).astype(np.uint64)  # bitmaps since the address
    with np.errstate(over="ignore"):  # addresses wrap as the loader's arithmetic does
        base = addrs[group[bm_idx]] + u(word) + k * u((word * 8 - 1) * word)
    return addrs, base, words[bm_idx] >> u(1)


def decode_relr(words: U64, word: int) -> U64:
    """Addresses relocated by a DT_RELR table (see the module docstring), without a loop."""
    import numpy as np

    addrs, base, bits = _relr_words(words, word)
    shifts = np.arange(word * 8 - 1, dtype=np.uint64)
    set_bits = ((bits[:, None] >> shifts[None, :]) & np.uint64(1)).astype(bool)
    rows, cols = np.nonzero(set_bits)
    with np.errstate(over="ignore"):
        from_bitmaps = base[rows] + cols.astype(np.uint64) * np.uint64(word)
    out = np.concatenate([addrs, from_bitmaps])
    out.sort()
    return out


def _group_numpy(dso: Dso, relocs: Relocs) -> RelocGroups:
    import numpy as np

    if len(relocs) == 0:
        return NO_GROUPS
    word = dso.elf_class // 8
    types = _distinct(relocs.r_type).tolist()
    type_index = np.searchsorted(np.array(types, np.uint32), relocs.r_type)
    infos = [_info(dso, t) for t in types]
    relr = relocs.is_relr
    width = np.array([i.width for i in infos], np.int64)[type_index]
    width[relr] = word
    copy = np.array([i.kind is RelocClass.COPY for i in infos], bool)[type_index] & ~relr
    # The offset within its page, from the low 16 bits (GRAIN divides 2**16): no 64-bit copy.
    within = relocs.offset.astype(np.uint16) & np.uint16(GRAIN - 1)
    straddle = ~copy & (width > 0) & (within > GRAIN - width)
    rest = ~copy
    page = relocs.offset[rest] // np.uint64(GRAIN)
    n_types, n_tables = len(types), len(TABLE_KINDS)
    low = int(page.min()) if page.size else 0
    if page.size and int(page.max()) - low < min(4 * page.size + 1024, 1 << 16):
        # Dense (every real object): pages numbered from the lowest, no search.
        page_index = (page - np.uint64(low)).astype(np.intp)
        page_of = [(low + i) * GRAIN for i in range(int(page_index.max()) + 1)]
    else:
        pages = _distinct(page)
        page_index = np.searchsorted(pages, page)
        page_of = (pages * np.uint64(GRAIN)).tolist()
    key = (page_index * n_types + type_index[rest]) * n_tables + relocs.table[rest]
    keys, counts = _tally(key)
    groups = tuple(
        (page_of[k // (n_types * n_tables)], types[k // n_tables % n_types], k % n_tables, c)
        for k, c in zip(keys.tolist(), counts.tolist(), strict=True)
    )
    return RelocGroups(
        groups=groups,
        copies=_as_records(relocs.select(copy)),
        straddles=_as_records(relocs.select(straddle)),
        records=len(relocs),
    )


def _group_tables_numpy(dso: Dso, tables: list[_Table], fd: int | None) -> RelocGroups:
    """_group_numpy of every table, with each DT_RELR table counted by page from its words
    (_relr_groups) rather than expanded: a bitmap word stands for up to 63 records, so
    expanding a table costs ~500 times its size in memory (an 8 MB crafted table would stand
    for 63 million records), where its words alone cost what the file does."""
    import numpy as np

    word = dso.elf_class // 8
    order = "<" if dso.little_endian else ">"
    parts: list[Relocs] = []
    relr: list[tuple[dict[int, int], int, list[int]]] = []
    with opened(dso.file, fd) as (fd, size):
        for t in tables:
            if t.kind == RELR:
                raw, _ = _read(dso, fd, size, t)
                words = np.frombuffer(raw, dtype=f"{order}u{word}").astype(np.uint64)
                relr.append(_relr_groups(words, word))
            else:
                parts.append(_decode(dso, fd, size, t))
    rest = _group_numpy(dso, _concatenate(parts)) if parts else NO_GROUPS
    if not relr:
        return rest
    counts = Counter({(p, t, k): c for p, t, k, c in rest.groups})
    straddles = list(rest.straddles)
    for by_page, _, crossing in relr:
        counts.update({(p, 0, RELR): c for p, c in by_page.items()})
        straddles.extend((off, 0, 0, RELR) for off in crossing)
    # In table order, as one decoding of every table in turn lists them (sorted is stable).
    position = {t.kind: i for i, t in reversed(list(enumerate(tables)))}
    straddles.sort(key=lambda r: position[r[3]])
    return RelocGroups(
        groups=tuple((p, t, k, c) for (p, t, k), c in sorted(counts.items())),
        copies=rest.copies,
        straddles=tuple(straddles),
        records=rest.records + sum(n for _, n, _ in relr),
    )


def _concatenate(parts: list[Relocs]) -> Relocs:
    import numpy as np

    return Relocs(
        offset=np.concatenate([p.offset for p in parts]),
        r_type=np.concatenate([p.r_type for p in parts]),
        sym=np.concatenate([p.sym for p in parts]),
        table=np.concatenate([p.table for p in parts]),
    )


def _relr_groups(words: U64, word: int) -> tuple[dict[int, int], int, list[int]]:
    """A DT_RELR table's records counted by GRAIN page without expanding it: (records by page
    start, how many, the offsets of those that run past their page, sorted). A bitmap covers
    63 (31) consecutive words from its base, at most 504 bytes: its records fall in one page
    or in two, split where the next page starts; so each word is looked at once."""
    import numpy as np

    u = np.uint64
    grain, w = u(GRAIN), u(word)
    bits_per = word * 8 - 1  # 63 or 31 usable bits
    addrs, base, bits = _relr_words(words, word)
    with np.errstate(over="ignore"):  # addresses wrap as the loader's arithmetic does
        page = base // grain
        # Records in the first page: those before the next page's start (at least one; the
        # distance is right modulo 2**64 for the last page too).
        split = np.minimum((page * grain + grain - base + w - u(1)) // w, u(bits_per))
        low = (u(1) << split) - u(1)
        first = _popcount(bits & low)
        second = _popcount(bits) - first
        # A record runs past its page only when its address is not word-aligned (crafted):
        # the last one before the split; an address entry, where it is.
        last = base + (split - u(1)) * w
        crossing = ((bits >> (split - u(1))) & u(1)).astype(bool) & (last % grain > grain - w)
        crossing_addrs = addrs % grain > grain - w
        # Page starts (the page after the last is page 0, as a record's address wraps).
        starts = np.concatenate([addrs // grain, page, page + u(1)]) * grain
    counts = np.concatenate([np.ones(addrs.size, np.int64), first, second])
    keep = counts > 0
    starts, counts = starts[keep], counts[keep]
    distinct = _distinct(starts)
    totals = np.zeros(distinct.size, np.int64)
    np.add.at(totals, np.searchsorted(distinct, starts), counts)
    by_page = dict(zip(distinct.tolist(), totals.tolist(), strict=True))
    crossings = sorted([*addrs[crossing_addrs].tolist(), *last[crossing].tolist()])
    return by_page, int(counts.sum()), crossings


def _popcount(a: U64) -> npt.NDArray[np.int64]:
    """Set bits of each word (numpy before 2.0 has no bitwise_count): the usual halving sums."""
    import numpy as np

    u = np.uint64
    a = a - ((a >> u(1)) & u(0x5555555555555555))
    a = (a & u(0x3333333333333333)) + ((a >> u(2)) & u(0x3333333333333333))
    a = (a + (a >> u(4))) & u(0x0F0F0F0F0F0F0F0F)
    with np.errstate(over="ignore"):
        a = (a * u(0x0101010101010101)) >> u(56)
    return a.astype(np.int64)


def _as_records(r: Relocs) -> tuple[Record, ...]:
    return tuple(
        zip(r.offset.tolist(), r.r_type.tolist(), r.sym.tolist(), r.table.tolist(), strict=True)
    )


def _distinct(a: npt.NDArray[np.unsignedinteger]) -> npt.NDArray[np.unsignedinteger]:
    """Sorted distinct values. np.unique without its cost here: a plain np.unique imports
    numpy.ma (a fifth of numpy's import time) and hashes; small values are counted instead,
    sorted input is not re-sorted."""
    import numpy as np

    if a.size == 0:
        return a[:0]
    if int(a.max()) < 1 << 16:
        return np.flatnonzero(np.bincount(a.astype(np.intp))).astype(a.dtype)
    s = a if bool(np.all(a[1:] >= a[:-1])) else np.sort(a)
    first = np.empty(s.size, bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return s[first]


def _tally(a: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(distinct values, how often each occurs) of a non-negative integer array, sorted:
    one pass over a table of counts when the values are dense enough, else np.unique."""
    import numpy as np

    if a.size == 0:
        return a[:0], a[:0]
    if int(a.max()) < 4 * a.size + 1024:
        counts = np.bincount(a)
        values = np.flatnonzero(counts)
        return values, counts[values]
    values, counts = np.unique(a, return_counts=True)
    return values, counts


# -- plain Python: small tables -----------------------------------------------------------------


def _relr_python(words: array.array[int], word: int) -> list[int]:
    """decode_relr, one word at a time."""
    out: list[int] = []
    where: int | None = None
    step = (word * 8 - 1) * word
    for w in words:
        if w & 1 == 0:
            out.append(w)
            where = w + word
        elif where is not None:
            bits, at = w >> 1, where
            while bits:
                if bits & 1:
                    out.append(at)
                bits >>= 1
                at += word
            where += step
    return sorted(out)


# One table's records as columns: (table kind, r_offset, r_type, r_sym), in application order.
Run = tuple[int, Sequence[int], Sequence[int], Sequence[int]]


def _runs(dso: Dso, tables: list[_Table], fd: int | None) -> Iterator[Run]:
    """Each table's records as columns, decoded with the array module."""
    word = dso.elf_class // 8
    swap = dso.little_endian != (sys.byteorder == "little")
    shift, mask = (32, 0xFFFFFFFF) if word == 8 else (8, 0xFF)
    with opened(dso.file, fd) as (fd, size):
        for t in tables:
            raw, fields = _read(dso, fd, size, t)
            words = array.array("Q" if word == 8 else "I")
            assert words.itemsize == word
            words.frombytes(raw)
            if swap:
                words.byteswap()
            if fields == 1:
                addrs = _relr_python(words, word)
                zeros = [0] * len(addrs)
                yield t.kind, addrs, zeros, zeros
                continue
            offsets, infos = words[0::fields], words[1::fields]
            if t.skip is not None:
                del offsets[t.skip[0] : t.skip[1]], infos[t.skip[0] : t.skip[1]]
            yield t.kind, offsets, [i & mask for i in infos], [i >> shift for i in infos]


def _group_records(dso: Dso, runs: Iterable[Run]) -> RelocGroups:
    """_group_numpy for small tables: a table at a time, counted by Counter in C rather than
    with a Python step per record."""
    word = dso.elf_class // 8
    counts: Counter[tuple[int, int, int]] = Counter()
    copies: list[Record] = []
    straddles: list[Record] = []
    n = 0
    for kind, offsets, types, syms in runs:
        n += len(offsets)
        if kind == RELR:  # every record writes one word
            copy: set[int] = set()
            width = dict.fromkeys(types, word)
        else:
            seen = {r_type: _info(dso, r_type) for r_type in set(types)}
            copy = {r_type for r_type, info in seen.items() if info.kind is RelocClass.COPY}
            width = {r_type: info.width for r_type, info in seen.items()}
        for off, r_type, sym in zip(offsets, types, syms, strict=True):
            if r_type in copy:
                copies.append((off, r_type, sym, kind))
            elif width[r_type] > 0 and off % GRAIN + width[r_type] > GRAIN:
                straddles.append((off, r_type, sym, kind))
        counts.update(
            (off - off % GRAIN, r_type, kind)
            for off, r_type in zip(offsets, types, strict=True)
            if r_type not in copy
        )
    groups = tuple((p, t, k, c) for (p, t, k), c in sorted(counts.items()))
    return RelocGroups(groups=groups, copies=tuple(copies), straddles=tuple(straddles), records=n)


# -- the entry point ----------------------------------------------------------------------------


def _info(dso: Dso, r_type: int) -> RelocType:
    return reloc_type(BY_NAME.get(dso.machine), r_type, dso.elf_class // 8)


def group_relocs(dso: Dso, *, small: int | None = None, fd: int | None = None) -> RelocGroups:
    """`dso`'s relocation records grouped by page (see RelocGroups): in plain Python when its
    tables can hold at most `small` records, else through numpy. Both give the same groups.
    `fd`: the file, when the caller has it open (reader.opened)."""
    tables = _tables(dso)
    if not tables:
        return NO_GROUPS
    if small is None:
        small = SMALL_TABLES_NUMPY_LOADED if "numpy" in sys.modules else SMALL_TABLES
    if _most_records(dso, tables) <= small:
        return _group_records(dso, _runs(dso, tables, fd))
    return _group_tables_numpy(dso, tables, fd)


def copy_symbol_sizes(dso: Dso, indices: set[int], fd: int | None = None) -> dict[int, int]:
    """st_size of the dynamic symbols `indices` (those of COPY relocations); a symbol past the
    end of the file has size 0. `fd`: the file, when the caller has it open."""
    dyn = dso.dynamic
    if dyn is None or dyn.symtab is None or not indices:
        return {}
    word = dso.elf_class // 8
    sym_size = 24 if word == 8 else 16  # sizeof (ElfW(Sym))
    entsize = dyn.syment or sym_size
    if entsize != sym_size:
        # glibc elf/get-dynamic-info.h: assert (info[DT_SYMENT]->d_un.d_val == sizeof (ElfW(Sym)))
        raise MalformedElfError(dso.file, "DT_SYMENT", f"{entsize}, expected {sym_size}")
    off = vaddr_to_offset(dso.phdrs, dyn.symtab, 1)
    if off is None:
        raise MalformedElfError(dso.file, "DT_SYMTAB", "outside every PT_LOAD")
    # st_size is the last field of Elf64_Sym (offset 16) and the third of Elf32_Sym (offset 8).
    at, fmt = (16, "Q") if word == 8 else (8, "I")
    fmt = ("<" if dso.little_endian else ">") + fmt
    out: dict[int, int] = {}
    with opened(dso.file, fd) as (fd, size):
        for i in sorted(indices):
            pos = off + i * entsize
            if pos + entsize > size:
                out[i] = 0
                continue
            (out[i],) = struct.unpack(fmt, os.pread(fd, word, pos + at))
    return out


# -- records by address, for the disassembler -----------------------------------------------------

# (r_type, r_sym, r_addend, table index): r_addend None for REL and RELR records, whose addend
# is the word in place.
Entry = tuple[int, int, int | None, int]


def records_at(
    dso: Dso,
    ranges: Sequence[tuple[int, int]],
    fd: int | None = None,
    *,
    symbolic_anywhere: bool = True,
    small: int | None = None,
) -> dict[int, Entry]:
    """Relocation records by r_offset, for the constructor disassembly (elf/ctors.py): every
    record that writes inside one of `ranges` [start, end) (the init arrays, the GOT), and with
    `symbolic_anywhere` every record that is not RELATIVE wherever it writes (GOT and PLT
    slots, when no section header says where the GOT is: a symbol's address, an IRELATIVE
    result). A later record at the same offset replaces an earlier one, as the loader's later
    store does. Tables of more than `small` records are filtered with numpy; by default
    SMALL_TABLES, or SMALL_TABLES_NUMPY_LOADED once numpy is loaded (as group_relocs): a
    C++ program's few thousand RELATIVE records cost ~1 ms in numpy, ~10 in Python."""
    if small is None:
        small = SMALL_TABLES_NUMPY_LOADED if "numpy" in sys.modules else SMALL_TABLES
    tables = _tables(dso)
    out: dict[int, Entry] = {}
    if not tables:
        return out
    word = dso.elf_class // 8
    swap = dso.little_endian != (sys.byteorder == "little")
    shift, mask = (32, 0xFFFFFFFF) if word == 8 else (8, 0xFF)

    starts, ends = _merged(ranges)

    def wanted(off: int) -> bool:
        i = bisect.bisect_right(starts, off) - 1
        return i >= 0 and off < ends[i]

    relative: dict[int, bool] = {}

    def is_relative(t: int) -> bool:
        if t not in relative:
            relative[t] = _info(dso, t).kind is RelocClass.RELATIVE
        return relative[t]

    with opened(dso.file, fd) as (fd, size):
        for t in tables:
            raw, fields = _read(dso, fd, size, t)
            if fields == 1:
                words = array.array("Q" if word == 8 else "I")
                words.frombytes(raw)
                if swap:
                    words.byteswap()
                for off in _relr_in(words, word, ranges):
                    out[off] = (0, 0, None, t.kind)
                continue
            if len(raw) // (fields * word) > small:
                _records_numpy(dso, raw, fields, t, ranges, out, symbolic_anywhere)
                continue
            words = array.array("Q" if word == 8 else "I")
            words.frombytes(raw)
            if swap:
                words.byteswap()
            rows = list(zip(*(words[i::fields] for i in range(fields)), strict=True))
            if t.skip is not None:
                del rows[t.skip[0] : t.skip[1]]
            for row in rows:
                off, info = row[0], row[1]
                r_type = info & mask
                if (symbolic_anywhere and not is_relative(r_type)) or wanted(off):
                    addend = _signed(row[2], word) if fields == 3 else None
                    out[off] = (r_type, info >> shift, addend, t.kind)
    return out


def _merged(ranges: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """`ranges` [start, end) as sorted disjoint ones, their starts and their ends: a record's
    offset is looked up by bisection, not compared with each range (a C++ program has
    thousands of records, and the GOT and the init arrays are a few ranges)."""
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if ends and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def _signed(v: int, word: int) -> int:
    bits = 8 * word
    return v - (1 << bits) if v >> (bits - 1) else v


def _relr_in(words: array.array[int], word: int, ranges: Sequence[tuple[int, int]]) -> list[int]:
    """The addresses a DT_RELR table relocates inside `ranges`, without expanding the rest."""
    out: list[int] = []
    where: int | None = None
    span = (word * 8 - 1) * word
    for w in words:
        if w & 1 == 0:
            if any(a <= w < b for a, b in ranges):
                out.append(w)
            where = w + word
        elif where is not None:
            if any(a < where + span and where < b for a, b in ranges):
                bits, at = w >> 1, where
                while bits:
                    if bits & 1 and any(a <= at < b for a, b in ranges):
                        out.append(at)
                    bits >>= 1
                    at += word
            where += span
    return out


def _records_numpy(
    dso: Dso,
    raw: bytes,
    fields: int,
    t: _Table,
    ranges: Sequence[tuple[int, int]],
    out: dict[int, Entry],
    symbolic_anywhere: bool,
) -> None:
    """records_at for one large REL/RELA table."""
    import numpy as np

    word = dso.elf_class // 8
    order = "<" if dso.little_endian else ">"
    arr = np.frombuffer(raw, dtype=f"{order}u{word}").reshape(-1, fields)
    if t.skip is not None:
        arr = np.concatenate([arr[: t.skip[0]], arr[t.skip[1] :]])
    shift, mask = (32, 0xFFFFFFFF) if word == 8 else (8, 0xFF)
    offsets = arr[:, 0].astype(np.uint64)
    if symbolic_anywhere:
        r_type = arr[:, 1].astype(np.uint64) & np.uint64(mask)
        types = _distinct(r_type).tolist()
        relative = [t_ for t_ in types if _info(dso, int(t_)).kind is RelocClass.RELATIVE]
        keep = ~np.isin(r_type, np.array(relative, np.uint64))
    else:
        keep = np.zeros(offsets.size, bool)
    for a, b in ranges:
        keep |= (offsets >= np.uint64(a)) & (offsets < np.uint64(b))
    # The records kept, field by field, into `out` in table order (a later record at an
    # offset replaces an earlier one): a C++ library's GOT holds thousands.
    kept = arr[keep]
    info = kept[:, 1]
    kind = info.dtype.type
    addends: Iterable[int | None] = (
        kept[:, 2].view(f"{order}i{word}").tolist() if fields == 3 else repeat(None)
    )
    entries = zip(
        (info & kind(mask)).tolist(), (info >> kind(shift)).tolist(), addends, repeat(t.kind)
    )
    out.update(zip(kept[:, 0].tolist(), entries, strict=True))
