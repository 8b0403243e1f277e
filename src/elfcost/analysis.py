"""Questions asked of finished estimates, answered once on the document Structs: where a
program's memory goes, what N instances cost, what a what-if saves, how two builds differ, and
which programs and libraries of a scan cost most. Text, JSON and HTML only render what these
functions return.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, cast

import msgspec

from elfcost import documents as d
from elfcost.cost.profiles import LIBC_SONAMES, calibrated
from elfcost.model import Cause, Range, Role

if TYPE_CHECKING:  # a machine's processes, read by runtime/machine.py (only `measure --all`)
    from elfcost.runtime.machine import MachineRead, ProcessSample
    from elfcost.runtime.records import Usage

# One estimated program of a scan: the path as shown, the path as the loader opens it (a root
# or an archive adds a prefix to the first), and its estimate.
Ranked = tuple[str, str, d.EstimateDoc]


# -- one program -------------------------------------------------------------------------------


def not_found(
    needed: Iterable[str], interpreter: str | None, roles: Iterable[str]
) -> tuple[str, ...]:
    """What the loader would not find for a program: each DT_NEEDED name not found once (a
    library two objects need is one missing library), then its interpreter (`interpreter`, the
    program's PT_INTERP) when no object has the role "interpreter"."""
    names = list(needed)
    if interpreter is not None and "interpreter" not in roles:
        names.append(interpreter)
    return tuple(dict.fromkeys(names))


def missing_of(doc: d.EstimateDoc) -> tuple[str, ...]:
    """`not_found` for an estimate document."""
    return not_found(
        (m.needed for m in doc.missing), doc.loader.path, {o.role for o in doc.objects}
    )


def uncalibrated(doc: d.EstimateDoc) -> bool:
    """Whether the estimate's start-up figures come from another machine's profile (cost/
    profiles.py select's fallback): its calibrated pages are approximate."""
    return doc.profile != "none" and not calibrated(doc.profile, doc.machine)


# The words every report uses for the parts of a Split, by field name, in order.
SPLIT_LABELS: dict[str, str] = {
    "program": "the program and its own libraries",
    "libc": "libc and the dynamic loader",
    "loader": "loader heap and TLS",
    "process": "stack and heap",
}

# Process items that are there for the linkage, per process and in no file: the loader's own
# allocations (link_maps, search paths) and the thread control block with the static TLS.
_LOADER_ITEMS = frozenset({"loader_heap", "tls"})


def is_linkage(role: Role, soname: str | None) -> bool:
    """Whether an object belongs to libc and the dynamic loader rather than to the program:
    the objects a static link or the other libc replaces (cost/whatif.py). An executable is
    always the program, whatever soname it carries."""
    return role == "interpreter" or (role == "library" and (soname or "") in LIBC_SONAMES)


def where_it_goes(doc: d.EstimateDoc) -> d.Split:
    """The s6-supervise question: how much of the expected private dirty memory is the program
    and its own libraries, how much libc and the loader, the loader's heap and TLS, and the
    stack and heap. Every object and process item is in exactly one part."""
    program = [o for o in doc.objects if not is_linkage(o.role, o.soname)]
    libc = [o for o in doc.objects if is_linkage(o.role, o.soname)]
    loader = {n: p for n, p in doc.process.items() if n in _LOADER_ITEMS}
    process = {n: p for n, p in doc.process.items() if n not in _LOADER_ITEMS}

    def objects(these: Sequence[d.ObjectDoc]) -> d.SplitPart:
        return d.SplitPart(
            expected=sum(o.private_dirty.expected for o in these),
            of=tuple(os.path.basename(o.path) for o in these),
        )

    def items(ps: dict[str, d.ProcessDoc]) -> d.SplitPart:
        return d.SplitPart(
            expected=sum(p.expected for p in ps.values()), of=tuple(f"[{n}]" for n in ps)
        )

    return d.Split(
        program=objects(program), libc=objects(libc), loader=items(loader), process=items(process)
    )


def fleet(private_dirty: Range, shared_clean: int, instances: int) -> d.Fleet:
    """`instances` processes of one program: private dirty memory once per process, the
    file-backed shared clean pages once in all (the page cache holds one copy of a file page
    for every process that maps it)."""
    return d.Fleet(
        instances=instances,
        shared_clean=shared_clean,
        private_dirty=private_dirty.scaled(instances),
        total_expected=private_dirty.expected * instances + shared_clean,
    )


class ObjectSaving(msgspec.Struct, frozen=True, kw_only=True):
    """One object in both estimates of a what-if, paired as `diff` pairs them."""

    object: str  # "(executable)", "(interpreter)", else the soname or file name
    as_built: int  # expected private dirty bytes
    whatif: int
    saved: int  # as_built - whatif: negative when the what-if costs more


class Savings(msgspec.Struct, frozen=True, kw_only=True):
    """What building the program another way saves, by the what-if's estimate; negative
    figures are a cost."""

    instances: int
    as_built: int  # expected private dirty bytes, one instance
    whatif: int
    per_instance: int  # as_built - whatif
    fleet: int  # the difference for `instances`, shared clean counted once
    objects: tuple[ObjectSaving, ...]  # in the as-built load order


def savings(as_built: d.EstimateDoc, whatif: d.EstimateDoc, instances: int) -> Savings:
    """The what-if `whatif` (`--assume static`, `musl`, ...) against the program `as_built`:
    per instance, for `instances` of them, and per object where both estimates have it."""
    a, b = as_built.total, whatif.total
    theirs = {pairing_key(o): o for o in whatif.objects}
    objects = []
    for o in as_built.objects:
        key = pairing_key(o)
        if key in theirs:
            before, after = o.private_dirty.expected, theirs[key].private_dirty.expected
            objects.append(
                ObjectSaving(object=key, as_built=before, whatif=after, saved=before - after)
            )
    return Savings(
        instances=instances,
        as_built=a.private_dirty.expected,
        whatif=b.private_dirty.expected,
        per_instance=a.private_dirty.expected - b.private_dirty.expected,
        fleet=fleet(a.private_dirty, a.shared_clean, instances).total_expected
        - fleet(b.private_dirty, b.shared_clean, instances).total_expected,
        objects=tuple(objects),
    )


# -- two builds --------------------------------------------------------------------------------


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
    return d.DiffDoc(
        old=old.binary,
        new=new.binary,
        page_size=page,
        objects=tuple(rows),
        process=tuple(proc),
        total=d.DiffTotal(
            old=to,
            new=tn,
            delta_expected=tn.expected - to.expected,
            shared_clean_delta=new.total.shared_clean - old.total.shared_clean,
        ),
        fleet=_fleet_change(old, new, instances),
    )


def _fleet_change(old: d.EstimateDoc, new: d.EstimateDoc, instances: int) -> d.DiffFleet:
    a = fleet(old.total.private_dirty, old.total.shared_clean, instances).total_expected
    b = fleet(new.total.private_dirty, new.total.shared_clean, instances).total_expected
    return d.DiffFleet(instances=instances, old=a, new=b, delta=b - a)


def diff_roots(
    pairs: Sequence[tuple[str, d.EstimateDoc | None, d.EstimateDoc | None]],
    *,
    instances: int = 1,
) -> d.DiffRootsDoc:
    """Two trees: one row per program path found in either, the largest change first."""
    rows = [
        _change(
            path,
            a.total.private_dirty.expected if a else 0,
            b.total.private_dirty.expected if b else 0,
        )
        for path, a, b in pairs
    ]
    rows.sort(key=lambda r: -abs(r.delta))
    delta = sum(r.delta for r in rows)
    return d.DiffRootsDoc(
        programs=tuple(rows), total_delta=delta, fleet_delta=delta * instances, instances=instances
    )


def _change(path: str, old: int, new: int) -> d.DiffProgram:
    """One program's expected private dirty bytes, before and after (0: not there)."""
    return d.DiffProgram(path=path, old_expected=old, new_expected=new, delta=new - old)


# One program of an archive: (package, loader path, expected private dirty of one instance).
ArchiveProgram = tuple[str, str, int]


def diff_archives(
    old: d.ArchiveRoot,
    new: d.ArchiveRoot,
    old_programs: Iterable[ArchiveProgram],
    new_programs: Iterable[ArchiveProgram],
    *,
    instances: int = 1,
) -> d.DiffArchivesDoc:
    """Two archives package by package (by package name): each package added, removed, or in
    both, with its programs (by loader path) added, removed or changed in expected private
    dirty. A package in both with the same version and no program changed is only counted."""
    versions = (
        {p.name: p.version for p in old.packages},
        {p.name: p.version for p in new.packages},
    )
    costs: tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]] = ({}, {})
    for side, programs in zip(costs, (old_programs, new_programs), strict=True):
        for package, loader_path, expected in programs:
            side.setdefault(package, {})[loader_path] = expected
    rows: list[d.DiffPackage] = []
    unchanged = 0
    for name in sorted({*versions[0], *versions[1]}):
        a, b = costs[0].get(name, {}), costs[1].get(name, {})
        progs = [
            _change(path, a.get(path, 0), b.get(path, 0))
            for path in sorted({*a, *b})
            if a.get(path) != b.get(path)  # added, removed or changed
        ]
        va, vb = versions[0].get(name), versions[1].get(name)
        status: Literal["added", "removed", "changed", "same"] = (
            "added"
            if va is None
            else "removed"
            if vb is None
            else "changed"
            if va != vb
            else "same"
        )
        if status == "same" and not progs:
            unchanged += 1
            continue
        progs.sort(key=lambda r: (-abs(r.delta), r.path))
        oa, ob = sum(a.values()), sum(b.values())
        rows.append(
            d.DiffPackage(
                name=name,
                old_version=va,
                new_version=vb,
                status=status,
                old_expected=oa,
                new_expected=ob,
                delta=ob - oa,
                programs=tuple(progs),
            )
        )
    rows.sort(key=lambda r: (-abs(r.delta), r.name))
    delta = sum(r.delta for r in rows)
    return d.DiffArchivesDoc(
        old=old.path,
        new=new.path,
        packages=tuple(rows),
        unchanged=unchanged,
        total_delta=delta,
        fleet_delta=delta * instances,
        instances=instances,
    )


# -- ranking -----------------------------------------------------------------------------------


def rank(
    results: Iterable[Ranked],
    top: int | None = 10,
    *,
    weights: Mapping[str, int] | None = None,
) -> d.Ranking:
    """The `top` most expensive programs, by expected private dirty of one instance, each with
    where it goes, and the `top` libraries by expected private dirty summed over the programs
    that load them, each with those programs. `results` are (path as shown, loader path,
    estimate); read once, keeping only numbers (documents can be large).
    None: all of them. The interpreter counts as a library: every dynamic program pays for it.

    `weights` (read_weights) gives a program's instances, by its path as shown or its loader
    path; a program it does not name runs once. With weights, programs are ranked by their
    cost times their instances and each library's sum weighs each program by its instances.
    The what-ifs' savings (the estimates' `savings`, scan --remedies) are summed over the
    programs the same way.
    """
    programs: list[d.ProgramCost] = []
    cost: dict[str, int] = {}
    most: dict[str, int] = {}
    users: dict[str, list[str]] = {}
    kind: dict[str, tuple[str | None, Role]] = {}  # soname and role
    saved: dict[str, list[int]] = {}  # --assume value -> [programs, bytes saved, instances]
    for path, loader_path, doc in results:
        n = 1
        if weights:
            n = weights.get(path, weights.get(loader_path, 1))
        for sv in doc.savings or ():
            row = saved.setdefault(sv.assume, [0, 0, 0])
            row[0] += 1
            row[1] += sv.per_instance * n
            row[2] += n
        total = doc.total.private_dirty
        programs.append(
            d.ProgramCost(
                path=path,
                private_dirty=total.expected,
                high=total.high,
                objects=len(doc.objects),
                at_entry=total.at_entry,
                low=total.low,
                shared_clean=doc.total.shared_clean,
                split=where_it_goes(doc),
                missing=missing_of(doc),
                uncalibrated=uncalibrated(doc),
                instances=n,
            )
        )
        # Libraries are named like the program: in a root or an archive, with its prefix.
        prefix = path[: -len(loader_path)] if path.endswith(loader_path) else ""
        for o in doc.objects[1:]:  # the first is the program itself
            lib = prefix + o.path
            expected = o.private_dirty.expected
            cost[lib] = cost.get(lib, 0) + expected * n
            most[lib] = max(most.get(lib, 0), expected)
            users.setdefault(lib, []).append(path)
            kind[lib] = (o.soname, o.role)
    programs.sort(key=lambda p: (-p.private_dirty * p.instances, p.path))
    libraries = sorted(
        (
            d.LibraryCost(
                path=lib,
                soname=kind[lib][0],
                private_dirty=cost[lib],
                programs=tuple(sorted(users[lib])),
                role=kind[lib][1],
                per_process=most[lib],
            )
            for lib in cost
        ),
        key=lambda lib: (-lib.private_dirty, lib.path),
    )
    whatifs = sorted(
        (
            d.WhatIfTotal(assume=a, programs=p, saved=b, instances=i)
            for a, (p, b, i) in saved.items()
        ),
        key=lambda w: (-w.saved, w.assume),
    )
    n = len(programs) + len(libraries) if top is None else top
    return d.Ranking(
        programs=tuple(programs[:n]), libraries=tuple(libraries[:n]), savings=tuple(whatifs)
    )


MAX_WEIGHTS_BYTES = 64 << 20
# Instances of one program in a weights file, at most: more processes than any fleet runs, and
# sums of bytes that stay within JSON's 64-bit integers.
MAX_INSTANCES = 10**9


def read_weights(path: str) -> dict[str, int]:
    """A weights file: one program a line, `INSTANCES PATH` (the count first, as `uniq -c`
    writes it; PATH as the scan shows it, or its loader path); blank lines and lines starting
    with '#' ignored. Raises InputError naming the line that is wrong."""
    from elfcost.errors import InputError
    from elfcost.files import read_bounded

    text = read_bounded(path, "weights file", MAX_WEIGHTS_BYTES).decode("utf-8", "replace")
    out: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        count, _, program = line.partition(" ")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not (count.isascii() and count.isdigit()) or not program.strip():
            raise InputError(path, f"line {number}", "expected INSTANCES PATH")
        if int(count) > MAX_INSTANCES:
            why = f"{int(count):,} instances, more than the {MAX_INSTANCES:,} allowed"
            raise InputError(path, f"line {number}", why)
        out[program.strip()] = int(count)
    return out


# -- the machine: every process, `elfcost measure --all` ---------------------------------------

# The causes the cost model gives pages for because the program is linked dynamically against a
# shared libc: the relocations (textrel to irelative), ld.so's own data, libc's start-up writes;
# with the process items the loader's heap and the TLS block (_LOADER_ITEMS). The bss tails,
# constructors and possible writes are the program's own data, whatever the linkage.
RELOCATION_CAUSES = frozenset(
    {
        Cause.TEXTREL,
        Cause.COPY_RELOC,
        Cause.RELOCATION,
        Cause.DYNAMIC,
        Cause.DEBUG,
        Cause.GOT_HEADER,
        Cause.IRELATIVE,
    }
)
LINKAGE_CAUSES = RELOCATION_CAUSES | {Cause.LOADER_DATA, Cause.LIBC_STARTUP}


def linkage_of(doc: d.EstimateDoc) -> dict[str, int]:
    """The expected private dirty bytes of one process that the model attributes to its
    linkage, by cause name and process item (tls, loader_heap); only what it has."""
    out: Counter[str] = Counter()
    for o in doc.objects:
        for p in o.pages:
            if p.phase != "possible" and p.cause in LINKAGE_CAUSES:
                out[p.cause.value] += doc.page_size
    for name in sorted(_LOADER_ITEMS):
        if name in doc.process and doc.process[name].expected:
            out[name] += doc.process[name].expected
    return dict(out)


def linkage_files(doc: d.EstimateDoc) -> frozenset[str]:
    """The file names of the objects a relink replaces (libc and the dynamic loader): how a
    measured object, named by the path the kernel shows, is known as one."""
    return frozenset(os.path.basename(o.path) for o in doc.objects if is_linkage(o.role, o.soname))


def machine(
    read: MachineRead,
    as_built: Mapping[str, d.EstimateDoc],
    not_estimated: Mapping[str, str],
    *,
    relinked: Mapping[str, d.EstimateDoc] | None = None,
    assume: d.Assume | None = None,
) -> d.MachineDoc:
    """Every process of the machine grouped per program (ps_mem) and per object across
    processes (librank), with the linkage overhead the model gives every estimated program's
    processes and, with `relinked` (`assume`'s what-if of each program), what relinking would
    save and spend.

    Each process counts its smaps_rollup (ps_mem's figures): the totals are their sums. The
    objects' rows come from the smaps lines (the kernel truncates Pss to a kB per line, so
    their Pss can fall short of the rollup's by under 1 KiB a line).
    """
    by_program: dict[str, list[ProcessSample]] = {}
    for s in read.samples:
        by_program.setdefault(s.program, []).append(s)
    programs = []
    link_total: Counter[str] = Counter()
    link_processes = link_measured = 0
    for name, samples in by_program.items():
        est = as_built.get(name)
        link = linkage_of(est) if est is not None else None
        if est is not None and link is not None:
            for cause, n in link.items():
                link_total[cause] += n * len(samples)
            link_processes += len(samples)
            files = linkage_files(est)
            link_measured += sum(
                u.private_dirty
                for s in samples
                for path, u in s.objects
                if os.path.basename(path) in files
            )
        programs.append(
            _program_row(name, samples, None if link is None else sum(link.values()) * len(samples))
        )
    programs.sort(key=lambda p: (-p.pss, p.program))
    total = _sum(s.usage for s in read.samples)
    return d.MachineDoc(
        page_size=_page_size(read.page_size),
        total=d.MachineTotal(
            processes=len(read.samples),
            uss=total.uss,
            pss=total.pss,
            rss=total.rss,
            shared=total.pss - total.uss,
            private_dirty=total.private_dirty,
            swap=total.swap,
        ),
        programs=tuple(programs),
        libraries=_libraries(read.samples),
        linkage=d.MachineLinkage(
            expected=sum(link_total.values()),
            by_cause=dict(sorted(link_total.items(), key=lambda kv: -kv[1])),
            processes=link_processes,
            programs=sum(1 for p in by_program if p in as_built),
            measured=link_measured,
            not_estimated={
                p: not_estimated.get(p, "not estimated") for p in by_program if p not in as_built
            },
        ),
        relink=None
        if relinked is None or assume is None
        else _relink(by_program, as_built, relinked, assume),
        skipped=d.MachineSkipped(
            vanished=read.vanished, unreadable=read.unreadable, without_memory=read.without_memory
        ),
        processes=tuple(
            d.MachineProcess(
                pid=s.pid,
                program=s.program,
                uss=s.usage.uss,
                pss=s.usage.pss,
                rss=s.usage.rss,
                private_dirty=s.usage.private_dirty,
                swap=s.usage.swap,
            )
            for s in read.samples
        ),
    )


def _sum(usages: Iterable[Usage]) -> Usage:
    # Imported here: runtime/records.py loads numpy, which no other report needs.
    from elfcost.runtime.records import sum_usage

    return sum_usage(usages)


def _page_size(n: int) -> d.PageSize:
    if n not in (4096, 16384, 65536):
        raise ValueError(f"page size {n} is not one a document records")
    return cast(d.PageSize, n)


def _program_row(
    name: str, samples: Sequence[ProcessSample], linkage: int | None
) -> d.MachineProgram:
    u = _sum(s.usage for s in samples)
    return d.MachineProgram(
        program=name,
        pids=tuple(s.pid for s in samples),
        uss=u.uss,
        pss=u.pss,
        rss=u.rss,
        shared=u.pss - u.uss,
        private_dirty=u.private_dirty,
        swap=u.swap,
        linkage=linkage,
    )


def _libraries(samples: Sequence[ProcessSample]) -> tuple[d.MachineLibrary, ...]:
    """librank: each object summed over the processes mapping it, the largest Pss first."""
    usage: dict[str, list[Usage]] = {}
    programs: dict[str, set[str]] = {}
    for s in samples:
        for path, u in s.objects:
            usage.setdefault(path, []).append(u)
            programs.setdefault(path, set()).add(s.program)
    rows = []
    for path, us in usage.items():
        u = _sum(us)
        rows.append(
            d.MachineLibrary(
                path=path,
                processes=len(us),
                programs=len(programs[path]),
                uss=u.uss,
                pss=u.pss,
                rss=u.rss,
                private_dirty=u.private_dirty,
                swap=u.swap,
            )
        )
    rows.sort(key=lambda r: (-r.pss, r.path))
    return tuple(rows)


def _relink(
    by_program: Mapping[str, Sequence[ProcessSample]],
    as_built: Mapping[str, d.EstimateDoc],
    relinked: Mapping[str, d.EstimateDoc],
    assume: d.Assume,
) -> d.MachineRelink:
    """What relinking each estimated program `assume`'s way would save and spend.

    Saved: the model's private dirty bytes, as built less relinked, for each process. Spent
    (static links only: a dynamic one still shares its libc): the text of libc and the loader
    that a program's processes have resident (their clean pages, the most of any one process)
    becomes that program's own copy, shared by its instances but by no other program, less the
    part of it (Pss) they hold now. The static link's own layout (only the libc functions it
    uses, packed together) is not modelled: it can only make the copy smaller.
    """
    from elfcost.cost.whatif import RELINKS

    static = RELINKS[assume][1]
    rows = []
    for name, samples in by_program.items():
        a, b = as_built.get(name), relinked.get(name)
        if a is None or b is None:
            continue
        n = len(samples)
        before, after = a.total.private_dirty.expected, b.total.private_dirty.expected
        text = 0
        if static and a.loader.path is not None:
            files = linkage_files(a)
            mine = [
                [u for path, u in s.objects if os.path.basename(path) in files] for s in samples
            ]
            own = max(sum(u.shared_clean + u.private_clean for u in us) for us in mine)
            share = sum(u.pss - u.pss_dirty for us in mine for u in us)
            text = own - share
        rows.append(
            d.RelinkProgram(
                program=name,
                processes=n,
                as_built=before,
                whatif=after,
                saved=(before - after) * n,
                text=text,
            )
        )
    rows.sort(key=lambda r: (-(r.saved - r.text), r.program))
    saved, text = sum(r.saved for r in rows), sum(r.text for r in rows)
    return d.MachineRelink(
        assume=assume, saved=saved, text=text, net=saved - text, programs=tuple(rows)
    )
