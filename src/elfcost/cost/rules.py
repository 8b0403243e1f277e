"""One pure function per cause of a private dirty page (loader-model.md §11).

Each rule takes an ObjectContext (the object, how it is loaded, the page size, its
relocations) and returns the pages it dirties, each with its reason. Rules do not look at each
other: `estimate` merges them, the most specific cause winning (model.Cause order).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from elfcost.cost.pages import (
    align_down,
    align_up,
    count_pages,
    distinct,
    pages_of,
    span_pages,
    tally,
)
from elfcost.elf.machines import BY_NAME, RelocClass
from elfcost.elf.relocs import TABLE_KINDS, Relocs, Symbols
from elfcost.errors import UnsupportedElfError
from elfcost.model import (
    DT_DEBUG,
    DT_GNU_HASH,
    DT_HASH,
    DT_JMPREL,
    DT_PLTGOT,
    DT_REL,
    DT_RELA,
    DT_RELR,
    DT_STRTAB,
    DT_SYMTAB,
    DT_VERSYM,
    ET_EXEC,
    SHF_ALLOC,
    Cause,
    Dso,
    LoaderFamily,
    PageCost,
    Prot,
    Role,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectContext:
    """What every cost rule may look at for one object: the file, how it is loaded, its
    relocations and the page size."""

    dso: Dso
    role: Role
    family: LoaderFamily  # the process's loader; NONE for a static executable
    static_pie: bool  # the process is a static-pie executable (self-relocating)
    page: int  # runtime page size P
    bind_now: bool  # effective binding mode for this object (glibc; musl always binds now)
    relocs: Relocs
    symbols: Symbols
    # (start, end, name) of the allocated sections in address order, for _sections: sorted
    # once per object, not once per page (a large .bss has hundreds of thousands of pages).
    alloc_sections: tuple[tuple[int, int, str], ...] = field(init=False, repr=False)
    # Their starts, and the furthest end among each row and the rows before it: a page's
    # sections are found by binary search, then a walk back while something can still reach it.
    section_starts: tuple[int, ...] = field(init=False, repr=False)
    section_reach: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rows = tuple(
            (s.addr, s.addr + s.size, s.name)
            for s in sorted(self.dso.sections, key=lambda s: s.addr)
            if s.flags & SHF_ALLOC and s.size
        )
        reach, furthest = [], 0
        for _, stop, _ in rows:
            furthest = max(furthest, stop)
            reach.append(furthest)
        object.__setattr__(self, "alloc_sections", rows)
        object.__setattr__(self, "section_starts", tuple(r[0] for r in rows))
        object.__setattr__(self, "section_reach", tuple(reach))

    @property
    def word(self) -> int:
        return self.dso.elf_class // 8

    @property
    def kernel_mapped(self) -> bool:
        """The kernel, not ld.so, maps the executable and the interpreter (binfmt_elf.c)."""
        return self.role in ("executable", "interpreter") or self.family is LoaderFamily.NONE


def _page(ctx: ObjectContext, vaddr: int) -> int:
    return align_down(vaddr, ctx.page)


def _written(ctx: ObjectContext, pg: int, cause: Cause, detail: str) -> PageCost:
    """A page the loader (or the kernel) certainly writes before the entry point."""
    return PageCost(
        vaddr=pg,
        cause=cause,
        certain=True,
        phase="entry",
        detail=detail,
        sections=_sections(ctx, pg),
    )


def _sections(ctx: ObjectContext, page: int) -> tuple[str, ...]:
    """Dso.section_names_at(page, page + P), over the rows sorted once."""
    i = bisect.bisect_left(ctx.section_starts, page + ctx.page)  # rows[:i] start before the end
    found = []
    reach = ctx.section_reach
    while i > 0 and reach[i - 1] > page:
        i -= 1
        _, stop, name = ctx.alloc_sections[i]
        if stop > page:
            found.append(name)
    return tuple(reversed(found))


def _writable_ranges(ctx: ObjectContext) -> list[tuple[int, int]]:
    return [
        (align_down(s.vaddr, ctx.page), align_up(s.end, ctx.page))
        for s in ctx.dso.loads
        if s.flags & Prot.W
    ]


def _in_ranges(page: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(a <= page < b for a, b in ranges)


# Pages written by relocations beyond the page each starts in (COPY of large objects): all
# listed one by one, so bounded.
MAX_SPANNED_PAGES = 1 << 16


# -- R-G2 / R-M2 / R-S1: relocation targets -----------------------------------------------------


def relocation_pages(ctx: ObjectContext) -> list[PageCost]:
    """Every dynamic relocation record except NONE writes span(r_offset, width).

    glibc elf/dynamic-link.h ELF_DYNAMIC_RELOCATE (RELR, REL, RELA, JMPREL; JUMP_SLOTs are
    written even when lazy: sysdeps/x86_64/dl-machine.h elf_machine_lazy_rel), musl
    ldso/dynlink.c do_relocs / do_relr_relocs, static start-up csu/libc-start.c apply_irel.
    """
    r = ctx.relocs
    if len(r) == 0:
        return []
    machine = BY_NAME.get(ctx.dso.machine)
    word = ctx.word
    # Distinct types first, then a binary search: per type (not per record) the width, class
    # and name; a crafted table can hold thousands of distinct types, libLLVM 400k records.
    types = distinct(r.r_type).tolist()
    type_index = np.searchsorted(np.array(types, np.uint32), r.r_type)
    width_of: dict[int, int] = {}
    class_of: dict[int, RelocClass] = {}
    name_of: dict[int, str] = {}
    for t in types:
        if machine is None:
            width_of[t], class_of[t], name_of[t] = (
                (word if t else 0),
                RelocClass.SYMBOLIC,
                f"type {t}",
            )
            continue
        info = machine.reloc(t, word)
        width_of[t], class_of[t], name_of[t] = info.width, info.kind, info.name
    relr = r.is_relr
    widths = np.array([width_of[t] for t in types], np.int64)[type_index]
    widths[relr] = word
    is_copy_type = np.array([class_of[t] is RelocClass.COPY for t in types], bool)
    copy_mask = is_copy_type[type_index] & ~relr
    if copy_mask.any():
        idx = r.sym[copy_mask].astype(np.int64)
        sizes = np.zeros(idx.size, np.int64)
        ok = idx < ctx.symbols.size.size
        sizes[ok] = ctx.symbols.size[idx[ok]].astype(np.int64)
        widths[copy_mask] = np.minimum(sizes, _copy_room(ctx, r.offset[copy_mask]))
    keep = widths > 0
    if ctx.family is LoaderFamily.GLIBC and ctx.dso.e_type == ET_EXEC and machine is not None:
        # REL-format RELATIVE relocations are skipped when l_addr == 0 (elf/do-rel.h,
        # ELF_MACHINE_REL_RELATIVE / the RELCOUNT skip); RELA ones are still stored.
        rel_tables = {TABLE_KINDS.index("rel")}
        for tab in ctx.dso.dynamic.tables if ctx.dso.dynamic else ():
            if tab.kind == "jmprel" and not tab.rela:
                rel_tables.add(TABLE_KINDS.index("jmprel"))
        rel_relative = np.isin(r.table, list(rel_tables)) & np.isin(
            r.r_type, [t for t, k in class_of.items() if k is RelocClass.RELATIVE]
        )
        keep &= ~rel_relative
    offsets = r.offset[keep]
    widths = widths[keep]
    is_relr = relr[keep]
    is_copy = copy_mask[keep]
    tables = r.table[keep]
    if offsets.size == 0:
        return []
    P = np.uint64(ctx.page)
    start = offsets // P  # the page each record starts in, as a page number
    starts = distinct(start)
    # Records per (start page, type) in one vectorised pass over small integers (page index x
    # label, no overflow), then a plain walk over the distinct pairs. RELR records get the
    # label after the types. One np.unique per page was 0.5 s on libLLVM.
    n_labels = len(types) + 1
    label = np.where(is_relr, len(types), type_index[keep])
    pair = np.searchsorted(starts, start) * n_labels + label
    keys, counts = tally(pair)
    names = [name_of[t] for t in types] + ["RELR"]
    page_list = (starts * P).tolist()
    per_page: dict[int, list[tuple[str, int]]] = {}
    for key, c in zip(keys.tolist(), counts.tolist(), strict=True):
        per_page.setdefault(page_list[key // n_labels], []).append((names[key % n_labels], c))
    # Pages reached only by a write running on from its start page (unaligned words, COPY).
    crossing = offsets % P + widths.astype(np.uint64) > P
    pages = set(page_list)
    if crossing.any():
        # Counted before they are listed: a crafted COPY of a huge st_size into a huge
        # segment must be refused, not turned into an array of millions of pages.
        last = (offsets[crossing] + widths[crossing].astype(np.uint64) - np.uint64(1)) // P
        beyond = float((last - start[crossing]).sum(dtype=np.float64))
        if beyond > MAX_SPANNED_PAGES:
            raise UnsupportedElfError(
                ctx.dso.file,
                "relocations",
                f"their writes run on over {beyond:.0f} pages past the pages they start in, "
                f"more than the {MAX_SPANNED_PAGES} elfcost lists",
            )
        pages.update(span_pages(offsets[crossing], widths[crossing], ctx.page).tolist())
    writable = _writable_ranges(ctx)
    out: list[PageCost] = []
    copy_pages = set(span_pages(offsets[is_copy], widths[is_copy], ctx.page).tolist())
    iplt_pages = set((start[tables == TABLE_KINDS.index("iplt")] * P).tolist())
    for pg in sorted(pages):
        named = per_page.get(pg, [])  # empty: reached only by a write from the previous page
        n = sum(c for _, c in named)
        detail = ", ".join(f"{c} x {t}" for t, c in sorted(named, key=lambda x: -x[1]))
        if not _in_ranges(pg, writable):
            cause = Cause.TEXTREL
            detail = f"text relocation: {detail or 'write spills into the page'}"
        elif pg in copy_pages:
            cause = Cause.COPY_RELOC
            detail = f"copy relocation target: {detail or 'copied bytes continue'}"
        elif pg in iplt_pages:
            cause = Cause.IRELATIVE
            detail = f"IRELATIVE applied by static start-up: {detail}"
        else:
            cause = Cause.RELOCATION
            detail = detail or "relocated word continues from the previous page"
        out.append(
            PageCost(
                vaddr=pg,
                cause=cause,
                certain=True,
                phase="entry",
                detail=detail,
                sections=_sections(ctx, pg),
                reloc_count=n,
                reloc_types=tuple(t for t, _ in named),
            )
        )
    return out


def _copy_room(ctx: ObjectContext, offsets: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Bytes a COPY at each offset can write: up to the end of the writable PT_LOAD holding it.

    glibc memcpy()s min(st_size of both symbols) bytes (sysdeps/x86_64/dl-machine.h
    R_X86_64_COPY); past the end of the segment the process would fault, so a larger st_size
    is a claim, not a cost. Outside every writable segment: one word.
    """
    room = np.full(offsets.size, ctx.word, np.int64)
    for s in ctx.dso.loads:
        if s.flags & Prot.W:
            inside = (offsets >= np.uint64(s.vaddr)) & (offsets < np.uint64(s.end))
            room[inside] = (np.uint64(s.end) - offsets[inside]).astype(np.int64)
    return room


# -- R-K1 / R-G1 / R-M1: the partial page after p_filesz ----------------------------------------


def bss_tail_pages(ctx: ObjectContext) -> list[PageCost]:
    """The page holding p_vaddr + p_filesz is zeroed to its end when p_memsz > p_filesz.

    Kernel (fs/binfmt_elf.c elf_load → padzero) for the executable and the interpreter, and
    only in writable segments (clear_user faults on a read-only one and the error is ignored);
    glibc elf/dl-map-segments.h _dl_map_segments memsets it in any segment (mprotecting a
    read-only one); musl ldso/dynlink.c map_library only in PF_W segments.
    """
    out = []
    for s in ctx.dso.loads:
        if s.memsz <= s.filesz:
            continue
        zero_start = s.vaddr + s.filesz
        if zero_start % ctx.page == 0:
            continue
        if ctx.kernel_mapped:
            if not s.flags & Prot.W or s.filesz == 0:
                continue
            who = "kernel padzero"
        elif ctx.family is LoaderFamily.MUSL:
            if not s.flags & Prot.W:
                continue
            who = "musl map_library memset"
        else:
            who = "ld.so _dl_map_segments memset"
        pg = _page(ctx, zero_start)
        end = min(align_up(zero_start, ctx.page), s.end)
        out.append(
            _written(
                ctx, pg, Cause.BSS_TAIL, f"{who} 0x{zero_start:x}..0x{end:x} (PT_LOAD #{s.index})"
            )
        )
    return out


# -- R-G3: glibc relocates .dynamic in place ----------------------------------------------------

_ADJUSTED_TAGS = (
    DT_HASH,
    DT_PLTGOT,
    DT_STRTAB,
    DT_SYMTAB,
    DT_RELR,
    DT_JMPREL,
    DT_VERSYM,
    DT_GNU_HASH,
)
_RELA_MACHINES = frozenset({"x86_64", "aarch64", "riscv64", "ppc64", "s390x"})
# DL_RO_DYN_SECTION: these targets keep .dynamic read-only (sysdeps/*/ldsodefs.h).
_RO_DYNAMIC_MACHINES = frozenset({"riscv64", "mips"})


def dynamic_pages(ctx: ObjectContext) -> list[PageCost]:
    """glibc elf/get-dynamic-info.h: `info[tag]->d_un.d_ptr += l_addr` for the address tags.

    Only when l_addr != 0 (ET_DYN) and PT_DYNAMIC is writable (l_ld_readonly false).
    """
    dyn, ph = ctx.dso.dynamic, ctx.dso.dynamic_phdr
    if ctx.family is not LoaderFamily.GLIBC or dyn is None or ph is None:
        return []
    if ctx.dso.e_type == ET_EXEC or not ph.flags & Prot.W:
        return []
    if ctx.dso.machine in _RO_DYNAMIC_MACHINES:
        return []
    tags = set(_ADJUSTED_TAGS)
    tags.add(DT_RELA if ctx.dso.machine in _RELA_MACHINES else DT_REL)
    last: dict[int, int] = {}
    for e in dyn.entries:
        if e.tag in tags and (e.tag not in (DT_RELA, DT_REL) or e.value):
            last[e.tag] = e.index  # info[] keeps the last entry of each tag
    entsize = 2 * ctx.word
    pages: dict[int, int] = {}
    for idx in last.values():
        pg = _page(ctx, ph.vaddr + idx * entsize + ctx.word)
        pages[pg] = pages.get(pg, 0) + 1
    return [
        _written(
            ctx,
            pg,
            Cause.DYNAMIC,
            f"{n} d_ptr entries of .dynamic adjusted by l_addr (elf_get_dynamic_info)",
        )
        for pg, n in sorted(pages.items())
    ]


# -- R-G4 / R-M3: DT_DEBUG ----------------------------------------------------------------------


def debug_pages(ctx: ObjectContext) -> list[PageCost]:
    """The main executable's DT_DEBUG is set to &_r_debug.

    glibc sysdeps/generic/dl-debug.h elf_setup_debug_entry (dl_main, and
    _dl_relocate_static_pie for static-pie); musl __dls3 (dynamic programs only).
    """
    dyn, ph = ctx.dso.dynamic, ctx.dso.dynamic_phdr
    if ctx.role != "executable" or dyn is None or ph is None or not ph.flags & Prot.W:
        return []
    if ctx.family is LoaderFamily.NONE and not (ctx.static_pie and _is_glibc_static(ctx)):
        return []
    for e in dyn.entries:
        if e.tag == DT_DEBUG:
            pg = _page(ctx, ph.vaddr + e.index * 2 * ctx.word + ctx.word)
            return [_written(ctx, pg, Cause.DEBUG, "DT_DEBUG set to &_r_debug")]
    return []


def _is_glibc_static(ctx: ObjectContext) -> bool:
    return ctx.dso.osabi in (0, 3) and any(s.name == ".note.ABI-tag" for s in ctx.dso.sections)


# -- R-G5: lazy binding GOT header --------------------------------------------------------------


def got_header_pages(ctx: ObjectContext) -> list[PageCost]:
    """elf_machine_runtime_setup stores the link_map and the resolver in GOT[1], GOT[2].

    Only under lazy binding with DT_JMPREL (sysdeps/x86_64/dl-machine.h; RISC-V uses GOT[0..1]).
    """
    dyn = ctx.dso.dynamic
    if ctx.family is not LoaderFamily.GLIBC or dyn is None or ctx.bind_now:
        return []
    if dyn.table("jmprel") is None or dyn.pltgot is None:
        return []
    slots = (0, 1) if ctx.dso.machine == "riscv64" else (1, 2)
    pages = sorted({_page(ctx, dyn.pltgot + i * ctx.word) for i in slots})
    return [
        _written(
            ctx, pg, Cause.GOT_HEADER, "lazy binding: GOT[1..2] = link_map, _dl_runtime_resolve"
        )
        for pg in pages
    ]


# -- R-G8: ld.so's own data ---------------------------------------------------------------------


def loader_data_pages(ctx: ObjectContext) -> list[PageCost]:
    """glibc's ld.so writes _rtld_global / _rtld_global_ro and its own link_map: every page of
    its writable PT_LOAD, file part and bss (elf/rtld.c _dl_start, dl_main)."""
    if ctx.role != "interpreter" or ctx.family is not LoaderFamily.GLIBC:
        return []
    out = []
    for s in ctx.dso.loads:
        if not s.flags & Prot.W:
            continue
        for pg in pages_of(s.vaddr, s.end, ctx.page):
            out.append(
                _written(
                    ctx,
                    pg,
                    Cause.LOADER_DATA,
                    "ld.so state (_rtld_global, its link_map, rtld malloc tail)",
                )
            )
    return out


# -- R-M4: musl donates the gaps of writable segments to malloc ---------------------------------


def gap_donation_pages(ctx: ObjectContext) -> list[PageCost]:
    """musl ldso/dynlink.c reclaim_gaps → reclaim → __malloc_donate, which memsets the gap.

    For each PF_R|PF_W PT_LOAD, [pagedown(p_vaddr), p_vaddr) and [p_vaddr+p_memsz, pageup(..)),
    each clipped by RELRO (relro_start = pagedown(start), relro_end = pagedown(end)).
    """
    if ctx.family is not LoaderFamily.MUSL:
        return []
    relro = ctx.dso.relro
    r_start = align_down(relro.vaddr, ctx.page) if relro else 0
    r_end = align_down(relro.end, ctx.page) if relro else 0
    out = []
    for s in ctx.dso.loads:
        if (s.flags & (Prot.R | Prot.W)) != (Prot.R | Prot.W):
            continue
        for start, end in (
            (align_down(s.vaddr, ctx.page), s.vaddr),
            (s.end, align_up(s.end, ctx.page)),
        ):
            if r_start <= start < r_end:
                start = r_end
            if r_start <= end < r_end:
                end = r_start
            if start >= end:
                continue
            pg = _page(ctx, start)
            out.append(
                _written(
                    ctx,
                    pg,
                    Cause.GAP_DONATION,
                    f"musl donates 0x{start:x}..0x{end:x} to malloc and zeroes it",
                )
            )
    return out


# -- high bound ---------------------------------------------------------------------------------


def possible_write_pages(
    ctx: ObjectContext, known: set[int], limit: int
) -> tuple[list[PageCost], int]:
    """Every other page of a writable segment: the program may write it (the `high` bound).

    The first `limit` of them are listed, in segment then address order; the rest are only
    counted (second value), so a gigabyte of .bss costs a number, not a list.
    """
    spans = [(s.vaddr, s.end) for s in ctx.dso.loads if s.flags & Prot.W]
    P = ctx.page
    in_spans = sum(
        1 for pg in known if any(align_down(a, P) <= pg < align_up(b, P) for a, b in spans)
    )
    unlisted = count_pages(spans, P) - in_spans
    out: list[PageCost] = []
    for s in ctx.dso.loads:
        if not s.flags & Prot.W:
            continue
        for pg in pages_of(s.vaddr, s.end, P):
            if len(out) == limit:
                return out, unlisted - len(out)
            if pg in known:
                continue
            known.add(pg)
            anon = pg >= align_up(s.vaddr + s.filesz, P)
            out.append(
                PageCost(
                    vaddr=pg,
                    cause=Cause.POSSIBLE_WRITE,
                    certain=False,
                    phase="possible",
                    detail="bss: zero until written"
                    if anon
                    else "file-backed: clean until written",
                    sections=_sections(ctx, pg),
                )
            )
    return out, unlisted - len(out)


RULES = (
    relocation_pages,
    bss_tail_pages,
    dynamic_pages,
    debug_pages,
    got_header_pages,
    loader_data_pages,
    gap_donation_pages,
)
