"""One pure function per cause of a private dirty page (loader-model.md §11).

Each rule takes an ObjectContext (the object, how it is loaded, the page size, its
relocations) and returns the pages it dirties, each with its reason. Rules do not look at each
other: `estimate` merges them, the most specific cause winning (model.Cause order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property

import msgspec

from elfcost.cost.pages import align_down, align_up, count_pages, pages_of
from elfcost.elf.facts import GRAIN, IPLT, RELR, TABLE_KINDS, InitWrite, InitWrites, RelocGroups
from elfcost.elf.machines import BY_NAME, RelocClass, RelocType, reloc_type
from elfcost.errors import MalformedElfError, UnsupportedElfError
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
    Cause,
    Dso,
    LoaderFamily,
    PageCost,
    Prot,
    Role,
    SectionIndex,
    inside,
)


class ObjectContext(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """What every cost rule may look at for one object: the file, how it is loaded, its
    relocations and the page size."""

    dso: Dso
    role: Role
    family: LoaderFamily  # the process's loader; NONE for a static executable
    static_pie: bool  # the process is a static-pie executable (self-relocating)
    page: int  # runtime page size P
    bind_now: bool  # effective binding mode for this object (glibc; musl always binds now)
    relocs: RelocGroups
    copy_sizes: Mapping[int, int]  # st_size of the symbols COPY relocations name, by index
    # What the object's initialisers certainly write (elf/ctors.py); None: not disassembled.
    init_writes: InitWrites | None = None
    # Sorted once per object, not once per page (a large .bss has hundreds of thousands).

    @cached_property
    def sections(self) -> SectionIndex:
        return SectionIndex.of(self.dso.sections)

    @property
    def word(self) -> int:
        return self.dso.elf_class // 8

    @property
    def kernel_mapped(self) -> bool:
        """The kernel, not ld.so, maps the executable and the interpreter (binfmt_elf.c)."""
        return self.role in ("executable", "interpreter") or self.family is LoaderFamily.NONE


def _page(ctx: ObjectContext, vaddr: int) -> int:
    return align_down(vaddr, ctx.page)


def _written(
    ctx: ObjectContext,
    pg: int,
    cause: Cause,
    detail: str,
    *,
    reloc_count: int = 0,
    reloc_types: tuple[str, ...] = (),
) -> PageCost:
    """A page the loader (or the kernel) certainly writes before the entry point."""
    return PageCost(
        vaddr=pg,
        cause=cause,
        certain=True,
        phase="entry",
        detail=detail,
        sections=_sections(ctx, pg),
        reloc_count=reloc_count,
        reloc_types=reloc_types,
    )


def _sections(ctx: ObjectContext, page: int) -> tuple[str, ...]:
    return ctx.sections.names_at(page, page + ctx.page)


def _writable_ranges(ctx: ObjectContext) -> list[tuple[int, int]]:
    return [
        (align_down(s.vaddr, ctx.page), align_up(s.end, ctx.page))
        for s in ctx.dso.loads
        if s.writable
    ]


# Pages written by relocations beyond the page each starts in (COPY of large objects): all
# listed one by one, so bounded.
MAX_SPANNED_PAGES = 1 << 16


# -- R-G2 / R-M2 / R-S1: relocation targets -----------------------------------------------------


def relocation_pages(ctx: ObjectContext) -> list[PageCost]:
    """Every dynamic relocation record except NONE writes span(r_offset, width).

    glibc elf/dynamic-link.h ELF_DYNAMIC_RELOCATE (RELR, REL, RELA, JMPREL; JUMP_SLOTs are
    written even when lazy: sysdeps/x86_64/dl-machine.h elf_machine_lazy_rel), musl
    ldso/dynlink.c do_relocs / do_relr_relocs, static start-up csu/libc-start.c apply_irel.
    Works on the records grouped by GRAIN page (elf/relocs.py RelocGroups): per page, how many
    of each type; the few records that write past their page, one by one.
    """
    g = ctx.relocs
    if not g.groups and not g.copies:
        return []
    P = ctx.page
    if P % GRAIN:
        raise ValueError(f"page size {P} is not a multiple of {GRAIN}")
    machine = BY_NAME.get(ctx.dso.machine)
    word = ctx.word
    infos: dict[int, RelocType] = {}

    def info(t: int) -> RelocType:
        if t not in infos:
            infos[t] = reloc_type(machine, t, word)
        return infos[t]

    skip_rel_relative: set[int] = set()  # tables whose RELATIVE records are not written
    if ctx.family is LoaderFamily.GLIBC and ctx.dso.e_type == ET_EXEC and machine is not None:
        # REL-format RELATIVE relocations are skipped when l_addr == 0 (elf/do-rel.h,
        # ELF_MACHINE_REL_RELATIVE / the RELCOUNT skip); RELA ones are still stored.
        skip_rel_relative.add(TABLE_KINDS.index("rel"))
        for tab in ctx.dso.dynamic.tables if ctx.dso.dynamic else ():
            if tab.kind == "jmprel" and not tab.rela:
                skip_rel_relative.add(TABLE_KINDS.index("jmprel"))

    def skipped(t: int, table: int) -> bool:
        return table in skip_rel_relative and info(t).kind is RelocClass.RELATIVE

    # (page, (is RELR, type)) -> records starting there: RELR sorts after the types.
    named: dict[int, dict[tuple[bool, int], int]] = {}
    iplt_pages: set[int] = set()
    for page, t, table, n in g.groups:
        width = word if table == RELR else info(t).width
        if width <= 0 or skipped(t, table):
            continue
        pg = page - page % P
        per = named.setdefault(pg, {})
        key = (table == RELR, t)
        per[key] = per.get(key, 0) + n
        if table == IPLT:
            iplt_pages.add(pg)
    # Spans of every COPY (its target pages) and of the writes that run past their page.
    spans: list[tuple[int, int, bool]] = []
    for off, t, sym, table in g.copies:
        width = min(ctx.copy_sizes.get(sym, 0), _copy_room(ctx, off))
        if width <= 0:
            continue
        pg = off - off % P
        per = named.setdefault(pg, {})
        per[(False, t)] = per.get((False, t), 0) + 1
        if table == IPLT:
            iplt_pages.add(pg)
        spans.append((off // P, _last_page(off, width, P), True))
    end_of_space = 1 << ctx.dso.elf_class  # 2**64 (2**32): where a write would wrap around
    for off, t, _, table in g.straddles:
        if not skipped(t, table):
            width = word if table == RELR else info(t).width
            if off + width > end_of_space:
                # The loader would write past the top of the address space: no page to
                # count, and no process that survives it.
                raise MalformedElfError(
                    ctx.dso.file,
                    "relocations",
                    f"{_what(info, t, table)} at 0x{off:x} writes {width} bytes past the end "
                    "of the address space",
                )
            spans.append((off // P, _last_page(off, width, P), False))
    beyond = sum(last - first for first, last, _ in spans)
    if beyond > MAX_SPANNED_PAGES:
        # Counted before they are listed: a crafted COPY of a huge st_size into a huge
        # segment must be refused, not turned into a list of millions of pages.
        raise UnsupportedElfError(
            ctx.dso.file,
            "relocations",
            f"their writes run on over {beyond} pages past the pages they start in, "
            f"more than the {MAX_SPANNED_PAGES} elfcost lists",
        )
    pages = set(named)
    copy_pages: set[int] = set()
    for first, last, is_copy in spans:
        covered = range(first * P, (last + 1) * P, P)
        pages.update(covered)
        if is_copy:
            copy_pages.update(covered)
    writable = _writable_ranges(ctx)
    mapped = [(align_down(s.vaddr, P), align_up(s.end, P)) for s in ctx.dso.loads]
    out: list[PageCost] = []
    for pg in sorted(pages):
        counts = named.get(pg, {})  # empty: reached only by a write from the page before
        # Types in number order (RELR last); the detail lists the commonest first.
        by_type = [("RELR" if relr else info(t).name, c) for (relr, t), c in sorted(counts.items())]
        n = sum(c for _, c in by_type)
        detail = ", ".join(f"{c} x {t}" for t, c in sorted(by_type, key=lambda x: -x[1]))
        if not inside(pg, mapped):
            # The loader stores at l_addr + r_offset whatever is there: outside every PT_LOAD
            # that is memory the object does not map, and the process crashes (or corrupts
            # another mapping). Not a page this object costs: the file is malformed.
            raise MalformedElfError(
                ctx.dso.file,
                "relocations",
                f"{detail or 'a relocated word'} at page 0x{pg:x}: outside every PT_LOAD",
            )
        if not inside(pg, writable):
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
        reloc_types = tuple(t for t, _ in by_type)
        out.append(_written(ctx, pg, cause, detail, reloc_count=n, reloc_types=reloc_types))
    return out


def _what(info: Callable[[int], RelocType], t: int, table: int) -> str:
    """A relocation record named for a message: "R_X86_64_64 (DT_RELA)"."""
    name = "RELR" if table == RELR else info(t).name
    return f"{name} ({TABLE_KINDS[table]})"


def _last_page(offset: int, width: int, P: int) -> int:
    """The page number of a write's last byte; a write running past 2**64 stops at the last
    page instead of wrapping around."""
    return min(offset + width - 1, 2**64 - 1) // P


def _copy_room(ctx: ObjectContext, offset: int) -> int:
    """Bytes a COPY at `offset` can write: up to the end of the writable PT_LOAD holding it.

    glibc memcpy()s min(st_size of both symbols) bytes (sysdeps/x86_64/dl-machine.h
    R_X86_64_COPY); past the end of the segment the process would fault, so a larger st_size
    is a claim, not a cost. Outside every writable segment: one word. (The last segment that
    holds it decides, as the loads are applied in order.)
    """
    room = ctx.word
    for s in ctx.dso.loads:
        if s.writable and s.vaddr <= offset < s.end:
            room = s.end - offset
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
            if not s.writable or s.filesz == 0:
                continue
            who = "kernel padzero"
        elif ctx.family is LoaderFamily.MUSL:
            if not s.writable:
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
    if ctx.dso.e_type == ET_EXEC or not ph.writable:
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
    if ctx.role != "executable" or dyn is None or ph is None or not ph.writable:
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
        if not s.writable:
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
    each clipped by RELRO (relro_start = pagedown(start), relro_end = pagedown(end)): the
    gaps cost/muslheap.py gives mallocng (R-M5).
    """
    if ctx.family is not LoaderFamily.MUSL:
        return []
    return [
        _written(
            ctx,
            _page(ctx, start),
            Cause.GAP_DONATION,
            f"musl donates 0x{start:x}..0x{end:x} to malloc and zeroes it",
        )
        for start, end in donated_gaps(ctx.dso, ctx.page)
    ]


def donated_gaps(dso: Dso, page: int) -> list[tuple[int, int]]:
    """musl ldso/dynlink.c reclaim_gaps → reclaim: for each PF_R|PF_W PT_LOAD, in program
    header order, [pagedown(p_vaddr), p_vaddr) then [p_vaddr+p_memsz, pageup(..)), each
    clipped by RELRO (relro_start = pagedown(start), relro_end = pagedown(end))."""
    relro = dso.relro
    r_start = align_down(relro.vaddr, page) if relro else 0
    r_end = align_down(relro.end, page) if relro else 0
    out = []
    for s in dso.loads:
        if (s.flags & (Prot.R | Prot.W)) != (Prot.R | Prot.W):
            continue
        for start, end in ((align_down(s.vaddr, page), s.vaddr), (s.end, align_up(s.end, page))):
            if r_start <= start < r_end:
                start = r_end
            if r_start <= end < r_end:
                end = r_start
            if start < end:
                out.append((start, end))
    return out


# -- R-G12: what initialisers certainly write ---------------------------------------------------


def constructor_pages(ctx: ObjectContext) -> list[PageCost]:
    """The pages the object's initialisers write on every path through them (elf/ctors.py).

    When they run decides the phase. glibc: ld.so's _dl_start_user calls _dl_init before it
    jumps to the entry point, and _dl_init runs every library's DT_INIT and DT_INIT_ARRAY
    (elf/dl-init.c call_init) and the executable's DT_PREINIT_ARRAY, but not the executable's
    own DT_INIT and DT_INIT_ARRAY: __libc_start_main runs those (csu/libc-start.c call_init),
    after the entry point. musl: __dls3 jumps to the entry point with every initialiser still
    to run; __libc_start_main's __libc_start_init runs them all (ldso/dynlink.c do_init_fini).
    A static program: all after the entry point. A write through the GOT entry of a symbol the
    library defines lands in this library unless an object earlier in the lookup scope defines
    the name too (a COPY relocation in the executable): such a page is not `certain`.
    """
    found = ctx.init_writes
    if found is None or not found.writes or ctx.role == "interpreter":
        return []
    P = ctx.page
    glibc = ctx.family is LoaderFamily.GLIBC
    pages: dict[int, list[InitWrite]] = {}
    listed = 0
    for w in found.writes:
        seg = next((s for s in ctx.dso.loads if s.writable and s.vaddr <= w.vaddr < s.end), None)
        if seg is None:
            continue
        span = pages_of(w.vaddr, min(w.vaddr + w.size, seg.end), P)
        listed += len(span)
        if listed > MAX_SPANNED_PAGES:
            raise UnsupportedElfError(
                ctx.dso.file,
                "initialisers",
                f"their proved writes cover over {MAX_SPANNED_PAGES} pages, more than elfcost "
                "lists",
            )
        for pg in span:
            pages.setdefault(pg, []).append(w)
    out = []
    for pg, writes in sorted(pages.items()):
        early = glibc and (ctx.role == "library" or any(w.preinit for w in writes))
        interposable = ctx.role == "library" and all(w.symbol for w in writes)
        detail = "; ".join(_init_write(w) for w in writes[:2])
        if len(writes) > 2:
            detail += f"; {len(writes) - 2} more"
        out.append(
            PageCost(
                vaddr=pg,
                cause=Cause.CONSTRUCTOR,
                certain=not interposable,
                phase="entry" if early else "idle",
                detail=detail,
                sections=_sections(ctx, pg),
            )
        )
    return out


def _init_write(w: InitWrite) -> str:
    size = f"{w.size // 1024} KiB" if w.size >= 1024 and w.size % 1024 == 0 else f"{w.size} B"
    through = f" through the GOT entry of {w.symbol}" if w.symbol else ""
    return f"constructor {w.initialiser} writes {size} at 0x{w.vaddr:x}{through} ({w.how})"


# -- high bound ---------------------------------------------------------------------------------


def possible_write_pages(
    ctx: ObjectContext, known: set[int], limit: int
) -> tuple[list[PageCost], int]:
    """Every other page of a writable segment: the program may write it (the `high` bound).

    The first `limit` of them are listed, in segment then address order; the rest are only
    counted (second value), so a gigabyte of .bss costs a number, not a list.
    """
    spans = [(s.vaddr, s.end) for s in ctx.dso.loads if s.writable]
    P = ctx.page
    in_spans = sum(
        1 for pg in known if any(align_down(a, P) <= pg < align_up(b, P) for a, b in spans)
    )
    unlisted = count_pages(spans, P) - in_spans
    out: list[PageCost] = []
    for s in ctx.dso.loads:
        if not s.writable:
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
    constructor_pages,
)
