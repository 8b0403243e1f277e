"""What-ifs that change how the program is linked, each labelled as an estimate:
`--assume static` (below), `--assume musl|glibc` (`libc_whatif`), and the two together
(`--assume musl-static|glibc-static`, `relink_whatif`: the other libc first, then static).

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

from collections.abc import Mapping, Sequence

from msgspec.structs import replace

from elfcost.cost.aftermain import Linked
from elfcost.cost.estimate import Options, process_items
from elfcost.cost.profiles import LIBC_SONAMES, select
from elfcost.model import (
    Cause,
    Estimate,
    LoaderFamily,
    ObjectEstimate,
    PageCost,
    Range,
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
