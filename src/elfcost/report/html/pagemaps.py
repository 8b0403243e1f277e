"""Page maps: one cell per writable page, lettered and filled by its cause, with what
validate measured drawn beside it; a strip for very large objects; the legend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from elfcost.cost.causes import info
from elfcost.documents import ComparisonDoc, EstimateDoc, MismatchDoc, ObjectDoc, PageDoc
from elfcost.model import Cause
from elfcost.report.html.common import basename, esc

# When a page is written: validate checks "entry" pages at the entry point and "entry" + "idle"
# pages once the program idles; "possible" pages only count towards the high bound.
_PHASE_TEXT = {
    "entry": "written before the entry point",
    "idle": "written after entry (start-up, before idle)",
    "possible": "may be written (high bound only)",
}


# -- comparisons: what was measured, page by page ---------------------------------------------


class _Stop(msgspec.Struct, frozen=True, kw_only=True):
    """One comparison document's view of one object, rebuilt as sets of page addresses."""

    stop: str
    written: frozenset[int]  # measured dirty pages
    predicted_clean: Mapping[int, MismatchDoc]  # predicted written, measured not
    unpredicted: Mapping[int, MismatchDoc]  # measured written, not predicted
    consistent: bool  # the comparison was made against this very estimate


def _stops_for(obj: ObjectDoc, comparisons: Sequence[ComparisonDoc]) -> list[_Stop]:
    """The measured pages of `obj` at each stop.

    A comparison document lists only the mismatches; the measured set is the predicted set
    (pages of the phases done by that stop, as runtime/compare.py counts them) minus the pages
    found clean plus the unpredicted ones. Its page counts tell whether it was made against the
    same estimate: if not, the map would lie, so the stop is flagged instead.
    """
    out = []
    for c in comparisons:
        co = next((o for o in c.objects if o.path == obj.path), None)
        if co is None:
            continue
        phases = ("entry",) if c.stop == "entry" else ("entry", "idle")
        predicted = {p.vaddr for p in obj.pages if p.vaddr is not None and p.phase in phases}
        clean = {p.vaddr: p for p in co.predicted_clean}
        unpredicted = {p.vaddr: p for p in co.unpredicted_dirty}
        written = (predicted - clean.keys()) | unpredicted.keys()
        consistent = (
            len(predicted) == co.predicted_pages
            and len(written) == co.measured_pages
            and clean.keys() <= predicted
        )
        out.append(
            _Stop(
                stop=c.stop,
                written=frozenset(written),
                predicted_clean=clean,
                unpredicted=unpredicted,
                consistent=consistent,
            )
        )
    return out


def comparisons_of(doc: EstimateDoc, comparisons: Sequence[ComparisonDoc]) -> list[ComparisonDoc]:
    order = {"entry": 0, "idle": 1}
    mine = [c for c in comparisons if c.binary == doc.binary]
    return sorted(mine, key=lambda c: order.get(c.stop, 2))


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


def _sureness(p: PageDoc) -> str:
    """certain; likely (a constructor's write read from its code, through an interposable
    symbol); calibrated."""
    if p.certain:
        return "certain"
    return "likely" if p.cause is Cause.CONSTRUCTOR and p.vaddr is not None else "calibrated"


def _page_tip(obj: ObjectDoc, p: PageDoc, stops: Sequence[_Stop]) -> str:
    v = p.vaddr
    where = f"{v:#x}" if v is not None else "location unknown"
    cause = info(p.cause)
    lines = [
        f"{basename(obj.path)} page {where}",
        f"{cause.name} ({cause.letter}): {cause.explanation}",
        _sureness(p) + " · " + _PHASE_TEXT[p.phase],
    ]
    if p.sections:
        lines.append("sections: " + " ".join(p.sections))
    if p.relocations:
        lines.append(f"relocations: {p.relocations} ({', '.join(p.relocation_types)})")
    if p.detail:
        lines.append(p.detail)
    for s in stops:
        if v in s.predicted_clean:
            lines.append(f"MISMATCH at {s.stop}: predicted written, measured clean")
        elif v in s.unpredicted:
            lines.append(f"MISMATCH at {s.stop}: written, not predicted")
    return "\n".join(lines)


def _cell(obj: ObjectDoc, p: PageDoc, stops: Sequence[_Stop]) -> str:
    cause = info(p.cause)
    cls = ["pg"]
    if p.cause is Cause.POSSIBLE_WRITE:
        cls.append("poss")
    elif not p.certain:
        cls.append("cal")
    if p.phase == "idle":
        cls.append("idle")
    v = p.vaddr
    if v is None:
        cls.append("unk")
    if v is not None and any(v in s.predicted_clean or v in s.unpredicted for s in stops):
        cls.append("mis")
    return (
        f'<span class="{" ".join(cls)}" data-page="1" data-cause="{esc(cause.name)}" '
        f'data-vaddr="{"" if v is None else int(v)}" '
        f'style="background:{cause.fill};color:{cause.ink}" '
        f'title="{esc(_page_tip(obj, p, stops))}">{esc(cause.letter)}</span>'
    )


def _measured_cell(obj: ObjectDoc, p: PageDoc, v: int, s: _Stop) -> str:
    """The measured cell of page `p`, located at `v`."""
    name = f"{basename(obj.path)} page {v:#x}"
    if v in s.predicted_clean:
        tip = f"{name}\nmeasured at {s.stop}: clean, but predicted written ({p.cause.value})"
        return f'<span class="mp miss" data-measured="clean" title="{esc(tip)}">✕</span>'
    if v in s.unpredicted:
        u = s.unpredicted[v]
        tip = f"{name}\nmeasured at {s.stop}: written, not predicted\nlikely: {u.why}"
        return f'<span class="mp extra" data-measured="dirty" title="{esc(tip)}">!</span>'
    if v in s.written:
        tip = f"{name}\nmeasured at {s.stop}: written, as predicted"
        return f'<span class="mp dirty" data-measured="dirty" title="{esc(tip)}"></span>'
    tip = f"{name}\nmeasured at {s.stop}: not written"
    return f'<span class="mp clean" data-measured="clean" title="{esc(tip)}"></span>'


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


def object_map(obj: ObjectDoc, page_size: int, comparisons: Sequence[ComparisonDoc]) -> str:
    """The object's pages as cells in address order, runs of contiguous pages (its writable
    segments) one block each, then the pages of unknown location; measured maps beside."""
    stops = _stops_for(obj, comparisons)
    pages = obj.pages
    located = {p.vaddr: p for p in pages if p.vaddr is not None}
    unknown = [p for p in pages if p.vaddr is None]
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
            _strip(obj, sorted(located.items()), page_size)
            + f"<details><summary>show all {len(pages):,} pages, one cell each</summary>"
        )
    out.append(f'<div class="maps" style="grid-template-columns:repeat({cols},max-content)">')
    if stops:
        out.append('<div class="mh">predicted</div>')
        out.extend(f'<div class="mh">measured · {esc(s.stop)}</div>' for s in stops)
    for run in _runs(list(located), page_size):
        cells = (_cell(obj, located[v], stops) for v in run)
        out.append(_grid(cells, columns, run[0], page_size, labels=True))
        for s in stops:
            measured = (_measured_cell(obj, located[v], v, s) for v in run)
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
            f"{v:#x} ({s.unpredicted[v].why}, at {s.stop})"
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
    out.extend(f'<p class="warn">{esc(n)}</p>' for n in notes)
    if obj.possible_unlisted:
        out.append(
            f'<p class="note">+ {obj.possible_unlisted:,} more writable pages the program may '
            "write, counted in the high bound, not drawn</p>"
        )
    return "".join(out)


def _strip(
    obj: ObjectDoc, located: Sequence[tuple[int, PageDoc]], page_size: int, width: int = 1100
) -> str:
    """The located pages, (vaddr, page) in address order, as one bar, each stretch of one cause
    a rectangle."""
    if not located:
        return ""
    stretches: list[tuple[Cause, int, int]] = []  # cause, first vaddr, pages
    for v, p in located:
        c = p.cause
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
        fill = info(c).fill
        tip = f"{v:#x}..{v + n * page_size:#x}: {n:,} pages {c.value}"
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{max(n * per, 0.6):.2f}" height="18" '
            f'fill="{fill}"><title>{esc(tip)}</title></rect>'
        )
        x += n * per
    return (
        f'<svg class="strip" viewBox="0 0 {width} 18" width="{width}" height="18" role="img" '
        f'aria-label="{esc(basename(obj.path))} pages by cause">' + "".join(parts) + "</svg>"
    )


def cause_legend(causes: Iterable[Cause], *, with_compare: bool, has_unknown: bool) -> str:
    items = []
    for c in causes:
        cause = info(c)
        cls = "pg poss" if c is Cause.POSSIBLE_WRITE else "pg"
        items.append(
            f'<span class="li"><span class="{cls}" '
            f'style="background:{cause.fill};color:{cause.ink}">'
            f"{esc(cause.letter)}</span><b>{esc(cause.name)}</b> <i>{esc(cause.explanation)}</i>"
            "</span>"
        )
    marks = [
        '<span class="li"><span class="pg cal" style="background:#bbb;color:#000"></span>'
        "<b>corner mark</b> <i>not certain: calibrated, not derived from the file, or a "
        "constructor's write another object may take</i></span>",
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
