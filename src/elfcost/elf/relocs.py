"""Dynamic relocation tables → numpy arrays (offset, type, symbol, table), never one object each.

The tables are found as the loaders find them: through DT_RELA/DT_REL/DT_RELR/DT_JMPREL and
their sizes in the dynamic section, translated to file offsets over PT_LOAD (glibc
`elf/dynamic-link.h ELF_DYNAMIC_RELOCATE`, musl `ldso/dynlink.c reloc_all`). A non-PIE static
executable has no PT_DYNAMIC; its IRELATIVE table is the allocated SHT_RELA/SHT_REL section that
`csu/libc-start.c apply_irel` walks between `__rela_iplt_start` and `__rela_iplt_end`.

DT_RELR (glibc `ELF_DYNAMIC_DO_RELR`): an even word is an address to relocate, after which
`where = address + word`; an odd word is a bitmap: bit i (1..63, or 1..31 on 32-bit) relocates
`where + (i-1)·word`, then `where += 63·word`. Decoded without a Python loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from elfcost.elf.reader import open_regular, vaddr_to_offset
from elfcost.errors import MalformedElfError
from elfcost.model import SHF_ALLOC, SHT_REL, SHT_RELA, Dso, RelocTableRef

TABLE_KINDS = ("rela", "rel", "relr", "jmprel", "iplt")
_KIND_INDEX = {k: i for i, k in enumerate(TABLE_KINDS)}
U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class Relocs:
    """All load-time relocation records of one object, in application order."""

    offset: U64  # r_offset: link-time address written
    r_type: U32  # 0 for RELR entries, which are RELATIVE by definition
    sym: U32  # symbol index into DT_SYMTAB (0: none)
    table: U8  # index into TABLE_KINDS

    def __len__(self) -> int:
        return int(self.offset.size)

    @property
    def is_relr(self) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = self.table == _KIND_INDEX["relr"]
        return mask

    def select(self, mask: npt.NDArray[np.bool_]) -> Relocs:
        return Relocs(
            offset=self.offset[mask],
            r_type=self.r_type[mask],
            sym=self.sym[mask],
            table=self.table[mask],
        )


@dataclass(frozen=True, slots=True, eq=False)
class Symbols:
    """The few dynamic-symbol facts the cost model needs, indexed like DT_SYMTAB."""

    size: U64  # st_size (COPY relocations copy this many bytes)
    defined: npt.NDArray[np.bool_]  # st_shndx != SHN_UNDEF
    weak: npt.NDArray[np.bool_]  # STB_WEAK


EMPTY = Relocs(
    offset=np.zeros(0, np.uint64),
    r_type=np.zeros(0, np.uint32),
    sym=np.zeros(0, np.uint32),
    table=np.zeros(0, np.uint8),
)


def read_relocs(dso: Dso) -> Relocs:
    """Every relocation record the loader (or static start-up) applies to `dso`."""
    refs: list[tuple[RelocTableRef, int]] = []
    for t in dso.dynamic.tables if dso.dynamic else ():
        off = vaddr_to_offset(dso.phdrs, t.vaddr, t.size)
        if off is None:
            raise MalformedElfError(
                dso.file,
                f"DT_{t.kind.upper()}",
                f"table 0x{t.vaddr:x}+0x{t.size:x} is not inside the file part of a PT_LOAD",
            )
        refs.append((t, off))
    if dso.dynamic is None:
        # Static ET_EXEC: the IRELATIVE table is only known from its section (apply_irel).
        for s in dso.sections:
            if s.sh_type in (SHT_RELA, SHT_REL) and s.flags & SHF_ALLOC and s.size:
                rela = s.sh_type == SHT_RELA
                refs.append(
                    (
                        RelocTableRef(
                            kind="rela" if rela else "rel",
                            vaddr=s.addr,
                            size=s.size,
                            entsize=s.entsize or (3 if rela else 2) * dso.elf_class // 8,
                            rela=rela,
                        ),
                        s.offset,
                    )
                )
    if not refs:
        return EMPTY
    fd, st = open_regular(dso.file)
    try:
        parts = [
            _decode(dso, fd, st.st_size, t, off, "iplt" if dso.dynamic is None else t.kind)
            for t, off in refs
        ]
    finally:
        os.close(fd)
    parts = _drop_overlaps(parts, refs)
    return Relocs(
        offset=np.concatenate([p.offset for p in parts]),
        r_type=np.concatenate([p.r_type for p in parts]),
        sym=np.concatenate([p.sym for p in parts]),
        table=np.concatenate([p.table for p in parts]),
    )


def _drop_overlaps(parts: list[Relocs], refs: list[tuple[RelocTableRef, int]]) -> list[Relocs]:
    """Some linkers (riscv, older x86 ones) make DT_RELASZ cover .rela.plt too.

    glibc then skips the overlap (elf/dynamic-link.h _ELF_DYNAMIC_DO_RELOC: "ranges[0].size
    -= ranges[1].size" when they are adjacent); apply each record once.
    """
    jmp = next((i for i, (t, _) in enumerate(refs) if t.kind == "jmprel"), None)
    if jmp is None:
        return parts
    jt = refs[jmp][0]
    out = list(parts)
    for i, (t, _) in enumerate(refs):
        if (
            t.kind in ("rela", "rel")
            and t.vaddr <= jt.vaddr
            and t.vaddr + t.size >= jt.vaddr + jt.size
        ):
            keep = (jt.vaddr - t.vaddr) // t.entsize
            p = out[i]
            mask = np.zeros(len(p), bool)
            mask[:keep] = True
            mask[keep + jt.size // t.entsize :] = True
            out[i] = p.select(mask)
    return out


def _decode(dso: Dso, fd: int, file_size: int, t: RelocTableRef, off: int, kind: str) -> Relocs:
    what = f"DT_{t.kind.upper()}" if kind != "iplt" else "IRELATIVE section"
    if off + t.size > file_size:
        raise MalformedElfError(dso.file, what, f"size 0x{t.size:x} runs past the end of the file")
    word = dso.elf_class // 8
    order = "<" if dso.little_endian else ">"
    raw = os.pread(fd, t.size, off)
    tag = _KIND_INDEX[kind]
    if t.kind == "relr":
        if t.entsize != word:
            raise MalformedElfError(dso.file, what, f"DT_RELRENT {t.entsize}, expected {word}")
        words = np.frombuffer(raw[: len(raw) - len(raw) % word], dtype=f"{order}u{word}")
        offsets = decode_relr(words.astype(np.uint64), word)
        n = offsets.size
        return Relocs(
            offset=offsets,
            r_type=np.zeros(n, np.uint32),
            sym=np.zeros(n, np.uint32),
            table=np.full(n, tag, np.uint8),
        )
    fields = 3 if t.rela else 2
    if t.entsize != fields * word:
        raise MalformedElfError(dso.file, what, f"entry size {t.entsize}, expected {fields * word}")
    arr = np.frombuffer(raw[: len(raw) - len(raw) % t.entsize], dtype=f"{order}u{word}")
    arr = arr.reshape(-1, fields)
    r_offset = arr[:, 0].astype(np.uint64)
    info = arr[:, 1].astype(np.uint64)
    if word == 8:
        r_type = (info & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        sym = (info >> np.uint64(32)).astype(np.uint32)
    else:
        r_type = (info & np.uint64(0xFF)).astype(np.uint32)
        sym = (info >> np.uint64(8)).astype(np.uint32)
    return Relocs(
        offset=r_offset, r_type=r_type, sym=sym, table=np.full(r_offset.size, tag, np.uint8)
    )


def decode_relr(words: U64, word: int) -> U64:
    """Addresses relocated by a DT_RELR table (see the module docstring)."""
    if words.size == 0:
        return np.zeros(0, np.uint64)
    is_addr = (words & np.uint64(1)) == 0
    if not is_addr[0]:
        # A bitmap before any address has no base; glibc would relocate from address 0.
        is_addr = is_addr.copy()
    group = np.cumsum(is_addr) - 1  # index of the governing address entry
    addrs = words[is_addr]
    addr_pos = np.flatnonzero(is_addr)
    bitmaps = ~is_addr & (group >= 0)
    bits_per = word * 8 - 1  # 63 or 31 usable bits
    bm_idx = np.flatnonzero(bitmaps)
    if bm_idx.size:
        k = bm_idx - addr_pos[group[bm_idx]] - 1  # bitmaps since the address
        base = (
            addrs[group[bm_idx]]
            + np.uint64(word)
            + k.astype(np.uint64) * np.uint64(bits_per * word)
        )
        bm = words[bm_idx]
        shifts = np.arange(1, bits_per + 1, dtype=np.uint64)
        set_bits = ((bm[:, None] >> shifts[None, :]) & np.uint64(1)).astype(bool)
        rows, cols = np.nonzero(set_bits)
        from_bitmaps = base[rows] + cols.astype(np.uint64) * np.uint64(word)
    else:
        from_bitmaps = np.zeros(0, np.uint64)
    out = np.concatenate([addrs, from_bitmaps])
    out.sort()
    return out


def read_symbols(dso: Dso, count: int) -> Symbols:
    """The first `count` entries of DT_SYMTAB (bounded by the file)."""
    dyn = dso.dynamic
    empty = Symbols(size=np.zeros(0, np.uint64), defined=np.zeros(0, bool), weak=np.zeros(0, bool))
    if dyn is None or dyn.symtab is None or count <= 0:
        return empty
    word = dso.elf_class // 8
    sym_size = 24 if word == 8 else 16  # sizeof (ElfW(Sym))
    entsize = dyn.syment or sym_size
    if entsize != sym_size:
        # glibc elf/get-dynamic-info.h: assert (info[DT_SYMENT]->d_un.d_val == sizeof (ElfW(Sym)))
        raise MalformedElfError(dso.file, "DT_SYMENT", f"{entsize}, expected {sym_size}")
    off = vaddr_to_offset(dso.phdrs, dyn.symtab, 1)
    if off is None:
        raise MalformedElfError(dso.file, "DT_SYMTAB", "outside every PT_LOAD")
    fd, st = open_regular(dso.file)
    try:
        count = min(count, (st.st_size - off) // entsize)
        raw = os.pread(fd, count * entsize, off)
    finally:
        os.close(fd)
    o = "<" if dso.little_endian else ">"
    if word == 8:
        dt = np.dtype(
            [
                ("name", o + "u4"),
                ("info", "u1"),
                ("other", "u1"),
                ("shndx", o + "u2"),
                ("value", o + "u8"),
                ("size", o + "u8"),
            ]
        )
    else:
        dt = np.dtype(
            [
                ("name", o + "u4"),
                ("value", o + "u4"),
                ("size", o + "u4"),
                ("info", "u1"),
                ("other", "u1"),
                ("shndx", o + "u2"),
            ]
        )
    syms = np.frombuffer(raw[: count * entsize], dtype=dt)
    return Symbols(
        size=syms["size"].astype(np.uint64),
        defined=syms["shndx"] != 0,
        weak=(syms["info"] >> 4) == 2,
    )
