"""Model → text for a terminal: dependency trees, estimate tables, per-page listings."""

from __future__ import annotations

import functools
import os
import textwrap
from collections import Counter
from typing import TYPE_CHECKING

from rich.style import Style
from rich.table import Table
from rich.text import Text

from elfcost.analysis import savings, where_it_goes
from elfcost.cost.aftermain import OWN_WRITES
from elfcost.cost.causes import CAUSES, UNKNOWN, info
from elfcost.documents import EstimateDoc, ObjectDoc
from elfcost.model import Cause, Estimate, FoundVia, ObjectEstimate, Range, Resolution
from elfcost.report import words
from elfcost.report.console import Part, render, table, terminal, width_of
from elfcost.report.units import kib as kib  # re-exported: the one KiB formatter
from elfcost.report.units import size
from elfcost.resolve.graph import DependencyGraph

if TYPE_CHECKING:  # other commands' documents (elfcost.documents imports them when used)
    from elfcost.documents import MachineDoc, Ranking, ScanSummary

# -- deps --------------------------------------------------------------------------------------


def _how(r: Resolution) -> str:
    if r.via is None:
        return "not found"
    if r.via is FoundVia.RPATH and r.via_object:
        return f"rpath of {r.via_object}"
    if r.via is FoundVia.RUNPATH:
        return "runpath"
    return str(r.via.value)


def _first_found(graph: DependencyGraph) -> dict[str, Resolution]:
    """How each object was first found, even where another edge reaches it again."""
    first: dict[str, Resolution] = {}
    for r in graph.resolutions:
        if r.found is not None and r.via is not FoundVia.LOADED:
            first.setdefault(r.found, r)
    return first


def _tried(r: Resolution, prefix: str) -> list[str]:
    """A missing library's paths, in the order the loader would try them."""
    if not r.tried:
        return []
    lines = [f"{prefix}paths considered in this order:"]
    for a in r.tried:
        who = f" of {a.origin}" if a.origin else ""
        lines.append(f"{prefix}  {a.path or '-'}  [{a.via.value}{who}] {a.outcome}")
    return lines


def _deps_title(graph: DependencyGraph) -> str:
    root = graph.root
    interp = f", {graph.interp}" if graph.interp else ""
    return f"{root.dso.path} ({root.role}, {graph.family.value}{interp})"


def deps_text(graph: DependencyGraph) -> str:
    """The objects in the loader's load order (the order of `elfcost.deps/1`'s objects and of
    the link map: breadth first), each with the name it was needed by, how it was found and
    which object needed it first; then each missing library with every path considered."""
    first = _first_found(graph)
    lines = [_deps_title(graph), "load order:"]
    width = len(str(len(graph.objects)))
    for i, o in enumerate(graph.objects[1:], 1):
        path = o.dso.path
        r = first.get(path)
        if o.role == "interpreter" and r is None:
            label = f"{path} [interpreter]"
        elif r is None:
            label = f"{path} [{o.found_via.value}]"
        else:
            label = f"{r.needed} => {path} [{_how(r)}]"
        by = f" (needed by {o.parent})" if o.parent else ""
        lines.append(f"  {i:>{width}}  {label}{by}")
    for r in graph.missing:
        lines.append(f"missing: {r.needed} not found (needed by {r.parent})")
        lines.extend(_tried(r, "  "))
    lines.extend(f"warning: {w}" for w in graph.warnings)
    return "\n".join(lines) + "\n"


def deps_tree_text(graph: DependencyGraph) -> str:
    """The dependency tree, libtree style (`deps --tree`): each library under the first object
    that needs it, depth first, with how it was found; for a missing one, every path
    considered in order. Not the load order (`deps_text`): the loader maps breadth first.
    Walked without recursion: a chain can be 10,000 deep."""
    root = graph.root
    lines = [_deps_title(graph)]
    first = _first_found(graph)
    children: dict[str, list[Resolution]] = {}
    for r in graph.resolutions:
        children.setdefault(r.parent, []).append(r)
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
            lines.extend(_tried(r, prefix + inner))
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


def _causes(o: ObjectEstimate | ObjectDoc) -> str:
    counts = Counter(p.cause for p in o.pages if p.phase != "possible")
    return ", ".join(
        f"{info(c).label} {n}"
        for c, n in sorted(counts.items(), key=lambda x: list(Cause).index(x[0]))
    )


def _estimate_table(doc: EstimateDoc, *, compact: int = 0) -> Table:
    """The estimate's rows. `compact` is the width of a narrow terminal to fit: objects by file
    name, no writable-page count, process details left for lines under the table (`explain` and the
    JSON report keep the paths and the counts)."""
    head = ["object", "RW pages", "dirty pages by cause", "at entry", "low", "expected", "high"]
    if compact:
        head.remove("RW pages")
    t = table(*head, right=("RW pages", "at entry", "low", "expected", "high"))
    causes = t.columns[head.index("dirty pages by cause")]
    causes.max_width = 40  # process details are sentences: fold them, keep the numbers close
    if compact:
        t.show_edge = False  # two more columns for the names
        # Names fold at spaces only: "libskarnet.so.2.13" whole, "(interpreter)" below it.
        names = [os.path.basename(o.path) for o in doc.objects]
        names += [f"[{name}]" for name in doc.process]
        t.columns[0].width = min(max(len(w) for n in names for w in n.split()), compact // 3)

    def row(name: str, writable: str, why: str, r: Range, style: str | None = None) -> None:
        cells = [name, writable, why, kib(r.at_entry), kib(r.low), kib(r.expected), kib(r.high)]
        if compact:
            del cells[1]
        t.add_row(*cells, style=style)

    for o in doc.objects:
        path = os.path.basename(o.path) if compact else o.path
        role = "" if o.role == "library" else f" ({o.role})"
        row(path + role, str(o.writable_pages), _causes(o), o.private_dirty)
    t.add_section()
    for name, p in doc.process.items():
        row(f"[{name}]", "", "" if compact else p.detail, p.private_dirty)
    t.add_section()
    row("total private dirty", "", "", doc.total.private_dirty, style="bold")
    return t


def _savings_table(doc: EstimateDoc) -> Table:
    """The remedies, the largest saving first: what each is predicted to cost and save."""
    n = doc.total.fleet.instances
    head = ["remedy (--assume)", "expected", "saves / instance"]
    if n > 1:
        head.append(f"saves / {n:,}")
    t = table(*head, right=head[1:])
    for s in doc.savings or ():
        cells = [s.assume, kib(s.expected), kib(s.per_instance)]
        if n > 1:
            cells.append(size(s.fleet))
        t.add_row(*cells)
    return t


def estimate_text(doc: EstimateDoc, *, as_built: EstimateDoc | None = None) -> str:
    """The estimate's table, where its memory goes and, past one instance, what its fleet
    (`doc.total.fleet`) costs. A what-if (`--assume static`, ...) says so, and with the program
    `as_built` beside it, what it saves."""
    loader = doc.loader
    title = (
        f"{doc.binary}: {loader.family.value} "
        f"{'(' + loader.path + ')' if loader.path else 'static'}, "
        f"{doc.page_size // 1024} KiB pages, profile {doc.profile}"
    )
    term = terminal()
    t = _estimate_table(doc)
    lines: list[Part] = [(title, "italic"), *words.up_front(doc, size), t]
    if doc.savings:  # the remedies, ranked, right under the objects they change
        lines.append(_savings_table(doc))
    if term.width is not None and width_of(t) > term.width:
        lines[lines.index(t)] = _estimate_table(doc, compact=term.width)
        lines.extend(f"[{name}] {p.detail}" for name, p in doc.process.items())
    lines.append(words.where_it_goes(where_it_goes(doc)))
    f = doc.total.fleet
    if f.instances > 1:
        r = f.private_dirty
        lines.append(
            f"{f.instances:,} instances: {size(r.expected)} private dirty expected "
            f"(range {size(r.low)} .. {size(r.high)}) "
            f"+ {size(f.shared_clean)} shared clean once (file-backed text/rodata of every "
            f"object, if fully resident) = {size(f.total_expected)}"
        )
    # What the model leaves out, when the estimate says so (saved documents of earlier
    # versions do not).
    lines.extend(a for a in doc.assumptions if a == OWN_WRITES)
    # A what-if says so first: these figures are for a program that was not built this way.
    whatif = [a for a in doc.assumptions if a.startswith("what-if")]
    lines.extend(whatif)
    if whatif and as_built is not None:
        lines.append(words.savings(savings(as_built, doc, f.instances), size))
    for m in doc.missing:
        lines.append((f"missing: {m.needed} (needed by {m.parent})", "red"))
    for w in doc.warnings:
        lines.append(f"warning: {w}")
    for o in doc.objects:
        for n in o.notes:
            lines.append(f"note: {o.path}: {n}")
    return render(*lines, term=term)


def explain_text(est: Estimate, *, object_name: str | None = None) -> str:
    lines: list[Text] = []
    P = est.page_size
    for o in est.objects:
        if object_name and object_name not in (o.path, o.soname, os.path.basename(o.path)):
            continue
        lines.append(Text(f"{o.path} ({o.role}): {_causes(o) or 'no dirty pages'}"))
        lines.append(Text("  ").append_text(page_map(o, P)))
        for p in o.pages:
            if p.phase == "possible":
                continue
            addr = f"0x{p.vaddr:08x}" if p.vaddr is not None else "?" * 10
            # A constructor page read from the code but written through an interposable
            # symbol is likely, not calibrated.
            proved = p.cause is Cause.CONSTRUCTOR and p.vaddr is not None
            sure = "certain" if p.certain else "likely" if proved else "calibrated"
            secs = ",".join(p.sections) or "-"
            label = info(p.cause).label
            lines.append(
                Text(f"  {addr}  {label:<9} {p.phase:<5} {sure:<10} {secs:<32} {p.detail}")
            )
        possible = sum(1 for p in o.pages if p.phase == "possible") + o.possible_unlisted
        if possible:
            lines.append(
                Text(f"  + {possible} more writable pages the program may write (high bound)")
            )
    lines.extend(_explain_process(est, object_name))
    if not lines:
        return f"no object named {object_name}\n"
    legend = Text("page map:")
    for c in CAUSES:
        legend.append(" ").append(c.letter, style=_map_style(c.letter)).append(f"={c.label}")
    return render(legend, *lines)


def _explain_process(est: Estimate, object_name: str | None) -> list[Text]:
    """The pages in no file (the stack, the loader's heap, TLS, the heap), item by item, then
    how the total adds up; with `object_name`, the one item it names ("stack" or "[stack]")."""
    P = est.page_size
    items = [p for p in est.process if object_name in (None, p.name, f"[{p.name}]")]
    if not items:
        return []
    lines = [Text("process items, in no file (anonymous pages):")]
    for p in items:
        r = p.private_dirty
        sure = "certain" if p.certain else "calibrated"
        lines.append(
            Text(
                f"  [{p.name}]  {_pages(r.expected // P)} expected ({kib(r.expected)}; at entry "
                f"{kib(r.at_entry)}, low {kib(r.low)}, high {kib(r.high)})  {sure}  {p.detail}"
            )
        )
        # Pages predicted from the libc functions the program links, one line each: no
        # address (anonymous), their cause's label and phase, the import behind them.
        for pc in p.pages:
            label = info(pc.cause).label
            lines.append(Text(f"      {'':>10}  {label:<9} {pc.phase:<8} {pc.detail}"))
    if object_name is None:
        objects = sum(o.private_dirty.expected for o in est.objects)
        process = sum(p.private_dirty.expected for p in est.process)
        lines.append(
            Text(
                f"total private dirty, expected: {kib(objects + process)} = the objects' pages "
                f"above {kib(objects)} + process items {kib(process)}"
            )
        )
    return lines


def _pages(n: int) -> str:
    return f"{n} page" if n == 1 else f"{n} pages"


@functools.cache
def _map_styles() -> dict[str, Style]:
    """On a terminal each page-map letter takes its cause's page-map fill (legend and maps
    alike): the same colour the HTML report paints the cell. Made when a page map is first
    drawn (parsing the colours is a quarter of a millisecond, and an estimate draws none)."""
    return {c.letter: Style(color=c.fill) for c in CAUSES}


def _map_style(letter: str) -> Style:
    return _map_styles().get(letter, Style(color=UNKNOWN.fill))


def page_map(o: ObjectEstimate, P: int) -> Text:
    """One letter per writable page, in address order; a space where pages are not adjacent."""
    located = sorted((p for p in o.pages if p.vaddr is not None), key=lambda p: p.vaddr or 0)
    out = Text()
    prev = None
    for p in located:
        assert p.vaddr is not None
        if prev is not None and p.vaddr - prev > P:
            out.append(" ")
        letter = info(p.cause).letter
        out.append(letter, style=_map_style(letter))
        prev = p.vaddr
    unknown = UNKNOWN.letter  # no address: the page's place in the map is unknown
    out.append(unknown * sum(1 for p in o.pages if p.vaddr is None), style=_map_style(unknown))
    return out


# -- measure / validate ------------------------------------------------------------------------


def measurement_text(m: object) -> str:
    """A measured process: one row per object, one per process bucket, the total."""
    from elfcost.runtime.records import Measurement, Usage

    assert isinstance(m, Measurement)
    title = f"pid {m.pid}, stopped at {m.stop}, {m.page_size // 1024} KiB pages"
    numbers = ("private dirty", "private clean", "shared clean", "rss", "pss", "swap")
    t = table("object / bucket", *numbers, "written pages", right=(*numbers, "written pages"))

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
    parts: list[Part] = [(title, "italic"), t]
    parts.extend(f"warning: {w}" for w in m.warnings)
    return render(*parts)


def comparison_text(c: object) -> str:
    from elfcost.runtime.compare import Comparison

    assert isinstance(c, Comparison)
    numbers = (
        "predicted pages",
        "measured pages",
        "predicted but clean",
        "dirty but not predicted",
    )
    t = table("object", *numbers, right=numbers)
    for o in c.objects:
        t.add_row(
            o.path,
            str(o.predicted_pages),
            str(o.measured_pages),
            str(len(o.predicted_clean)),
            str(len(o.unpredicted_dirty)),
        )
    lines: list[Part] = [(f"{c.binary}: predicted vs measured at {c.stop}", "italic"), t]
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
    return render(*lines)


def group_text(g: object) -> str:
    """Several processes of one program, ps_mem style: private summed, shared counted once."""
    from elfcost.runtime.records import ProgramGroup

    assert isinstance(g, ProgramGroup)
    title = f"{g.name}: {len(g.pids)} processes (pids {', '.join(map(str, g.pids))})"
    numbers = ("private (USS)", "shared (PSS - USS)", "PSS", "private dirty", "swap")
    t = table("object / bucket", *numbers, right=numbers)
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
    return render((title, "italic"), t)


def machine_text(doc: MachineDoc, *, top: int | None = 20) -> str:
    """`measure --all`: the machine's totals, its programs (ps_mem), its libraries (librank),
    the linkage overhead, and with --assume what relinking would save and spend. `top` rows
    of each table (None: all)."""
    t, sk = doc.total, doc.skipped
    head = (
        f"{t.processes} processes: RAM used (PSS) {size(t.pss)}, private (USS) {size(t.uss)}, "
        f"shared {size(t.shared)}, private dirty {size(t.private_dirty)}, swap {size(t.swap)}; "
        f"skipped {sk.vanished} that exited while read, {sk.unreadable} not readable, "
        f"{sk.without_memory} without memory (kernel threads, zombies)"
    )
    numbers = ("private (USS)", "shared", "RAM used (PSS)", "private dirty", "swap", "linkage")
    pt = table("program", "processes", *numbers, right=("processes", *numbers))
    for p in doc.programs[:top]:
        pt.add_row(
            p.program,
            str(len(p.pids)),
            kib(p.uss),
            kib(p.shared),
            kib(p.pss),
            kib(p.private_dirty),
            kib(p.swap),
            "-" if p.linkage is None else kib(p.linkage),
        )
    lnumbers = ("RSS", "PSS", "USS", "private dirty", "swap")
    lt = table(
        "object", "processes", "programs", *lnumbers, right=("processes", "programs", *lnumbers)
    )
    for lib in doc.libraries[:top]:
        lt.add_row(
            lib.path,
            str(lib.processes),
            str(lib.programs),
            kib(lib.rss),
            kib(lib.pss),
            kib(lib.uss),
            kib(lib.private_dirty),
            kib(lib.swap),
        )
    lk = doc.linkage
    causes = ", ".join(f"{name} {size(n)}" for name, n in lk.by_cause.items())
    parts: list[Part] = [
        head,
        ("programs, as ps_mem groups them (largest PSS first)", "italic"),
        pt,
        ("objects across processes, as librank sums them", "italic"),
        lt,
        f"linkage overhead (the model, {lk.processes} processes of {lk.programs} programs): "
        f"{size(lk.expected)} ({causes or 'none'}); measured private dirty of libc and the "
        f"loader in the same processes: {size(lk.measured)}",
    ]
    if lk.not_estimated:
        n = len(lk.not_estimated)
        parts.append(
            f"not estimated: {n} program{'s' if n != 1 else ''} (their reasons: --format json)"
        )
    if doc.relink is not None:
        r = doc.relink
        rt = table(
            "program",
            "processes",
            "as built",
            "relinked",
            "saved",
            "text spent",
            right=("processes", "as built", "relinked", "saved", "text spent"),
        )
        for rp in r.programs[:top]:
            rt.add_row(
                rp.program,
                str(rp.processes),
                kib(rp.as_built),
                kib(rp.whatif),
                kib(rp.saved),
                kib(rp.text),
            )
        parts += [
            (
                f"what-if, an estimate: every estimated program relinked --assume {r.assume}",
                "italic",
            ),
            rt,
            f"saved {size(r.saved)} of private dirty memory, spent {size(r.text)} in text "
            f"pages no longer shared: net {size(r.net)}",
        ]
    return render(*parts)


def scan_text(summary: ScanSummary, ranking: Ranking) -> str:
    """The scan's summary line, each archive scanned as a root, then the costliest programs
    and libraries, and what the what-ifs save in all (scan --remedies)."""
    head = (
        f"{summary.files_seen} files: {summary.elf_files} ELF, "
        f"{summary.executables} programs estimated, {summary.libraries} libraries, "
        f"{summary.skipped_non_elf} non-ELF skipped, {summary.errors} errors, "
        f"{summary.cache_hits} from cache"
    )
    # Said whenever it happened: an estimate without its libraries is not the program's cost.
    if summary.missing:
        head += f"; {summary.missing} with libraries not found (left out of their figures)"
    if summary.uncalibrated:
        head += f"; {summary.uncalibrated} on another machine's profile (approximate)"
    for a in summary.archive_roots:
        head += (
            f"\n{a.path}: {a.kind}, {len(a.packages)} packages installed, machine "
            f"{a.machine or 'unknown'} ({a.architecture or 'no architecture'})"
        )
        if a.errors:
            head += f", {a.errors} not installed (reported above)"
        if a.conflicts:
            head += f", {a.conflicts} paths shipped twice (the first package keeps them)"
    weighted = any(p.instances != 1 for p in ranking.programs)
    cols = ["program", "expected", "high", "objects"]
    cols += ["instances", "x instances"] if weighted else []
    t = table(*cols, "caveats", right=tuple(cols[1:]))
    for p in ranking.programs:
        caveats = [f"not found: {', '.join(p.missing)}"] if p.missing else []
        caveats += ["uncalibrated"] if p.uncalibrated else []
        row = [p.path, kib(p.private_dirty), kib(p.high), str(p.objects)]
        row += [str(p.instances), kib(p.private_dirty * p.instances)] if weighted else []
        t.add_row(*row, "; ".join(caveats))
    lt = table(
        "library", "summed expected", "programs", "needed by", right=("summed expected", "programs")
    )
    for lib in ranking.libraries:
        who = ", ".join(os.path.basename(p) for p in lib.programs[:4])
        if len(lib.programs) > 4:
            who += ", ..."
        lt.add_row(lib.path, kib(lib.private_dirty), str(len(lib.programs)), who)
    times = " times their instances" if weighted else ""
    parts: list[Part] = [
        head,
        (
            "most expensive programs (one instance each)"
            if not weighted
            else "most expensive programs, by their cost times their instances",
            "italic",
        ),
        t,
        (f"libraries by cost summed over the programs that load them{times}", "italic"),
        lt,
    ]
    if ranking.savings:
        st = table(
            "what-if",
            "programs",
            "instances",
            "saved in all",
            right=("programs", "instances", "saved in all"),
        )
        for w in ranking.savings:
            st.add_row(f"--assume {w.assume}", str(w.programs), str(w.instances), kib(w.saved))
        parts += [(f"what each what-if saves, summed over the programs{times}", "italic"), st]
    return render(*parts)


# -- causes ----------------------------------------------------------------------------------


def causes_text() -> str:
    """One line per cause (name, page-map letter, label, rule codes), then its explanation and
    the source it follows, indented."""
    name, label = max(len(c.name) for c in CAUSES), max(len(c.label) for c in CAUSES)
    lines = []
    for c in CAUSES:
        lines.append(f"{c.name:<{name}}  {c.letter}  {c.label:<{label}}  {', '.join(c.rules)}")
        body = f"{c.explanation} Source: {c.source}."
        lines.extend(textwrap.wrap(body, 96, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines) + "\n"
