"""Two estimates side by side (`elfcost diff`): per object and per cause, in pages and bytes.

Works on estimate documents (elfcost.estimate/1), so a saved JSON report and a fresh analysis
compare alike. Objects are matched by soname, else by file name, because two builds or two
roots rarely share paths.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from elfcost.cost.causes import info
from elfcost.report.console import Part, render, table
from elfcost.report.units import kib


def _key(o: Mapping[str, Any]) -> str:
    if o["role"] == "executable":
        return "(executable)"
    if o["role"] == "interpreter":
        return "(interpreter)"
    return str(o.get("soname") or os.path.basename(o["path"]))


def _causes(o: Mapping[str, Any] | None) -> Counter[str]:
    if o is None:
        return Counter()
    return Counter(p["cause"] for p in o["pages"] if p["phase"] != "possible")


def diff_doc(
    old: Mapping[str, Any], new: Mapping[str, Any], *, instances: int = 1
) -> dict[str, Any]:
    """elfcost.diff/1: the change from `old` to `new` (positive = more memory)."""
    page = int(new["page_size"])
    olds = {_key(o): o for o in old["objects"]}
    news = {_key(o): o for o in new["objects"]}
    rows = []
    for key in [*olds, *(k for k in news if k not in olds)]:
        a, b = olds.get(key), news.get(key)
        ca, cb = _causes(a), _causes(b)
        ea = a["private_dirty"]["expected"] if a else 0
        eb = b["private_dirty"]["expected"] if b else 0
        rows.append(
            {
                "object": key,
                "old_path": a["path"] if a else None,
                "new_path": b["path"] if b else None,
                "old_expected": ea,
                "new_expected": eb,
                "delta": eb - ea,
                "delta_pages": (eb - ea) // page,
                "causes": {c: cb[c] - ca[c] for c in sorted(set(ca) | set(cb)) if cb[c] != ca[c]},
            }
        )
    proc = []
    po, pn = old["process"], new["process"]
    for name in [*po, *(n for n in pn if n not in po)]:
        a_exp = po.get(name, {}).get("expected", 0)
        b_exp = pn.get(name, {}).get("expected", 0)
        proc.append(
            {"item": name, "old_expected": a_exp, "new_expected": b_exp, "delta": b_exp - a_exp}
        )
    to, tn = old["total"]["private_dirty"], new["total"]["private_dirty"]
    so, sn = old["total"]["shared_clean"], new["total"]["shared_clean"]
    return {
        "schema": "elfcost.diff/1",
        "old": old["binary"],
        "new": new["binary"],
        "page_size": page,
        "objects": rows,
        "process": proc,
        "total": {
            "old": dict(to),
            "new": dict(tn),
            "delta_expected": tn["expected"] - to["expected"],
            "shared_clean_delta": sn - so,
        },
        "fleet": {
            "instances": instances,
            "old": instances * to["expected"] + so,
            "new": instances * tn["expected"] + sn,
            "delta": instances * (tn["expected"] - to["expected"]) + (sn - so),
        },
    }


def _signed(n: int) -> str:
    return ("+" if n > 0 else "") + (kib(n) if n >= 0 else "-" + kib(-n))


def diff_text(d: Mapping[str, Any]) -> str:
    t = table(
        "object", "old", "new", "change", "pages by cause (change)", right=("old", "new", "change")
    )
    for r in d["objects"]:
        # Labelled as the estimate table labels them; the document keeps the JSON names.
        causes = ", ".join(f"{info(c).label} {n:+d}" for c, n in r["causes"].items())
        t.add_row(
            r["object"],
            kib(r["old_expected"]),
            kib(r["new_expected"]),
            _signed(r["delta"]),
            causes,
        )
    t.add_section()
    for r in d["process"]:
        if r["old_expected"] or r["new_expected"]:
            t.add_row(
                f"[{r['item']}]",
                kib(r["old_expected"]),
                kib(r["new_expected"]),
                _signed(r["delta"]),
                "",
            )
    t.add_section()
    tot = d["total"]
    t.add_row(
        "total private dirty",
        kib(tot["old"]["expected"]),
        kib(tot["new"]["expected"]),
        _signed(tot["delta_expected"]),
        "",
    )
    f = d["fleet"]
    lines: list[Part] = [(f"{d['old']} -> {d['new']}", "italic"), t]
    if f["instances"] > 1:
        lines.append(
            f"{f['instances']} instances: {kib(f['old'])} -> {kib(f['new'])} "
            f"({_signed(f['delta'])}, shared clean counted once)"
        )
    return render(*lines)


def roots_doc(
    pairs: Sequence[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None]],
    *,
    instances: int = 1,
) -> dict[str, Any]:
    """Two trees: one row per program path found in either."""
    rows: list[dict[str, Any]] = []
    for path, a, b in pairs:
        ea = a["total"]["private_dirty"]["expected"] if a else 0
        eb = b["total"]["private_dirty"]["expected"] if b else 0
        rows.append({"path": path, "old_expected": ea, "new_expected": eb, "delta": eb - ea})
    rows.sort(key=lambda r: -abs(r["delta"]))
    delta = sum(int(r["delta"]) for r in rows)
    return {
        "schema": "elfcost.diff-roots/1",
        "programs": rows,
        "total_delta": delta,
        "fleet_delta": delta * instances,
        "instances": instances,
    }


def roots_text(d: Mapping[str, Any]) -> str:
    t = table("program", "old", "new", "change", right=("old", "new", "change"))
    for r in d["programs"]:
        t.add_row(r["path"], kib(r["old_expected"]), kib(r["new_expected"]), _signed(r["delta"]))
    return render(
        ("programs by change in expected private dirty memory", "italic"),
        t,
        f"total change {_signed(d['total_delta'])} per instance of each program",
    )
