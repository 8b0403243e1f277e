"""JSON documents → one self-contained HTML report: page maps, charts and sortable tables.

The report is read offline and attached to CI runs, so everything is inline: CSS, a little
JavaScript, and SVG drawn here (no chart library, no fonts, no network). It works on documents,
not on the model, so a report can be made from saved JSON (`elfcost.estimate/1`,
`elfcost.comparison/1`) as well as from a live estimate.

Every string that comes from a document is escaped with `html.escape` (paths can hold anything)
and no document text ever reaches the script: the script only reads attributes it finds in the
page, so a hostile path cannot break out of a `<script>` element.
"""

from __future__ import annotations

import html
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

Doc = Mapping[str, Any]

# cause → (letter, fill, ink, what it means). Letters are the ones `elfcost explain` prints in
# its page map, so the two views read alike. Fills follow Paul Tol's colour-blind-safe "muted"
# scheme (plus three of his extra tones); the letter in every cell keeps the map readable where
# two fills look alike anyway, and in greyscale print.
CAUSES: dict[str, tuple[str, str, str, str]] = {
    "textrel": ("T", "#882255", "#fff", "text relocation: the loader writes into code pages"),
    "copy-reloc": ("C", "#CC6677", "#000", "copy relocation target in the executable"),
    "relocation": ("R", "#332288", "#fff", "relocations applied by the loader"),
    "dynamic": ("D", "#88CCEE", "#000", ".dynamic rewritten by the loader"),
    "dt-debug": ("d", "#44AA99", "#000", "DT_DEBUG slot set for debuggers"),
    "got-header": ("G", "#117733", "#fff", "GOT header (link map, resolver)"),
    "irelative": ("I", "#AA4499", "#fff", "IFUNC results (IRELATIVE)"),
    "bss-tail": ("B", "#DDCC77", "#000", "kernel zero-fills the tail of the last file page"),
    "gap-donation": ("g", "#999933", "#000", "musl donates the page tail to malloc"),
    "loader-data": ("L", "#0077BB", "#fff", "the dynamic loader's own data"),
    "libc-startup": ("S", "#EE7733", "#000", "libc start-up writes (calibrated)"),
    "constructor": ("c", "#661100", "#fff", "a library initialiser's writes (calibrated)"),
    "possible-write": ("·", "#DDDDDD", "#444", "writable, nothing known to write it (high bound)"),
}
_UNKNOWN_CAUSE = ("?", "#777777", "#fff", "a cause this report does not know")

# When a page is written: validate checks "entry" pages at the entry point and "entry" + "idle"
# pages once the program idles; "possible" pages only count towards the high bound.
_PHASE_TEXT = {
    "entry": "written before the entry point",
    "idle": "written after entry (start-up, before idle)",
    "possible": "may be written (high bound only)",
}

# Process items (stack, heap, TLS...) and objects need telling apart in the stacked bar: objects
# take cool tones by role, process items warm ones, each with a label or a legend entry.
_ROLE_FILLS = {
    "executable": ("#004488",),
    "interpreter": ("#6699CC",),
    "library": ("#44AA99", "#117733", "#88CCEE", "#999933", "#332288", "#66CCEE", "#228833"),
}
_PROCESS_FILLS = ("#EE7733", "#DDAA33", "#CC3311", "#EE9988", "#BB5566", "#997700")


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def size_text(n: int) -> str:
    """Bytes for people: KiB below 10 MiB (pages are KiB multiples), then MiB, then GiB."""
    if abs(n) < 10 * 1024 * 1024:
        k = n / 1024
        return f"{k:,.0f} KiB" if k == int(k) else f"{k:,.1f} KiB"
    if abs(n) < 10 * 1024**3:
        return f"{n / 1024**2:,.1f} MiB"
    return f"{n / 1024**3:,.2f} GiB"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _basename(path: str) -> str:
    return os.path.basename(path.rstrip("/")) or path


def _cause(c: str) -> tuple[str, str, str, str]:
    return CAUSES.get(c, _UNKNOWN_CAUSE)


# -- comparisons: what was measured, page by page ---------------------------------------------


class _Stop(msgspec.Struct, frozen=True, kw_only=True):
    """One comparison document's view of one object, rebuilt as sets of page addresses."""

    stop: str
    written: frozenset[int]  # measured dirty pages
    predicted_clean: Mapping[int, Doc]  # predicted written, measured not
    unpredicted: Mapping[int, Doc]  # measured written, not predicted
    consistent: bool  # the comparison was made against this very estimate


def _stops_for(obj: Doc, comparisons: Sequence[Doc]) -> list[_Stop]:
    """The measured pages of `obj` at each stop.

    A comparison document lists only the mismatches; the measured set is the predicted set
    (pages of the phases done by that stop, as runtime/compare.py counts them) minus the pages
    found clean plus the unpredicted ones. Its page counts tell whether it was made against the
    same estimate: if not, the map would lie, so the stop is flagged instead.
    """
    out = []
    for c in comparisons:
        co = next((o for o in c.get("objects", ()) if o.get("path") == obj["path"]), None)
        if co is None:
            continue
        stop = str(c.get("stop", ""))
        phases = ("entry",) if stop == "entry" else ("entry", "idle")
        predicted = {
            p["vaddr"] for p in obj["pages"] if p["vaddr"] is not None and p["phase"] in phases
        }
        clean = {p["vaddr"]: p for p in co.get("predicted_clean", ())}
        unpredicted = {p["vaddr"]: p for p in co.get("unpredicted_dirty", ())}
        written = (predicted - clean.keys()) | unpredicted.keys()
        consistent = (
            len(predicted) == co.get("predicted_pages", len(predicted))
            and len(written) == co.get("measured_pages", len(written))
            and clean.keys() <= predicted
        )
        out.append(
            _Stop(
                stop=stop,
                written=frozenset(written),
                predicted_clean=clean,
                unpredicted=unpredicted,
                consistent=consistent,
            )
        )
    return out


def _comparisons_of(doc: Doc, comparisons: Sequence[Doc]) -> list[Doc]:
    order = {"entry": 0, "idle": 1}
    mine = [c for c in comparisons if c.get("binary") == doc.get("binary")]
    return sorted(mine, key=lambda c: order.get(str(c.get("stop")), 2))


# -- page maps ----------------------------------------------------------------------------------


def _runs(vaddrs: Sequence[int], page_size: int) -> list[list[int]]:
    """Contiguous runs of page addresses (in practice: one per writable segment)."""
    runs: list[list[int]] = []
    for v in sorted(vaddrs):
        if runs and v - runs[-1][-1] == page_size:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


def _page_tip(obj: Doc, p: Doc, stops: Sequence[_Stop]) -> str:
    v = p["vaddr"]
    where = f"{v:#x}" if v is not None else "location unknown"
    letter, _, _, meaning = _cause(p["cause"])
    lines = [
        f"{_basename(obj['path'])} page {where}",
        f"{p['cause']} ({letter}): {meaning}",
        ("certain" if p["certain"] else "calibrated") + " · " + _PHASE_TEXT.get(p["phase"], "?"),
    ]
    if p.get("sections"):
        lines.append("sections: " + " ".join(p["sections"]))
    n = p.get("relocations", 0)
    if n:
        lines.append(f"relocations: {n} ({', '.join(p.get('relocation_types', ()))})")
    if p.get("detail"):
        lines.append(p["detail"])
    for s in stops:
        if v in s.predicted_clean:
            lines.append(f"MISMATCH at {s.stop}: predicted written, measured clean")
        elif v in s.unpredicted:
            lines.append(f"MISMATCH at {s.stop}: written, not predicted")
    return "\n".join(lines)


def _cell(obj: Doc, p: Doc, stops: Sequence[_Stop]) -> str:
    letter, fill, ink, _ = _cause(p["cause"])
    cls = ["pg"]
    if p["cause"] == "possible-write":
        cls.append("poss")
    elif not p["certain"]:
        cls.append("cal")
    if p["phase"] == "idle":
        cls.append("idle")
    if p["vaddr"] is None:
        cls.append("unk")
    v = p["vaddr"]
    if v is not None and any(v in s.predicted_clean or v in s.unpredicted for s in stops):
        cls.append("mis")
    return (
        f'<span class="{" ".join(cls)}" data-page="1" data-cause="{_e(p["cause"])}" '
        f'data-vaddr="{"" if v is None else int(v)}" style="background:{fill};color:{ink}" '
        f'title="{_e(_page_tip(obj, p, stops))}">{_e(letter)}</span>'
    )


def _measured_cell(obj: Doc, p: Doc, s: _Stop) -> str:
    v = p["vaddr"]
    name = f"{_basename(obj['path'])} page {v:#x}"
    if v in s.predicted_clean:
        tip = f"{name}\nmeasured at {s.stop}: clean, but predicted written ({p['cause']})"
        return f'<span class="mp miss" data-measured="clean" title="{_e(tip)}">✕</span>'
    if v in s.unpredicted:
        u = s.unpredicted[v]
        tip = f"{name}\nmeasured at {s.stop}: written, not predicted\nlikely: {u.get('why', '?')}"
        return f'<span class="mp extra" data-measured="dirty" title="{_e(tip)}">!</span>'
    if v in s.written:
        tip = f"{name}\nmeasured at {s.stop}: written, as predicted"
        return f'<span class="mp dirty" data-measured="dirty" title="{_e(tip)}"></span>'
    tip = f"{name}\nmeasured at {s.stop}: not written"
    return f'<span class="mp clean" data-measured="clean" title="{_e(tip)}"></span>'


def _grid(
    cells: Iterable[str], columns: int, first_vaddr: int | None, page_size: int, *, labels: bool
) -> str:
    """Cells in rows of `columns`; with `labels`, each row starts with its first page's address
    (measured maps leave them out: they sit beside the prediction, row for row)."""
    items = list(cells)
    rows = []
    for i in range(0, len(items), columns):
        label = "" if first_vaddr is None else f"{first_vaddr + i * page_size:#x}"
        head = f'<span class="addr">{label}</span>' if labels else ""
        rows.append(head + "".join(items[i : i + columns]))
    template = f"{'6.5em ' if labels else ''}repeat({columns},20px)"
    return f'<div class="grid" style="grid-template-columns:{template}">' + "".join(rows) + "</div>"


# Objects with more pages than this get a strip and a collapsed map (4 MiB of 4 KiB pages).
_BIG_MAP = 1024


def _object_map(obj: Doc, page_size: int, comparisons: Sequence[Doc]) -> str:
    """The object's pages as cells in address order, runs of contiguous pages (its writable
    segments) one block each, then the pages of unknown location; measured maps beside."""
    stops = _stops_for(obj, comparisons)
    pages = list(obj["pages"])
    located = {p["vaddr"]: p for p in pages if p["vaddr"] is not None}
    unknown = [p for p in pages if p["vaddr"] is None]
    outside = sorted(
        {v for s in stops for v in s.unpredicted if v not in located},
    )
    # Fewer columns when measured maps stand beside the prediction, so all fit a laptop screen;
    # every map of one object uses the same width so their rows line up address for address.
    columns = 16 if stops else 32
    columns = max(
        1, min(columns, max((len(r) for r in _runs(list(located), page_size)), default=1))
    )

    cols = 1 + len(stops)
    out = []
    big = len(pages) > _BIG_MAP
    if big:
        # Thousands of cells would bury the other objects: an address strip gives the shape,
        # the cells (all of them, still one per page) are one click away.
        out.append(
            _strip(obj, [located[v] for v in sorted(located)], page_size)
            + f"<details><summary>show all {len(pages):,} pages, one cell each</summary>"
        )
    out.append(f'<div class="maps" style="grid-template-columns:repeat({cols},max-content)">')
    if stops:
        out.append('<div class="mh">predicted</div>')
        out.extend(f'<div class="mh">measured · {_e(s.stop)}</div>' for s in stops)
    for run in _runs(list(located), page_size):
        cells = (_cell(obj, located[v], stops) for v in run)
        out.append(_grid(cells, columns, run[0], page_size, labels=True))
        for s in stops:
            measured = (_measured_cell(obj, located[v], s) for v in run)
            out.append(_grid(measured, columns, run[0], page_size, labels=False))
    if unknown:
        out.append(
            '<div class="unkbox"><div class="mh">location unknown (calibrated)</div>'
            + _grid((_cell(obj, p, stops) for p in unknown), columns, None, page_size, labels=True)
            + "</div>"
        )
        out.extend('<div class="mh na">not compared by address</div>' for _ in stops)
    out.append("</div>")
    if big:
        out.append("</details>")
    notes = []
    if outside:
        lines = ", ".join(
            f"{v:#x} ({s.unpredicted[v].get('why', '?')}, at {s.stop})"
            for v in outside
            for s in stops
            if v in s.unpredicted
        )
        notes.append(f"written outside every writable page of the estimate: {lines}")
    for s in stops:
        if not s.consistent:
            notes.append(
                f"the {s.stop} comparison was made against a different estimate "
                "(its page counts do not match this one): its map is approximate"
            )
    out.extend(f'<p class="warn">{_e(n)}</p>' for n in notes)
    unlisted = obj.get("possible_unlisted", 0)
    if unlisted:
        out.append(
            f'<p class="note">+ {unlisted:,} more writable pages the program may write, '
            "counted in the high bound, not drawn</p>"
        )
    return "".join(out)


def _strip(obj: Doc, located: Sequence[Doc], page_size: int, width: int = 1100) -> str:
    """The located pages as one bar in address order, each stretch of one cause a rectangle."""
    if not located:
        return ""
    stretches: list[tuple[str, int, int]] = []  # cause, first vaddr, pages
    for p in located:
        c, v = p["cause"], p["vaddr"]
        if (
            stretches
            and stretches[-1][0] == c
            and stretches[-1][1] + stretches[-1][2] * page_size == v
        ):
            stretches[-1] = (c, stretches[-1][1], stretches[-1][2] + 1)
        else:
            stretches.append((c, v, 1))
    per = width / len(located)
    x = 0.0
    parts = []
    for c, v, n in stretches:
        _, fill, _, _ = _cause(c)
        tip = f"{v:#x}..{v + n * page_size:#x}: {n:,} pages {c}"
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{max(n * per, 0.6):.2f}" height="18" '
            f'fill="{fill}"><title>{_e(tip)}</title></rect>'
        )
        x += n * per
    return (
        f'<svg class="strip" viewBox="0 0 {width} 18" width="{width}" height="18" role="img" '
        f'aria-label="{_e(_basename(obj["path"]))} pages by cause">' + "".join(parts) + "</svg>"
    )


def _legend(causes: Iterable[str], *, with_compare: bool, has_unknown: bool) -> str:
    items = []
    for c in causes:
        letter, fill, ink, meaning = _cause(c)
        cls = "pg poss" if c == "possible-write" else "pg"
        items.append(
            f'<span class="li"><span class="{cls}" style="background:{fill};color:{ink}">'
            f"{_e(letter)}</span><b>{_e(c)}</b> <i>{_e(meaning)}</i></span>"
        )
    marks = [
        '<span class="li"><span class="pg cal" style="background:#bbb;color:#000"></span>'
        "<b>corner mark</b> <i>calibrated, not derived from the file</i></span>",
        '<span class="li"><span class="pg idle" style="background:#bbb;color:#000"></span>'
        "<b>underline</b> <i>written after entry, during start-up</i></span>",
    ]
    if has_unknown:
        marks.append(
            '<span class="li"><span class="pg unk" style="background:#bbb;color:#000"></span>'
            "<b>dashed</b> <i>location unknown for this build</i></span>"
        )
    if with_compare:
        marks += [
            '<span class="li"><span class="mp dirty"></span><b>measured written</b></span>',
            '<span class="li"><span class="mp clean"></span><b>measured clean</b></span>',
            '<span class="li"><span class="mp miss">✕</span><b>predicted, found clean</b></span>',
            '<span class="li"><span class="mp extra">!</span><b>written, not predicted</b></span>',
        ]
    return (
        '<div class="legend">'
        + "".join(items)
        + '</div><div class="legend marks">'
        + "".join(marks)
        + "</div>"
    )


# -- charts (inline SVG) ------------------------------------------------------------------------


def _nice_step(span: float, ticks: int = 5) -> float:
    """A 1-2-5 step giving about `ticks` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def _unit(n: float) -> tuple[int, str]:
    for scale, name in ((1024**3, "GiB"), (1024**2, "MiB")):
        if n >= 2 * scale:
            return scale, name
    return 1024, "KiB"


class _Segment(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    tip: str
    value: int
    fill: str


def _stacked_bar(segments: Sequence[_Segment], *, width: int = 1100, label: str = "") -> str:
    """One horizontal stacked bar, labelled inside where a segment is wide enough."""
    total = sum(s.value for s in segments) or 1
    h, x = 44, 0.0
    parts = []
    for s in segments:
        w = width * s.value / total
        if w <= 0:
            continue
        ink = "#fff" if _dark(s.fill) else "#000"
        parts.append(
            f'<g class="seg"><title>{_e(s.tip)}</title>'
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{h}" fill="{s.fill}" '
            f'stroke="#fff" stroke-width="1"/>'
        )
        text = f"{s.label} {size_text(s.value)}"
        if w > 7.2 * len(text) + 10:
            parts.append(
                f'<text x="{x + 6:.2f}" y="{h / 2 + 5}" fill="{ink}" font-size="13">'
                f"{_e(text)}</text>"
            )
        elif w > 7.2 * len(s.label) + 10:
            parts.append(
                f'<text x="{x + 6:.2f}" y="{h / 2 + 5}" fill="{ink}" font-size="13">'
                f"{_e(s.label)}</text>"
            )
        parts.append("</g>")
        x += w
    aria = _e(label or "stacked bar")
    return (
        f'<svg class="bar" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" '
        f'aria-label="{aria}">' + "".join(parts) + "</svg>"
    )


def _dark(fill: str) -> bool:
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 140


def _bar_legend(segments: Sequence[_Segment]) -> str:
    return (
        '<div class="legend barlegend">'
        + "".join(
            f'<span class="li" title="{_e(s.tip)}"><span class="sw" style="background:{s.fill}">'
            f"</span><b>{_e(s.label)}</b> {size_text(s.value)}</span>"
            for s in segments
            if s.value > 0
        )
        + "</div>"
    )


# A bar with a hundred slivers says nothing: past this many objects the smallest are merged.
_BAR_OBJECTS = 12


def _segments(doc: Doc) -> list[_Segment]:
    """The stacked bar's parts: objects in load order (the smallest merged when there are many),
    then the process items."""
    segs = []
    libs = 0
    objects = list(doc["objects"])
    merged: list[Doc] = []
    if len(objects) > _BAR_OBJECTS:
        by_size = sorted(objects, key=lambda o: -int(o["private_dirty"]["expected"]))
        keep = {id(o) for o in by_size[: _BAR_OBJECTS - 1]}
        merged = [o for o in objects if id(o) not in keep]
        objects = [o for o in objects if id(o) in keep]
    for o in objects:
        fills = _ROLE_FILLS.get(o["role"], _ROLE_FILLS["library"])
        fill = fills[libs % len(fills)] if o["role"] == "library" else fills[0]
        libs += o["role"] == "library"
        r = o["private_dirty"]
        segs.append(
            _Segment(
                label=_basename(o["path"]),
                tip=f"{o['path']} ({o['role']}): expected {size_text(r['expected'])}, "
                f"range {size_text(r['low'])} .. {size_text(r['high'])}",
                value=r["expected"],
                fill=fill,
            )
        )
    if merged:
        names = ", ".join(_basename(o["path"]) for o in merged[:40])
        more = f" and {len(merged) - 40} more" if len(merged) > 40 else ""
        segs.append(
            _Segment(
                label=f"{len(merged)} more objects",
                tip=f"{len(merged)} smaller objects: {names}{more}",
                value=sum(int(o["private_dirty"]["expected"]) for o in merged),
                fill="#BBBBBB",
            )
        )
    for i, (name, r) in enumerate(doc["process"].items()):
        segs.append(
            _Segment(
                label=f"[{name}]",
                tip=f"[{name}]: expected {size_text(r['expected'])}, "
                f"range {size_text(r['low'])} .. {size_text(r['high'])}\n{r.get('detail', '')}",
                value=r["expected"],
                fill=_PROCESS_FILLS[i % len(_PROCESS_FILLS)],
            )
        )
    return segs


class _Line(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    per_instance: int  # private dirty expected, paid by every instance
    once: int  # shared clean, paid once
    low: int | None = None  # a band from per-instance low to high, when known
    high: int | None = None
    colour: str = "#004488"
    dash: str = ""


def _fleet_chart(lines: Sequence[_Line], instances: int, *, chart_id: str) -> str:
    """Cost of 1..N instances: straight lines n × private + shared, with axes and labels.

    The high bound counts every writable page a program could touch and can be ten times the
    expected cost; scaled to it, the lines that matter would lie flat on the axis. So the chart
    is scaled to the expected lines and the band is clipped, with its end value written out.
    """
    W, H = 900, 360
    left, right, top, bottom = 78, 230, 20, 48
    pw, ph = W - left - right, H - top - bottom
    n_max = max(instances, 2)

    def cost(line: _Line, n: int, per: int | None = None) -> int:
        return n * (line.per_instance if per is None else per) + line.once

    y_expected = max(cost(ln, n_max) for ln in lines) or 1
    y_high = max(cost(ln, n_max, ln.high) for ln in lines)
    y_max = y_high if y_high <= 2 * y_expected else 1.3 * y_expected
    scale, unit = _unit(y_max)
    step = _nice_step(y_max / scale)
    y_top = math.ceil(y_max / scale / step) * step * scale

    def sx(n: float) -> float:
        return left + pw * (n - 1) / (n_max - 1)

    def sy(b: float) -> float:
        return top + ph * (1 - b / y_top)

    out = [
        f'<svg class="fleet" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="fleet cost for 1 to {n_max} instances">'
        f'<clipPath id="{chart_id}"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/>'
        "</clipPath>"
    ]
    # Grid and y axis.
    v = 0.0
    while v <= y_top / scale + 1e-9:
        y = sy(v * scale)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="gridl"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{v:,.10g} {unit}</text>"
        )
        v += step
    # x axis: instance counts.
    xs = _nice_step(n_max - 1, 8)
    ticks = [1.0] + [k * xs for k in range(1, int(n_max // xs) + 1) if k * xs > 1]
    for t in ticks:
        x = sx(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 5}" class="axis"/>'
            f'<text x="{x:.1f}" y="{top + ph + 20}" text-anchor="middle" class="tick">'
            f"{t:,.0f}</text>"
        )
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" class="axis"/>'
        f'<text x="{left + pw / 2:.1f}" y="{H - 8}" text-anchor="middle" class="albl">'
        "instances running at once</text>"
    )
    label_ys: list[float] = []
    for ln in lines:
        if ln.low is not None and ln.high is not None:
            pts = [
                (sx(1), sy(cost(ln, 1, ln.low))),
                (sx(n_max), sy(cost(ln, n_max, ln.low))),
                (sx(n_max), sy(cost(ln, n_max, ln.high))),
                (sx(1), sy(cost(ln, 1, ln.high))),
            ]
            out.append(
                '<polygon points="'
                + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
                + f'" fill="{ln.colour}" fill-opacity="0.12" clip-path="url(#{chart_id})"><title>'
                + _e(f"{ln.label}: low .. high private dirty per instance")
                + "</title></polygon>"
            )
            if cost(ln, n_max, ln.high) > y_top:
                out.append(
                    f'<text x="{left + pw - 6}" y="{top + 14}" text-anchor="end" class="tick halo">'
                    f"{_e(ln.label)}: high bound {size_text(cost(ln, n_max, ln.high))} at "
                    f"{n_max:,} (above the chart)</text>"
                )
        y1, y2 = sy(cost(ln, 1)), sy(cost(ln, n_max))
        dash = f' stroke-dasharray="{ln.dash}"' if ln.dash else ""
        tip = (
            f"{ln.label}: n × {size_text(ln.per_instance)} + {size_text(ln.once)} shared once; "
            f"{n_max} instances: {size_text(cost(ln, n_max))}"
        )
        out.append(
            f'<line x1="{sx(1):.1f}" y1="{y1:.1f}" x2="{sx(n_max):.1f}" y2="{y2:.1f}" '
            f'stroke="{ln.colour}" stroke-width="3"{dash}><title>{_e(tip)}</title></line>'
        )
        # End labels, nudged apart when two lines end close together.
        ly = y2
        for other in label_ys:
            if abs(ly - other) < 38:
                ly = other + 38 if ly >= other else other - 38
        label_ys.append(ly)
        out.append(
            f'<text x="{left + pw + 8}" y="{ly - 2:.1f}" class="endl" fill="{ln.colour}">'
            f"{_e(ln.label)}</text>"
            f'<text x="{left + pw + 8}" y="{ly + 14:.1f}" class="tick">'
            f"{_e(size_text(cost(ln, n_max)))} at {n_max:,}</text>"
        )
    # Where two lines cross, the cheaper choice flips: worth pointing at.
    if len(lines) == 2:
        a, b = lines
        dp = a.per_instance - b.per_instance
        if dp != 0:
            cross = (b.once - a.once) / dp
            if 1 < cross < n_max:
                x, y = sx(cross), sy(cross * a.per_instance + a.once)
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="none" stroke="#000"/>'
                    f'<text x="{x + 8:.1f}" y="{y - 8:.1f}" class="tick">'
                    f"equal at {cross:,.0f} instances</text>"
                )
    out.append("</svg>")
    return "".join(out)


# -- tables -------------------------------------------------------------------------------------


def _th(label: str, *, num: bool = False, tip: str = "") -> str:
    t = f' title="{_e(tip)}"' if tip else ""
    return f'<th class="{"num" if num else ""}"{t}>{_e(label)}</th>'


def _td_size(n: int, *, strong: bool = False) -> str:
    cls = "num strong" if strong else "num"
    return f'<td class="{cls}" data-v="{int(n)}">{size_text(n)}</td>'


def _td_int(n: int) -> str:
    return f'<td class="num" data-v="{int(n)}">{int(n):,}</td>'


def _table(head: Sequence[str], rows: Iterable[str], *, caption: str = "") -> str:
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table class="sortable">{cap}<thead><tr>{"".join(head)}</tr>'
        "</thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _causes_in(doc: Doc) -> list[str]:
    """The causes the document uses: known ones in precedence order, then any others."""
    used = {p["cause"] for o in doc["objects"] for p in o["pages"]}
    return [c for c in CAUSES if c in used] + sorted(used - CAUSES.keys())


def _objects_table(doc: Doc) -> str:
    present = _causes_in(doc)
    head = [_th("object"), _th("role"), _th("writable pages", num=True)]
    # Cause columns may wrap: there can be a dozen of them beside the sizes.
    head += [
        f'<th class="num cz" title="{_e("pages: " + _cause(c)[3])}">{_e(c)}</th>' for c in present
    ]
    head += [
        _th("at entry", num=True),
        _th("low", num=True),
        _th("expected", num=True),
        _th("high", num=True),
        _th("shared clean", num=True, tip="file-backed pages, shared by every instance"),
    ]
    rows = []
    for o in doc["objects"]:
        counts = Counter(p["cause"] for p in o["pages"])
        r = o["private_dirty"]
        rows.append(
            "<tr>"
            f'<td class="path" title="{_e(o["path"])}">{_e(o["path"])}</td>'
            f"<td>{_e(o['role'])}</td>"
            + _td_int(o["writable_pages"])
            + "".join(_td_int(counts.get(c, 0)) for c in present)
            + _td_size(r["at_entry"])
            + _td_size(r["low"])
            + _td_size(r["expected"], strong=True)
            + _td_size(r["high"])
            + _td_size(o["shared_clean"])
            + "</tr>"
        )
    return _table(head, rows, caption="objects (click a header to sort)")


def _process_table(doc: Doc) -> str:
    head = [
        _th("process item"),
        _th("at entry", num=True),
        _th("low", num=True),
        _th("expected", num=True),
        _th("high", num=True),
        _th("certain"),
        _th("how it is estimated"),
    ]
    rows = []
    for name, r in doc["process"].items():
        rows.append(
            f"<tr><td>[{_e(name)}]</td>"
            + _td_size(r["at_entry"])
            + _td_size(r["low"])
            + _td_size(r["expected"], strong=True)
            + _td_size(r["high"])
            + f"<td>{'yes' if r.get('certain') else 'no'}</td>"
            f'<td class="detail">{_e(r.get("detail", ""))}</td></tr>'
        )
    return _table(head, rows, caption="process items (not in any file)")


def _addrs(pages: Sequence[Doc]) -> str:
    return ", ".join(f"{p['vaddr']:#x} {p.get('cause', '')}" for p in pages) or "—"


def _comparison_block(cmp: Sequence[Doc]) -> str:
    out = []
    for c in cmp:
        t = c["total"]
        ok = bool(c.get("ok"))
        badge = '<span class="ok">ok</span>' if ok else '<span class="bad">outside tolerance</span>'
        pr = t["predicted"]
        out.append(
            f"<h4>measured at {_e(c.get('stop'))} {badge}</h4>"
            "<p>measured private dirty (whole process) "
            f"<b>{size_text(t['measured_private_dirty'])}</b>"
            f" · predicted {size_text(pr['low'])} .. <b>{size_text(pr['expected'])}</b> .. "
            f"{size_text(pr['high'])} · "
            + ("within bounds" if t.get("within_bounds") else "<b>outside the bounds</b>")
            + f" · tolerance {int(c.get('tolerance_pages', 0))} pages</p>"
        )
        head = [
            _th("object"),
            _th("predicted pages", num=True),
            _th("measured pages", num=True),
            _th("exact"),
            _th("predicted, found clean"),
            _th("written, not predicted"),
        ]
        rows = []
        for o in c["objects"]:
            rows.append(
                f'<tr class="{"" if o["exact"] else "mismatch"}">'
                f'<td class="path">{_e(o["path"])}</td>'
                + _td_int(o["predicted_pages"])
                + _td_int(o["measured_pages"])
                + f"<td>{'yes' if o['exact'] else '<b>no</b>'}</td>"
                f'<td class="detail">{_e(_addrs(o["predicted_clean"]))}</td>'
                f'<td class="detail">{_e(_addrs(o["unpredicted_dirty"]))}</td></tr>'
            )
        out.append(_table(head, rows))
    return "".join(out)


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
            f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div>'
            f'<div class="s">{_e(s)}</div></div>'
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
        f'<section class="binary" id="b{index}"><h2>{_e(doc["binary"])}</h2>'
        f'<p class="meta">{_e(meta)}</p>',
        _summary(doc, cmp, static, instances),
        "<h3>Where the private dirty memory goes</h3>"
        f'<p class="note">{size_text(doc["total"]["private_dirty"]["expected"])} expected per '
        "instance: the objects' own pages, then what the process adds outside any file.</p>",
        _stacked_bar(_segments(doc), label=f"private dirty of {doc['binary']} by object"),
        _bar_legend(_segments(doc)),
    ]
    # Fleet chart.
    r = doc["total"]["private_dirty"]
    lines = [
        _Line(
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
            _Line(
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
        "once.</p>" + _fleet_chart(lines, instances, chart_id=f"fleet{index}")
    )
    if static is not None:
        out.append(
            '<ul class="notes">'
            + "".join(f"<li>{_e(a)}</li>" for a in static["assumptions"] if "what-if" in a)
            + "</ul>"
        )
    # Page maps.
    all_causes = _causes_in(doc)
    has_unknown = any(p["vaddr"] is None for o in doc["objects"] for p in o["pages"])
    out.append(
        "<h3>Page maps: every writable page, one cell each</h3>"
        + _legend(all_causes, with_compare=bool(cmp), has_unknown=has_unknown)
    )
    for o in doc["objects"]:
        pd = o["private_dirty"]
        counted = sum(1 for p in o["pages"] if p["phase"] != "possible")
        out.append(
            '<div class="obj">'
            f'<h4><span class="on">{_e(_basename(o["path"]))}</span> '
            f'<span class="role">{_e(o["role"])}</span> '
            f'<span class="path">{_e(o["path"])}</span></h4>'
            f'<p class="note">{len(o["pages"])} pages listed of {int(o["writable_pages"])} '
            f"writable · {counted} predicted written · expected "
            f"{size_text(pd['expected'])} (high {size_text(pd['high'])})</p>"
            + _object_map(o, P, cmp)
            + "".join(f'<p class="note">note: {_e(n)}</p>' for n in o["notes"])
            + "</div>"
        )
    out.append("<h3>Tables</h3>" + _objects_table(doc) + _process_table(doc))
    if cmp:
        out.append("<h3>Estimate against measurement</h3>" + _comparison_block(cmp))
    extra = []
    for m in doc["missing"]:
        extra.append(f"missing: {m.get('needed')} (needed by {m.get('parent')})")
    extra += [f"warning: {w}" for w in doc["warnings"]]
    extra += [f"assumption: {a}" for a in doc["assumptions"]]
    if extra:
        out.append(
            '<h3>Findings and assumptions</h3><ul class="notes">'
            + "".join(f"<li>{_e(x)}</li>" for x in extra)
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
            + _ranking_bars([(d["binary"], _split(d)) for d in docs], top=len(docs), link=True)
            + "</nav>"
        )
    for i, d in enumerate(docs):
        body.append(
            _binary_section(
                d, i, _comparisons_of(d, comparisons), statics.get(d.get("binary")), instances
            )
        )
    return _page(
        title,
        "".join(body),
        "private dirty memory predicted from the ELF files; "
        "hover a page for its cause, sections and relocations",
    )


# -- many programs: ranking ---------------------------------------------------------------------


def _split(doc: Doc) -> dict[str, int]:
    """A program's expected private dirty in four parts: its file, libraries, loader, process."""
    parts = {"program": 0, "libraries": 0, "loader": 0, "process": 0}
    for o in doc["objects"]:
        key = {"executable": "program", "interpreter": "loader"}.get(o["role"], "libraries")
        parts[key] += int(o["private_dirty"]["expected"])
    parts["process"] = sum(int(r["expected"]) for r in doc["process"].values())
    return parts


_SPLIT_FILLS = {
    "program": "#004488",
    "libraries": "#44AA99",
    "loader": "#6699CC",
    "process": "#EE7733",
}


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
                "split": _split(d),
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


def _ranking_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]], *, top: int = 20, link: bool = False
) -> str:
    """Horizontal bars, one per row, stacked by part (program / libraries / loader / process)."""
    rows = list(rows)[:top]
    if not rows:
        return '<p class="note">nothing to show</p>'
    W, bar, gap, label_w, value_w = 1100, 20, 6, 330, 110
    H = len(rows) * (bar + gap) + 8
    biggest = max(sum(p.values()) for _, p in rows) or 1
    pw = W - label_w - value_w
    out = [
        f'<svg class="rank" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="ranking">'
    ]
    for i, (name, parts) in enumerate(rows):
        y = 4 + i * (bar + gap)
        shown = name if len(name) <= 40 else "…" + name[-39:]
        label = (
            f'<a href="#b{i}"><text x="{label_w - 8}" y="{y + 15}" text-anchor="end" '
            f'class="rl">{_e(shown)}</text></a>'
            if link
            else f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="rl">'
            f"{_e(shown)}</text>"
        )
        out.append(f"<g><title>{_e(name)}</title>{label}")
        x = float(label_w)
        for part, v in parts.items():
            w = pw * v / biggest
            if w > 0:
                out.append(
                    f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar}" '
                    f'fill="{_SPLIT_FILLS.get(part, "#888")}"><title>'
                    f"{_e(f'{name}: {part} {size_text(v)}')}</title></rect>"
                )
            x += w
        out.append(
            f'<text x="{x + 6:.2f}" y="{y + 15}" class="tick">{size_text(sum(parts.values()))}'
            "</text></g>"
        )
    out.append("</svg>")
    used = {k for _, parts in rows for k, v in parts.items() if v}
    legend = "".join(
        f'<span class="li"><span class="sw" style="background:{f}"></span><b>{k}</b></span>'
        for k, f in _SPLIT_FILLS.items()
        if k in used
    )
    return "".join(out) + f'<div class="legend barlegend">{legend}</div>'


_LIB_PART = {"interpreter": "loader"}


def _needed_by(names: Sequence[str]) -> str:
    shown = ", ".join(_e(_basename(n)) for n in names[:5])
    if len(names) <= 5:
        return f'<td class="detail" data-v="{len(names)}">{shown}</td>'
    rest = "<br>".join(_e(n) for n in names)
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
        + (f" · {_plural(int(rk['skipped']), 'input')} not estimated" if rk.get("skipped") else "")
        + "</p>"
    )
    bars = _ranking_bars(
        [
            (p["binary"], p.get("split") or {"program": p["private_dirty"]["expected"]})
            for p in programs
        ],
        top=top,
    )
    lib_bars = _ranking_bars(
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
            f'<tr><td class="num" data-v="{i}">{i}</td><td class="path">{_e(p["binary"])}</td>'
            + _td_int(int(p.get("objects", 0)))
            + _td_size(r["at_entry"])
            + _td_size(r["low"])
            + _td_size(r["expected"], strong=True)
            + _td_size(r["high"])
            + _td_size(int(p.get("shared_clean", 0)))
            + "</tr>"
        )
    ptable = _table(
        [
            _th("#", num=True),
            _th("program"),
            _th("objects", num=True),
            _th("at entry", num=True),
            _th("low", num=True),
            _th("expected", num=True),
            _th("high", num=True),
            _th("shared clean", num=True),
        ],
        prow,
        caption="programs by expected private dirty (click a header to sort)",
    )
    lrow = []
    for i, lb in enumerate(libraries, 1):
        lrow.append(
            f'<tr><td class="num" data-v="{i}">{i}</td><td class="path">{_e(lb["path"])}</td>'
            f"<td>{_e(lb.get('role', ''))}</td>"
            + _td_int(int(lb["programs"]))
            + _td_size(int(lb.get("per_process_expected", 0)))
            + _td_size(int(lb["total_expected"]), strong=True)
            + _needed_by(list(lb.get("needed_by", ())))
            + "</tr>"
        )
    ltable = _table(
        [
            _th("#", num=True),
            _th("shared object"),
            _th("role"),
            _th("programs", num=True),
            _th("per process", num=True),
            _th("summed", num=True, tip="what all the programs that load it pay for it"),
            _th("needed by"),
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

_CSS = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#d8dce3;--bg:#fff;--soft:#f4f6f9;--bad:#D55E00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",
 "Liberation Sans",sans-serif;color:var(--ink);background:var(--bg)}
header{padding:18px 32px 14px;border-bottom:1px solid var(--line);background:var(--soft)}
header h1{margin:0;font-size:20px;font-weight:650}
header p{margin:2px 0 0;color:var(--muted);font-size:13px}
main{padding:8px 32px 48px;max-width:1400px}
h2{font-size:22px;margin:26px 0 2px;font-family:ui-monospace,"DejaVu Sans Mono",monospace;
 word-break:break-all}
h3{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h4{font-size:15px;margin:18px 0 2px}
.meta,.note{color:var(--muted);font-size:13px;margin:2px 0 8px}
.warn{color:var(--bad);font-size:13px;margin:4px 0}
.path{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px;word-break:break-all}
td.path{white-space:nowrap}
h4 .path{color:var(--muted);font-weight:400}
h4 .on{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.role{font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.05em;
 color:var(--muted);border:1px solid var(--line);border-radius:3px;padding:0 4px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 6px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px;
 background:var(--soft)}
.card .k{font-size:12px;color:var(--muted)}
.card .v{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums}
.card .s{font-size:12px;color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:6px 0;font-size:13px}
.legend.marks{margin-bottom:12px}
.li{display:inline-flex;align-items:center;gap:6px}
.li i{color:var(--muted);font-style:normal}
.sw{display:inline-block;width:14px;height:14px;border-radius:3px}
.maps{display:grid;gap:6px 28px;align-items:start;margin:6px 0 4px;overflow-x:auto;padding:3px}
.mh{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;
 letter-spacing:.05em}
.mh.na{font-weight:400;text-transform:none;letter-spacing:0}
.unkbox{grid-column:1}
.grid{display:grid;gap:2px;align-items:center}
.addr{font:11px ui-monospace,"DejaVu Sans Mono",monospace;color:var(--muted);text-align:right;
 padding-right:6px}
.pg,.mp{position:relative;display:inline-block;width:20px;height:20px;border-radius:3px;
 font:700 12px/20px ui-monospace,"DejaVu Sans Mono",monospace;text-align:center;cursor:default}
.pg.poss{background-image:repeating-linear-gradient(135deg,transparent 0 3px,
 rgba(0,0,0,.13) 3px 4px)!important;color:#444!important}
.pg.cal::after{content:"";position:absolute;top:0;right:0;border-style:solid;
 border-width:0 8px 8px 0;border-color:transparent currentColor transparent transparent;
 border-top-right-radius:3px}
.pg.idle{box-shadow:inset 0 -3px 0 currentColor}
.pg.unk{outline:2px dashed var(--ink);outline-offset:-2px}
.pg.mis{outline:3px solid var(--bad);outline-offset:1px;z-index:1}
.mp{border:1px solid #aab2bf;background:#fff;color:var(--bad)}
.mp.dirty{background:#3b4252;border-color:#3b4252}
.mp.miss{border:2px solid var(--bad);line-height:16px}
.mp.extra{background:#3b4252;border:2px solid var(--bad);color:#fff;line-height:16px}
.obj{margin:4px 0 16px}
details summary{cursor:pointer;font-size:13px;color:#0b5394;margin:4px 0}
svg{display:block;max-width:100%;height:auto;margin:6px 0}
svg text{font-family:system-ui,"DejaVu Sans",sans-serif}
.seg:hover rect{opacity:.85}
.gridl{stroke:#e6e9ee}
.axis{stroke:#4a5263}
.tick{font-size:12px;fill:var(--muted)}
.halo{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.albl{font-size:13px;fill:var(--ink)}
.endl{font-size:13px;font-weight:650}
.rl{font-size:12.5px;fill:var(--ink);font-family:ui-monospace,"DejaVu Sans Mono",monospace}
table{border-collapse:collapse;margin:10px 0 18px;font-size:13px}
.scroll{overflow-x:auto}
caption{text-align:left;font-size:12px;color:var(--muted);padding:0 0 4px}
th,td{border-bottom:1px solid var(--line);padding:4px 7px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;cursor:pointer;user-select:none;white-space:nowrap}
th.cz{white-space:normal;min-width:5.5em}
th.num{white-space:normal;min-width:4.5em}
th:hover{background:#e8ecf2}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
th[aria-sort=descending]::after{content:" ▼";font-size:10px}
td.strong{font-weight:650}
td.detail{color:var(--muted);font-size:12px}
tr.mismatch td{background:#fdf0e8}
.ok{color:#fff;background:#117733;border-radius:3px;padding:0 6px;font-size:12px}
.bad{color:#fff;background:var(--bad);border-radius:3px;padding:0 6px;font-size:12px}
ul.notes{font-size:13px;color:var(--muted);padding-left:20px}
nav{margin-top:10px}
#tip{position:fixed;z-index:10;max-width:460px;padding:8px 10px;border-radius:5px;
 background:#1d2330;color:#fff;font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;
 white-space:pre-wrap;pointer-events:none;display:none;box-shadow:0 3px 10px rgba(0,0,0,.25)}
@media print{#tip{display:none!important}th{cursor:auto}}
"""

# The script reads only the page itself; no document data is ever written into it.
_JS = """
(function () {
  "use strict";
  // Sortable tables: numbers sort by their data-v value, text by its content.
  function key(td) {
    if (!td) return "";
    var v = td.getAttribute("data-v");
    return v !== null ? parseFloat(v) : td.textContent.trim().toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var ths = table.querySelectorAll("thead th");
    ths.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        ths.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = (typeof x === "number" && typeof y === "number") ? x - y
            : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  // Tooltips for page cells: the title text, shown at once and kept on screen. The title
  // attribute stays the fallback where the script does not run.
  var tip = document.createElement("div");
  tip.id = "tip";
  document.body.appendChild(tip);
  function place(ev) {
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = ev.clientX - r.width - 14;
    if (y + r.height > window.innerHeight - 8) y = ev.clientY - r.height - 14;
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  document.querySelectorAll(".pg[title],.mp[title]").forEach(function (el) {
    el.setAttribute("data-tip", el.getAttribute("title"));
    el.removeAttribute("title");
    el.addEventListener("mouseenter", function (ev) {
      tip.textContent = el.getAttribute("data-tip");
      tip.style.display = "block";
      place(ev);
    });
    el.addEventListener("mousemove", place);
    el.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
  document.body.setAttribute("data-ready", "1");
})();
"""


def _page(title: str, body: str, subtitle: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="generator" content="elfcost"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header>"
        f"<main>{body}</main><script>{_JS}</script></body></html>\n"
    )
