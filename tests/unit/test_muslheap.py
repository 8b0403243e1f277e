"""R-M5, musl's loader heap: mallocng's allocation path (cost/mallocng.py) and the steps of
ld-musl's __dls3 replayed on it (cost/muslheap.py), on small synthetic scenarios. Objects are
model.Dso values built by hand; the expected classes, groups and pages are worked out in each
test's comment from src/malloc/mallocng (size_to_class, donate, alloc_group), at P = 4 KiB on
x86_64, sizeof(struct dso) = 368 (musl 1.2.3)."""

from __future__ import annotations

from elfcost.cost.estimate import Options, estimate
from elfcost.cost.mallocng import Mallocng, size_to_class
from elfcost.cost.muslheap import _rpath_bytes, loader_heap
from elfcost.elf.facts import ObjectFacts
from elfcost.model import (
    ET_DYN,
    PT_GNU_RELRO,
    PT_LOAD,
    Attempt,
    Dso,
    DynamicInfo,
    FileId,
    FoundVia,
    LoadedObject,
    LoaderFamily,
    Prot,
    Resolution,
    Segment,
)
from elfcost.resolve.graph import DependencyGraph

P = 4096
DSO_BYTES = 368
RW, RX = Prot.R | Prot.W, Prot.R | Prot.X
INTERP = "/lib/ld-musl-x86_64.so.1"


def seg(i: int, vaddr: int, memsz: int, flags: Prot, p_type: int = PT_LOAD) -> Segment:
    return Segment(
        index=i, p_type=p_type, offset=vaddr, vaddr=vaddr, filesz=memsz, memsz=memsz, align=P,
        flags=flags,
    )  # fmt: skip


def dso(path: str, data_end: int, needed: tuple[str, ...] = (), runpath: str = "") -> Dso:
    """Text at 0, RELRO 0x3e00..0x4000, then data to `data_end`: the tail gap is
    [data_end, pageup(data_end)), the head gap lies in RELRO and is not donated."""
    dyn = DynamicInfo(
        entries=(), needed=needed, soname=None, rpath=(),
        runpath=tuple(runpath.split(":")) if runpath else (), flags=0, flags_1=0, tables=(),
        pltgot=None, symtab=None, syment=24, strtab=None, textrel=False,
    )  # fmt: skip
    return Dso(
        path=path, file=path, file_id=FileId(dev=0, ino=0), file_size=0, elf_class=64,
        little_endian=True, e_machine=62, machine="x86_64", osabi=0, e_type=ET_DYN, entry=0,
        phdrs=(
            seg(0, 0, 0x1000, RX),
            seg(1, 0x3E00, data_end - 0x3E00, RW),
            seg(2, 0x3E00, 0x200, Prot.R, PT_GNU_RELRO),
        ),
        interp=None if path == INTERP else INTERP, dynamic=dyn,
    )  # fmt: skip


def program(exe_end: int, lib_end: int | None, *, origin: str = "/real/dir") -> DependencyGraph:
    """A program needing libc.so and, with `lib_end`, its own libx.so through RUNPATH
    $ORIGIN/lib. libc.so's gap is 160 B (Debian's: 0xaef60..0xaf000 there)."""
    needed = ("libx.so", "libc.so") if lib_end is not None else ("libc.so",)
    exe = dso("/bin/p", exe_end, needed, "$ORIGIN/lib" if lib_end is not None else "")
    libc = dso(INTERP, 0x4F60)
    objects = [LoadedObject(dso=exe, role="executable", found_via=FoundVia.MAIN, parent=None)]
    resolutions = []
    if lib_end is not None:
        lib = dso(f"{origin}/lib/libx.so", lib_end, ("libc.so",))
        objects.append(
            LoadedObject(dso=lib, role="library", found_via=FoundVia.RUNPATH, parent=exe.path)
        )
        tried = (Attempt(path=lib.path, via=FoundVia.RUNPATH, outcome="found", origin=exe.path),)
        resolutions.append(
            Resolution(
                needed="libx.so",
                parent=exe.path,
                found=lib.path,
                via=FoundVia.RUNPATH,
                via_object=exe.path,
                tried=tried,
            )
        )
    objects.append(
        LoadedObject(dso=libc, role="interpreter", found_via=FoundVia.INTERP, parent=exe.path)
    )
    for o in objects[:-1]:
        resolutions.append(
            Resolution(
                needed="libc.so",
                parent=o.dso.path,
                found=INTERP,
                via=FoundVia.LOADED,
                via_object=None,
                tried=(),
            )
        )
    return DependencyGraph.build(
        objects=objects,
        resolutions=resolutions,
        family=LoaderFamily.MUSL,
        interp=INTERP,
        warnings=[],
    )


# -- mallocng -----------------------------------------------------------------------------------


def test_size_classes_of_the_loaders_requests() -> None:
    # (n + 3) >> 4 below 10 is the class; above, the smallest class of at least that + 1 units.
    assert [size_to_class(n) for n in (12, 13, 24, 37, 411, 492, 493, 1004, 2028)] == [
        0, 1, 1, 2, 15, 15, 16, 19, 23,
    ]  # fmt: skip


def test_donate_cuts_one_group_per_class_largest_first() -> None:
    heap = Mallocng(P, 8)
    # 4064 B: class 23 takes (127 + 1) * 16 = 2048, then 19 (1024), 15 (512), 11 (256),
    # 7 (144), 3 (80): 4064 exactly. 352 B: 11 then 3. 160 B: 7. 79 B: nothing fits.
    heap.donate("a", 0x4020, 0x5000)
    heap.donate("b", 0x32EA0, 0x33000)
    heap.donate("c", 0xAEF60, 0xAF000)
    heap.donate("d", 0x5FB1, 0x6000)
    assert [cls for _, _, cls in heap.donated] == [(23, 19, 15, 11, 7, 3), (11, 3), (7,), ()]
    assert heap.metas == 9 and heap.brk_pages == 1 and heap.mapped_pages == 0


def test_a_small_request_with_no_donated_class_maps_a_page() -> None:
    # many_plt: 24 B is class 1, a group of 15 slots (496 B) nested in class 15, whose group of
    # 2 (1008 B) nests in 19, whose group of 2 (4080 B) is over half a page: alloc_group mmaps
    # one page. The first meta area on brk is the other page.
    heap = Mallocng(P, 8)
    heap.donate("exe", 0x32EA0, 0x33000)
    heap.donate("libc", 0xAEF60, 0xAF000)
    heap.calloc(24, "deps")
    (m,) = heap.mappings
    assert (m.classes, m.region.size, m.request) == ((1, 15, 19, 23), P, "deps")
    assert (heap.brk_pages, heap.mapped_pages) == (1, 1)
    # 37 B (class 2, a group of 10: 496 B) takes the class-15 group's second slot: no new page.
    heap.malloc(37)
    assert len(heap.mappings) == 1 and heap.mapped_pages == 1


def test_a_donated_class_15_group_holds_the_nested_group() -> None:
    # textrel, ownlib: the program's gap gave classes 23, 19, 15, 11, 7: class 1's group takes
    # the donated class-15 slot, and nothing is mapped.
    heap = Mallocng(P, 8)
    heap.donate("exe", 0x4030, 0x5000)
    heap.donate("libc", 0xAEF60, 0xAF000)
    heap.calloc(24)
    heap.malloc(37)
    assert heap.mappings == [] and (heap.brk_pages, heap.mapped_pages) == (1, 0)


def test_a_meta_area_holds_101_groups_on_64_bit_170_on_32() -> None:
    # struct meta is 40 B (24 on 32-bit), the area's header 24 (16): (4096 - 24) // 40 = 101.
    for word, per_area in ((8, 101), (4, 170)):
        heap = Mallocng(P, word)
        for i in range(per_area + 1):
            heap.donate(str(i), 0x1000 * i + 0xFB0, 0x1000 * (i + 1))  # 80 B: class 3
        assert heap.brk_pages == 2


def test_a_large_calloc_writes_its_first_and_last_page_only() -> None:
    # 200000 B >= MMAP_THRESHOLD: mmapped alone, 200020 B in 49 pages. enframe's offset 1
    # (mmap_counter) puts the slot at 32, set_size marks its end at 200032 (page 48); mal0_clear
    # writes nothing of the fresh pages between, which already read as zero.
    heap = Mallocng(P, 8)
    heap.calloc(200000)
    (m,) = heap.mappings
    assert sorted(m.region.written) == [0, 48] and heap.brk_pages == 1


# -- ld-musl's steps ----------------------------------------------------------------------------


def test_a_program_of_two_objects_allocates_nothing() -> None:
    # One DT_NEEDED: builtin_deps; libc.so is ldso itself; 3 in the constructor queue with the
    # vDSO and the terminator: builtin. Only the donations' metas: one brk page.
    heap = loader_heap(program(0x4020, None), DSO_BYTES, P)
    assert (heap.brk_pages, heap.mapped_pages) == (1, 0)
    assert "allocates nothing" in heap.detail


def test_nothing_donated_and_nothing_allocated_is_no_page() -> None:
    # Gaps of less than 80 B give no group, so alloc_meta never extends brk.
    exe = dso("/bin/p", 0x4FD0, ("libc.so",))
    libc = dso(INTERP, 0x4FD0)
    graph = DependencyGraph.build(
        objects=[
            LoadedObject(dso=exe, role="executable", found_via=FoundVia.MAIN, parent=None),
            LoadedObject(dso=libc, role="interpreter", found_via=FoundVia.INTERP, parent=exe.path),
        ],
        resolutions=[],
        family=LoaderFamily.MUSL,
        interp=INTERP,
        warnings=[],
    )
    assert loader_heap(graph, DSO_BYTES, P).pages == 0


def test_the_programs_deps_array_maps_a_page_when_its_gap_is_small() -> None:
    # many_plt's shape: the program's gap 352 B (classes 11, 3), libc's 160 B (7); the deps
    # array of 3 pointers (24 B) is the first request and finds no class 1, 15, 19 or 23.
    heap = loader_heap(program(0x4EA0, 0x5010), DSO_BYTES, P)
    assert (heap.brk_pages, heap.mapped_pages) == (1, 1)
    assert "deps array of p (24 B, size class 1) finds no free slot" in heap.detail


def test_the_programs_deps_array_fits_a_donated_group_when_its_gap_is_large() -> None:
    # ownlib's shape: the program's gap 4048 B gives class 15 before any request.
    heap = loader_heap(program(0x4030, 0x5010), DSO_BYTES, P)
    assert (heap.brk_pages, heap.mapped_pages) == (1, 0)


def test_no_gap_in_the_program_nor_the_library() -> None:
    # ctorlib's shape, and the library too ends on a page: the same page for the deps array;
    # then $ORIGIN's 21 B and the library's deps (16 B) take class-1 slots, struct dso and
    # path (368 + 21 + 1 = 390 B: class 14, coarse 15 while 14 has no group) the class-15
    # group's second slot, and the queue's class-2 group (5 * 8 = 40 B) a slot the mapped page
    # still has: one page in all.
    heap = loader_heap(program(0x5000, 0x5000), DSO_BYTES, P)
    assert (heap.brk_pages, heap.mapped_pages) == (1, 1)


def test_origin_expansion_is_sized_from_the_real_directory_tried() -> None:
    # fixup_rpath: strlen("$ORIGIN/lib") 11 + 1 * len("/real/dir") 9 + 1.
    graph = program(0x4EA0, 0x5010)
    exe = graph.objects[0]
    res = graph.resolutions[0]
    assert _rpath_bytes(exe, res) == 21


def test_the_estimate_counts_the_mapped_page() -> None:
    # Through estimate(): the musl-dynamic profile's mallocng model gives the loader_heap item.
    graph = program(0x4EA0, 0x5010)
    est = estimate(graph, {o.dso.path: ObjectFacts() for o in graph.objects}, Options(page_size=P))
    (lh,) = (i for i in est.process if i.name == "loader_heap")
    assert (lh.private_dirty.at_entry, lh.private_dirty.expected) == (2 * P, 2 * P)
    assert "the class-23 group, over half a page, is mapped (malloc.c alloc_group)" in lh.detail


def test_the_path_file_is_read_into_malloc_memory_once() -> None:
    # No RUNPATH: libx.so is found in the path file's first directory. load_library mallocs
    # the whole file plus a terminator, whatever directories the search tried.
    exe = dso("/bin/p", 0x5000, ("libx.so", "libc.so"))
    lib = dso("/usr/lib/first/libx.so", 0x5000, ("libc.so",))
    libc = dso(INTERP, 0x4F60)
    tried = (Attempt(path=lib.path, via=FoundVia.MUSL_PATH_FILE, outcome="found"),)
    found = Resolution(
        needed="libx.so",
        parent=exe.path,
        found=lib.path,
        via=FoundVia.MUSL_PATH_FILE,
        via_object=None,
        tried=tried,
    )

    def graph(size: int | None) -> DependencyGraph:
        return DependencyGraph.build(
            objects=[
                LoadedObject(dso=exe, role="executable", found_via=FoundVia.MAIN, parent=None),
                LoadedObject(
                    dso=lib, role="library", found_via=FoundVia.MUSL_PATH_FILE, parent=exe.path
                ),
                LoadedObject(
                    dso=libc, role="interpreter", found_via=FoundVia.INTERP, parent=exe.path
                ),
            ],
            resolutions=[found],
            family=LoaderFamily.MUSL,
            interp=INTERP,
            warnings=[],
            musl_path_bytes=size,
        )

    path_file = "the ld-musl path file's contents"
    recorded = dict(loader_heap(graph(50), DSO_BYTES, P).requests)
    guessed = dict(loader_heap(graph(None), DSO_BYTES, P).requests)
    # Without the recorded size, the directories tried stand for the file: "/usr/lib/first\n"
    # is 15 B, malloc(16).
    assert (recorded[path_file], guessed[path_file]) == (51, 16)


def test_libc_edges_left_out_by_a_swap_still_add_ldso_to_the_list() -> None:
    # --assume musl keeps no edge to the old libc; load_library answers "libc.so.6" with
    # ldso all the same, so the constructor queue counts 4 objects + the vDSO + terminator.
    exe = dso("/bin/p", 0x4020, ("libx.so", "libc.so.6"))
    lib = dso("/lib/libx.so", 0x4020, ("libc.so.6",))
    libc = dso(INTERP, 0x4F60)
    edge = Resolution(
        needed="libx.so",
        parent=exe.path,
        found=lib.path,
        via=FoundVia.DEFAULT,
        via_object=None,
        tried=(),
    )
    graph = DependencyGraph.build(
        objects=[
            LoadedObject(dso=exe, role="executable", found_via=FoundVia.MAIN, parent=None),
            LoadedObject(dso=lib, role="library", found_via=FoundVia.DEFAULT, parent=exe.path),
            LoadedObject(dso=libc, role="interpreter", found_via=FoundVia.INTERP, parent=None),
        ],
        resolutions=[edge],
        family=LoaderFamily.MUSL,
        interp=INTERP,
        warnings=[],
    )
    assert "the constructor queue" in loader_heap(graph, DSO_BYTES, P).detail
