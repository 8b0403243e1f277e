"""Model → text for a terminal: dependency trees, estimate tables, per-page listings."""

from __future__ import annotations

import os
from collections import Counter

from elfcost.model import Cause, Estimate, FoundVia, ObjectEstimate, Resolution
from elfcost.report.table import Table, paint, terminal
from elfcost.resolve.graph import DependencyGraph

# Short column names for the causes, in precedence order.
CAUSE_LABEL = {
    Cause.TEXTREL: "textrel",
    Cause.COPY_RELOC: "copy",
    Cause.RELOCATION: "reloc",
    Cause.DYNAMIC: ".dynamic",
    Cause.DEBUG: "debug",
    Cause.GOT_HEADER: "got",
    Cause.IRELATIVE: "irel",
    Cause.BSS_TAIL: "bss-tail",
    Cause.GAP_DONATION: "gap",
    Cause.LOADER_DATA: "ld.so",
    Cause.LIBC_STARTUP: "libc",
    Cause.CONSTRUCTOR: "ctor",
    Cause.POSSIBLE_WRITE: "possible",
}


def render(*parts: Table | str | tuple[str, str]) -> str:
    """Tables and lines (a line may come with a style) as one text, for standard output:
    coloured and fitted to the width on a terminal, plain and whole in a pipe."""
    colour, width = terminal()
    out = []
    for p in parts:
        if isinstance(p, Table):
            out.append(p.render(width=width, colour=colour))
        elif isinstance(p, tuple):
            out.append(paint(p[0], p[1], colour) + "\n")
        else:
            out.append(p + "\n")
    return "".join(out)


def kib(n: int) -> str:
    """Bytes in KiB, thousands grouped ("1,048,584 KiB"): every figure in the same unit, so
    rows compare at a glance; a tenth when the bytes are not whole KiB."""
    if n % 1024 == 0:
        return f"{n // 1024:,} KiB"
    return f"{n / 1024:,.1f} KiB"


# -- deps --------------------------------------------------------------------------------------


def _how(r: Resolution) -> str:
    if r.via is None:
        return "not found"
    if r.via is FoundVia.RPATH and r.via_object:
        return f"rpath of {r.via_object}"
    if r.via is FoundVia.RUNPATH:
        return "runpath"
    return str(r.via.value)


def deps_text(graph: DependencyGraph) -> str:
    """The dependency tree, libtree style: each library with how it was found; for a missing
    one, every path considered in order. Walked without recursion: a chain can be 10,000 deep.
    """
    root = graph.root
    interp = f", {graph.interp}" if graph.interp else ""
    lines = [f"{root.dso.path} ({root.role}, {graph.family.value}{interp})"]
    # Show how each object was first found, even where the tree reaches it by another edge.
    first: dict[str, Resolution] = {}
    children: dict[str, list[Resolution]] = {}
    for r in graph.resolutions:
        children.setdefault(r.parent, []).append(r)
        if r.found is not None and r.via is not FoundVia.LOADED:
            first.setdefault(r.found, r)
    roles = {o.dso.path: o.role for o in graph.objects}
    seen: set[str] = {root.dso.path}
    # Each stack entry: the children still to print at one level, and that level's prefix.
    stack: list[tuple[list[Resolution], str]] = [(list(children.get(root.dso.path, ())), "")]
    while stack:
        todo, prefix = stack[-1]
        if not todo:
            stack.pop()
            continue
        r = todo.pop(0)
        last = not todo
        branch, inner = ("└── ", "    ") if last else ("├── ", "│   ")
        if r.found is None:
            lines.append(f"{prefix}{branch}{r.needed} not found")
            if r.tried:
                sub = prefix + inner
                lines.append(f"{sub}paths considered in this order:")
                for a in r.tried:
                    who = f" of {a.origin}" if a.origin else ""
                    lines.append(f"{sub}  {a.path or '-'}  [{a.via.value}{who}] {a.outcome}")
            continue
        how = _how(first.get(r.found, r))
        if roles.get(r.found) == "interpreter" and r.found not in first:
            how = "interpreter"
        label = f"{r.needed} => {r.found} [{how}]"
        if r.found in seen:
            lines.append(f"{prefix}{branch}{label} (already loaded)")
            continue
        seen.add(r.found)
        lines.append(f"{prefix}{branch}{label}")
        stack.append((list(children.get(r.found, ())), prefix + inner))
    lines.extend(f"warning: {w}" for w in graph.warnings)
    return "\n".join(lines) + "\n"


# -- estimate ----------------------------------------------------------------------------------


def _causes(o: ObjectEstimate) -> str:
    counts = Counter(p.cause for p in o.pages if p.phase != "possible")
    return ", ".join(
        f"{CAUSE_LABEL[c]} {n}"
        for c, n in sorted(counts.items(), key=lambda x: list(Cause).index(x[0]))
    )


def estimate_text(est: Estimate, *, instances: int = 1) -> str:
    P = est.page_size
    title = (
        f"{est.binary}: {est.loader_family.value} "
        f"{'(' + est.loader_path + ')' if est.loader_path else 'static'}, "
        f"{P // 1024} KiB pages, profile {est.profile}"
    )
    t = Table(title)
    t.add_column(
        "object",
        overflow="fold",
        min_width=min(48, max((len(o.path) for o in est.objects), default=10)),
    )
    t.add_column("RW pages", justify="right")
    t.add_column("dirty pages by cause", overflow="fold", max_width=40)
    for c in ("at entry", "low", "expected", "high"):
        t.add_column(c, justify="right")
    for o in est.objects:
        name = o.path + ("" if o.role == "library" else f" ({o.role})")
        t.add_row(
            name,
            str(o.writable_pages),
            _causes(o),
            kib(o.private_dirty.at_entry),
            kib(o.private_dirty.low),
            kib(o.private_dirty.expected),
            kib(o.private_dirty.high),
        )
    t.add_section()
    for p in est.process:
        r = p.private_dirty
        t.add_row(
            f"[{p.name}]",
            "",
            p.detail,
            kib(r.at_entry),
            kib(r.low),
            kib(r.expected),
            kib(r.high),
        )
    t.add_section()
    tot = est.total
    t.add_row(
        "total private dirty",
        "",
        "",
        kib(tot.at_entry),
        kib(tot.low),
        kib(tot.expected),
        kib(tot.high),
        style="bold",
    )
    lines: list[Table | str | tuple[str, str]] = [t, _where_it_goes(est)]
    if instances > 1:
        lines.append(
            f"{instances} instances: {kib(tot.expected * instances)} private dirty expected "
            f"(range {kib(tot.low * instances)} .. {kib(tot.high * instances)}) "
            f"+ {kib(est.shared_clean)} shared clean once (file-backed text/rodata of every "
            f"object, if fully resident) = {kib(tot.expected * instances + est.shared_clean)}"
        )
    # A what-if says so first: these figures are for a program that was not built this way.
    lines.extend(a for a in est.assumptions if a.startswith("what-if"))
    for m in est.missing:
        lines.append((f"missing: {m.needed} (needed by {m.parent})", "red"))
    for w in est.warnings:
        lines.append(f"warning: {w}")
    for o in est.objects:
        for n in o.notes:
            lines.append(f"note: {o.path}: {n}")
    return render(*lines)


def _where_it_goes(est: Estimate) -> str:
    """The s6-supervise question in one line: how much is the program, how much the linkage."""
    from elfcost.cost.profiles import LIBC_SONAMES as libc_names

    program = sum(
        o.private_dirty.expected
        for o in est.objects
        if o.role == "executable" or (o.role == "library" and (o.soname or "") not in libc_names)
    )
    runtime = sum(
        o.private_dirty.expected
        for o in est.objects
        if o.role == "interpreter" or (o.soname or "") in libc_names
    )
    items = {p.name: p.private_dirty.expected for p in est.process}
    loader = items.get("loader_heap", 0) + items.get("tls", 0)
    rest = sum(items.values()) - loader
    total = est.total.expected
    return (
        f"where {kib(total)} goes: the program and its own libraries {kib(program)}; "
        f"libc and the dynamic loader {kib(runtime)}; loader heap and TLS {kib(loader)}; "
        f"stack and heap {kib(rest)}"
    )


def explain_text(est: Estimate, *, object_name: str | None = None) -> str:
    lines: list[str] = []
    P = est.page_size
    for o in est.objects:
        if object_name and object_name not in (o.path, o.soname, os.path.basename(o.path)):
            continue
        lines.append(f"{o.path} ({o.role}): {_causes(o) or 'no dirty pages'}")
        lines.append("  " + page_map(o, P))
        for p in o.pages:
            if p.phase == "possible":
                continue
            addr = f"0x{p.vaddr:08x}" if p.vaddr is not None else "?" * 10
            sure = "certain" if p.certain else "calibrated"
            secs = ",".join(p.sections) or "-"
            lines.append(
                f"  {addr}  {CAUSE_LABEL[p.cause]:<9} {p.phase:<5} {sure:<10} {secs:<32} {p.detail}"
            )
        possible = sum(1 for p in o.pages if p.phase == "possible") + o.possible_unlisted
        if possible:
            lines.append(f"  + {possible} more writable pages the program may write (high bound)")
    if not lines:
        return f"no object named {object_name}\n"
    legend = "page map: " + " ".join(f"{_MAP_CHAR[c]}={CAUSE_LABEL[c]}" for c in Cause)
    out = "\n".join([legend, *lines]) + "\n"
    if terminal()[0]:
        # On a terminal each page character is coloured by its cause (legend and maps alike).
        colored = []
        for line in out.splitlines():
            if line.startswith("  ") and set(line.strip()) <= _MAP_SET:
                line = "  " + "".join(_paint(ch) for ch in line.strip())
            elif line.startswith("page map: "):
                line = "page map: " + " ".join(
                    f"{_paint(_MAP_CHAR[c])}={CAUSE_LABEL[c]}" for c in Cause
                )
            colored.append(line)
        return "\n".join(colored) + "\n"
    return out


_COLOURS = {
    "T": "bold red",
    "C": "magenta",
    "R": "blue",
    "D": "cyan",
    "d": "cyan",
    "G": "cyan",
    "I": "bright_blue",
    "B": "yellow",
    "g": "yellow",
    "L": "green",
    "S": "bright_magenta",
    "c": "bright_red",
    ".": "bright_black",
    "?": "white",
}


def _paint(ch: str) -> str:
    return paint(ch, _COLOURS.get(ch), True)


_MAP_CHAR = {
    Cause.TEXTREL: "T",
    Cause.COPY_RELOC: "C",
    Cause.RELOCATION: "R",
    Cause.DYNAMIC: "D",
    Cause.DEBUG: "d",
    Cause.GOT_HEADER: "G",
    Cause.IRELATIVE: "I",
    Cause.BSS_TAIL: "B",
    Cause.GAP_DONATION: "g",
    Cause.LOADER_DATA: "L",
    Cause.LIBC_STARTUP: "S",
    Cause.CONSTRUCTOR: "c",
    Cause.POSSIBLE_WRITE: ".",
}


_MAP_SET = frozenset("TCRDdGIBgLSc.? ")


def page_map(o: ObjectEstimate, P: int) -> str:
    """One character per writable page, in address order."""
    located = sorted((p for p in o.pages if p.vaddr is not None), key=lambda p: p.vaddr or 0)
    out = []
    prev = None
    for p in located:
        assert p.vaddr is not None
        if prev is not None and p.vaddr - prev > P:
            out.append(" ")
        out.append(_MAP_CHAR[p.cause])
        prev = p.vaddr
    out.extend("?" for p in o.pages if p.vaddr is None)
    return "".join(out)


# -- measure / validate ------------------------------------------------------------------------


def measurement_text(m: object) -> str:
    """A measured process: one row per object, one per process bucket, the total."""
    from elfcost.runtime.records import Measurement, Usage

    assert isinstance(m, Measurement)
    t = Table(f"pid {m.pid}, stopped at {m.stop}, {m.page_size // 1024} KiB pages")
    t.add_column("object / bucket", overflow="fold")
    for c in (
        "private dirty",
        "private clean",
        "shared clean",
        "rss",
        "pss",
        "swap",
        "written pages",
    ):
        t.add_column(c, justify="right")

    def row(name: str, u: Usage, written: int | str) -> None:
        t.add_row(
            name,
            kib(u.private_dirty),
            kib(u.private_clean),
            kib(u.shared_clean),
            kib(u.rss),
            kib(u.pss),
            kib(u.swap),
            str(written),
        )

    for o in m.objects:
        row(o.path, o.usage, len(o.written_pages) if m.has_pagemap else "-")
    t.add_section()
    for b in m.buckets:
        row(f"[{b.name}]", b.usage, len(b.written_pages) if m.has_pagemap else "-")
    t.add_section()
    row("total", m.total, "")
    parts: list[Table | str | tuple[str, str]] = [t]
    parts.extend(f"warning: {w}" for w in m.warnings)
    return render(*parts)


def comparison_text(c: object) -> str:
    from elfcost.runtime.compare import Comparison

    assert isinstance(c, Comparison)
    P = c.page_size
    t = Table(f"{c.binary}: predicted vs measured at {c.stop}")
    for col in (
        "object",
        "predicted pages",
        "measured pages",
        "predicted but clean",
        "dirty but not predicted",
    ):
        t.add_column(
            col, "left" if col == "object" else "right", "fold" if col == "object" else "keep"
        )
    for o in c.objects:
        t.add_row(
            o.path,
            str(o.predicted_pages),
            str(o.measured_pages),
            str(len(o.predicted_clean)),
            str(len(o.unpredicted_dirty)),
        )
    lines: list[Table | str | tuple[str, str]] = [t]
    for o in c.objects:
        for p in o.predicted_clean:
            lines.append(
                f"  {o.path}: 0x{p.vaddr:x} {p.why}"
                f"{' (certain)' if p.certain else ''} but clean "
                f"[{','.join(p.sections)}]"
            )
        for p in o.unpredicted_dirty:
            lines.append(
                f"  {o.path}: 0x{p.vaddr:x} dirty, not predicted; likely "
                f"{p.why} [{','.join(p.sections)}]"
            )
    verdict = "OK" if c.ok else "OUTSIDE TOLERANCE"
    lines.append(
        f"process total: measured {kib(c.measured_total)}, "
        f"predicted {kib(c.predicted_expected)}"
        f" (low {kib(c.predicted_low)}, high {kib(c.predicted_high)}); "
        f"tolerance {c.tolerance_pages} page(s) per object: {verdict}"
    )
    _ = P
    return render(*lines)


def group_text(g: object) -> str:
    """Several processes of one program, ps_mem style: private summed, shared counted once."""
    from elfcost.runtime.records import ProgramGroup

    assert isinstance(g, ProgramGroup)
    t = Table(f"{g.name}: {len(g.pids)} processes (pids {', '.join(map(str, g.pids))})")
    for col in (
        "object / bucket",
        "private (USS)",
        "shared (PSS - USS)",
        "PSS",
        "private dirty",
        "swap",
    ):
        t.add_column(
            col,
            "left" if col.startswith("object") else "right",
            "fold" if col.startswith("object") else "keep",
        )
    for r in (*g.objects, *g.buckets):
        if r.pss or r.uss:
            t.add_row(
                r.name,
                kib(r.uss),
                kib(r.shared),
                kib(r.pss),
                kib(r.private_dirty),
                kib(r.swap),
            )
    t.add_section()
    r = g.total
    t.add_row("total", kib(r.uss), kib(r.shared), kib(r.pss), kib(r.private_dirty), kib(r.swap))
    return render(t)


def scan_text(summary: dict[str, int], ranking: object) -> str:
    """The scan's summary line, then the costliest programs and libraries."""
    from elfcost.documents import Ranking

    assert isinstance(ranking, Ranking)
    head = (
        f"{summary['files_seen']} files: {summary['elf_files']} ELF, "
        f"{summary['executables']} programs estimated, {summary['libraries']} libraries, "
        f"{summary['skipped_non_elf']} non-ELF skipped, {summary['errors']} errors, "
        f"{summary['cache_hits']} from cache"
    )
    t = Table("most expensive programs (one instance each)")
    for col in ("program", "expected", "high", "objects"):
        t.add_column(
            col, "left" if col == "program" else "right", "fold" if col == "program" else "keep"
        )
    for p in ranking.programs:
        t.add_row(p.path, kib(p.private_dirty), kib(p.high), str(p.objects))
    lt = Table("libraries by cost summed over the programs that load them")
    for col in ("library", "summed expected", "programs", "needed by"):
        lt.add_column(
            col,
            justify="right" if col in ("summed expected", "programs") else "left",
            overflow="fold",
        )
    for lib in ranking.libraries:
        who = ", ".join(os.path.basename(p) for p in lib.programs[:4])
        if len(lib.programs) > 4:
            who += ", ..."
        lt.add_row(lib.path, kib(lib.private_dirty), str(len(lib.programs)), who)
    return render(head, t, lt)
