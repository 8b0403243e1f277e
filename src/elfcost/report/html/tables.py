"""Sortable tables: objects with their pages by cause, process items, and comparisons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from elfcost.cost.causes import info
from elfcost.documents import ComparisonDoc, EstimateDoc, MismatchDoc
from elfcost.model import Cause
from elfcost.report.html.common import esc, size_text

# -- tables -------------------------------------------------------------------------------------


def header_cell(label: str, *, num: bool = False, tip: str = "") -> str:
    t = f' title="{esc(tip)}"' if tip else ""
    return f'<th class="{"num" if num else ""}"{t}>{esc(label)}</th>'


def size_cell(n: int, *, strong: bool = False) -> str:
    cls = "num strong" if strong else "num"
    return f'<td class="{cls}" data-v="{int(n)}">{size_text(n)}</td>'


def int_cell(n: int) -> str:
    return f'<td class="num" data-v="{int(n)}">{int(n):,}</td>'


def sortable_table(head: Sequence[str], rows: Iterable[str], *, caption: str = "") -> str:
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table class="sortable">{cap}<thead><tr>{"".join(head)}</tr>'
        "</thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def causes_in(doc: EstimateDoc) -> list[Cause]:
    """The causes the document uses, in precedence order."""
    used = {p.cause for o in doc.objects for p in o.pages}
    return [c for c in Cause if c in used]


def objects_table(doc: EstimateDoc) -> str:
    present = causes_in(doc)
    head = [header_cell("object"), header_cell("role"), header_cell("writable pages", num=True)]
    # Cause columns may wrap: there can be a dozen of them beside the sizes.
    head += [
        f'<th class="num cz" title="{esc("pages: " + info(c).explanation)}">{esc(c.value)}</th>'
        for c in present
    ]
    head += [
        header_cell("at entry", num=True),
        header_cell("low", num=True),
        header_cell("expected", num=True),
        header_cell("high", num=True),
        header_cell("shared clean", num=True, tip="file-backed pages, shared by every instance"),
    ]
    rows = []
    for o in doc.objects:
        counts = Counter(p.cause for p in o.pages)
        r = o.private_dirty
        rows.append(
            "<tr>"
            f'<td class="path" title="{esc(o.path)}">{esc(o.path)}</td>'
            f"<td>{esc(o.role)}</td>"
            + int_cell(o.writable_pages)
            + "".join(int_cell(counts.get(c, 0)) for c in present)
            + size_cell(r.at_entry)
            + size_cell(r.low)
            + size_cell(r.expected, strong=True)
            + size_cell(r.high)
            + size_cell(o.shared_clean)
            + "</tr>"
        )
    return sortable_table(head, rows, caption="objects (click a header to sort)")


def process_table(doc: EstimateDoc) -> str:
    head = [
        header_cell("process item"),
        header_cell("at entry", num=True),
        header_cell("low", num=True),
        header_cell("expected", num=True),
        header_cell("high", num=True),
        header_cell("certain"),
        header_cell("how it is estimated"),
    ]
    rows = []
    for name, r in doc.process.items():
        rows.append(
            f"<tr><td>[{esc(name)}]</td>"
            + size_cell(r.at_entry)
            + size_cell(r.low)
            + size_cell(r.expected, strong=True)
            + size_cell(r.high)
            + f"<td>{'yes' if r.certain else 'no'}</td>"
            f'<td class="detail">{esc(r.detail)}</td></tr>'
        )
    return sortable_table(head, rows, caption="process items (not in any file)")


def _addrs(pages: Sequence[MismatchDoc]) -> str:
    # A page the model had nothing at (comparison/2: cause null) is shown by address alone.
    return (
        ", ".join(f"{p.vaddr:#x} {p.cause.value}" if p.cause else f"{p.vaddr:#x}" for p in pages)
        or "—"
    )


def comparison_block(cmp: Sequence[ComparisonDoc]) -> str:
    out = []
    for c in cmp:
        t = c.total
        badge = (
            '<span class="ok">ok</span>' if c.ok else '<span class="bad">outside tolerance</span>'
        )
        pr = t.predicted
        out.append(
            f"<h4>measured at {esc(c.stop)} {badge}</h4>"
            "<p>measured private dirty (whole process) "
            f"<b>{size_text(t.measured_private_dirty)}</b>"
            f" · predicted {size_text(pr.low)} .. <b>{size_text(pr.expected)}</b> .. "
            f"{size_text(pr.high)} · "
            + ("within bounds" if t.within_bounds else "<b>outside the bounds</b>")
            + f" · tolerance {c.tolerance_pages} pages</p>"
        )
        head = [
            header_cell("object"),
            header_cell("predicted pages", num=True),
            header_cell("measured pages", num=True),
            header_cell("exact"),
            header_cell("predicted, found clean"),
            header_cell("written, not predicted"),
        ]
        rows = []
        for o in c.objects:
            rows.append(
                f'<tr class="{"" if o.exact else "mismatch"}">'
                f'<td class="path">{esc(o.path)}</td>'
                + int_cell(o.predicted_pages)
                + int_cell(o.measured_pages)
                + f"<td>{'yes' if o.exact else '<b>no</b>'}</td>"
                f'<td class="detail">{esc(_addrs(o.predicted_clean))}</td>'
                f'<td class="detail">{esc(_addrs(o.unpredicted_dirty))}</td></tr>'
            )
        out.append(sortable_table(head, rows))
    return "".join(out)


def savings_table(doc: EstimateDoc) -> str:
    """The remedies of `doc.savings`, the largest saving first (none: empty)."""
    if not doc.savings:
        return ""
    n = doc.total.fleet.instances
    head = [
        header_cell("remedy (--assume)"),
        header_cell("expected", num=True),
        header_cell("saves / instance", num=True),
    ]
    if n > 1:
        head.append(header_cell(f"saves / {n:,} instances", num=True))
    rows = []
    for s in doc.savings:
        fleet = size_cell(s.fleet) if n > 1 else ""
        rows.append(
            f"<tr><td>{esc(s.assume)}</td>{size_cell(s.expected)}"
            f"{size_cell(s.per_instance)}{fleet}</tr>"
        )
    return sortable_table(head, rows, caption="what each remedy saves, the largest first")
