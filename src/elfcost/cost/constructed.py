"""Variables of one object that its function constructs in place when another object's
initialiser calls it.

An initialiser's own writes are read from its code (elf/ctors.py); a call into another object
is not followed (that object's code, usually far longer than an initialiser's budget). A few
such functions are known from their source to construct variables of their own object the
first time they run, whoever calls them: the pages holding those variables are written when
the first caller's initialiser runs. What the initialisers call is read from their code
(InitWrites.calls).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from elfcost.cost.pages import pages_of
from elfcost.elf.facts import ObjectFacts
from elfcost.model import Cause, LoaderFamily, PageCost
from elfcost.resolve.graph import DependencyGraph


class ConstructedByCall(msgspec.Struct, frozen=True, kw_only=True):
    """`variables` ((symbol, name shown)) are constructed in place, where the loader binds
    them, by the first call to any of `functions`."""

    functions: tuple[str, ...]
    variables: tuple[tuple[str, str], ...]
    by: str  # the function, shown
    source: str


# libstdc++-v3/src/c++98/ios_init.cc: ios_base::Init::Init() counts its callers in
# _S_refcount and, the first time, constructs the eight standard streams in place (placement
# new on cout, cin, cerr, clog and the wide ones, defined in globals_io.cc). Before GCC 13,
# every translation unit that includes <iostream> holds a `static ios_base::Init __ioinit;`
# whose construction, by the unit's initialiser, calls it. (From GCC 13 libstdc++ calls it
# from its own initialiser; a program that links libstdc++ statically calls its own copy:
# internal calls, read with the rest of its code.)
STANDARD_STREAMS = ConstructedByCall(
    functions=("_ZNSt8ios_base4InitC1Ev", "_ZNSt8ios_base4InitC2Ev"),
    variables=(
        ("_ZSt4cout", "cout"),
        ("_ZSt3cin", "cin"),
        ("_ZSt4cerr", "cerr"),
        ("_ZSt4clog", "clog"),
        ("_ZSt5wcout", "wcout"),
        ("_ZSt4wcin", "wcin"),
        ("_ZSt5wcerr", "wcerr"),
        ("_ZSt5wclog", "wclog"),
    ),
    by="std::ios_base::Init::Init",
    source="libstdc++-v3/src/c++98/ios_init.cc ios_base::Init::Init",
)
CONSTRUCTED_BY_CALL = (STANDARD_STREAMS,)


def _calls(f: ObjectFacts, rule: ConstructedByCall) -> bool:
    init = f.init_writes
    return init is not None and init.analysed and not set(init.calls).isdisjoint(rule.functions)


def variables_wanted(graph: DependencyGraph, facts: Mapping[str, ObjectFacts]) -> tuple[str, ...]:
    """The variables whose binding `constructed_pages` needs (each object's definitions of
    them, by symbol): those of the functions some object's initialisers call."""
    return tuple(
        symbol
        for rule in CONSTRUCTED_BY_CALL
        if any(_calls(facts[o.dso.path], rule) for o in graph.objects)
        for symbol, _ in rule.variables
    )


def constructed_pages(
    graph: DependencyGraph,
    facts: Mapping[str, ObjectFacts],
    defined: Mapping[str, Mapping[str, tuple[int, int]]],
    P: int,
) -> dict[int, list[PageCost]]:
    """The pages, by index in graph.objects, holding variables that a function called by an
    initialiser constructs (CONSTRUCTED_BY_CALL), where they are bound: in the first object
    of the lookup scope (load order, the executable first) that defines them (`defined`:
    (st_value, st_size) by symbol, by path), as the loader binds every reference to them
    (glibc elf/dl-lookup.c _dl_lookup_symbol_x; an executable that copied one with R_*_COPY
    holds it, and the library's own references are bound there too).

    When: glibc runs every library's initialisers before the entry point (elf/dl-init.c
    _dl_init), the executable's after it (csu/libc-start.c call_init); musl runs them all
    after it (ldso/dynlink.c do_init_fini). Not `certain`: the call may be on some path of
    the initialiser only, and what the function writes is from its source, not its code."""
    shown: dict[int, dict[int, list[str]]] = {}
    why: dict[int, dict[int, tuple[bool, str]]] = {}
    for rule in CONSTRUCTED_BY_CALL:
        by = [o for o in graph.objects if _calls(facts[o.dso.path], rule)]
        if not by:
            continue
        early = graph.family is LoaderFamily.GLIBC and any(o.role == "library" for o in by)
        names = [o.dso.path.rsplit("/", 1)[-1] for o in by]
        who = ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
        text = f"constructed by {rule.by}, which the initialisers of {who} call"
        for symbol, name in rule.variables:
            at = next(
                (i for i, o in enumerate(graph.objects) if symbol in defined.get(o.dso.path, {})),
                None,
            )
            if at is None or graph.objects[at].role == "interpreter":
                continue
            dso = graph.objects[at].dso
            value, size = defined[dso.path][symbol]
            seg = next((s for s in dso.loads if s.writable and s.vaddr <= value < s.end), None)
            if seg is None:
                continue  # not writable memory: not a variable the call can construct
            for pg in pages_of(value, min(value + max(size, 1), seg.end), P):
                shown.setdefault(at, {}).setdefault(pg, []).append(name)
                why.setdefault(at, {})[pg] = (early, text)
    return {
        at: [
            PageCost(
                vaddr=pg,
                cause=Cause.CONSTRUCTOR,
                certain=False,
                phase="entry" if why[at][pg][0] else "idle",
                detail=f"{', '.join(names)}: {why[at][pg][1]}",
                sections=graph.objects[at].dso.section_names_at(pg, pg + P),
            )
            for pg, names in sorted(pages.items())
        ]
        for at, pages in shown.items()
    }
