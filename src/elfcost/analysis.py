"""Questions asked of finished estimates, answered once on the document Structs: how two builds
differ. Text, JSON and HTML only render what these functions return.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

from elfcost import documents as d
from elfcost.model import Cause

# One estimated program of a scan: the path as shown, the path as the loader opens it (a root
# or an archive adds a prefix to the first), and its estimate.
Ranked = tuple[str, str, d.EstimateDoc]


def pairing_key(o: d.ObjectDoc) -> str:
    """How an object of one build finds its counterpart in another: by role for the executable
    and the interpreter, else by soname, else by file name (two roots rarely share paths)."""
    if o.role == "executable":
        return "(executable)"
    if o.role == "interpreter":
        return "(interpreter)"
    return o.soname or os.path.basename(o.path)


def _written(o: d.ObjectDoc | None) -> Counter[Cause]:
    if o is None:
        return Counter()
    return Counter(p.cause for p in o.pages if p.phase != "possible")


def diff(old: d.EstimateDoc, new: d.EstimateDoc, *, instances: int = 1) -> d.DiffDoc:
    """The change from `old` to `new` (positive = more memory), per object and per cause."""
    page = new.page_size
    olds = {pairing_key(o): o for o in old.objects}
    news = {pairing_key(o): o for o in new.objects}
    rows = []
    for key in [*olds, *(k for k in news if k not in olds)]:
        a, b = olds.get(key), news.get(key)
        ca, cb = _written(a), _written(b)
        ea = a.private_dirty.expected if a else 0
        eb = b.private_dirty.expected if b else 0
        rows.append(
            d.DiffObject(
                object=key,
                old_path=a.path if a else None,
                new_path=b.path if b else None,
                old_expected=ea,
                new_expected=eb,
                delta=eb - ea,
                delta_pages=(eb - ea) // page,
                causes={
                    c: cb[c] - ca[c]
                    for c in sorted(set(ca) | set(cb), key=lambda c: c.value)
                    if cb[c] != ca[c]
                },
            )
        )
    po, pn = old.process, new.process
    proc = []
    for name in [*po, *(n for n in pn if n not in po)]:
        a_exp = po[name].expected if name in po else 0
        b_exp = pn[name].expected if name in pn else 0
        proc.append(
            d.DiffProcess(item=name, old_expected=a_exp, new_expected=b_exp, delta=b_exp - a_exp)
        )
    to, tn = old.total.private_dirty, new.total.private_dirty
    so, sn = old.total.shared_clean, new.total.shared_clean
    return d.DiffDoc(
        old=old.binary,
        new=new.binary,
        page_size=page,
        objects=tuple(rows),
        process=tuple(proc),
        total=d.DiffTotal(
            old=to, new=tn, delta_expected=tn.expected - to.expected, shared_clean_delta=sn - so
        ),
        fleet=d.DiffFleet(
            instances=instances,
            old=instances * to.expected + so,
            new=instances * tn.expected + sn,
            delta=instances * (tn.expected - to.expected) + (sn - so),
        ),
    )


def diff_roots(
    pairs: Sequence[tuple[str, d.EstimateDoc | None, d.EstimateDoc | None]],
    *,
    instances: int = 1,
) -> d.DiffRootsDoc:
    """Two trees: one row per program path found in either, the largest change first."""
    rows = []
    for path, a, b in pairs:
        ea = a.total.private_dirty.expected if a else 0
        eb = b.total.private_dirty.expected if b else 0
        rows.append(d.DiffProgram(path=path, old_expected=ea, new_expected=eb, delta=eb - ea))
    rows.sort(key=lambda r: -abs(r.delta))
    delta = sum(r.delta for r in rows)
    return d.DiffRootsDoc(
        programs=tuple(rows), total_delta=delta, fleet_delta=delta * instances, instances=instances
    )


# -- ranking -----------------------------------------------------------------------------------


def rank(results: Iterable[Ranked], top: int | None = 10) -> d.Ranking:
    """The `top` most expensive programs, by expected private dirty of one instance, and the
    `top` libraries by expected private dirty summed over the programs that load them, each
    with those programs. `results` are (path as shown, loader path, estimate); read once,
    keeping only numbers (documents can be large).
    None: all of them. The interpreter counts as a library: every dynamic program pays for it.
    """
    programs: list[d.ProgramCost] = []
    cost: dict[str, int] = {}
    users: dict[str, list[str]] = {}
    sonames: dict[str, str | None] = {}
    for path, loader_path, doc in results:
        total = doc.total.private_dirty
        programs.append(
            d.ProgramCost(
                path=path, private_dirty=total.expected, high=total.high, objects=len(doc.objects)
            )
        )
        # Libraries are named like the program: in a root or an archive, with its prefix.
        prefix = path[: -len(loader_path)] if path.endswith(loader_path) else ""
        for o in doc.objects[1:]:  # the first is the program itself
            lib = prefix + o.path
            cost[lib] = cost.get(lib, 0) + o.private_dirty.expected
            users.setdefault(lib, []).append(path)
            sonames[lib] = o.soname
    programs.sort(key=lambda p: (-p.private_dirty, p.path))
    libraries = sorted(
        (
            d.LibraryCost(
                path=lib,
                soname=sonames[lib],
                private_dirty=cost[lib],
                programs=tuple(sorted(users[lib])),
            )
            for lib in cost
        ),
        key=lambda lib: (-lib.private_dirty, lib.path),
    )
    n = len(programs) + len(libraries) if top is None else top
    return d.Ranking(programs=tuple(programs[:n]), libraries=tuple(libraries[:n]))
