"""The documents: one page per estimate run (a section per program) or per scan, with the
stylesheet and script of report.css and report.js inlined, so the file stands alone."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from elfcost.report.html.charts import (
    Line,
    bar_legend,
    bar_segments,
    cost_split,
    fleet_chart,
    ranking_bars,
    stacked_bar,
)
from elfcost.report.html.common import Doc, basename, esc, plural, size_text
from elfcost.report.html.pagemaps import cause_legend, comparisons_of, object_map
from elfcost.report.html.tables import (
    causes_in,
    comparison_block,
    header_cell,
    int_cell,
    objects_table,
    process_table,
    size_cell,
    sortable_table,
)

# -- the estimate report ------------------------------------------------------------------------


def _summary(doc: Doc, cmp: Sequence[Doc], static: Doc | None, instances: int) -> str:
    t = doc["total"]
    r = t["private_dirty"]
    fleet = instances * r["expected"] + t["shared_clean"]
    cards = [
        (
            "private dirty, expected",
            size_text(r["expected"]),
            f"range {size_text(r['low'])} .. {size_text(r['high'])}",
        ),
        ("at the entry point", size_text(r["at_entry"]), "written before main"),
        ("shared clean", size_text(t["shared_clean"]), "file pages, paid once"),
        (
            f"{instances:,} instances",
            size_text(fleet),
            f"{instances:,} × {size_text(r['expected'])} + {size_text(t['shared_clean'])}",
        ),
    ]
    if static is not None:
        s = static["total"]["private_dirty"]["expected"]
        cards.append(
            (
                "linked statically (what-if)",
                size_text(s),
                f"costs {size_text(s - r['expected'])} more per instance"
                if s > r["expected"]
                else f"saves {size_text(r['expected'] - s)} per instance",
            )
        )
    for c in cmp:
        m = c["total"]["measured_private_dirty"]
        cards.append(
            (
                f"measured at {c.get('stop')}",
                size_text(m),
                "ok" if c.get("ok") else "outside tolerance",
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


def _binary_section(
    doc: Doc, index: int, cmp: Sequence[Doc], static: Doc | None, instances: int
) -> str:
    P = int(doc["page_size"])
    loader = doc["loader"]
    meta = (
        f"{doc['machine']} · {P // 1024} KiB pages · "
        + (f"{loader['family']} loader {loader['path']}" if loader.get("path") else "static")
        + f" · profile {doc['profile']}"
    )
    out = [
        f'<section class="binary" id="b{index}"><h2>{esc(doc["binary"])}</h2>'
        f'<p class="meta">{esc(meta)}</p>',
        _summary(doc, cmp, static, instances),
        "<h3>Where the private dirty memory goes</h3>"
        f'<p class="note">{size_text(doc["total"]["private_dirty"]["expected"])} expected per '
        "instance: the objects' own pages, then what the process adds outside any file.</p>",
        stacked_bar(bar_segments(doc), label=f"private dirty of {doc['binary']} by object"),
        bar_legend(bar_segments(doc)),
    ]
    # Fleet chart.
    r = doc["total"]["private_dirty"]
    lines = [
        Line(
            label="as built",
            per_instance=r["expected"],
            once=doc["total"]["shared_clean"],
            low=r["low"],
            high=r["high"],
            colour="#004488",
        )
    ]
    if static is not None:
        sr = static["total"]["private_dirty"]
        lines.append(
            Line(
                label="linked statically",
                per_instance=sr["expected"],
                once=static["total"]["shared_clean"],
                colour="#BB5566",
                dash="9 5",
            )
        )
    out.append(
        f"<h3>Fleet: cost of 1 to {instances:,} instances</h3>"
        '<p class="note">n × private dirty (expected; the band spans low .. high) + shared clean '
        "once.</p>" + fleet_chart(lines, instances, chart_id=f"fleet{index}")
    )
    if static is not None:
        out.append(
            '<ul class="notes">'
            + "".join(f"<li>{esc(a)}</li>" for a in static["assumptions"] if "what-if" in a)
            + "</ul>"
        )
    # Page maps.
    all_causes = causes_in(doc)
    has_unknown = any(p["vaddr"] is None for o in doc["objects"] for p in o["pages"])
    out.append(
        "<h3>Page maps: every writable page, one cell each</h3>"
        + cause_legend(all_causes, with_compare=bool(cmp), has_unknown=has_unknown)
    )
    for o in doc["objects"]:
        pd = o["private_dirty"]
        counted = sum(1 for p in o["pages"] if p["phase"] != "possible")
        out.append(
            '<div class="obj">'
            f'<h4><span class="on">{esc(basename(o["path"]))}</span> '
            f'<span class="role">{esc(o["role"])}</span> '
            f'<span class="path">{esc(o["path"])}</span></h4>'
            f'<p class="note">{len(o["pages"])} pages listed of {int(o["writable_pages"])} '
            f"writable · {counted} predicted written · expected "
            f"{size_text(pd['expected'])} (high {size_text(pd['high'])})</p>"
            + object_map(o, P, cmp)
            + "".join(f'<p class="note">note: {esc(n)}</p>' for n in o["notes"])
            + "</div>"
        )
    out.append("<h3>Tables</h3>" + objects_table(doc) + process_table(doc))
    if cmp:
        out.append("<h3>Estimate against measurement</h3>" + comparison_block(cmp))
    extra = []
    for m in doc["missing"]:
        extra.append(f"missing: {m.get('needed')} (needed by {m.get('parent')})")
    extra += [f"warning: {w}" for w in doc["warnings"]]
    extra += [f"assumption: {a}" for a in doc["assumptions"]]
    if extra:
        out.append(
            '<h3>Findings and assumptions</h3><ul class="notes">'
            + "".join(f"<li>{esc(x)}</li>" for x in extra)
            + "</ul>"
        )
    out.append("</section>")
    return "".join(out)


def estimate_html(
    docs: Sequence[Doc],
    *,
    comparisons: Sequence[Doc] = (),
    static_whatif: Sequence[Doc] = (),
    instances: int = 129,
) -> str:
    """One HTML page for `elfcost.estimate/1` documents (one per binary).

    `comparisons`: `elfcost.comparison/1` documents (from validate) for the same binaries; they
    are matched by `binary` and drawn beside the prediction. `static_whatif`: estimate documents
    made with `--assume static`, matched by `binary`, drawn as a second fleet line.
    `instances`: the fleet chart's last instance count (at least 2 are drawn).
    """
    statics = {d.get("binary"): d for d in static_whatif}
    title = f"elfcost: {docs[0]['binary']}" if len(docs) == 1 else f"elfcost: {len(docs)} programs"
    if not docs:
        title = "elfcost: no programs"
    body = []
    if len(docs) > 1:
        body.append(
            "<nav><h3>Programs</h3>"
            '<p class="note">expected private dirty per instance; click a name for its '
            "section</p>"
            + ranking_bars([(d["binary"], cost_split(d)) for d in docs], top=len(docs), link=True)
            + "</nav>"
        )
    for i, d in enumerate(docs):
        body.append(
            _binary_section(
                d, i, comparisons_of(d, comparisons), statics.get(d.get("binary")), instances
            )
        )
    return _page(
        title,
        "".join(body),
        "private dirty memory predicted from the ELF files; "
        "hover a page for its cause, sections and relocations",
    )


def scan_ranking(results: Sequence[Doc]) -> dict[str, Any]:
    """Rank programs by expected private dirty, and libraries by their summed cost.

    A library's summed cost is what every program that loads it pays for it, once per program
    (its private pages are copied into each process). Non-estimate documents (errors) are left
    out. Returns {"programs": [...], "libraries": [...]}, both sorted most expensive first.
    """
    ests = [d for d in results if d.get("schema") == "elfcost.estimate/1"]
    programs = []
    libs: dict[str, dict[str, Any]] = {}
    for d in ests:
        r = d["total"]["private_dirty"]
        programs.append(
            {
                "binary": d["binary"],
                "private_dirty": dict(r),
                "shared_clean": d["total"]["shared_clean"],
                "objects": len(d["objects"]),
                "split": cost_split(d),
            }
        )
        for o in d["objects"]:
            if o["role"] == "executable":
                continue
            e = libs.setdefault(
                o["path"],
                {
                    "path": o["path"],
                    "role": o["role"],
                    "programs": 0,
                    "total_expected": 0,
                    "per_process_expected": 0,
                    "needed_by": [],
                },
            )
            e["programs"] += 1
            e["total_expected"] += int(o["private_dirty"]["expected"])
            e["per_process_expected"] = max(
                e["per_process_expected"], int(o["private_dirty"]["expected"])
            )
            e["needed_by"].append(d["binary"])
    programs.sort(key=lambda p: (-p["private_dirty"]["expected"], p["binary"]))
    libraries = sorted(libs.values(), key=lambda x: (-x["total_expected"], x["path"]))
    return {"programs": programs, "libraries": libraries, "skipped": len(results) - len(ests)}


_LIB_PART = {"interpreter": "loader"}


def _needed_by(names: Sequence[str]) -> str:
    shown = ", ".join(esc(basename(n)) for n in names[:5])
    if len(names) <= 5:
        return f'<td class="detail" data-v="{len(names)}">{shown}</td>'
    rest = "<br>".join(esc(n) for n in names)
    return (
        f'<td class="detail" data-v="{len(names)}"><details><summary>{shown} and '
        f"{len(names) - 5} more</summary>{rest}</details></td>"
    )


def scan_html(
    results: Sequence[Doc], ranking: Mapping[str, Any] | None = None, *, top: int = 20
) -> str:
    """One HTML page for many programs: the top `top` as bars, programs and libraries ranked.

    `results`: `elfcost.estimate/1` documents (anything else is counted as skipped).
    `ranking`: as `scan_ranking` returns it; computed from `results` when None.
    """
    rk = ranking if ranking is not None else scan_ranking(results)
    programs: Sequence[Mapping[str, Any]] = rk.get("programs", ())
    libraries: Sequence[Mapping[str, Any]] = rk.get("libraries", ())
    total = sum(int(p["private_dirty"]["expected"]) for p in programs)
    head = (
        f'<section class="binary"><h2>{len(programs):,} programs</h2>'
        f'<p class="meta">{size_text(total)} private dirty expected if each runs once · '
        f"{len(libraries):,} shared objects"
        + (f" · {plural(int(rk['skipped']), 'input')} not estimated" if rk.get("skipped") else "")
        + "</p>"
    )
    bars = ranking_bars(
        [
            (p["binary"], p.get("split") or {"program": p["private_dirty"]["expected"]})
            for p in programs
        ],
        top=top,
    )
    lib_bars = ranking_bars(
        [
            (
                lb["path"],
                {_LIB_PART.get(lb.get("role", ""), "libraries"): int(lb["total_expected"])},
            )
            for lb in libraries
        ],
        top=top,
    )
    prow = []
    for i, p in enumerate(programs, 1):
        r = p["private_dirty"]
        prow.append(
            f'<tr><td class="num" data-v="{i}">{i}</td><td class="path">{esc(p["binary"])}</td>'
            + int_cell(int(p.get("objects", 0)))
            + size_cell(r["at_entry"])
            + size_cell(r["low"])
            + size_cell(r["expected"], strong=True)
            + size_cell(r["high"])
            + size_cell(int(p.get("shared_clean", 0)))
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
        ],
        prow,
        caption="programs by expected private dirty (click a header to sort)",
    )
    lrow = []
    for i, lb in enumerate(libraries, 1):
        lrow.append(
            f'<tr><td class="num" data-v="{i}">{i}</td><td class="path">{esc(lb["path"])}</td>'
            f"<td>{esc(lb.get('role', ''))}</td>"
            + int_cell(int(lb["programs"]))
            + size_cell(int(lb.get("per_process_expected", 0)))
            + size_cell(int(lb["total_expected"]), strong=True)
            + _needed_by(list(lb.get("needed_by", ())))
            + "</tr>"
        )
    ltable = sortable_table(
        [
            header_cell("#", num=True),
            header_cell("shared object"),
            header_cell("role"),
            header_cell("programs", num=True),
            header_cell("per process", num=True),
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
        + "</section>"
    )
    return _page(
        f"elfcost scan: {len(programs)} programs",
        body,
        "private dirty memory predicted from the ELF files, per program and per shared object",
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
