"""Every cost rule on small synthetic objects: one scenario, one expectation, per rule and
loader family (loader-model.md §3-§6). Objects are model.Dso values built by hand, their
relocations grouped as elf/relocs.py groups a table's records; no file is read. Expected page
sets are worked out by hand in each test's comment, at P = 4 KiB on x86_64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
import pytest

from elfcost.cost import rules
from elfcost.cost.estimate import Options, estimate
from elfcost.elf.facts import (
    IPLT,
    NO_GROUPS,
    TABLE_KINDS,
    Constructors,
    InitWrite,
    InitWrites,
    ObjectFacts,
    RelocGroups,
)
from elfcost.elf.relocs import _group_records
from elfcost.errors import MalformedElfError
from elfcost.model import (
    DT_DEBUG,
    DT_GNU_HASH,
    DT_HASH,
    DT_NEEDED,
    DT_NULL,
    DT_RELA,
    DT_RELASZ,
    DT_STRSZ,
    DT_STRTAB,
    DT_SYMENT,
    DT_SYMTAB,
    ET_DYN,
    ET_EXEC,
    PT_DYNAMIC,
    PT_GNU_RELRO,
    PT_LOAD,
    SHF_ALLOC,
    Cause,
    Dso,
    DynamicInfo,
    DynEntry,
    FileId,
    FoundVia,
    LoadedObject,
    LoaderFamily,
    ObjectEstimate,
    PageCost,
    Prot,
    RelocTableRef,
    Section,
    Segment,
)
from elfcost.resolve.graph import DependencyGraph

TYPE_CHECKING = False
if TYPE_CHECKING:
    from elfcost.model import Role

P = 4096
RW, RX, RO = Prot.R | Prot.W, Prot.R | Prot.X, Prot.R
GLIBC, MUSL, NONE = LoaderFamily.GLIBC, LoaderFamily.MUSL, LoaderFamily.NONE
# x86_64 relocation types (glibc elf/elf.h)
R_64, R_PC32, R_COPY, R_GLOB_DAT, R_JUMP_SLOT, R_RELATIVE, R_IRELATIVE = 1, 2, 5, 6, 7, 8, 37


# -- builders -----------------------------------------------------------------------------------


def seg(vaddr: int, filesz: int, memsz: int, flags: Prot, p_type: int = PT_LOAD) -> Segment:
    return Segment(
        index=0,
        p_type=p_type,
        offset=vaddr,
        vaddr=vaddr,
        filesz=filesz,
        memsz=memsz,
        align=P,
        flags=flags,
    )


def dynamic(
    *entries: tuple[int, int], tables: Sequence[RelocTableRef] = (), pltgot: int | None = None
) -> DynamicInfo:
    return DynamicInfo(
        entries=tuple(DynEntry(index=i, tag=t, value=v) for i, (t, v) in enumerate(entries)),
        needed=(),
        soname=None,
        rpath=(),
        runpath=(),
        flags=0,
        flags_1=0,
        tables=tuple(tables),
        pltgot=pltgot,
        symtab=None,
        syment=24,
        strtab=None,
        textrel=False,
    )


def dso(
    *phdrs: Segment,
    e_type: int = ET_DYN,
    dyn: DynamicInfo | None = None,
    path: str = "/lib/libx.so",
    interp: str | None = None,
) -> Dso:
    return Dso(
        path=path,
        file=path,
        file_id=FileId(dev=0, ino=0),
        file_size=0,
        elf_class=64,
        little_endian=True,
        e_machine=62,
        machine="x86_64",
        osabi=0,
        e_type=e_type,
        entry=0,
        phdrs=tuple(Segment(**{**_fields(p), "index": i}) for i, p in enumerate(phdrs)),
        interp=interp,
        dynamic=dyn,
    )


def _fields(p: Segment) -> dict[str, object]:
    return {f: getattr(p, f) for f in p.__struct_fields__}


def relocs(d: Dso, *records: tuple[str, int, int], sym: int = 0) -> RelocGroups:
    """(table kind, r_offset, r_type) records, grouped as elf/relocs.py groups a table."""
    runs = [(TABLE_KINDS.index(kind), [off], [r_type], [sym]) for kind, off, r_type in records]
    return _group_records(d, runs)


def ctx(
    d: Dso,
    *,
    role: Role = "library",
    family: LoaderFamily = GLIBC,
    bind_now: bool = True,
    groups: RelocGroups = NO_GROUPS,
    copy_sizes: Mapping[int, int] | None = None,
    static_pie: bool = False,
) -> rules.ObjectContext:
    return rules.ObjectContext(
        dso=d,
        role=role,
        family=family,
        static_pie=static_pie,
        page=P,
        bind_now=bind_now,
        relocs=groups,
        copy_sizes=copy_sizes or {},
    )


def pages(found: Sequence[PageCost]) -> dict[int, Cause]:
    out: dict[int, Cause] = {}
    for pc in found:
        assert pc.vaddr is not None and pc.vaddr not in out
        out[pc.vaddr] = pc.cause
    return out


# A writable data segment whose file part ends inside page 0x4000 and whose bss runs on to
# 0x5010: p_vaddr + p_filesz = 0x4010, not page-aligned.
DATA = seg(0x3DE8, 0x228, 0x1228, RW)
TEXT = seg(0x0, 0x1800, 0x1800, RX)


# -- R-K1 / R-G1 / R-M1: the partial page after p_filesz ----------------------------------------


def test_r_k1_kernel_zeroes_the_executables_bss_tail() -> None:
    # fs/binfmt_elf.c padzero(0x4010): the rest of page 0x4000.
    exe = dso(TEXT, DATA, e_type=ET_EXEC)
    assert pages(rules.bss_tail_pages(ctx(exe, role="executable"))) == {0x4000: Cause.BSS_TAIL}


def test_r_k1_kernel_leaves_a_read_only_segments_tail() -> None:
    # clear_user faults on a non-writable mapping and binfmt_elf ignores the error.
    exe = dso(TEXT, seg(0x3DE8, 0x228, 0x1228, RO), e_type=ET_EXEC)
    assert rules.bss_tail_pages(ctx(exe, role="executable")) == []


def test_r_k1_a_page_aligned_file_end_has_no_tail() -> None:
    exe = dso(TEXT, seg(0x3000, 0x1000, 0x2000, RW), e_type=ET_EXEC)
    assert rules.bss_tail_pages(ctx(exe, role="executable")) == []


def test_r_g1_glibc_zeroes_a_librarys_tail_even_when_read_only() -> None:
    # elf/dl-map-segments.h _dl_map_segments: mprotect RW, memset(0x4010, 0, 0xff0), restore.
    lib = dso(TEXT, seg(0x3DE8, 0x228, 0x1228, RO))
    assert pages(rules.bss_tail_pages(ctx(lib))) == {0x4000: Cause.BSS_TAIL}


def test_r_m1_musl_zeroes_only_writable_tails() -> None:
    # ldso/dynlink.c map_library: the memset is inside `if (ph->p_flags & PF_W)`.
    assert pages(rules.bss_tail_pages(ctx(dso(TEXT, DATA), family=MUSL))) == {
        0x4000: Cause.BSS_TAIL
    }
    ro = dso(TEXT, seg(0x3DE8, 0x228, 0x1228, RO))
    assert rules.bss_tail_pages(ctx(ro, family=MUSL)) == []


# -- R-G2 / R-M2: relocation targets ------------------------------------------------------------


def test_r_g2_each_record_dirties_span_r_offset_width() -> None:
    # RELATIVE at 0x3ff8 (8 bytes: page 0x3000); R_X86_64_64 at 0x4ffc (8 bytes: 0x4ffc..0x5003,
    # pages 0x4000 and 0x5000, the latter written by no record of its own).
    lib = dso(TEXT, seg(0x3000, 0x3000, 0x3000, RW))
    groups = relocs(lib, ("rela", 0x3FF8, R_RELATIVE), ("rela", 0x4FFC, R_64))
    found = rules.relocation_pages(ctx(lib, groups=groups))
    assert pages(found) == {
        0x3000: Cause.RELOCATION,
        0x4000: Cause.RELOCATION,
        0x5000: Cause.RELOCATION,
    }
    by_page = {pc.vaddr: pc for pc in found}
    assert by_page[0x3000].reloc_types == ("R_X86_64_RELATIVE",)
    assert by_page[0x5000].reloc_count == 0  # reached only by the straddling word


def test_r_g2_jump_slots_are_written_when_lazy_too() -> None:
    # sysdeps/x86_64/dl-machine.h elf_machine_lazy_rel: *reloc_addr += l_addr.
    lib = dso(TEXT, seg(0x3000, 0x2000, 0x2000, RW))
    groups = relocs(lib, ("jmprel", 0x4018, R_JUMP_SLOT))
    assert pages(rules.relocation_pages(ctx(lib, groups=groups, bind_now=False))) == {
        0x4000: Cause.RELOCATION
    }


def test_r_m2_musl_writes_the_same_targets() -> None:
    lib = dso(TEXT, seg(0x3000, 0x2000, 0x2000, RW))
    groups = relocs(lib, ("rela", 0x3008, R_GLOB_DAT), ("relr", 0x4000, 0))
    assert pages(rules.relocation_pages(ctx(lib, family=MUSL, groups=groups))) == {
        0x3000: Cause.RELOCATION,
        0x4000: Cause.RELOCATION,
    }


def test_copy_relocation_dirties_the_copied_bytes_in_the_executable() -> None:
    # R_X86_64_COPY at 0x4ff0 of a 0x20-byte symbol: 0x4ff0..0x500f, pages 0x4000 and 0x5000.
    exe = dso(TEXT, seg(0x3000, 0x1000, 0x3000, RW), e_type=ET_EXEC)
    groups = relocs(exe, ("rela", 0x4FF0, R_COPY), sym=3)
    found = rules.relocation_pages(ctx(exe, role="executable", groups=groups, copy_sizes={3: 0x20}))
    assert pages(found) == {0x4000: Cause.COPY_RELOC, 0x5000: Cause.COPY_RELOC}


def test_copy_relocation_stops_at_the_end_of_its_segment() -> None:
    # The segment ends at 0x5000: a claimed st_size of 0x20 can copy only 0x10 bytes.
    exe = dso(TEXT, seg(0x3000, 0x1000, 0x2000, RW), e_type=ET_EXEC)
    groups = relocs(exe, ("rela", 0x4FF0, R_COPY), sym=3)
    found = rules.relocation_pages(ctx(exe, role="executable", groups=groups, copy_sizes={3: 0x20}))
    assert pages(found) == {0x4000: Cause.COPY_RELOC}


def test_r_g6_a_relocation_in_text_is_a_textrel_page() -> None:
    # _dl_relocate_object makes the R-X segment writable for DT_TEXTREL: PC32 at 0x1100.
    lib = dso(TEXT, seg(0x3000, 0x1000, 0x1000, RW))
    groups = relocs(lib, ("rela", 0x1100, R_PC32), ("rela", 0x3000, R_RELATIVE))
    assert pages(rules.relocation_pages(ctx(lib, groups=groups))) == {
        0x1000: Cause.TEXTREL,
        0x3000: Cause.RELOCATION,
    }


def test_a_relocation_outside_every_pt_load_is_malformed() -> None:
    # Pages 0x0-0x1000 (text) and 0x3000-0x4000 (data) are mapped; 0x2000 lies in the gap
    # and 0x10000000 far past the end. ld.so would store to unmapped memory: no page to count.
    lib = dso(TEXT, seg(0x3000, 0x1000, 0x1000, RW))
    for off in (0x2010, 0x1000_0000):
        groups = relocs(lib, ("rela", off, R_RELATIVE), ("rela", 0x3000, R_RELATIVE))
        with pytest.raises(MalformedElfError) as e:
            rules.relocation_pages(ctx(lib, groups=groups))
        assert str(e.value) == (
            f"/lib/libx.so: relocations: 1 x R_X86_64_RELATIVE at page 0x{off & ~0xFFF:x}: "
            "outside every PT_LOAD"
        )


def test_a_relocation_wrapping_past_the_address_space_is_malformed() -> None:
    # An 8-byte R_X86_64_64 at 2**64 - 4 would write 4 bytes past the top: no page 2**64.
    top = seg(0xFFFF_FFFF_FFFF_F000, 0x1000, 0x1000, RW)
    lib = dso(TEXT, top)
    groups = relocs(lib, ("rela", 2**64 - 4, R_64))
    with pytest.raises(MalformedElfError, match=r"R_X86_64_64 \(rela\) at 0xfffffffffffffffc "):
        rules.relocation_pages(ctx(lib, groups=groups))


def test_r_s1_static_start_up_applies_irelative() -> None:
    # csu/libc-start.c apply_irel over the IRELATIVE section: the GOT slot at 0x4018.
    exe = dso(TEXT, seg(0x3000, 0x2000, 0x2000, RW), e_type=ET_EXEC)
    runs = [(IPLT, [0x4018], [R_IRELATIVE], [0])]
    groups = _group_records(exe, runs)
    found = rules.relocation_pages(ctx(exe, role="executable", family=NONE, groups=groups))
    assert pages(found) == {0x4000: Cause.IRELATIVE}


# -- R-G3: .dynamic rewritten in place ----------------------------------------------------------

# PT_DYNAMIC at 0x3f80, 16-byte entries, d_ptr at +8: DT_HASH (#1) at 0x3f98, DT_STRTAB (#2)
# 0x3fa8, DT_SYMTAB (#3) 0x3fb8, DT_DEBUG (#6) 0x3fe8, DT_RELA (#7) 0x3ff8 (page 0x3000);
# DT_GNU_HASH (#9) at 0x4018 (page 0x4000).
DYN_AT = 0x3F80
DYN_ENTRIES = (
    (DT_NEEDED, 1),
    (DT_HASH, 0x200),
    (DT_STRTAB, 0x300),
    (DT_SYMTAB, 0x400),
    (DT_STRSZ, 0x10),
    (DT_SYMENT, 24),
    (DT_DEBUG, 0),
    (DT_RELA, 0x500),
    (DT_RELASZ, 0x18),
    (DT_GNU_HASH, 0x600),
    (DT_NULL, 0),
)


def with_dynamic(*, e_type: int = ET_DYN, flags: Prot = RW, path: str = "/lib/libx.so") -> Dso:
    return dso(
        TEXT,
        seg(0x3000, 0x2000, 0x2000, RW),
        seg(DYN_AT, 16 * len(DYN_ENTRIES), 16 * len(DYN_ENTRIES), flags, PT_DYNAMIC),
        e_type=e_type,
        dyn=dynamic(*DYN_ENTRIES),
        path=path,
    )


def test_r_g3_glibc_adjusts_d_ptr_entries_of_a_writable_dynamic() -> None:
    # elf/get-dynamic-info.h: info[tag]->d_un.d_ptr += l_addr for HASH, STRTAB, SYMTAB, RELA,
    # GNU_HASH (not DT_DEBUG, DT_NEEDED, sizes).
    found = rules.dynamic_pages(ctx(with_dynamic()))
    assert pages(found) == {0x3000: Cause.DYNAMIC, 0x4000: Cause.DYNAMIC}
    assert [pc.detail.split()[0] for pc in found] == ["4", "1"]


def test_r_g3_not_for_musl_nor_et_exec_nor_a_read_only_dynamic() -> None:
    # musl decode_dyn only reads; l_addr == 0 for ET_EXEC; l_ld_readonly for a PT_DYNAMIC
    # without PF_W.
    assert rules.dynamic_pages(ctx(with_dynamic(), family=MUSL)) == []
    assert rules.dynamic_pages(ctx(with_dynamic(e_type=ET_EXEC), role="executable")) == []
    assert rules.dynamic_pages(ctx(with_dynamic(flags=RO))) == []


# -- R-G4 / R-M3: DT_DEBUG ----------------------------------------------------------------------


def test_r_g4_r_m3_dt_debug_of_the_main_executable_only() -> None:
    # glibc elf_setup_debug_entry, musl __dls3: the d_ptr of entry #6 at 0x3fe8.
    exe = with_dynamic(path="/bin/x")
    for family in (GLIBC, MUSL):
        found = rules.debug_pages(ctx(exe, role="executable", family=family))
        assert pages(found) == {0x3000: Cause.DEBUG}
        assert rules.debug_pages(ctx(with_dynamic(), role="library", family=family)) == []


def test_dt_debug_of_a_static_pie_only_with_glibc() -> None:
    # glibc _dl_relocate_static_pie calls elf_setup_debug_entry; musl's rcrt1 does not. A
    # glibc static-pie carries .note.ABI-tag.
    musl = with_dynamic(path="/bin/x")
    assert rules.debug_pages(ctx(musl, role="executable", family=NONE, static_pie=True)) == []
    note = Section(
        name=".note.ABI-tag",
        sh_type=7,
        flags=SHF_ALLOC,
        addr=0x300,
        offset=0x300,
        size=32,
        entsize=0,
    )
    glibc = msgspec.structs.replace(musl, sections=(note,))
    found = rules.debug_pages(ctx(glibc, role="executable", family=NONE, static_pie=True))
    assert pages(found) == {0x3000: Cause.DEBUG}


# -- R-G5: lazy binding GOT header --------------------------------------------------------------


def lazy_lib(pltgot: int) -> Dso:
    jmprel = RelocTableRef(kind="jmprel", vaddr=0x600, size=24, entsize=24, rela=True)
    return dso(TEXT, seg(0x3000, 0x2000, 0x2000, RW), dyn=dynamic(tables=[jmprel], pltgot=pltgot))


def test_r_g5_got_1_and_2_written_only_when_lazy() -> None:
    # elf_machine_runtime_setup: GOT[1] at DT_PLTGOT + 8 = 0x3ff8, GOT[2] at + 16 = 0x4000.
    found = rules.got_header_pages(ctx(lazy_lib(0x3FF0), bind_now=False))
    assert pages(found) == {0x3000: Cause.GOT_HEADER, 0x4000: Cause.GOT_HEADER}
    assert rules.got_header_pages(ctx(lazy_lib(0x3FF0), bind_now=True)) == []
    # musl has no lazy binding.
    assert rules.got_header_pages(ctx(lazy_lib(0x3FF0), family=MUSL, bind_now=False)) == []


def test_r_g5_needs_a_jmprel_table() -> None:
    lib = dso(TEXT, seg(0x3000, 0x2000, 0x2000, RW), dyn=dynamic(pltgot=0x4000))
    assert rules.got_header_pages(ctx(lib, bind_now=False)) == []


# -- R-G8: ld.so's own data ---------------------------------------------------------------------


def test_r_g8_every_page_of_glibc_ldsos_writable_segment() -> None:
    # 0x3e00..0x6100: pages 0x3000, 0x4000, 0x5000, 0x6000, the bss ones included.
    ldso = dso(TEXT, seg(0x3E00, 0x300, 0x2300, RW), path="/lib64/ld-linux-x86-64.so.2")
    found = rules.loader_data_pages(ctx(ldso, role="interpreter"))
    assert pages(found) == dict.fromkeys((0x3000, 0x4000, 0x5000, 0x6000), Cause.LOADER_DATA)
    assert rules.loader_data_pages(ctx(ldso, role="interpreter", family=MUSL)) == []
    assert rules.loader_data_pages(ctx(ldso, role="library")) == []


# -- R-M4 / R-G7: musl donates the gaps, clipped by RELRO rounded down --------------------------


def test_r_m4_musl_donates_both_gaps_of_a_writable_segment() -> None:
    # reclaim_gaps: [0x3000, 0x3e00) before p_vaddr and [0x5100, 0x6000) after p_vaddr+p_memsz,
    # a pure bss page nothing else touches. glibc does not.
    lib = dso(TEXT, seg(0x3E00, 0x100, 0x1300, RW))
    assert pages(rules.gap_donation_pages(ctx(lib, family=MUSL))) == {
        0x3000: Cause.GAP_DONATION,
        0x5000: Cause.GAP_DONATION,
    }
    assert rules.gap_donation_pages(ctx(lib)) == []


def test_r_g7_relro_end_is_rounded_down_so_a_partial_page_stays_writable() -> None:
    # RELRO 0x3e00..0x5020 ends at pagedown(0x5020) = 0x5000: the start gap lies inside it,
    # the end gap's page 0x5000 does not and is donated.
    data = seg(0x3E00, 0x100, 0x1300, RW)
    partial = dso(TEXT, data, seg(0x3E00, 0x1220, 0x1220, RO, PT_GNU_RELRO))
    assert pages(rules.gap_donation_pages(ctx(partial, family=MUSL))) == {
        0x5000: Cause.GAP_DONATION
    }
    # RELRO to 0x6000 covers page 0x5000 whole: nothing left to donate.
    whole = dso(TEXT, data, seg(0x3E00, 0x2200, 0x2200, RO, PT_GNU_RELRO))
    assert rules.gap_donation_pages(ctx(whole, family=MUSL)) == []


def test_r_g7_relro_does_not_remove_relocated_pages() -> None:
    # _dl_protect_relro only mprotects after relocation: the pages stay dirty.
    lib = dso(TEXT, seg(0x3000, 0x2000, 0x2000, RW), seg(0x3000, 0x1000, 0x1000, RO, PT_GNU_RELRO))
    groups = relocs(lib, ("rela", 0x3010, R_RELATIVE))
    assert pages(rules.relocation_pages(ctx(lib, groups=groups))) == {0x3000: Cause.RELOCATION}


# -- the estimate: precedence, the high bound, static phases ------------------------------------


def process(*objects: tuple[Dso, Role], family: LoaderFamily = GLIBC) -> DependencyGraph:
    return DependencyGraph.build(
        objects=[
            LoadedObject(dso=d, role=role, found_via=FoundVia.MAIN, parent=None)
            for d, role in objects
        ],
        resolutions=[],
        family=family,
        interp="/lib64/ld-linux-x86-64.so.2" if family is not NONE else None,
        warnings=[],
    )


def test_the_earlier_cause_wins_a_page_two_rules_claim() -> None:
    # Page 0x4000 holds a RELATIVE target and the bss tail (0x4010): model.Cause puts
    # RELOCATION before BSS_TAIL, and the page is counted once.
    exe = dso(TEXT, DATA, e_type=ET_EXEC, path="/bin/x")
    groups = relocs(exe, ("rela", 0x4008, R_RELATIVE))
    est = estimate(
        process((exe, "executable")),
        {exe.path: ObjectFacts(relocs=groups)},
        Options(page_size=P),
    )
    (obj,) = est.objects
    written = [p for p in obj.pages if p.phase != "possible"]
    assert [(p.vaddr, p.cause) for p in written] == [(0x4000, Cause.RELOCATION)]
    assert written[0].detail.endswith("also bss-tail")


def test_the_high_bound_lists_every_other_writable_page() -> None:
    # DATA spans 0x3000..0x6000: 0x4000 written (bss tail), 0x3000 (file-backed) and 0x5000
    # (bss) only possibly; high = 3 pages, expected = 1.
    exe = dso(TEXT, DATA, e_type=ET_EXEC, path="/bin/x")
    est = estimate(process((exe, "executable")), {exe.path: ObjectFacts()}, Options(page_size=P))
    (obj,) = est.objects
    assert pages(obj.pages) == {
        0x3000: Cause.POSSIBLE_WRITE,
        0x4000: Cause.BSS_TAIL,
        0x5000: Cause.POSSIBLE_WRITE,
    }
    assert {p.vaddr: p.phase for p in obj.pages} == {
        0x3000: "possible",
        0x4000: "entry",
        0x5000: "possible",
    }
    assert (obj.private_dirty.expected, obj.private_dirty.high) == (P, 3 * P)


def test_a_static_program_writes_only_the_bss_tail_before_its_entry() -> None:
    # No loader: the kernel's tail is at the entry point, IRELATIVE runs after _start.
    exe = dso(TEXT, DATA, e_type=ET_EXEC, path="/bin/x")
    runs = [(IPLT, [0x3008], [R_IRELATIVE], [0])]
    facts = ObjectFacts(relocs=_group_records(exe, runs), static_libc="musl")
    est = estimate(process((exe, "executable"), family=NONE), {exe.path: facts}, Options())
    (obj,) = est.objects
    phases = {p.vaddr: (p.cause, p.phase) for p in obj.pages if p.cause is not Cause.LIBC_STARTUP}
    assert phases == {
        0x3000: (Cause.IRELATIVE, "idle"),
        0x4000: (Cause.BSS_TAIL, "entry"),
        0x5000: (Cause.POSSIBLE_WRITE, "possible"),
    }


# -- R-G12: what initialisers certainly write ---------------------------------------------------

# .data and .bss from 0x3000 to 0x9000, the file part ending at 0x4010.
CTOR_DATA = seg(0x3000, 0x1010, 0x6000, RW)


def init_writes(
    *writes: tuple[int, int],
    preinit: bool = False,
    symbol: str | None = None,
    unproven: tuple[str, ...] = (),
) -> InitWrites:
    return InitWrites(
        analysed=True,
        initialisers=1,
        writes=tuple(
            InitWrite(
                vaddr=v,
                size=n,
                initialiser="init",
                how="store at 0x1000",
                preinit=preinit,
                symbol=symbol,
            )
            for v, n in writes
        ),
        unproven=unproven,
    )


def ctor_ctx(
    found: InitWrites, role: Role = "library", family: LoaderFamily = GLIBC, d: Dso | None = None
) -> rules.ObjectContext:
    c = ctx(d or dso(TEXT, CTOR_DATA), role=role, family=family)
    return msgspec.structs.replace(c, init_writes=found)


def test_r_g12_each_page_a_proved_write_touches() -> None:
    # 0x5ff8 + 16 runs into page 0x6000; 0x8000 + 0x3000 is cut at the segment's end, 0x9000
    found = ctor_ctx(init_writes((0x5FF8, 16), (0x8000, 0x3000)))
    got = rules.constructor_pages(found)
    assert [(p.vaddr, p.cause, p.certain) for p in got] == [
        (0x5000, Cause.CONSTRUCTOR, True),
        (0x6000, Cause.CONSTRUCTOR, True),
        (0x8000, Cause.CONSTRUCTOR, True),
    ]
    assert got[0].detail == "constructor init writes 16 B at 0x5ff8 (store at 0x1000)"
    assert "12 KiB" in got[2].detail


@pytest.mark.parametrize(
    ("family", "role", "preinit", "phase"),
    [
        # glibc: _dl_init before the entry point runs libraries' initialisers and the
        # executable's preinit array; __libc_start_main runs the executable's own after it.
        (GLIBC, "library", False, "entry"),
        (GLIBC, "executable", False, "idle"),
        (GLIBC, "executable", True, "entry"),
        # musl: __libc_start_init after the entry point runs them all.
        (MUSL, "library", False, "idle"),
        (MUSL, "executable", True, "idle"),
    ],
)
def test_r_g12_the_phase_follows_who_runs_the_initialiser(
    family: LoaderFamily, role: Role, preinit: bool, phase: str
) -> None:
    (page,) = rules.constructor_pages(
        ctor_ctx(init_writes((0x5000, 8), preinit=preinit), role=role, family=family)
    )
    assert page.phase == phase


def test_r_g12_a_write_through_a_librarys_got_entry_is_not_certain() -> None:
    # Another object defining the name first would take the write (a COPY in the program).
    found = init_writes((0x5000, 8), symbol="counter")
    (lib_page,) = rules.constructor_pages(ctor_ctx(found))
    (exe_page,) = rules.constructor_pages(ctor_ctx(found, role="executable"))
    assert not lib_page.certain and exe_page.certain
    assert "through the GOT entry of counter" in lib_page.detail


def test_r_g12_nothing_for_the_loader_or_without_writes() -> None:
    assert rules.constructor_pages(ctor_ctx(init_writes((0x5000, 8)), role="interpreter")) == []
    assert rules.constructor_pages(ctor_ctx(init_writes())) == []


def ctor_estimate(found: InitWrites | None, family: LoaderFamily = GLIBC) -> ObjectEstimate:
    """A library with two DT_INIT_ARRAY entries (initialisers of its own), in a process."""
    lib = dso(TEXT, CTOR_DATA, dyn=dynamic((DT_NULL, 0)), path="/lib/libc2.so")
    exe = dso(TEXT, DATA, e_type=ET_EXEC, path="/bin/x")
    facts = {
        exe.path: ObjectFacts(),
        lib.path: ObjectFacts(constructors=Constructors(init_array_size=16), init_writes=found),
    }
    graph = process((exe, "executable"), (lib, "library"), family=family)
    return estimate(graph, facts, Options(page_size=P)).objects[1]


def test_r_g12_proved_pages_replace_the_guessed_one() -> None:
    obj = ctor_estimate(init_writes((0x5000, 8), unproven=("init: indirect call at 0x1010",)))
    ctor = [p for p in obj.pages if p.cause is Cause.CONSTRUCTOR]
    assert [(p.vaddr, p.phase) for p in ctor] == [(0x5000, "entry")]
    assert obj.private_dirty.at_entry == 2 * P  # the bss tail and the proved page
    assert any(n.startswith("has constructors: 1 page proved") for n in obj.notes)


def test_r_g12_a_complete_analysis_needs_no_guess() -> None:
    obj = ctor_estimate(init_writes())
    assert not [p for p in obj.pages if p.cause is Cause.CONSTRUCTOR]
    assert obj.notes == ("initialisers disassembled: every write known (0 pages)",)


@pytest.mark.parametrize(("family", "phase"), [(GLIBC, "entry"), (MUSL, "idle")])
def test_r_g12_one_guessed_page_when_nothing_is_proved(family: LoaderFamily, phase: str) -> None:
    for found in (None, init_writes(unproven=("init: calls foo",))):
        obj = ctor_estimate(found, family)
        (guess,) = [p for p in obj.pages if p.cause is Cause.CONSTRUCTOR]
        assert guess.vaddr is None and guess.phase == phase
        assert any("has constructors" in n for n in obj.notes)


# -- R-G12: variables a function called by an initialiser constructs (cost/constructed.py) -----

INIT = "_ZNSt8ios_base4InitC1Ev"
# The streams library: cout on page 0x5000, cin from 0x5ff0 into page 0x6000.
STREAMS_DEFINED = {"_ZSt4cout": (0x5100, 0x110), "_ZSt3cin": (0x5FF0, 0x110)}


def streams_estimate(
    caller: Role,
    family: LoaderFamily = GLIBC,
    *,
    calls: tuple[str, ...] = (INIT,),
    copy: bool = False,
) -> list[ObjectEstimate]:
    """The program, a library whose initialiser (or the program's, `caller`) calls `calls`,
    and the library that defines the streams; with `copy`, the program holds cout (R_*_COPY,
    at 0x5000 of its .bss: a page nothing else writes)."""
    exe = dso(TEXT, DATA, e_type=ET_EXEC, path="/bin/x")
    lib = dso(TEXT, CTOR_DATA, dyn=dynamic((DT_NULL, 0)), path="/lib/libuser.so")
    cxx = dso(TEXT, CTOR_DATA, dyn=dynamic((DT_NULL, 0)), path="/lib/libstdc++.so.6")
    called = InitWrites(analysed=True, initialisers=1, calls=calls)
    ctors = Constructors(init_array_size=16)
    facts = {
        exe.path: ObjectFacts(init_writes=called if caller == "executable" else None),
        lib.path: ObjectFacts(
            constructors=ctors, init_writes=called if caller == "library" else None
        ),
        cxx.path: ObjectFacts(),
    }
    defined = {exe.path: {"_ZSt4cout": (0x5000, 0x10)} if copy else {}, cxx.path: STREAMS_DEFINED}
    graph = process((exe, "executable"), (lib, "library"), (cxx, "library"), family=family)
    return list(estimate(graph, facts, Options(page_size=P), defined=defined).objects)


def _streams(o: ObjectEstimate) -> list[tuple[int | None, str, bool]]:
    return [(p.vaddr, p.phase, p.certain) for p in o.pages if "ios_base::Init" in p.detail]


@pytest.mark.parametrize(
    ("caller", "family", "phase"),
    [
        # glibc's _dl_init runs a library's initialisers before the entry point, the
        # executable's own after it (__libc_start_main); musl runs them all after it.
        ("library", GLIBC, "entry"),
        ("executable", GLIBC, "idle"),
        ("library", MUSL, "idle"),
    ],
)
def test_r_g12_variables_an_initialisers_call_constructs_are_written_where_bound(
    caller: Role, family: LoaderFamily, phase: str
) -> None:
    before = streams_estimate(caller, family, calls=())[2]
    after = streams_estimate(caller, family)[2]
    # cout's page and both of cin's, possible writes before, written now; not certain (the
    # call may be on some path only; what it constructs is from its source)
    assert _streams(after) == [(0x5000, phase, False), (0x6000, phase, False)]
    assert not _streams(before)
    grew = 2 * P
    assert after.private_dirty.expected == before.private_dirty.expected + grew
    assert after.private_dirty.at_entry == before.private_dirty.at_entry + (
        grew if phase == "entry" else 0
    )
    assert after.private_dirty.high == before.private_dirty.high
    who = "libuser.so" if caller == "library" else "x"
    assert all(
        f"the initialisers of {who} call" in p.detail for p in after.pages if "Init" in p.detail
    )


def test_r_g12_a_copied_variable_is_constructed_in_the_program() -> None:
    # The program copied cout: the loader binds every reference to it there, libstdc++'s own
    # included, so cout's page is the program's; cin's stay the library's.
    exe, _, cxx = streams_estimate("library", copy=True)
    assert _streams(cxx) == [(0x5000, "entry", False), (0x6000, "entry", False)]
    assert "cout" not in next(p for p in cxx.pages if p.vaddr == 0x5000).detail
    assert _streams(exe) == [(0x5000, "entry", False)]
