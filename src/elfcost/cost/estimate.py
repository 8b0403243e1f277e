"""Dependency graph + object facts + rules + profile → Estimate, with no I/O.

Enforces the accounting invariant: every predicted page of an object has exactly one cause
(the most specific rule wins, model.Cause order), and every total is a sum of pages.

Everything here computes from values: the graph (resolve/), and each object's facts
(elf/facts.py ObjectFacts: relocation groups, COPY sizes, constructors, the libc of a static
program, the symbols an unprofiled libc is asked for). `facts_wanted` says which optional
facts each object needs; elfcost.predict reads them (elf/gather.py) and calls `estimate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec
from msgspec.structs import replace

from elfcost.cost import rules
from elfcost.cost.aftermain import OWN_WRITES, Linked, heap_pages, stack_pages, triggers
from elfcost.cost.constructed import constructed_pages
from elfcost.cost.pages import align_down, align_up, count_pages
from elfcost.cost.profiles import (
    LIBC_SONAMES,
    PageCounts,
    Profile,
    all_profiles,
    format_functions,
    libc_functions,
    select,
)
from elfcost.elf.facts import GLIBC_PTHREAD_SIZE_SYMBOL, NOTHING_MORE, FactsWanted, ObjectFacts
from elfcost.elf.machines import EM_386, EM_X86_64, label
from elfcost.errors import UnsupportedElfError
from elfcost.model import (
    ET_DYN,
    Cause,
    Dso,
    Estimate,
    LoadedObject,
    LoaderFamily,
    ObjectEstimate,
    PageCost,
    ProcessItem,
    Range,
    SectionIndex,
    Segment,
)
from elfcost.resolve.graph import DependencyGraph

_PRECEDENCE = {c: i for i, c in enumerate(Cause)}
WANT_INIT_WRITES = FactsWanted(init_writes=True)
# Possible-write pages (the high bound) are listed one by one up to this many per object and
# only counted beyond it; the largest object on a Debian 12 machine with CUDA installed has
# 30,789 writable pages, a Fortran program with a large COMMON block can have millions.
LISTED_POSSIBLE_PAGES = 1 << 15
# A process whose writable segments add up to more than a 48-bit address space (the largest a
# Linux process gets by default) cannot be loaded: such a p_memsz is refused, not modelled.
MAX_WRITABLE_BYTES = 1 << 48
# glibc's ld.so has every page of its writable segment listed as written (R-G8): a few pages
# in every real build, so a larger one is refused.
MAX_LOADER_DATA_PAGES = 1 << 12
# Machines whose thread pointer points at the TCB with the static TLS blocks below it (glibc's
# sysdeps/*/nptl/tls.h define TLS_TCB_AT_TP); the others put the TCB first (TLS_DTV_AT_TP).
TLS_TCB_AT_TP = frozenset({EM_X86_64, EM_386})


# --assume bind-now / lazy as Options.bind_now (the other --assume values relink: whatif.py).
BIND_NOW = {"bind-now": True, "lazy": False}


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """How to estimate: the runtime page size and the binding what-if."""

    page_size: int = 4096
    bind_now: bool | None = None  # what-if: None = as linked; True/False = --assume bind-now/lazy


def _static_link(root: Dso) -> str:
    return "static-pie" if root.e_type == ET_DYN else "static"


def link_mode(graph: DependencyGraph, root: ObjectFacts) -> tuple[str, str]:
    """(libc family, link mode) of the process; `root`: the executable's facts, which say
    which libc a static one carries."""
    if graph.family is not LoaderFamily.NONE:
        return graph.family.value, "dynamic"
    return root.static_libc or "none", _static_link(graph.root.dso)


def facts_wanted(graph: DependencyGraph, options: Options | None = None) -> dict[str, FactsWanted]:
    """What to read of each object (by path) beyond its relocations, for `estimate`.

    A dynamic process's profile is known from the graph: an unprofiled libc is asked for its
    start-up symbols and TCB size (`_facts_wanted`). A static executable says which libc it
    carries only in its bytes, read in the same pass as the rest: so it is asked for that, for
    the start-up symbols of every profile that places pages in a static executable of its link
    mode, and for glibc's TCB size; `estimate` uses what its libc's profile names.
    """
    P = (options or Options()).page_size
    root = graph.root.dso
    if graph.family is LoaderFamily.NONE:
        link = _static_link(root)
        names = (
            name
            for p in all_profiles()
            if p.link == link and p.startup_object == "executable"
            for name in (*p.startup_symbols_at_entry, *p.startup_symbols_idle)
        )
        wanted = FactsWanted(
            symbols=tuple(dict.fromkeys(names)),
            pthread_size=True,
            static_libc=True,
            init_writes=True,
            imports=libc_functions(),  # of those, the ones linked in
            linked_in=True,
            formats_for=format_functions(),
        )
        return {root.path: wanted, **{o.dso.path: NOTHING_MORE for o in graph.objects[1:]}}
    profile, _ = select(graph.family, "dynamic", label(root.machine, root.little_endian))
    return {o.dso.path: _facts_wanted(o, profile, P) for o in graph.objects}


class EstimateMemo:
    """Object estimates kept for reuse across the programs of one run (elfcost scan).

    An object's pages depend on the object, its role, the process's loader family and link
    mode, the profile and the options, never on the other objects: libc's estimate is the same
    in every dynamic program, so a scan of /usr/bin computes it once instead of ~800 times.
    Executables are not kept: each is the root of one process only; unless
    `keep_executables`, for the several what-ifs of one program (elfcost.predict.remedies).
    Of the options, only the page size and the object's effective binding count: a binding
    what-if re-estimates only the objects it changes.
    """

    def __init__(self, *, keep_executables: bool = False) -> None:
        self.keep_executables = keep_executables
        self._done: dict[tuple[object, ...], tuple[ObjectEstimate, tuple[str, ...]]] = {}
        # libc's estimate with its idle pages written early, by (its estimate, the
        # libraries), and a library with the variables other objects' initialisers construct
        # in it (constructed.py), by (its estimate, the pages): one object for every program
        # that maps the same ones, as its document is built once (report/jsonout.py keeps
        # documents by object).
        self._adjusted: dict[tuple[int, object], tuple[ObjectEstimate, ObjectEstimate]] = {}

    def idle_written_early(self, oe: ObjectEstimate, early: list[str], P: int) -> ObjectEstimate:
        return self._adjust(oe, ("early", tuple(early)), lambda: _idle_written_early(oe, early, P))

    def with_pages(self, oe: ObjectEstimate, new: list[PageCost], P: int) -> ObjectEstimate:
        return self._adjust(oe, ("pages", tuple(new)), lambda: _with_pages(oe, new, P))

    def _adjust(
        self, oe: ObjectEstimate, why: tuple[object, ...], make: Callable[[], ObjectEstimate]
    ) -> ObjectEstimate:
        """`oe` adjusted for what other objects do (`why`), made once per (`oe`, `why`)."""
        key = (id(oe), why)
        hit = self._adjusted.get(key)
        if hit is None or hit[0] is not oe:
            hit = self._adjusted[key] = (oe, make())
        return hit[1]

    def object_estimate(
        self,
        obj: LoadedObject,
        facts: ObjectFacts,
        graph: DependencyGraph,
        profile: Profile | None,
        link: str,
        opts: Options,
        warnings: list[str],
    ) -> ObjectEstimate:
        if obj.role == "executable" and not self.keep_executables:
            return _object_estimate(obj, facts, graph, profile, link, opts, warnings)
        dso = obj.dso
        dyn = dso.dynamic
        bind_now = opts.bind_now if opts.bind_now is not None else bool(dyn and dyn.bind_now)
        key = (
            dso.path,
            dso.file_id,
            dso.file_size,
            obj.role,
            graph.family,
            link,
            profile.name if profile else None,
            profile.fallback if profile else None,
            opts.page_size,
            bind_now,  # as _object_estimate decides it
        )
        done = self._done.get(key)
        if done is None:
            # The object's own warnings are replayed for every process that maps it.
            own: list[str] = []
            oe = _object_estimate(obj, facts, graph, profile, link, opts, own)
            done = (oe, tuple(own))
            self._done[key] = done
        warnings.extend(done[1])
        return done[0]


def estimate(
    graph: DependencyGraph,
    facts: Mapping[str, ObjectFacts],
    options: Options | None = None,
    *,
    memo: EstimateMemo | None = None,
    defined: Mapping[str, Mapping[str, tuple[int, int]]] | None = None,
) -> Estimate:
    """The estimate of `graph`'s process from each object's `facts` (by path; read with what
    `facts_wanted` asks for); `defined`: each object's definitions (st_value, st_size) of
    the variables constructed.variables_wanted names, by path."""
    opts = options or Options()
    P = opts.page_size
    _check_size(graph, P)
    root = graph.root.dso
    family, link = link_mode(graph, facts[root.path])
    warnings: list[str] = list(graph.warnings)
    profile: Profile | None = None
    if family != "none":
        profile, w = select(family, link, label(root.machine, root.little_endian))
        warnings.extend(w)
    else:
        warnings.append("static executable without a known libc: no start-up profile applied")
    memo = memo or EstimateMemo()
    objects = [
        memo.object_estimate(obj, facts[obj.dso.path], graph, profile, link, opts, warnings)
        for obj in graph.objects
    ]
    for at, new in constructed_pages(graph, facts, defined, P).items() if defined else ():
        # Which other objects are mapped decides these, as libc's early pages below. (An
        # executable's estimate is its process's alone: not kept.)
        if graph.objects[at].role == "executable":
            objects[at] = _with_pages(objects[at], new, P)
        else:
            objects[at] = memo.with_pages(objects[at], new, P)
    startup = next((o for o in graph.objects if _is_startup(o, profile)), None)
    early = _early_idle_writers(graph, facts, profile, link)
    if early and startup is not None:
        # Which other objects are mapped decides it, so it is not the memo's object estimate.
        at = graph.objects.index(startup)
        objects[at] = memo.idle_written_early(objects[at], early, P)
    tcb = _tcb_bytes(profile, startup, facts[startup.dso.path] if startup else None)
    linked = [
        Linked(
            name=o.dso.path.rsplit("/", 1)[-1],
            functions=facts[o.dso.path].imports,
            static=link != "dynamic",
            float_format=facts[o.dso.path].float_format,
        )
        for o in graph.objects
        if facts[o.dso.path].imports
    ]
    process = process_items(graph, objects, profile, link, P, tcb=tcb, linked=linked)
    assumptions = [f"page size {P} bytes"]
    if opts.bind_now is not None:
        assumptions.append("bind-now for every object" if opts.bind_now else "lazy binding")
    if profile is not None:
        assumptions.append(f"profile {profile.name}: {profile.provenance}")
        if profile.after_main.uses:
            assumptions.append(
                "after main: libc's first allocations, stream buffers and deeper stack are "
                "predicted from the libc functions the program and its libraries link "
                f"({profile.after_main.provenance})"
            )
    assumptions.append(OWN_WRITES)
    est = Estimate(
        binary=root.path,
        page_size=P,
        machine=label(root.machine, root.little_endian),
        loader_family=graph.family,
        loader_path=graph.interp,
        profile=profile.name if profile else "none",
        objects=tuple(objects),
        process=tuple(process),
        missing=graph.missing,
        warnings=tuple(dict.fromkeys(warnings)),
        assumptions=tuple(assumptions),
        libc_imports=tuple((x.name, x.functions) for x in linked),
    )
    return est


def _early_idle_writers(
    graph: DependencyGraph,
    facts: Mapping[str, ObjectFacts],
    profile: Profile | None,
    link: str,
) -> list[str]:
    """The libraries whose initialisers write libc's idle start-up pages before the entry point
    ("libstdc++.so.6 (__cxa_atexit)"): glibc's _dl_init runs every library's DT_INIT and
    DT_INIT_ARRAY before the entry point (elf/dl-init.c call_init), and those that call a
    function of the profile's idle_early_by, as C++ static objects register their destructors
    (__cxa_atexit) from their constructors, write the page there. What the initialisers call is
    read from their code (elf/ctors.py InitWrites.calls); where it was not disassembled (another
    machine), what the library imports stands for it."""
    if (
        profile is None
        or not profile.startup_idle_early_by
        or graph.family is not LoaderFamily.GLIBC
        or link != "dynamic"
    ):
        return []
    by = profile.startup_idle_early_by
    out = []
    for obj in graph.objects:
        f = facts[obj.dso.path]
        if obj.role != "library" or _is_startup(obj, profile) or not _has_constructors(obj.dso, f):
            continue
        init = f.init_writes
        called = init.calls if init is not None and init.analysed else f.imports
        calls = [n for n in called if n in by]
        if calls:
            out.append(f"{obj.dso.path.rsplit('/', 1)[-1]} ({', '.join(calls)})")
    return out


def _idle_written_early(oe: ObjectEstimate, early: list[str], P: int) -> ObjectEstimate:
    """libc's estimate with its idle start-up pages written before the entry point, by the
    initialisers of the `early` libraries (_early_idle_writers)."""
    who = ", ".join(early[:2]) + (f" and {len(early) - 2} more" if len(early) > 2 else "")
    moved = 0
    pages = []
    for p in oe.pages:
        if p.cause is Cause.LIBC_STARTUP and p.phase == "idle":
            detail = f"{p.detail}; before the entry point: initialisers of {who}"
            p = replace(p, phase="entry", detail=detail)
            moved += 1
        pages.append(p)
    if not moved:
        return oe
    r = oe.private_dirty
    out = replace(
        oe,
        pages=tuple(pages),
        private_dirty=Range(
            at_entry=r.at_entry + moved * P,
            low=r.low + moved * P,
            expected=r.expected,
            high=r.high,
        ),
    )
    _check_invariants(out, P)
    return out


def _with_pages(oe: ObjectEstimate, new: Sequence[PageCost], P: int) -> ObjectEstimate:
    """`oe` with the pages `new` written too (constructed.constructed_pages): a page listed as
    a possible write becomes one written; one written later is written as early as `new`
    says; one already written keeps its cause, the other mentioned."""
    by_vaddr = {p.vaddr: i for i, p in enumerate(oe.pages) if p.vaddr is not None}
    pages = list(oe.pages)
    unlisted = oe.possible_unlisted
    for pc in new:
        i = by_vaddr.get(pc.vaddr) if pc.vaddr is not None else None
        if i is None:
            if unlisted <= 0:
                continue  # not a page of its writable segments: nothing to add
            unlisted -= 1
            pages.append(pc)
        elif pages[i].phase == "possible":
            pages[i] = pc
        else:
            pages[i] = _also(pages[i], pc)
    if pages == list(oe.pages):
        return oe
    written = [p for p in pages if p.phase != "possible"]
    located = sorted((p for p in written if p.vaddr is not None), key=lambda p: p.vaddr or 0)
    ordered = [*located, *(p for p in written if p.vaddr is None)]
    ordered += [p for p in pages if p.phase == "possible"]
    entry = sum(1 for p in ordered if p.phase == "entry")
    idle = sum(1 for p in ordered if p.phase == "idle")
    r = oe.private_dirty
    out = replace(
        oe,
        pages=tuple(ordered),
        possible_unlisted=unlisted,
        private_dirty=Range(
            at_entry=entry * P, low=entry * P, expected=(entry + idle) * P, high=r.high
        ),
    )
    _check_invariants(out, P)
    return out


def _check_size(graph: DependencyGraph, P: int) -> None:
    """Refuse writable segments no process could map, and a glibc ld.so whose writable
    segment is too large to list page by page."""
    total = 0
    for obj in graph.objects:
        pages = _writable_pages(obj.dso, P)
        total += pages * P
        if total > MAX_WRITABLE_BYTES:
            raise UnsupportedElfError(
                obj.dso.file,
                "PT_LOAD",
                f"the process's writable segments reach {total:#x} bytes, more than a 48-bit "
                "address space: it could not be loaded",
            )
        glibc_ldso = obj.role == "interpreter" and graph.family is LoaderFamily.GLIBC
        if glibc_ldso and pages > MAX_LOADER_DATA_PAGES:
            raise UnsupportedElfError(
                obj.dso.file,
                "PT_LOAD",
                f"ld.so's writable segments span {pages} pages of {P} bytes, more than the "
                f"{MAX_LOADER_DATA_PAGES} elfcost lists as written",
            )


def _facts_wanted(obj: LoadedObject, profile: Profile | None, P: int) -> FactsWanted:
    """Beyond the relocations: an unprofiled libc's start-up symbols (to place its calibrated
    pages) and, for glibc, its TCB size. A profiled build at 4 KiB has its pages by address.
    Every other object but the loader: its initialisers, disassembled (libc's own are in its
    calibrated start-up pages, and every page of glibc's ld.so is counted written)."""
    if profile is None or not _is_startup(obj, profile):
        if obj.role == "interpreter":
            return NOTHING_MORE
        if profile is None or obj.dso.soname in LIBC_SONAMES:
            return WANT_INIT_WRITES  # libc's own objects call into libc, they import nothing
        return FactsWanted(
            init_writes=True, imports=libc_functions(), formats_for=format_functions()
        )
    return FactsWanted(
        symbols=()
        if _calibrated_build(obj.dso, profile) and P == 4096
        else (*profile.startup_symbols_at_entry, *profile.startup_symbols_idle),
        pthread_size=_asks_pthread_size(obj.dso, profile),
    )


def _asks_pthread_size(libc: Dso, profile: Profile) -> bool:
    """Whether the TCB size is taken from the libc itself: glibc builds not calibrated."""
    return profile.family == "glibc" and not _calibrated_build(libc, profile)


def _calibrated_build(dso: Dso, profile: Profile) -> bool:
    """Whether `profile` was measured on this very libc build (by build ID)."""
    return bool(dso.build_id) and dso.build_id in profile.startup_build_ids


def _object_estimate(
    obj: LoadedObject,
    facts: ObjectFacts,
    graph: DependencyGraph,
    profile: Profile | None,
    link: str,
    opts: Options,
    warnings: list[str],
) -> ObjectEstimate:
    dso, P = obj.dso, opts.page_size
    dyn = dso.dynamic
    bind_now = opts.bind_now if opts.bind_now is not None else bool(dyn and dyn.bind_now)
    ctx = rules.ObjectContext(
        dso=dso,
        role=obj.role,
        family=graph.family,
        static_pie=link == "static-pie",
        page=P,
        bind_now=bind_now,
        relocs=facts.relocs,
        copy_sizes=facts.copy_sizes,
        # A shared libc's initialisers are in its calibrated start-up pages; a static
        # executable's are the program's own (libc starts up from __libc_start_main).
        init_writes=facts.init_writes
        if obj.role == "executable" or not _is_startup(obj, profile)
        else None,
    )
    static = link != "dynamic"
    chosen: dict[int, PageCost] = {}
    for rule in rules.RULES:
        for pc in rule(ctx):
            v = pc.vaddr
            assert v is not None  # rules always locate their pages
            if static and pc.cause is not Cause.BSS_TAIL:
                # No loader: at the entry point only the kernel has written (the bss tail).
                # Static start-up (self-relocation, IRELATIVE, TLS, libc state) runs after _start.
                pc = replace(pc, phase="idle")
            old = chosen.get(v)
            if old is None:
                chosen[v] = pc
            elif _PRECEDENCE[pc.cause] < _PRECEDENCE[old.cause]:
                chosen[v] = _also(pc, old)
            else:
                chosen[v] = _also(old, pc)
    calibrated = _startup_pages(obj, profile, P, facts.symbols, warnings)
    if static:
        calibrated = [replace(pc, phase="idle") for pc in calibrated]
    for pc in calibrated:
        if pc.vaddr is not None and pc.vaddr not in chosen:
            chosen[pc.vaddr] = pc
    unlocated = [pc for pc in calibrated if pc.vaddr is None]
    known = {v for v in chosen}
    possible, unlisted = rules.possible_write_pages(ctx, set(known), LISTED_POSSIBLE_PAGES)
    pages = sorted(chosen.values(), key=lambda p: p.vaddr or 0) + unlocated
    entry = sum(1 for p in pages if p.phase == "entry")
    idle = sum(1 for p in pages if p.phase == "idle")
    high = len(pages) + len(possible) + unlisted
    notes = list(dso.warnings)
    if dyn is not None and dyn.textrel:
        notes.append("DT_TEXTREL: relocated text pages are private copies in every process")
    libc = _is_startup(obj, profile)
    if obj.role == "library" and not libc and _has_constructors(dso, facts):
        # libc's own initialisers are in its calibrated start-up pages instead.
        init = facts.init_writes
        proved = sum(1 for p in pages if p.cause is Cause.CONSTRUCTOR)
        counted = f"{proved} page{'' if proved == 1 else 's'}"
        if init is not None and init.complete:
            notes.append(f"initialisers disassembled: every write known ({counted})")
        elif proved:
            notes.append(
                f"has constructors: {counted} proved from their code, their other writes "
                f"are not known (high bound; {init.unproven[0] if init else ''})"
            )
        else:
            why = f"; {init.unproven[0]}" if init and init.unproven else ""
            notes.append(
                f"has constructors: their writes are not in the relocation data (high bound{why})"
            )
        if possible and not proved and not (init is not None and init.complete):
            # loader-model §9: typically one page per initialiser-bearing library (libcrypto,
            # libgnutls measured 1-2), run by glibc's _dl_init before the entry point (musl's
            # __libc_start_init after it: rules.constructor_pages); where is unknown.
            early = graph.family is LoaderFamily.GLIBC
            pages.append(
                PageCost(
                    vaddr=None,
                    cause=Cause.CONSTRUCTOR,
                    certain=False,
                    phase="entry" if early else "idle",
                    detail="library initialiser writes (typical one page; location unknown)",
                )
            )
            possible = possible[1:]
            if early:
                entry += 1
            else:
                idle += 1
    oe = ObjectEstimate(
        path=dso.path,
        soname=dso.soname,
        role=obj.role,
        writable_pages=_writable_pages(dso, P),
        pages=tuple([*pages, *possible]),
        private_dirty=Range(
            at_entry=entry * P, low=entry * P, expected=(entry + idle) * P, high=high * P
        ),
        shared_clean=_shared_clean(dso, P),
        notes=tuple(notes),
        possible_unlisted=unlisted,
    )
    _check_invariants(oe, P)
    return oe


_PHASE_ORDER = {"entry": 0, "idle": 1, "possible": 2}


def _also(winner: PageCost, loser: PageCost) -> PageCost:
    """Keep the most specific cause; mention the others in its detail. The page is written
    as early as the earliest of its causes writes it."""
    phase = min(winner.phase, loser.phase, key=_PHASE_ORDER.__getitem__)
    if loser.cause is winner.cause:
        return replace(winner, phase=phase)
    also = f"; also {loser.cause.value}"
    return replace(
        winner,
        phase=phase,
        detail=winner.detail if also in winner.detail else winner.detail + also,
        reloc_count=max(winner.reloc_count, loser.reloc_count),
        reloc_types=winner.reloc_types or loser.reloc_types,
    )


def _is_startup(obj: LoadedObject, profile: Profile | None) -> bool:
    """Whether `obj` holds the libc whose start-up writes `profile` records."""
    if profile is None:
        return False
    target = profile.startup_object
    if target in ("executable", "interpreter"):
        return obj.role == target
    return obj.dso.soname == target


def _startup_pages(
    obj: LoadedObject,
    profile: Profile | None,
    P: int,
    symbols: Mapping[str, tuple[int, int]],
    warnings: list[str],
) -> list[PageCost]:
    """Calibrated libc start-up writes (R-G9, R-M6, R-S3) placed on pages when possible:
    by address for the build the profile was measured on, else by the `symbols` found."""
    if profile is None or not _is_startup(obj, profile):
        return []
    dso = obj.dso
    why = f"libc start-up writes ({profile.name}, calibrated)"
    index = SectionIndex.of(dso.sections)

    def page(vaddr: int | None, phase: str, detail: str) -> PageCost:
        sections = index.names_at(vaddr, vaddr + P) if vaddr is not None else ()
        return PageCost(
            vaddr=vaddr,
            cause=Cause.LIBC_STARTUP,
            certain=False,
            phase=phase,  # type: ignore[arg-type]
            detail=f"{why}: {detail}",
            sections=sections,
        )

    if _calibrated_build(dso, profile) and P == 4096:
        # This very build was measured: its pages, by address.
        return [
            page(v, phase, "measured on this build")
            for phase, vaddrs in (
                ("entry", profile.startup_at_entry),
                ("idle", profile.startup_idle),
            )
            for v in vaddrs
        ]
    # Another build: the pages of the symbols known to be written, where symbols say; the rest
    # of the profile's page count with no address.
    out: list[PageCost] = []
    placed: set[int] = set()
    for phase, names, count in (
        ("entry", profile.startup_symbols_at_entry, profile.startup_pages_at_entry),
        ("idle", profile.startup_symbols_idle, profile.startup_pages_idle),
    ):
        located = 0
        for name in names:
            if name in symbols:
                pg = align_down(symbols[name][0], P)
                if pg not in placed:
                    placed.add(pg)
                    located += 1
                    out.append(page(pg, phase, name))
        out.extend(
            page(None, phase, "location unknown for this build")
            for _ in range(max(0, count - located))
        )
    if dso.build_id and not profile.fallback:
        warnings.append(
            f"{dso.path}: libc build {dso.build_id[:12]} not calibrated; start-up pages "
            "placed by symbol or counted from the profile"
        )
    return out


def _has_constructors(dso: Dso, facts: ObjectFacts) -> bool:
    """Whether the object runs initialisers of its own before main (glibc _dl_init)."""
    if dso.dynamic is None:
        return False
    return facts.constructors.beyond_crt(dso.machine, dso.elf_class // 8)


def _writable_pages(dso: Dso, P: int) -> int:
    return count_pages(((s.vaddr, s.end) for s in dso.loads if s.writable), P)


def _shared_clean(dso: Dso, P: int) -> int:
    """File-backed pages of read-only segments: shared between instances once resident."""
    spans = ((s.vaddr, s.vaddr + s.filesz) for s in dso.loads if not s.writable)
    return count_pages(spans, P) * P


# -- process items ------------------------------------------------------------------------------


def _pages_range(c: PageCounts, P: int) -> Range:
    return Range(at_entry=c.at_entry * P, low=c.low * P, expected=c.expected * P, high=c.high * P)


def process_items(
    graph: DependencyGraph,
    objects: Sequence[ObjectEstimate],
    profile: Profile | None,
    link: str,
    P: int,
    *,
    tcb: tuple[int, str] | None = None,
    linked: Sequence[Linked] = (),
) -> list[ProcessItem]:
    """Stack, loader heap, TLS, heap, threads. `tcb` is the TCB's size and where it came from
    (`_tcb_bytes`); None takes the profile's. `linked`: the libc functions each object links,
    from which libc's writes after main are predicted (cost/aftermain.py)."""
    if profile is None:
        return [
            ProcessItem(
                name="stack",
                private_dirty=Range(at_entry=P, low=P, expected=P * 2, high=P * 4),
                certain=False,
                detail="kernel argv/envp/auxv pages; no libc profile",
            ),
        ]
    found = triggers(profile.after_main, linked)
    stack_more = stack_pages(found)
    heap_more = heap_pages(profile.after_main, found, P)
    stack_idle = sum(1 for p in stack_more if p.phase == "idle")
    stack = profile.stack
    items = [
        ProcessItem(
            name="stack",
            private_dirty=Range(
                at_entry=stack.at_entry * P,
                low=stack.low * P,
                expected=(stack.expected + stack_idle) * P,
                high=(stack.high + len(stack_more)) * P,
            ),
            certain=False,
            detail="kernel argv/envp/auxv + random gap (R-K2) + loader and libc start-up depth"
            + (
                f" + {len(stack_more)} page(s) of libc functions' frames (R-A3)"
                if stack_more
                else ""
            )
            + "; the program's own use after main is not included",
            pages=tuple(stack_more),
        )
    ]
    tls_pages = _tls(graph, profile, P, tcb or (profile.tls_tcb_bytes, ""))
    heap = profile.heap
    heap_idle = sum(1 for p in heap_more if p.phase == "idle")
    heap_range = Range(
        at_entry=heap.at_entry * P,
        low=heap.low * P,
        expected=(heap.expected + heap_idle) * P,
        # The pages libc's first allocations write lie in the first sbrk, which bounds them.
        high=max((heap.expected + len(heap_more)) * P, heap.high_bytes),
    )
    heap_detail = (
        "libc malloc arena: none until the first malloc"
        + (
            f"; {heap_idle} page(s) expected, {len(heap_more) - heap_idle} more possible, from "
            "the libc functions linked (R-A1, R-A2)"
            if heap_more
            else ""
        )
        + "; high = first sbrk (request + 128 KiB M_TOP_PAD), program use beyond it is unbounded"
    )
    n = len(graph.objects)
    lh_base = profile.loader_heap_base_pages
    if profile.loader_heap_model == "mallocng" and link == "dynamic":
        items.append(_musl_loader_heap(graph, profile, P))
    elif lh_base or profile.loader_heap_per_object_bytes:
        extra = max(0, n - profile.loader_heap_small_objects) * profile.loader_heap_per_object_bytes
        exp = lh_base + -(-extra // P)
        items.append(
            ProcessItem(
                name="loader_heap",
                private_dirty=Range(
                    at_entry=exp * P,
                    low=max(lh_base, exp - 1) * P,
                    expected=exp * P,
                    high=(exp + 1 + n // 16) * P,
                ),
                certain=False,
                detail=(
                    f"the loader's own allocations for {n} objects (link_maps, search "
                    "paths): glibc rtld minimal malloc mmaps"
                    if profile.family == "glibc"
                    else f"musl: first malloc meta area on brk, struct dso for {n} objects"
                ),
            )
        )
    if tls_pages is not None:
        low, exp, high, detail = tls_pages
        # Without a loader, TLS is set up by libc start-up after the entry point.
        entry = 0 if link != "dynamic" else exp
        items.append(
            ProcessItem(
                name="tls",
                private_dirty=Range(
                    at_entry=entry * P, low=low * P, expected=exp * P, high=high * P
                ),
                certain=False,
                detail=detail,
            )
        )
    items.append(
        ProcessItem(
            name="heap",
            private_dirty=heap_range,
            certain=False,
            detail=heap_detail,
            pages=tuple(heap_more),
        )
    )
    items.append(
        ProcessItem(
            name="threads_and_dlopen",
            private_dirty=Range(at_entry=0, low=0, expected=0, high=0),
            certain=False,
            detail="not modelled: counted as 0 KiB in every column, high too; each thread "
            "the program starts adds its stack pages + TLS, each dlopen its objects, on top",
        )
    )
    if profile.fallback:
        # Calibrated on another machine or libc: each calibrated bound is a page wider.
        items = [
            replace(
                it,
                private_dirty=replace(
                    it.private_dirty,
                    low=max(0, it.private_dirty.low - P),
                    high=it.private_dirty.high + P,
                ),
                detail=f"{it.detail} (profile for another build: bounds widened by a page)",
            )
            for it in items
            if it.name != "threads_and_dlopen"
        ] + [it for it in items if it.name == "threads_and_dlopen"]
    return items


def _musl_loader_heap(graph: DependencyGraph, profile: Profile, P: int) -> ProcessItem:
    """R-M5: ld-musl's allocations before the entry point, replayed on mallocng
    (cost/muslheap.py): the first meta area on brk and each group mallocng maps. Exact when
    the program starts as analysed: LD_PRELOAD, LD_LIBRARY_PATH and the lengths of paths
    not in the ELF files (the path file's directories no search reached) can move it, so low
    and high keep a page either way; high also keeps a page per 16 objects, 256 bytes each
    (a struct dso is 368), for what the replay does not know of: directories searched
    through LD_LIBRARY_PATH, a program-header buffer of more than 16 entries. That margin is
    chosen, not measured: none of the 158 programs checked (cost/profiles/musl-dynamic.toml)
    went past the page either way."""
    # Imported here: only a dynamic musl program needs the allocator's replay.
    from elfcost.cost.muslheap import loader_heap

    heap = loader_heap(graph, profile.loader_heap_dso_bytes, P)
    exp = heap.pages
    return ProcessItem(
        name="loader_heap",
        private_dirty=Range(
            at_entry=exp * P,
            low=max(heap.brk_pages, exp - 1) * P,
            expected=exp * P,
            high=(exp + 1 + len(graph.objects) // 16) * P,
        ),
        certain=False,
        detail=heap.detail,
    )


def _tls(
    graph: DependencyGraph, profile: Profile, P: int, tcb_from: tuple[int, str]
) -> tuple[int, int, int, str] | None:
    """Main thread static TLS + TCB (R-G11 glibc dynamic; R-S2 glibc static; R-M7 musl)."""
    blocks = [o.dso.tls for o in graph.objects if o.dso.tls is not None]
    memsz = sum(align_up(b.memsz, max(1, b.align)) for b in blocks if b is not None)
    filesz = sum(b.filesz for b in blocks if b is not None)
    tcb, tcb_why = tcb_from
    written = tcb + (memsz if profile.tls_writes == "memsz" else filesz)
    where = (
        "rtld minimal malloc"
        if profile.tls_where == "loader_heap"
        else ("brk ([heap])" if profile.family == "glibc" else "malloc/mmap")
    )
    if profile.family == "musl":
        total = (
            8 * (1 + len(blocks))
            + memsz
            + tcb
            + 2 * max([b.align for b in blocks if b is not None] or [8])
        )
        if total <= profile.tls_builtin_bytes:
            return None  # builtin_tls in libc's .bss: covered by libc's start-up page
        written = tcb + filesz + 8 * (1 + len(blocks))
    placed = ""
    if profile.tls_writes == "filesz" and memsz - filesz >= P:
        # Only tdata is copied: the block's start and the TCB at its end are written, the tbss
        # between them stays untouched (csu/libc-tls.c, musl __copy_tls), two separate runs.
        data_pages = -(-(written - tcb) // P)
        tcb_pages = -(-tcb // P)
        low = data_pages + tcb_pages
        # glibc carves the block from brk at an arbitrary offset, so each run straddles one
        # more page (measured); musl's comes from fresh pages (calloc/mmap) and does not.
        exp = low + (1 + (1 if data_pages else 0) if profile.family == "glibc" else 0)
    elif profile.family == "glibc" and graph.objects[0].dso.e_machine in TLS_TCB_AT_TP:
        low = max(1, -(-written // P))
        exp, start, end = _tcb_at_tp_pages(blocks, tcb, profile.tls_surplus_bytes, P)
        placed = (
            f"; bytes {start:#x}..{end:#x} of an area that starts on a page (the surplus "
            f"first, elf/dl-tls.c): {exp} page(s)"
        )
    else:
        low = max(1, -(-written // P))
        exp = low + 1 if written % P or len(blocks) > 1 else low
    high = -(-(written + profile.tls_surplus_bytes + (memsz - filesz)) // P) + 1
    detail = (
        f"TCB {tcb} B{tcb_why} + {len(blocks)} PT_TLS blocks "
        f"({memsz} B memsz, {filesz} B filesz; {profile.tls_writes} written) in {where}{placed}"
    )
    return low, exp, max(high, exp), detail


def _tcb_at_tp_pages(
    blocks: Sequence[Segment], tcb: int, surplus: int, P: int
) -> tuple[int, int, int]:
    """Pages of glibc's initial static TLS that start-up writes, on a TLS_TCB_AT_TP machine.

    The layout is elf/dl-tls.c `_dl_determine_tlsoffset`: each block is placed below the TCB at
    an offset rounded up to its alignment, and `dl_tls_static_size` is that offset plus the
    static surplus, rounded up to the largest alignment (at least TCB_ALIGNMENT, 64 on x86),
    plus the TCB. The blocks and the TCB are at the end of that area, the unused surplus at its
    start. The area starts on a page boundary: `_dl_allocate_tls_storage` asks rtld's minimal
    malloc for more than the rest of its page on x86_64 (elf/dl-minimal-malloc.c maps fresh
    pages and starts there), and csu/libc-tls.c `__libc_setup_tls` takes it from the
    page-aligned start of brk. So the pages written are those the range
    [size - TCB - offset, size) spans: two on x86_64, whose 2368-byte TCB ends past the first
    page, one on i386, whose 1216-byte TCB does not (measured, bench/accuracy).
    Returns the page count and the written range's start and end in the area.
    """
    offset, max_align = 0, 64
    for b in blocks:
        align = max(1, b.align)
        offset = align_up(offset + b.memsz, align)
        max_align = max(max_align, align)
    size = align_up(offset + surplus, max_align) + tcb
    start = size - tcb - offset
    return (size - 1) // P - start // P + 1, start, size


def _tcb_bytes(
    profile: Profile | None, libc: LoadedObject | None, facts: ObjectFacts | None
) -> tuple[int, str] | None:
    """The TCB's size: the profile's for the libc builds it was measured on; for another glibc
    build, sizeof (struct pthread) as that libc records it for libthread_db (elf/facts.py
    GLIBC_PTHREAD_SIZE_SYMBOL, in `libc`'s `facts`), so an unprofiled machine or version gets
    its own size (i386 glibc 2.36: 1216 B against x86_64's 2368). The second item says where
    the number came from ("" for the profile); None when there is no profile."""
    if profile is None:
        return None
    if libc is None or facts is None or not _asks_pthread_size(libc.dso, profile):
        return profile.tls_tcb_bytes, ""
    if facts.pthread_size is None:
        return profile.tls_tcb_bytes, ""
    return facts.pthread_size, f" (sizeof (struct pthread) from {GLIBC_PTHREAD_SIZE_SYMBOL})"


def _check_invariants(o: ObjectEstimate, P: int) -> None:
    """Each page one cause, and the totals the sum of the pages: checked once per object
    estimate made (a scan reuses libc's in every program)."""
    located = [p.vaddr for p in o.pages if p.vaddr is not None]
    if len(located) != len(set(located)):
        raise AssertionError(f"{o.path}: a page has two causes")
    entry = sum(1 for p in o.pages if p.phase == "entry") * P
    high = (len(o.pages) + o.possible_unlisted) * P
    if entry != o.private_dirty.at_entry or o.private_dirty.high != high:
        raise AssertionError(f"{o.path}: totals do not add up")
