"""The cause registry: one row per reason a page can be private dirty.

Every word a report uses for a cause comes from here: the `name` that JSON documents carry (the
value of `model.Cause`), the short `label` of text tables, the page-map `letter` that `explain`
prints and the HTML draws, its `fill`/`ink` colours, the rule codes of docs/how-elfcost-works.md
with the loader, kernel or libc source each follows, and one sentence for a reader who has never
looked inside a loader. `elfcost causes` prints this table; the docs' causes table is generated
from it.

Rows are in `model.Cause` declaration order, which is precedence: when two rules claim one page,
the earlier cause is the one reported.
"""

from __future__ import annotations

import msgspec

from elfcost.model import Cause


class CauseInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One cause, as every report names, draws and explains it."""

    name: str  # Cause.value: the word in every JSON document
    label: str  # short column heading for text tables
    letter: str  # one character in page maps (text and HTML alike)
    fill: str  # page-map cell colour (Paul Tol's colour-blind-safe schemes)
    ink: str  # letter colour on that fill
    rules: tuple[str, ...]  # rule codes of the cost model (docs/how-elfcost-works.md)
    source: str  # where the loader, kernel or libc does the write
    certain: bool  # derived from the file (True) or calibrated by measurement (False)
    explanation: str  # one sentence for a non-expert


# Fills follow Paul Tol's "muted" scheme plus three of his extra tones; the letter in every
# page-map cell keeps the map readable where two fills look alike, and in greyscale print.
CAUSES: tuple[CauseInfo, ...] = (
    CauseInfo(
        name=Cause.TEXTREL.value,
        label="textrel",
        letter="T",
        fill="#882255",
        ink="#fff",
        rules=("R-G6",),
        source="glibc elf/dl-reloc.c _dl_relocate_object (DT_TEXTREL: mprotect, write)",
        certain=True,
        explanation="The loader has to patch addresses inside code pages (a text relocation), "
        "so those normally shared pages become private to the process.",
    ),
    CauseInfo(
        name=Cause.COPY_RELOC.value,
        label="copy",
        letter="C",
        fill="#CC6677",
        ink="#000",
        rules=("R-G2", "R-M2"),
        source="glibc sysdeps/*/dl-machine.h R_*_COPY; musl ldso/dynlink.c do_relocs",
        certain=True,
        explanation="A library variable the program uses directly is copied into the "
        "program's own data at start-up (a copy relocation).",
    ),
    CauseInfo(
        name=Cause.RELOCATION.value,
        label="reloc",
        letter="R",
        fill="#332288",
        ink="#fff",
        rules=("R-G2", "R-M2", "R-S1"),
        source="glibc elf/dl-reloc.c _dl_relocate_object, elf/do-rel.h; "
        "musl ldso/dynlink.c do_relocs, do_relr_relocs",
        certain=True,
        explanation="The loader writes the run-time addresses of functions and data into "
        "pointer tables (GOT, RELRO data, vtables), so each such page becomes private.",
    ),
    CauseInfo(
        name=Cause.DYNAMIC.value,
        label=".dynamic",
        letter="D",
        fill="#88CCEE",
        ink="#000",
        rules=("R-G3",),
        source="glibc elf/get-dynamic-info.h elf_get_dynamic_info (d_ptr += l_addr)",
        certain=True,
        explanation="glibc's loader adds the load address to some entries of the object's "
        ".dynamic table in place, which dirties the page that holds it.",
    ),
    CauseInfo(
        name=Cause.DEBUG.value,
        label="debug",
        letter="d",
        fill="#44AA99",
        ink="#000",
        rules=("R-G4", "R-M3"),
        source="glibc sysdeps/generic/dl-debug.h elf_setup_debug_entry; musl ldso/dynlink.c __dls3",
        certain=True,
        explanation="The loader stores a pointer for debuggers in the program's DT_DEBUG "
        "entry, which dirties that page of the executable.",
    ),
    CauseInfo(
        name=Cause.GOT_HEADER.value,
        label="got",
        letter="G",
        fill="#117733",
        ink="#fff",
        rules=("R-G5",),
        source="glibc sysdeps/x86_64/dl-machine.h elf_machine_runtime_setup (GOT[1], GOT[2])",
        certain=True,
        explanation="With lazy binding, glibc's loader fills the first GOT entries with its "
        "own bookkeeping so that functions can be looked up on first call.",
    ),
    CauseInfo(
        name=Cause.IRELATIVE.value,
        label="irel",
        letter="I",
        fill="#AA4499",
        ink="#fff",
        rules=("R-S1",),
        source="glibc csu/libc-start.c apply_irel (__rela_iplt_start..__rela_iplt_end)",
        certain=True,
        explanation="A static program picks the CPU-specific version of functions such as "
        "memcpy at start-up and stores the choices in its GOT (IFUNC results).",
    ),
    CauseInfo(
        name=Cause.BSS_TAIL.value,
        label="bss-tail",
        letter="B",
        fill="#DDCC77",
        ink="#000",
        rules=("R-K1", "R-G1", "R-M1"),
        source="Linux fs/binfmt_elf.c padzero; glibc elf/dl-map-segments.h _dl_map_segments; "
        "musl ldso/dynlink.c map_library",
        certain=True,
        explanation="The last file page of a data segment is partly zero-filled variables "
        "(.bss), and zeroing that part writes the page.",
    ),
    CauseInfo(
        name=Cause.GAP_DONATION.value,
        label="gap",
        letter="g",
        fill="#999933",
        ink="#000",
        rules=("R-M4",),
        source="musl ldso/dynlink.c reclaim_gaps, src/malloc/mallocng/donate.c",
        certain=True,
        explanation="musl's loader hands the unused ends of data pages to malloc, which "
        "writes its own headers there.",
    ),
    CauseInfo(
        name=Cause.LOADER_DATA.value,
        label="ld.so",
        letter="L",
        fill="#0077BB",
        ink="#fff",
        rules=("R-G8",),
        source="glibc elf/rtld.c (_rtld_global, _rtld_global_ro, the link maps)",
        certain=True,
        explanation="The dynamic loader's own variables: every writable page of ld.so is "
        "written while it loads the program.",
    ),
    CauseInfo(
        name=Cause.LIBC_STARTUP.value,
        label="libc",
        letter="S",
        fill="#EE7733",
        ink="#000",
        rules=("R-G9", "R-M6", "R-S3"),
        source="glibc csu/libc-start.c __libc_start_main, csu/init-first.c; "
        "musl src/env/__libc_start_main.c, __init_libc",
        certain=False,
        explanation="libc sets up its own globals (environment, stdio, locale, auxv values) "
        "before main runs; the pages are calibrated per libc build by measurement.",
    ),
    CauseInfo(
        name=Cause.CONSTRUCTOR.value,
        label="ctor",
        letter="c",
        fill="#661100",
        ink="#fff",
        rules=("R-G12",),
        source="glibc elf/dl-init.c call_init (DT_INIT, DT_INIT_ARRAY), csu/libc-start.c "
        "call_init; musl ldso/dynlink.c do_init_fini",
        certain=False,
        explanation="Initialisation code (constructors) of a library or of the program writes "
        "its own variables before main; the pages it always writes are read from its machine "
        "code (x86), otherwise a library's are estimated.",
    ),
    CauseInfo(
        name=Cause.LIBC_HEAP.value,
        label="heap",
        letter="h",
        fill="#BBCC33",
        ink="#000",
        rules=("R-A1",),
        source="glibc malloc/malloc.c sysmalloc, tcache_init; sysdeps/unix/sysv/linux/opendir.c; "
        "musl src/malloc/mallocng, src/dirent/opendir.c",
        certain=False,
        explanation="A libc function the program uses allocates memory when first called "
        "(malloc itself, opendir's directory buffer, user-database lookups), which writes the "
        "first heap pages; calibrated per libc by measurement.",
    ),
    CauseInfo(
        name=Cause.STDIO_BUFFER.value,
        label="stdio",
        letter="b",
        fill="#EEDD88",
        ink="#000",
        rules=("R-A2",),
        source="glibc libio/filedoalloc.c _IO_file_doallocate, libio/fileops.c; "
        "musl src/stdio/stdin.c, stdout.c, __fdopen.c",
        certain=False,
        explanation="A stdio stream gets its buffer on the first read or write: glibc "
        "allocates it on the heap, sized by the kind of file (a pipe 4 KiB, a terminal 1 KiB).",
    ),
    CauseInfo(
        name=Cause.STACK_AFTER_MAIN.value,
        label="stack+",
        letter="k",
        fill="#77AADD",
        ink="#000",
        rules=("R-A3",),
        source="glibc stdio-common/vfprintf-internal.c buffered_vfprintf; "
        "musl src/stdio/vfprintf.c fmt_fp",
        certain=False,
        explanation="Some libc functions need deeper stack than start-up did (formatting "
        "floating-point numbers, printing to an unbuffered stream), which writes more stack "
        "pages.",
    ),
    CauseInfo(
        name=Cause.POSSIBLE_WRITE.value,
        label="possible",
        letter=".",
        fill="#DDDDDD",
        ink="#444",
        rules=("high bound",),
        source="the writable PT_LOAD segments (p_flags & PF_W)",
        certain=False,
        explanation="A writable page nothing is known to write: counted only in the upper "
        "bound, because the program may write it later.",
    ),
)

BY_CAUSE: dict[Cause, CauseInfo] = {Cause(c.name): c for c in CAUSES}
BY_NAME: dict[str, CauseInfo] = {c.name: c for c in CAUSES}

# A page whose cause a saved report names but this version does not know (a newer document).
UNKNOWN = CauseInfo(
    name="unknown",
    label="?",
    letter="?",
    fill="#777777",
    ink="#fff",
    rules=(),
    source="",
    certain=False,
    explanation="A cause this version of elfcost does not know.",
)


def info(cause: Cause | str) -> CauseInfo:
    """The registry row of a cause, given as the enum or as its JSON name."""
    if isinstance(cause, Cause):
        return BY_CAUSE[cause]
    return BY_NAME.get(cause, UNKNOWN)
