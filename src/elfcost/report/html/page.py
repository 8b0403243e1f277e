"""The documents: one page per estimate run (a section per program) or per scan, with the
stylesheet and script of report.css and report.js inlined, so the file stands alone."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

from elfcost.analysis import Savings, fleet, is_linkage, savings, where_it_goes
from elfcost.documents import ComparisonDoc, EstimateDoc, ScanDoc
from elfcost.report import words
from elfcost.report.html.charts import (
    Line,
    amounts,
    bar_legend,
    bar_segments,
    fleet_chart,
    ranking_bars,
    split_segments,
    stacked_bar,
)
from elfcost.report.html.common import basename, esc, plural, size_text
from elfcost.report.html.pagemaps import cause_legend, comparisons_of, object_map
from elfcost.report.html.tables import (
    causes_in,
    comparison_block,
    header_cell,
    int_cell,
    objects_table,
    process_table,
    savings_table,
    size_cell,
    sortable_table,
)

# -- the estimate report ------------------------------------------------------------------------


def _summary(
    doc: EstimateDoc, cmp: Sequence[ComparisonDoc], saved: Savings | None, instances: int
) -> str:
    t = doc.total
    r = t.private_dirty
    f = fleet(r, t.shared_clean, instances)
    cards = [
        (
            "private dirty, expected",
            size_text(r.expected),
            f"range {size_text(r.low)} .. {size_text(r.high)}",
        ),
        ("at the entry point", size_text(r.at_entry), "written before main"),
        ("shared clean", size_text(t.shared_clean), "file pages, paid once"),
        (
            f"{instances:,} instances",
            size_text(f.total_expected),
            f"{instances:,} × {size_text(r.expected)} + {size_text(f.shared_clean)}",
        ),
    ]
    if saved is not None:
        cards.append(
            (
                "linked statically (what-if)",
                size_text(saved.whatif),
                f"{words.saves(saved.per_instance, size_text)} per instance",
            )
        )
    for c in cmp:
        cards.append(
            (
                f"measured at {c.stop}",
                size_text(c.total.measured_private_dirty),
                "ok" if c.ok else "outside tolerance",
            )
        )
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
            f'<div class="s">{esc(s)}</div></div>'
            for k, v, s in cards
        )
        + "</div>"
    )


def _remedies(doc: EstimateDoc) -> str:
    """What one more instance costs and what each remedy saves, as the text report's first
    lines and its table say it (nothing when the savings were not computed)."""
    lines = words.up_front(doc, size_text)
    if not lines:
        return ""
    return (
        "<h3>What each remedy saves</h3>"
        + "".join(f'<p class="note">{esc(x)}</p>' for x in lines)
        + savings_table(doc)
    )


def _whatif_notes(static: EstimateDoc, saved: Savings) -> str:
    """The static what-if in words, as the text report of `--assume static` says it: what it
    assumed, and what it saves against the program as built."""
    notes = [a for a in static.assumptions if "what-if" in a]
    notes.append(words.savings(saved, size_text))
    return '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"


def _binary_section(
    doc: EstimateDoc,
    index: int,
    cmp: Sequence[ComparisonDoc],
    static: EstimateDoc | None,
    instances: int,
) -> str:
    P = doc.page_size
    loader = doc.loader
    meta = (
        f"{doc.machine} · {P // 1024} KiB pages · "
        + (f"{loader.family.value} loader {loader.path}" if loader.path else "static")
        + f" · profile {doc.profile}"
    )
    saved = None if static is None else savings(doc, static, instances)
    split = where_it_goes(doc)
    parts = split_segments(split)
    objects = bar_segments(doc)
    out = [
        f'<section class="binary" id="b{index}"><h2>{esc(doc.binary)}</h2>'
        f'<p class="meta">{esc(meta)}</p>',
        _summary(doc, cmp, saved, instances),
        _remedies(doc),
        "<h3>Where the private dirty memory goes</h3>"
        f'<p class="note">{esc(words.where_it_goes(split, size_text))}</p>',
        stacked_bar(parts, label=f"private dirty of {doc.binary}: program and linkage"),
        bar_legend(parts),
        '<p class="note">by object: the objects\' own pages, then what the process adds outside '
        "any file</p>",
        stacked_bar(objects, label=f"private dirty of {doc.binary} by object"),
        bar_legend(objects),
    ]
    # Fleet chart.
    lines = [
        Line(
            label="as built",
            private_dirty=doc.total.private_dirty,
            shared_clean=doc.total.shared_clean,
            band=True,
            colour="#004488",
        )
    ]
    if static is not None:
        lines.append(
            Line(
                label="linked statically",
                private_dirty=static.total.private_dirty,
                shared_clean=static.total.shared_clean,
                colour="#BB5566",
                dash="9 5",
            )
        )
    out.append(
        f"<h3>Fleet: cost of 1 to {instances:,} instances</h3>"
        '<p class="note">n × private dirty (expected; the band spans low .. high) + shared clean '
        "once.</p>" + fleet_chart(lines, instances, chart_id=f"fleet{index}")
    )
    if static is not None and saved is not None:
        out.append(_whatif_notes(static, saved))
    # Page maps.
    has_unknown = any(p.vaddr is None for o in doc.objects for p in o.pages)
    out.append(
        "<h3>Page maps: every writable page, one cell each</h3>"
        + cause_legend(causes_in(doc), with_compare=bool(cmp), has_unknown=has_unknown)
    )
    for o in doc.objects:
        pd = o.private_dirty
        counted = sum(1 for p in o.pages if p.phase != "possible")
        out.append(
            '<div class="obj">'
            f'<h4><span class="on">{esc(basename(o.path))}</span> '
            f'<span class="role">{esc(o.role)}</span> '
            f'<span class="path">{esc(o.path)}</span></h4>'
            f'<p class="note">{len(o.pages)} pages listed of {o.writable_pages} '
            f"writable · {counted} predicted written · expected "
            f"{size_text(pd.expected)} (high {size_text(pd.high)})</p>"
            + object_map(o, P, cmp)
            + "".join(f'<p class="note">note: {esc(n)}</p>' for n in o.notes)
            + "</div>"
        )
    out.append("<h3>Tables</h3>" + objects_table(doc) + process_table(doc))
    if cmp:
        out.append("<h3>Estimate against measurement</h3>" + comparison_block(cmp))
    extra = [f"missing: {m.needed} (needed by {m.parent})" for m in doc.missing]
    extra += [f"warning: {w}" for w in doc.warnings]
    extra += [f"assumption: {a}" for a in doc.assumptions]
    if extra:
        out.append(
            '<h3>Findings and assumptions</h3><ul class="notes">'
            + "".join(f"<li>{esc(x)}</li>" for x in extra)
            + "</ul>"
        )
    out.append("</section>")
    return "".join(out)


def estimate_html(
    docs: Sequence[EstimateDoc],
    *,
    comparisons: Sequence[ComparisonDoc] = (),
    static_whatif: Sequence[EstimateDoc] = (),
    instances: int,
) -> str:
    """One HTML page for estimate documents (one per binary).

    `comparisons`: the comparison documents of validate for the same binaries; they are matched
    by `binary` and drawn beside the prediction. `static_whatif`: estimates made with `--assume
    static`, matched by `binary`, drawn as a second fleet line with what they save.
    `instances`: the fleet chart's last instance count (at least 2 are drawn).
    """
    statics = {d.binary: d for d in static_whatif}
    title = f"elfcost: {docs[0].binary}" if len(docs) == 1 else f"elfcost: {len(docs)} programs"
    if not docs:
        title = "elfcost: no programs"
    body = []
    if len(docs) > 1:
        body.append(
            "<nav><h3>Programs</h3>"
            '<p class="note">expected private dirty per instance; click a name for its '
            "section</p>"
            + ranking_bars(
                [(d.binary, amounts(where_it_goes(d))) for d in docs], top=len(docs), link=True
            )
            + "</nav>"
        )
    for i, d in enumerate(docs):
        body.append(
            _binary_section(d, i, comparisons_of(d, comparisons), statics.get(d.binary), instances)
        )
    return _page(
        title,
        "".join(body),
        "private dirty memory predicted from the ELF files; "
        "hover a page for its cause, sections and relocations",
    )


def _needed_by(names: Sequence[str]) -> str:
    shown = ", ".join(esc(basename(n)) for n in names[:5])
    if len(names) <= 5:
        return f'<td class="detail" data-v="{len(names)}">{shown}</td>'
    rest = "<br>".join(esc(n) for n in names)
    return (
        f'<td class="detail" data-v="{len(names)}"><details><summary>{shown} and '
        f"{len(names) - 5} more</summary>{rest}</details></td>"
    )


def scan_html(doc: ScanDoc, *, top: int = 20) -> str:
    """One HTML page for a scan: the top `top` programs and shared objects as bars, then every
    one the ranking holds (analysis.rank) in sortable tables."""
    programs = doc.ranking.programs
    libraries = doc.ranking.libraries
    errors = doc.summary.errors
    total = sum(p.private_dirty for p in programs)
    head = (
        f'<section class="binary"><h2>{len(programs):,} programs</h2>'
        f'<p class="meta">{size_text(total)} private dirty expected if each runs once · '
        f"{len(libraries):,} shared objects"
        + (f" · {plural(errors, 'input')} not estimated" if errors else "")
        + "</p>"
        + "".join(
            f'<p class="meta">{esc(a.path)}: {esc(a.kind)}, '
            f"{plural(len(a.packages), 'package')} installed, machine "
            f"{esc(a.machine or 'unknown')} ({esc(a.architecture or 'no architecture')})"
            + (f" · {plural(a.errors, 'package')} not installed" if a.errors else "")
            + "</p>"
            for a in doc.summary.archive_roots
        )
    )
    weighted = any(p.instances != 1 for p in programs)
    bars = ranking_bars([(p.path, amounts(p.split)) for p in programs], top=top)
    lib_bars = ranking_bars(
        [
            (lb.path, {"libc" if is_linkage(lb.role, lb.soname) else "program": lb.private_dirty})
            for lb in libraries
        ],
        top=top,
    )
    prow = []
    for i, p in enumerate(programs, 1):
        prow.append(
            f'<tr><td class="num" data-v="{i}">{i}</td><td class="path">{esc(p.path)}</td>'
            + int_cell(p.objects)
            + size_cell(p.at_entry)
            + size_cell(p.low)
            + size_cell(p.private_dirty, strong=True)
            + size_cell(p.high)
            + size_cell(p.shared_clean)
            + (int_cell(p.instances) + size_cell(p.private_dirty * p.instances) if weighted else "")
            + "</tr>"
        )
    ptable = sortable_table(
        [
            header_cell("#", num=True),
            header_cell("program"),
            header_cell("objects", num=True),
            header_cell("at entry", num=True),
            header_cell("low", num=True),
            header_cell("expected", num=True),
            header_cell("high", num=True),
            header_cell("shared clean", num=True),
            *(
                [
                    header_cell("instances", num=True, tip="from the weights file"),
                    header_cell("x instances", num=True, tip="expected times its instances"),
                ]
                if weighted
                else []
            ),
        ],
        prow,
        caption="programs by expected private dirty (click a header to sort)",
    )
    lrow = []
    for i, lb in enumerate(libraries, 1):
        lrow.append(
            f'<tr><td class="num" data-v="{i}">{i}</td><td class="path">{esc(lb.path)}</td>'
            f"<td>{esc(lb.role)}</td>"
            + int_cell(len(lb.programs))
            + size_cell(lb.per_process)
            + size_cell(lb.private_dirty, strong=True)
            + _needed_by(lb.programs)
            + "</tr>"
        )
    ltable = sortable_table(
        [
            header_cell("#", num=True),
            header_cell("shared object"),
            header_cell("role"),
            header_cell("programs", num=True),
            header_cell("per process", num=True, tip="the most one program pays for it"),
            header_cell("summed", num=True, tip="what all the programs that load it pay for it"),
            header_cell("needed by"),
        ],
        lrow,
        caption="shared objects by summed cost over the programs that load them",
    )
    body = (
        head
        + f"<h3>Top {min(top, len(programs))} programs</h3>"
        + bars
        + f"<h3>Top {min(top, len(libraries))} shared objects by summed cost</h3>"
        + lib_bars
        + "<h3>Tables</h3>"
        + ptable
        + ltable
        + _savings_table(doc)
        + "</section>"
    )
    return _page(
        f"elfcost scan: {len(programs)} programs",
        body,
        "private dirty memory predicted from the ELF files, per program and per shared object",
    )


def _savings_table(doc: ScanDoc) -> str:
    """What each what-if saves over the programs scanned (scan --remedies), or nothing."""
    rows = [
        f"<tr><td>--assume {esc(w.assume)}</td>"
        + int_cell(w.programs)
        + int_cell(w.instances)
        + size_cell(w.saved, strong=True)
        + "</tr>"
        for w in doc.ranking.savings
    ]
    if not rows:
        return ""
    return "<h3>What-ifs over the scan</h3>" + sortable_table(
        [
            header_cell("what-if"),
            header_cell("programs", num=True),
            header_cell("instances", num=True),
            header_cell("saved in all", num=True, tip="each program's saving x its instances"),
        ],
        rows,
        caption="what each what-if saves, summed over the programs it applies to",
    )


# -- the page -----------------------------------------------------------------------------------


@functools.cache
def _asset(name: str) -> str:
    """report.css or report.js, package data beside this module."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _page(title: str, body: str, subtitle: str) -> str:
    # The script reads only the page itself; no document data is ever written into it.
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="generator" content="elfcost"><title>{esc(title)}</title>'
        f"<style>\n{_asset('report.css')}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<main>{body}</main><script>\n{_asset('report.js')}</script></body></html>\n"
    )
