"""Charts drawn here as inline SVG (no chart library): the stacked cost bars, the fleet
chart, and the ranking bars of many programs. The figures come from elfcost.analysis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

from elfcost.analysis import SPLIT_LABELS, fleet
from elfcost.documents import EstimateDoc, ObjectDoc, Split
from elfcost.model import Range
from elfcost.report.html.common import basename, esc, size_text

# Process items (stack, heap, TLS...) and objects need telling apart in the stacked bar: objects
# take cool tones by role, process items warm ones, each with a label or a legend entry.
_ROLE_FILLS = {
    "executable": ("#004488",),
    "interpreter": ("#6699CC",),
    "library": ("#44AA99", "#117733", "#88CCEE", "#999933", "#332288", "#66CCEE", "#228833"),
}
_PROCESS_FILLS = ("#EE7733", "#DDAA33", "#CC3311", "#EE9988", "#BB5566", "#997700")
# The parts of a Split the same way: the program and the linkage cool, per-process items warm.
_SPLIT_FILLS = {
    "program": "#004488",
    "libc": "#6699CC",
    "loader": "#DDAA33",
    "process": "#EE7733",
}


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


def stacked_bar(segments: Sequence[_Segment], *, width: int = 1100, label: str = "") -> str:
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
            f'<g class="seg"><title>{esc(s.tip)}</title>'
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{h}" fill="{s.fill}" '
            f'stroke="#fff" stroke-width="1"/>'
        )
        text = f"{s.label} {size_text(s.value)}"
        if w > 7.2 * len(text) + 10:
            parts.append(
                f'<text x="{x + 6:.2f}" y="{h / 2 + 5}" fill="{ink}" font-size="13">'
                f"{esc(text)}</text>"
            )
        elif w > 7.2 * len(s.label) + 10:
            parts.append(
                f'<text x="{x + 6:.2f}" y="{h / 2 + 5}" fill="{ink}" font-size="13">'
                f"{esc(s.label)}</text>"
            )
        parts.append("</g>")
        x += w
    aria = esc(label or "stacked bar")
    return (
        f'<svg class="bar" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" '
        f'aria-label="{aria}">' + "".join(parts) + "</svg>"
    )


def _dark(fill: str) -> bool:
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 140


def bar_legend(segments: Sequence[_Segment]) -> str:
    return (
        '<div class="legend barlegend">'
        + "".join(
            f'<span class="li" title="{esc(s.tip)}"><span class="sw" style="background:{s.fill}">'
            f"</span><b>{esc(s.label)}</b> {size_text(s.value)}</span>"
            for s in segments
            if s.value > 0
        )
        + "</div>"
    )


# A bar with a hundred slivers says nothing: past this many objects the smallest are merged.
_BAR_OBJECTS = 12


def bar_segments(doc: EstimateDoc) -> list[_Segment]:
    """The stacked bar's parts: objects in load order (the smallest merged when there are many),
    then the process items."""
    segs = []
    libs = 0
    objects = list(doc.objects)
    merged: list[ObjectDoc] = []
    if len(objects) > _BAR_OBJECTS:
        by_size = sorted(objects, key=lambda o: -o.private_dirty.expected)
        keep = {id(o) for o in by_size[: _BAR_OBJECTS - 1]}
        merged = [o for o in objects if id(o) not in keep]
        objects = [o for o in objects if id(o) in keep]
    for o in objects:
        fills = _ROLE_FILLS[o.role]
        fill = fills[libs % len(fills)] if o.role == "library" else fills[0]
        libs += o.role == "library"
        r = o.private_dirty
        segs.append(
            _Segment(
                label=basename(o.path),
                tip=f"{o.path} ({o.role}): expected {size_text(r.expected)}, "
                f"range {size_text(r.low)} .. {size_text(r.high)}",
                value=r.expected,
                fill=fill,
            )
        )
    if merged:
        names = ", ".join(basename(o.path) for o in merged[:40])
        more = f" and {len(merged) - 40} more" if len(merged) > 40 else ""
        segs.append(
            _Segment(
                label=f"{len(merged)} more objects",
                tip=f"{len(merged)} smaller objects: {names}{more}",
                value=sum(o.private_dirty.expected for o in merged),
                fill="#BBBBBB",
            )
        )
    for i, (name, p) in enumerate(doc.process.items()):
        segs.append(
            _Segment(
                label=f"[{name}]",
                tip=f"[{name}]: expected {size_text(p.expected)}, "
                f"range {size_text(p.low)} .. {size_text(p.high)}\n{p.detail}",
                value=p.expected,
                fill=_PROCESS_FILLS[i % len(_PROCESS_FILLS)],
            )
        )
    return segs


def split_segments(split: Split) -> list[_Segment]:
    """The four parts of analysis.where_it_goes, as the text report's line names them."""
    return [
        _Segment(
            label=SPLIT_LABELS[key],
            tip=f"{SPLIT_LABELS[key]}: {', '.join(part.of) or 'nothing'}",
            value=part.expected,
            fill=_SPLIT_FILLS[key],
        )
        for key, part in split.parts
    ]


class Line(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    private_dirty: Range  # paid by every instance
    shared_clean: int  # paid once
    band: bool = False  # shade from the low to the high bound
    colour: str = "#004488"
    dash: str = ""


def fleet_chart(lines: Sequence[Line], instances: int, *, chart_id: str) -> str:
    """Cost of 1..N instances: straight lines n × private + shared, with axes and labels.

    The high bound counts every writable page a program could touch and can be ten times the
    expected cost; scaled to it, the lines that matter would lie flat on the axis. So the chart
    is scaled to the expected lines and the band is clipped, with its end value written out.
    """
    W, H = 900, 360
    left, right, top, bottom = 78, 230, 20, 48
    pw, ph = W - left - right, H - top - bottom
    n_max = max(instances, 2)

    def cost(line: Line, n: int) -> int:
        return fleet(line.private_dirty, line.shared_clean, n).total_expected

    def bounds(line: Line, n: int) -> tuple[int, int]:
        f = fleet(line.private_dirty, line.shared_clean, n)
        return f.private_dirty.low + f.shared_clean, f.private_dirty.high + f.shared_clean

    y_expected = max(cost(ln, n_max) for ln in lines) or 1
    y_high = max(bounds(ln, n_max)[1] for ln in lines)
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
        if ln.band:
            (low1, high1), (low_n, high_n) = bounds(ln, 1), bounds(ln, n_max)
            pts = [
                (sx(1), sy(low1)),
                (sx(n_max), sy(low_n)),
                (sx(n_max), sy(high_n)),
                (sx(1), sy(high1)),
            ]
            out.append(
                '<polygon points="'
                + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
                + f'" fill="{ln.colour}" fill-opacity="0.12" clip-path="url(#{chart_id})"><title>'
                + esc(f"{ln.label}: low .. high private dirty per instance")
                + "</title></polygon>"
            )
            if high_n > y_top:
                out.append(
                    f'<text x="{left + pw - 6}" y="{top + 14}" text-anchor="end" class="tick halo">'
                    f"{esc(ln.label)}: high bound {size_text(high_n)} at "
                    f"{n_max:,} (above the chart)</text>"
                )
        y1, y2 = sy(cost(ln, 1)), sy(cost(ln, n_max))
        dash = f' stroke-dasharray="{ln.dash}"' if ln.dash else ""
        tip = (
            f"{ln.label}: n × {size_text(ln.private_dirty.expected)} + "
            f"{size_text(ln.shared_clean)} shared once; "
            f"{n_max} instances: {size_text(cost(ln, n_max))}"
        )
        out.append(
            f'<line x1="{sx(1):.1f}" y1="{y1:.1f}" x2="{sx(n_max):.1f}" y2="{y2:.1f}" '
            f'stroke="{ln.colour}" stroke-width="3"{dash}><title>{esc(tip)}</title></line>'
        )
        # End labels, nudged apart when two lines end close together.
        ly = y2
        for other in label_ys:
            if abs(ly - other) < 38:
                ly = other + 38 if ly >= other else other - 38
        label_ys.append(ly)
        out.append(
            f'<text x="{left + pw + 8}" y="{ly - 2:.1f}" class="endl" fill="{ln.colour}">'
            f"{esc(ln.label)}</text>"
            f'<text x="{left + pw + 8}" y="{ly + 14:.1f}" class="tick">'
            f"{esc(size_text(cost(ln, n_max)))} at {n_max:,}</text>"
        )
    # Where two lines cross, the cheaper choice flips: worth pointing at.
    if len(lines) == 2:
        a, b = lines
        dp = a.private_dirty.expected - b.private_dirty.expected
        if dp != 0:
            cross = (b.shared_clean - a.shared_clean) / dp
            if 1 < cross < n_max:
                x, y = sx(cross), sy(cross * a.private_dirty.expected + a.shared_clean)
                out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="none" stroke="#000"/>'
                    f'<text x="{x + 8:.1f}" y="{y - 8:.1f}" class="tick">'
                    f"equal at {cross:,.0f} instances</text>"
                )
    out.append("</svg>")
    return "".join(out)


# -- many programs: ranking ---------------------------------------------------------------------


def amounts(split: Split) -> dict[str, int]:
    """A split as a ranking bar's parts: expected bytes by part name."""
    return {key: part.expected for key, part in split.parts}


def ranking_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]], *, top: int = 20, link: bool = False
) -> str:
    """Horizontal bars, one per row, stacked by the parts of a Split (program, libc and
    loader, loader heap and TLS, stack and heap); a library's bar is the one part it is."""
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
            f'class="rl">{esc(shown)}</text></a>'
            if link
            else f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="rl">'
            f"{esc(shown)}</text>"
        )
        out.append(f"<g><title>{esc(name)}</title>{label}")
        x = float(label_w)
        for part, v in parts.items():
            w = pw * v / biggest
            if w > 0:
                out.append(
                    f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar}" '
                    f'fill="{_SPLIT_FILLS[part]}"><title>'
                    f"{esc(f'{name}: {SPLIT_LABELS[part]} {size_text(v)}')}</title></rect>"
                )
            x += w
        out.append(
            f'<text x="{x + 6:.2f}" y="{y + 15}" class="tick">{size_text(sum(parts.values()))}'
            "</text></g>"
        )
    out.append("</svg>")
    used = {k for _, parts in rows for k, v in parts.items() if v}
    legend = "".join(
        f'<span class="li"><span class="sw" style="background:{f}"></span>'
        f"<b>{esc(SPLIT_LABELS[k])}</b></span>"
        for k, f in _SPLIT_FILLS.items()
        if k in used
    )
    return "".join(out) + f'<div class="legend barlegend">{legend}</div>'
