"""What-ifs that change how the program is linked, each labelled as an estimate:
`--assume static` (below), `--assume musl|glibc` (`libc_whatif`), the two together
(`--assume musl-static|glibc-static`, `relink_whatif`: the other libc first, then static), and
`--assume static-lib=SONAME` (`static_lib_whatif`: one library linked in from its archive).

A static link (`gcc -static`, `musl-gcc -static`: non-PIE) keeps no ld.so, no loader heap and
no relocation at all: every address is resolved at link time. What is left:

- the libc part: the calibrated cost of a trivial static program of the same libc (the
  profile's `trivial_executable_pages`, itself checked against the kernel);
- the bss-tail pages of every non-libc library, whose .data/.bss is linked in and still zeroed
  the same way (the executable's own tail is already in the trivial program's pages);
- process items from the static profile, with every module's PT_TLS merged into one block.

Labelled as an estimate in the result's assumptions; tests compare it with real static builds
of the samples. Each what-if works on estimates already made: elfcost.predict reads the files
(the other libc's objects included) and makes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import msgspec
from msgspec.structs import replace

from elfcost.cost import rules
from elfcost.cost.aftermain import Linked
from elfcost.cost.estimate import LISTED_POSSIBLE_PAGES, Options, process_items
from elfcost.cost.pages import align_up, count_pages, pages_of
from elfcost.cost.profiles import LIBC_SONAMES, select
from elfcost.elf.facts import NO_GROUPS, NO_SYMBOLS, DynamicSymbols
from elfcost.elf.machines import BY_NAME, RelocClass
from elfcost.errors import UsageError
from elfcost.model import (
    ET_DYN,
    PT_GNU_RELRO,
    PT_LOAD,
    PT_TLS,
    SHF_ALLOC,
    SHF_WRITE,
    SHT_NOBITS,
    Cause,
    Dso,
    Estimate,
    LoaderFamily,
    ObjectEstimate,
    PageCost,
    Range,
    Section,
    Segment,
)
from elfcost.resolve.graph import DependencyGraph


def static_whatif(
    graph: DependencyGraph, options: Options | None, *, dynamic: Estimate
) -> Estimate:
    """The estimate of `graph`'s program linked statically, from `dynamic`, its as-built
    estimate with the same options."""
    P = (options or Options()).page_size
    if graph.family is LoaderFamily.NONE:
        return replace(
            dynamic,
            assumptions=(*dynamic.assumptions, "what-if: already static, nothing to change"),
        )
    # `-static` gives a non-PIE static executable with both gcc and musl-gcc (static-pie must
    # be asked for), so that is the what-if: every address is resolved at link time and no
    # relocated page survives; only the zeroed bss tails of the program's own data do.
    static_link = "static"
    family = graph.family.value
    profile, warnings = select(family, static_link, dynamic.machine)
    kept: list[PageCost] = []
    removed: list[str] = []
    for o in dynamic.objects:
        if o.role == "interpreter" or (o.soname or "") in LIBC_SONAMES:
            removed.append(f"{o.path} ({o.private_dirty.expected // 1024} KiB)")
            continue
        for p in o.pages:
            if p.phase == "possible":
                continue
            if p.cause is Cause.BSS_TAIL and o.role != "executable":
                kept.append(replace(p, vaddr=None, detail=f"from {o.path}: {p.detail}"))
    base = [
        PageCost(
            vaddr=None,
            cause=Cause.LIBC_STARTUP,
            certain=False,
            phase="idle",
            detail=f"a trivial {profile.name} program's own pages (calibrated)",
        )
        for _ in range(profile.trivial_executable_pages)
    ]
    pages = tuple(base + kept)
    n = len(pages)
    exe = dynamic.objects[0]
    high = sum(
        o.private_dirty.high
        for o in dynamic.objects
        if o.role != "interpreter" and (o.soname or "") not in LIBC_SONAMES
    )
    obj = ObjectEstimate(
        path=exe.path,
        soname=exe.soname,
        role="executable",
        writable_pages=sum(o.writable_pages for o in dynamic.objects),
        pages=pages,
        private_dirty=Range(at_entry=P, low=n * P, expected=n * P, high=max(high, n * P)),
        shared_clean=exe.shared_clean,
        notes=("what-if: statically linked",),
        # The program's and its own libraries' writable pages, kept in `high`, are not listed.
        possible_unlisted=max(high, n * P) // P - n,
    )
    # Process items from the static profile: reuse the estimator on the same graph's TLS, and
    # libc's writes after main from the functions the program and its libraries import, now
    # linked in. They are imports of the real program, so the functions every static program
    # carries are evidence here, unlike in a static file.
    linked = [Linked(name=n, functions=f, static=True) for n, f in dynamic.libc_imports]
    am = replace(profile.after_main, uninformative=frozenset())
    process = process_items(
        graph, [obj], replace(profile, after_main=am), static_link, P, linked=linked
    )
    process = [p for p in process if p.name != "loader_heap"]
    return replace(
        dynamic,
        loader_family=LoaderFamily.NONE,
        loader_path=None,
        profile=profile.name,
        objects=(obj,),
        process=tuple(process),
        warnings=(*dynamic.warnings, *warnings),
        assumptions=(
            *dynamic.assumptions,
            f"what-if, an estimate: linked {static_link} with {family}; removed "
            + ", ".join(removed)
            + f"; kept the program's own data pages ({len(kept)}) on top of a trivial "
            f"{static_link} program ({_pages(profile.trivial_executable_pages)})",
        ),
    )


def libc_whatif(
    swapped: Estimate | None,
    removed: Sequence[str] = (),
    added: Sequence[str] = (),
    *,
    dynamic: Estimate,
) -> Estimate:
    """The estimate of the program linked against the other libc: `swapped`, the same cost
    model on the swapped objects (resolve/swap.py) with that libc's profile, which `removed`
    and `added` objects. `dynamic` is the as-built estimate: returned, with a note, when there
    is nothing to swap (`swapped` None)."""
    if swapped is None:
        why = (
            "what-if: statically linked, and --assume musl|glibc models dynamically linked "
            "programs: nothing changed"
            if dynamic.loader_path is None
            else f"what-if: already linked with {dynamic.loader_family.value}, nothing to change"
        )
        return replace(dynamic, assumptions=(*dynamic.assumptions, why))
    cost = {o.path: o.private_dirty.expected // 1024 for o in dynamic.objects}
    gone = ", ".join(f"{p} ({cost[p]} KiB)" if p in cost else p for p in removed)
    source, target = dynamic.loader_family.value, swapped.loader_family.value
    return replace(
        swapped,
        assumptions=(
            *swapped.assumptions,
            f"what-if, an estimate: linked against {target} instead of {source}; removed "
            f"{gone}; added {', '.join(added)}; the program and its other libraries "
            f"keep the relocations they have as built against {source} (a relink against "
            f"{target} changes which symbols they import)",
        ),
    )


def _pages(n: int) -> str:
    return f"{n} page" if n == 1 else f"{n} pages"


# --assume values that relink the program: (the libc to link against, or None for its own;
# whether to link statically).
RELINKS: Mapping[str, tuple[str | None, bool]] = {
    "static": (None, True),
    "musl": ("musl", False),
    "glibc": ("glibc", False),
    "musl-static": ("musl", True),
    "glibc-static": ("glibc", True),
}


# -- --assume static-lib=SONAME ----------------------------------------------------------------

STATIC_LIB = "static-lib="
STATIC_LIB_ALL = "all"  # static-lib=all: every library but libc and the loader

# SHF_TLS (gABI): a .tdata/.tbss input section; .tbss takes no room in the writable segment.
SHF_TLS = 0x400
# GNU ld's default script for ELF targets (`ld --verbose`; binutils ld/scripttempl/elf.sc) puts
# the writable output sections in this order; with -z relro those up to .got form PT_GNU_RELRO,
# whose end DATA_SEGMENT_RELRO_END puts on a page boundary (the segment's start moves instead).
# An input section of the same name from the archive lands in the output section of that name,
# after the program's own (its members come after the program's objects on the command line).
_RELRO_OUTPUTS: tuple[str, ...] = (".tdata", ".preinit_array", ".init_array", ".fini_array")
_RELRO_OUTPUTS += (".data.rel.ro", ".dynamic", ".got")
_OUTPUTS = (*_RELRO_OUTPUTS, ".got.plt", ".data", ".bss")
# ld aligns each input section to its sh_addralign, which elfcost does not keep: 16 bytes, the
# usual alignment of .data and .bss on 64-bit targets, between the parts.
_PART_ALIGN = 16
# Causes of a linked-in library's pages that belong to it being a shared object: its own
# .dynamic rewritten (R-G3), its GOT header for lazy binding (R-G5), its bss tail zeroed by the
# loader and its gaps donated by musl: the program's segment has its own, recomputed below.
_SHARED_ONLY = frozenset({Cause.DYNAMIC, Cause.GOT_HEADER, Cause.BSS_TAIL, Cause.GAP_DONATION})
# Relocation classes that stay run-time ones in the program when the library is linked in,
# without PIE: an import from a shared object that stays (its GOT entry, its PLT slot, its TLS
# offset); RELATIVE and absolute references to the library's own symbols are resolved by ld.
_IMPORTS = frozenset({RelocClass.JUMP_SLOT, RelocClass.TLS, RelocClass.TLSDESC})
_IMPORT_WORDS = ("GLOB_DAT",)  # SYMBOLIC, but only ever a GOT entry: a lookup by name


def linked_libraries(graph: DependencyGraph, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The paths of the libraries `names` (sonames or file names; "all") picks in `graph`, and
    the names it loads no library of. Raises UsageError for libc or the loader."""
    libs = [o for o in graph.objects if o.role == "library"]
    chosen: list[str] = []
    absent: list[str] = []
    for name in names:
        if name == STATIC_LIB_ALL:
            picked = [o for o in libs if (o.dso.soname or "") not in LIBC_SONAMES]
        else:
            picked = [
                o
                for o in graph.objects
                if o.role != "executable"
                and name in (o.dso.soname, o.dso.path.rsplit("/", 1)[-1], o.dso.path)
            ]
            for o in picked:
                if o.role == "interpreter" or (o.dso.soname or "") in LIBC_SONAMES:
                    raise UsageError(
                        f"--assume {STATIC_LIB}{name}: {o.dso.path} is "
                        + ("the dynamic loader" if o.role == "interpreter" else "part of libc")
                        + ", which only a fully static link takes in (--assume static)"
                    )
            if not picked:
                absent.append(name)
        chosen.extend(o.dso.path for o in picked if o.dso.path not in chosen)
    return chosen, absent


class _Part(msgspec.Struct, frozen=True):
    """One object's input to one output section: its link-time span [lo, hi) in that object,
    and where the span starts in the merged program."""

    lo: int
    hi: int
    at: int = 0
    share: float = 1.0  # of the span that joins the program (archive_shares)

    @property
    def size(self) -> int:
        return math.ceil((self.hi - self.lo) * self.share)

    def moved(self, vaddr: int) -> int:
        """Where the byte at `vaddr` of the object lands in the program."""
        return self.at + int((vaddr - self.lo) * self.share)


def _output_of(sec: Section) -> str | None:
    """The output section a writable allocated section joins in the program, or None."""
    if not (sec.flags & SHF_ALLOC and sec.flags & SHF_WRITE) or sec.size == 0:
        return None
    if sec.flags & SHF_TLS:
        return None if sec.sh_type == SHT_NOBITS else ".tdata"
    for out in _OUTPUTS:
        if sec.name == out or sec.name.startswith(out + "."):
            return out
    if sec.name.startswith(".ctors"):
        return ".init_array"
    if sec.name.startswith(".dtors"):
        return ".fini_array"
    return ".bss" if sec.sh_type == SHT_NOBITS else ".data"


def _parts(dso: Dso, *, share: float | None = None) -> dict[str, _Part]:
    """The object's writable data by output section; for a library linked in (`share`: the
    part of it the program takes, archive_shares), without its .dynamic: the program has its
    own."""
    out: dict[str, _Part] = {}
    for s in dso.sections:
        name = _output_of(s)
        if name is None or (share is not None and name == ".dynamic"):
            continue
        p = out.get(name)
        lo, hi = s.addr, s.addr + s.size
        out[name] = _Part(lo, hi) if p is None else _Part(min(p.lo, lo), max(p.hi, hi))
    return {n: replace(p, share=share) for n, p in out.items()} if share is not None else out


class _Layout(msgspec.Struct, frozen=True):
    """The merged program's writable segment: each object's parts placed, the segment's span,
    where its file-backed part ends, and its RELRO span."""

    parts: tuple[dict[str, _Part], ...]  # by object: the program first, then each library
    start: int
    file_end: int
    end: int
    relro: tuple[int, int] | None


def _layout(exe: Dso, libs: Sequence[Dso], shares: Sequence[float]) -> _Layout | None:
    """Lay out the program's writable segment with the libraries' data and bss appended to
    each output section, as ld does; None when the program has no section headers or more
    than one writable segment (no layout to extend: the caller counts pages unmerged)."""
    writable = [s for s in exe.loads if s.writable]
    own = _parts(exe)
    if len(writable) != 1 or not own:
        return None
    objects = [own, *(_parts(d, share=f) for d, f in zip(libs, shares, strict=True))]
    relro = exe.relro
    in_relro = {
        name
        for name in _OUTPUTS
        if (name in own and relro is not None and relro.vaddr <= own[name].lo < relro.end)
        or (name not in own and name in _RELRO_OUTPUTS)
    }
    order = [n for n in _OUTPUTS if any(n in o for o in objects)]
    placed: list[dict[str, _Part]] = [{} for _ in objects]

    def place(names: Sequence[str], at: int) -> int:
        for name in names:
            for i, o in enumerate(objects):
                if name in o:
                    p = o[name]
                    at = align_up(at, _PART_ALIGN) if i else at
                    placed[i][name] = replace(p, at=at)
                    at += p.size
        return at

    first = writable[0].vaddr
    if relro is not None and in_relro:
        # DATA_SEGMENT_RELRO_END: the RELRO part ends where the program's does; it grows down.
        head = [n for n in order if n in in_relro]
        size = place(head, 0)
        placed = [{} for _ in objects]
        start = relro.end - size
        place(head, start)
        end = place([n for n in order if n not in in_relro], relro.end)
        relro_span: tuple[int, int] | None = (start, relro.end)
    else:
        start = first
        end = place(order, first)
        relro_span = None
    file_end = max(
        (p.at + p.size for o in placed for n, p in o.items() if n != ".bss"), default=start
    )
    return _Layout(
        parts=tuple(placed),
        start=start,
        file_end=file_end,
        end=max(end, file_end),
        relro=relro_span,
    )


_PHASES = {"entry": 0, "idle": 1, "possible": 2}
_PRECEDENCE = {c: i for i, c in enumerate(Cause)}


def _merge(old: PageCost | None, new: PageCost) -> PageCost:
    """Two causes of one page of the merged program: the most specific cause is kept (model.Cause
    order), the page written as early as the earlier one writes it."""
    if old is None:
        return new
    win, lose = (new, old) if _PRECEDENCE[new.cause] < _PRECEDENCE[old.cause] else (old, new)
    phase = min(win.phase, lose.phase, key=_PHASES.__getitem__)
    also = f"also {lose.cause.value}"
    if win.cause is lose.cause or also in win.detail.split("; "):
        return replace(win, phase=phase)
    return replace(win, phase=phase, detail=f"{win.detail}; {also}")


def _mapped(page: PageCost, dso: Dso, parts: dict[str, _Part], P: int, *, own: bool) -> list[int]:
    """The merged program's pages that hold the bytes of `dso`'s page `page`: the page's
    overlap with each writable section that joins the program, moved to where that section's
    part lies. A page of the program in none of them stays where it is."""
    v = page.vaddr
    assert v is not None
    out: list[int] = []
    for s in dso.sections:
        name = _output_of(s)
        part = parts.get(name or "")
        a, b = max(v, s.addr), min(v + P, s.addr + s.size)
        if part is None or a >= b:
            continue
        at, to = part.moved(a), max(part.moved(b), part.moved(a) + 1)
        out.extend(pg for pg in pages_of(at, to, P) if pg not in out)
    return out if out or not own else [v]


def _kept(page: PageCost, *, pie: bool, imports: Callable[[str], bool]) -> str | None:
    """Why a linked-in library's page stays written in the program, or None when it does not.

    Its relocations become link-time ones: a PIE keeps them as RELATIVE records of its own (ld
    turns every absolute address into one); a non-PIE program keeps only its imports from the
    shared objects that stay (GOT entries, PLT slots, TLS offsets)."""
    if page.phase == "possible" or page.cause in _SHARED_ONLY:
        return None
    if page.cause in (Cause.RELOCATION, Cause.TEXTREL) and not pie:
        if not any(imports(t) for t in page.reloc_types):
            return None
        return "imports from the shared objects that stay, in the program's GOT"
    if page.cause is Cause.TEXTREL:
        return "text relocations, now the program's"
    return "kept"


def static_lib_whatif(
    graph: DependencyGraph,
    names: Sequence[str],
    options: Options | None = None,
    *,
    dynamic: Estimate,
    shares: Mapping[str, float] | None = None,
    strict: bool = True,
) -> Estimate:
    """The estimate of `graph`'s program with the libraries `names` (sonames or file names, or
    "all": every library but libc and the loader) linked in from their static archives, from
    `dynamic`, its as-built estimate with the same options.

    What the linker and the loader then do (each approximation is said in the assumptions):
    the library's writable sections join the program's (`_layout`: appended to each output
    section, the RELRO end on a page boundary); its written pages are moved there (`_mapped`)
    if they stay written (`_kept`); the program's bss tail, musl's gap donations and the
    possible-write pages are those of the merged segment (cost/rules.py on it); the loader's
    heap loses the library's link_map and search paths, its PT_TLS joins the program's block
    (process_items on the graph without it); its own dependencies stay loaded.

    A name the program loads no library of is a UsageError when `strict` (one program named
    on the command line), else left out with a note (a scan, where most programs do not load
    it); libc and the loader are always a UsageError.
    """
    P = (options or Options()).page_size
    if graph.family is LoaderFamily.NONE:
        if strict:
            raise UsageError(
                f"--assume {STATIC_LIB}{names[0]}: {graph.root.dso.path} is statically linked: "
                "it loads no library"
            )
        return replace(
            dynamic,
            assumptions=(*dynamic.assumptions, "what-if: already static, nothing to change"),
        )
    paths, absent = linked_libraries(graph, names)
    if absent and strict:
        raise UsageError(
            f"--assume {STATIC_LIB}{absent[0]}: {graph.root.dso.path} loads no such library"
        )
    if not paths:
        return replace(
            dynamic,
            assumptions=(
                *dynamic.assumptions,
                f"what-if: loads none of {', '.join(names)}: nothing to link in",
            ),
        )
    exe = graph.root.dso
    libs = [o.dso for o in graph.objects if o.dso.path in paths]
    estimates = {o.path: o for o in dynamic.objects}
    pie = exe.e_type == ET_DYN
    machine = BY_NAME.get(exe.machine)
    kinds = {rt.name: rt.kind for rt in machine.relocs.values()} if machine else {}

    def imports(name: str) -> bool:
        return kinds.get(name) in _IMPORTS or any(w in name for w in _IMPORT_WORDS)

    share = [min(1.0, max(0.0, (shares or {}).get(d.path, 1.0))) for d in libs]
    layout = _layout(exe, libs, share)
    chosen: dict[int, PageCost] = {}
    unlocated: list[PageCost] = []
    moved = 0
    for i, dso in enumerate([exe, *libs]):
        own = i == 0
        for page in estimates[dso.path].pages:
            if own:
                if page.phase == "possible" or page.cause in (Cause.BSS_TAIL, Cause.GAP_DONATION):
                    continue
            else:
                if _kept(page, pie=pie, imports=imports) is None:
                    continue
                lib_name = dso.soname or dso.path
                page = replace(page, detail=f"from {lib_name}: {page.detail}")
                if page.cause is Cause.CONSTRUCTOR:
                    # The program's own initialisers run after the entry point (glibc
                    # csu/libc-start.c call_init; musl __libc_start_init), not in _dl_init.
                    page = replace(page, phase="idle")
            if page.vaddr is None or layout is None:
                if page.vaddr is not None and own:
                    chosen[page.vaddr] = _merge(chosen.get(page.vaddr), page)
                else:
                    unlocated.append(replace(page, vaddr=None))
                continue
            parts = layout.parts[i]
            for pg in _mapped(page, dso, parts, P, own=own):
                chosen[pg] = _merge(chosen.get(pg), replace(page, vaddr=pg, sections=()))
                moved += not own
    merged = _merged_dso(exe, libs, layout)
    ctx = rules.ObjectContext(
        dso=merged,
        role="executable",
        family=graph.family,
        static_pie=False,
        page=P,
        bind_now=False,
        relocs=NO_GROUPS,
        copy_sizes={},
    )
    if layout is not None:
        for pc in (*rules.bss_tail_pages(ctx), *rules.gap_donation_pages(ctx)):
            assert pc.vaddr is not None
            chosen[pc.vaddr] = _merge(chosen.get(pc.vaddr), pc)
    possible, unlisted = rules.possible_write_pages(ctx, set(chosen), LISTED_POSSIBLE_PAGES)
    pages = [*sorted(chosen.values(), key=lambda p: p.vaddr or 0), *unlocated]
    entry = sum(1 for p in pages if p.phase == "entry")
    idle = sum(1 for p in pages if p.phase == "idle")
    high = len(pages) + len(possible) + unlisted
    exe_est = dynamic.objects[0]
    lib_ests = [estimates[d.path] for d in libs]
    obj = replace(
        exe_est,
        writable_pages=count_pages(((s.vaddr, s.end) for s in merged.loads if s.writable), P),
        pages=(*pages, *possible),
        private_dirty=Range(
            at_entry=entry * P, low=entry * P, expected=(entry + idle) * P, high=high * P
        ),
        shared_clean=exe_est.shared_clean + sum(o.shared_clean for o in lib_ests),
        notes=(
            *exe_est.notes,
            *(f"what-if: {o.soname or o.path} linked in" for o in lib_ests),
        ),
        possible_unlisted=unlisted,
    )
    kept = [o for o in graph.objects if o.dso.path not in paths]
    reduced = replace(graph, objects=(replace(kept[0], dso=merged), *kept[1:]))
    objects = (obj, *(o for o in dynamic.objects[1:] if o.path not in paths))
    profile, warnings = select(graph.family.value, "dynamic", dynamic.machine)
    redone = {p.name: p for p in process_items(reduced, objects, profile, "dynamic", P)}
    tls_moved = any(d.tls is not None for d in libs)
    process = tuple(
        redone.get(p.name, p) if p.name == "loader_heap" or (p.name == "tls" and tls_moved) else p
        for p in dynamic.process
    )
    gone = ", ".join(
        f"{o.soname or o.path} ({o.private_dirty.expected // 1024} KiB)" for o in lib_ests
    )
    joined = layout.parts[1:] if layout else ()
    data = sum(p.size for parts in joined for p in parts.values())
    taken = ", ".join(f"{o.soname or o.path} {f:.0%}" for o, f in zip(lib_ests, share, strict=True))
    how = [
        f"what-if, an estimate: linked in from static archives: {gone}",
        "their data and bss ("
        + (f"{data} bytes" if layout else "layout unknown: no section headers")
        + ") join the program's writable segment after its own sections, output section by "
        "output section, the RELRO end on a page boundary (GNU ld's default script); their "
        "written pages are moved there" + ("" if layout else ", counted without an address"),
        "their relocations become link-time ones: "
        + (
            "RELATIVE records of the PIE program where they were relocated"
            if pie
            else "none at run time in a non-PIE program"
        )
        + ", except their imports from the shared objects that stay (GLOB_DAT, JUMP_SLOT, TLS),"
        " which stay written in the program's GOT",
        f"the loader's heap keeps {len(kept)} link_maps and search lists instead of "
        f"{len(graph.objects)}"
        + ("; their PT_TLS joins the program's TLS block" if tls_moved else ""),
        "ld takes only the archive members the program uses: their share of each library's "
        "data, bss and written pages is taken as the share of its exported functions and "
        f"data (by st_size) that the objects staying in the process import ({taken}), "
        "its text counted whole as the program's",
        "their own dependencies stay loaded; their constructors run as the program's, after "
        "the entry point",
    ]
    if absent:
        how.append(f"not loaded, nothing to link in: {', '.join(absent)}")
    return replace(
        dynamic,
        objects=objects,
        process=process,
        warnings=tuple(dict.fromkeys((*dynamic.warnings, *warnings))),
        assumptions=(*dynamic.assumptions, "; ".join(how)),
    )


def _merged_dso(exe: Dso, libs: Sequence[Dso], layout: _Layout | None) -> Dso:
    """The program's Dso with the merged writable segment, RELRO and TLS segment, for the rules
    that look at segments only (bss tail, musl gaps, possible writes, the TLS block)."""
    blocks = [d.tls for d in (exe, *libs) if d.tls is not None]
    tls = None
    if blocks:
        align = max(b.align for b in blocks)
        memsz = sum(align_up(b.memsz, max(1, b.align)) for b in blocks)
        base = exe.tls or blocks[0]
        tls = replace(base, memsz=memsz, filesz=sum(b.filesz for b in blocks), align=align)
    phdrs: list[Segment] = []
    for s in exe.phdrs:
        if layout is not None and s.p_type == PT_LOAD and s.writable:
            s = replace(
                s,
                vaddr=layout.start,
                filesz=layout.file_end - layout.start,
                memsz=layout.end - layout.start,
            )
        elif layout is not None and s.p_type == PT_GNU_RELRO and layout.relro is not None:
            a, b = layout.relro
            s = replace(s, vaddr=a, filesz=b - a, memsz=b - a)
        elif s.p_type == PT_TLS and tls is not None:
            s = tls
        phdrs.append(s)
    if tls is not None and exe.tls is None:
        phdrs.append(replace(tls, index=len(phdrs)))
    return replace(exe, phdrs=tuple(phdrs), sections=())


def archive_shares(
    graph: DependencyGraph, paths: Sequence[str], symbols: Mapping[str, DynamicSymbols]
) -> dict[str, float]:
    """What part of each library `paths` names the program takes from its static archive, by
    the share of the library's exported functions and data (st_size, from its .dynsym) that
    the other objects of the process import: ld links only the archive members that define a
    symbol something uses. An approximation: a member's own references to other members are
    not seen (a .so does not keep them), and a member's data is taken to follow its code.
    1.0 (all of it) when the library's .dynsym cannot be read."""
    wanted: set[str] = set()
    for o in graph.objects:
        wanted |= symbols.get(o.dso.path, NO_SYMBOLS).undefined
    out: dict[str, float] = {}
    for path in paths:
        defined = symbols.get(path, NO_SYMBOLS).defined
        total = sum(defined.values())
        used = sum(size for name, size in defined.items() if name in wanted)
        out[path] = used / total if total else 1.0
    return out
