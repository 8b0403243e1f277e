"""The I/O edge of the cost stage: read each object's facts, then estimate from values.

cost/ computes from a dependency graph and each object's facts and never opens a file; this
module is the thin layer in front of it that reads those facts (elf/gather.py, one pass per
object) and, for the what-ifs that relink the program against the other libc, resolves that
libc's objects (resolve/swap.py). The command line and `elfcost scan` call these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar, cast

from msgspec.structs import replace

from elfcost.cost import estimate as cost
from elfcost.cost.constructed import variables_wanted
from elfcost.cost.estimate import BIND_NOW, EstimateMemo, Options
from elfcost.cost.profiles import LIBC_SONAMES
from elfcost.cost.whatif import (
    RELINKS,
    STATIC_LIB,
    STATIC_LIB_ALL,
    archive_shares,
    libc_whatif,
    linked_libraries,
    static_lib_whatif,
    static_whatif,
)
from elfcost.elf.facts import DynamicSymbols, FactsWanted, ObjectFacts
from elfcost.elf.gather import read_facts
from elfcost.elf.symbols import dynamic_symbols, find_symbols
from elfcost.errors import ElfcostError
from elfcost.model import Dso, Estimate, LoaderFamily
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import Host
from elfcost.resolve.swap import swap_libc

T = TypeVar("T")


class ObjectMemo:
    """Object facts and estimates kept for reuse across the programs of one run (elfcost scan):
    a library is read once, and estimated once per way it is loaded (cost EstimateMemo).
    Executables are not kept: each is the root of one process only; unless
    `keep_executables`, for the several estimates of one program (`remedies`)."""

    def __init__(self, *, keep_executables: bool = False) -> None:
        self.estimates = EstimateMemo(keep_executables=keep_executables)
        self.keep_executables = keep_executables
        self._kept: dict[tuple[object, ...], object] = {}

    def facts(self, dso: Dso, wanted: FactsWanted, *, keep: bool) -> ObjectFacts:
        return self._read(dso, wanted, read_facts, keep=keep)

    def defined(
        self, dso: Dso, names: tuple[str, ...], *, keep: bool
    ) -> dict[str, tuple[int, int]]:
        """`dso`'s definitions of `names` in .dynsym (cost/constructed.py)."""
        return self._read(dso, names, _defined, keep=keep)

    def _read(self, dso: Dso, asked: Hashable, read: Callable[[Dso, Any], T], *, keep: bool) -> T:
        """read(dso, asked), kept by the file's identity and `asked` unless not `keep`."""
        if not keep and not self.keep_executables:
            return read(dso, asked)
        key = (read, dso.path, dso.file_id, dso.file_size, asked)
        if key not in self._kept:
            self._kept[key] = read(dso, asked)
        return cast(T, self._kept[key])


def _defined(dso: Dso, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    return find_symbols(dso, names, dynamic_only=True)


def estimate(
    graph: DependencyGraph, options: Options | None = None, *, memo: ObjectMemo | None = None
) -> Estimate:
    """The estimate of `graph`'s process: its objects' facts read, then cost.estimate."""
    memo = memo or ObjectMemo()
    wanted = cost.facts_wanted(graph, options)
    facts = {
        o.dso.path: memo.facts(o.dso, wanted[o.dso.path], keep=o.role != "executable")
        for o in graph.objects
    }
    # Variables an initialiser's call constructs in another object: where each is bound
    # decides whose page it is, so each object's definitions of them are read (a second,
    # small read: only in a process whose initialisers make such a call).
    names = variables_wanted(graph, facts)
    defined = (
        {o.dso.path: memo.defined(o.dso, names, keep=o.role != "executable") for o in graph.objects}
        if names
        else {}
    )
    return cost.estimate(graph, facts, options, memo=memo.estimates, defined=defined)


def relink_whatif(
    graph: DependencyGraph,
    how: str,
    host: Host,
    options: Options | None = None,
    *,
    dynamic: Estimate,
) -> Estimate:
    """The what-if `how` (a cost/whatif.py RELINKS key) of the program `graph` whose as-built
    estimate is `dynamic`: swapped to the other libc first (its files read through `host`),
    then linked statically, each step saying what it did in the assumptions."""
    libc, static = RELINKS[how]
    est, relinked = dynamic, graph
    if libc is not None:
        swap = swap_libc(graph, LoaderFamily(libc), host)
        if swap is None:
            est = libc_whatif(None, dynamic=dynamic)
        else:
            swapped = estimate(swap.graph, options)
            est = libc_whatif(swapped, swap.removed, swap.added, dynamic=dynamic)
            relinked = swap.graph
    if static:
        est = static_whatif(relinked, options, dynamic=est)
    return est


def static_lib(
    graph: DependencyGraph,
    names: Sequence[str],
    options: Options | None = None,
    *,
    dynamic: Estimate,
    strict: bool = True,
    symbols: Mapping[str, DynamicSymbols] | None = None,
) -> Estimate:
    """`--assume static-lib=NAME` for each of `names` (cost/whatif.py static_lib_whatif), with
    the share of each library the program takes from its archive read from the objects'
    .dynsym (archive_shares; `symbols`: already read, by path, for several of them)."""
    paths, _ = linked_libraries(graph, names)
    if symbols is None:
        symbols = _dynamic_symbols(graph, paths) if paths else {}
    shares = archive_shares(graph, paths, symbols)
    return static_lib_whatif(graph, names, options, dynamic=dynamic, shares=shares, strict=strict)


def _dynamic_symbols(graph: DependencyGraph, paths: Sequence[str]) -> dict[str, DynamicSymbols]:
    """Each object's .dynsym, by path, as archive_shares reads them: every object's undefined
    names, and the defined symbols of the libraries `paths` only."""
    linked = set(paths)
    return {o.dso.path: dynamic_symbols(o.dso, defined=o.dso.path in linked) for o in graph.objects}


def remedies(
    graph: DependencyGraph,
    host: Host,
    options: Options | None = None,
    *,
    dynamic: Estimate,
    memo: ObjectMemo | None = None,
) -> list[tuple[str, Estimate]]:
    """Each remedy that applies to the program `graph` as built (estimate `dynamic`), as
    (`--assume` value, its estimate): linked statically with the same libc; against the other
    libc (musl, dynamically and statically, for a glibc program; glibc for a musl one); each
    library that is not libc linked in from its static archive (static-lib=SONAME, and
    static-lib=all when there are several; their .dynsym read once for all of them); bound
    at start-up or lazily where that changes the expected figure. A statically linked program
    has none, nor has a shared library estimated as if it were one; a libc that is not
    installed here (or a swap that cannot be made) is left out. The other libc's objects are
    read once for its dynamic and static what-ifs; with `memo` (made with keep_executables,
    and used for `dynamic`), no object is read twice."""
    opts = options or Options()
    family = graph.family
    if family is LoaderFamily.NONE or not graph.root.dso.is_program:
        return []  # relinking is a program's: none for a shared library named as the binary
    out: list[tuple[str, Estimate]] = [("static", static_whatif(graph, opts, dynamic=dynamic))]
    other = LoaderFamily.MUSL if family is LoaderFamily.GLIBC else LoaderFamily.GLIBC
    if family in (LoaderFamily.GLIBC, LoaderFamily.MUSL):
        try:
            swap = swap_libc(graph, other, host)
        except ElfcostError:
            swap = None
        if swap is not None:
            swapped = libc_whatif(
                estimate(swap.graph, opts, memo=memo), swap.removed, swap.added, dynamic=dynamic
            )
            out.append((other.value, swapped))
            if other is LoaderFamily.MUSL:
                out.append(("musl-static", static_whatif(swap.graph, opts, dynamic=swapped)))
    # Each library but libc and the loader linked in from its archive, then all of them.
    libs = [o for o in graph.objects if o.role == "library"]
    own = [o.dso.soname or o.dso.path for o in libs if (o.dso.soname or "") not in LIBC_SONAMES]
    # Read once for all of them; the defined symbols of every library any of them may name.
    every = linked_libraries(graph, [STATIC_LIB_ALL])[0] if own else []
    symbols = _dynamic_symbols(graph, every) if own else {}
    for name in [*own, *([STATIC_LIB_ALL] if len(own) > 1 else [])]:
        linked = static_lib(graph, [name], opts, dynamic=dynamic, symbols=symbols)
        out.append((STATIC_LIB + name, linked))
    # Binding matters to glibc only, and only to objects not already bound that way; the
    # estimate is not already a binding what-if.
    binds = [bool(o.dso.dynamic and o.dso.dynamic.bind_now) for o in graph.objects]
    if family is LoaderFamily.GLIBC and opts.bind_now is None:
        for how, now in BIND_NOW.items():
            if all(b == now for b in binds):
                continue
            bound = estimate(graph, replace(opts, bind_now=now), memo=memo)
            if bound.total.expected != dynamic.total.expected:
                out.append((how, bound))
    return out
