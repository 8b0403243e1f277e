"""`elfcost check` verdicts → text, JSON (elfcost.check/4) and JUnit XML."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from elfcost.check.gate import Verdict, Violation
from elfcost.documents import (
    CheckDoc,
    CheckedBinary,
    ErrorDoc,
    Skipped,
    ViolationDoc,
    WaiverDoc,
)
from elfcost.report.streams import escaped
from elfcost.report.units import kib


def _fmt(limit: str, n: int) -> str:
    if limit in ("max_private_dirty", "max_fleet", "baseline"):
        return kib(n)
    return str(n)


def _line(v: Violation) -> str:
    msg = (
        f"{v.path}: {v.limit}: {_fmt(v.limit, v.actual)} > {_fmt(v.limit, v.allowed)} "
        f"(+{_fmt(v.limit, v.excess)}): {v.why}"
    )
    if v.waiver is not None:
        until = f", until {v.waiver.expires}" if v.waiver.expires else ""
        msg += f" [waived: {v.waiver.reason}{until}]"
    return msg


def _caveats(v: Verdict) -> str:
    """What makes the figure less than the program's whole cost, said on its line."""
    notes = []
    if v.facts.missing:
        notes.append("not found, not counted: " + ", ".join(v.facts.missing))
    if v.facts.cannot_start:
        notes.append("does not start: " + "; ".join(v.facts.cannot_start))
    if v.facts.uncalibrated:
        notes.append("uncalibrated profile: approximate")
    return "".join(f" [{n}]" for n in notes)


NOTHING_SKIPPED = Skipped(non_elf=0, shared_libraries=0, not_loadable=0)


def check_text(verdicts: Sequence[Verdict], skipped: Skipped = NOTHING_SKIPPED) -> str:
    lines = []
    for v in verdicts:
        status = "FAIL" if v.failed else "ok"
        lines.append(
            f"{status:4} {v.path}: {_fmt('max_private_dirty', v.facts.private_dirty)} "
            f"private dirty, {v.facts.objects} objects{_caveats(v)}"
        )
        lines.extend("     " + _line(x) for x in v.violations)
    failed = sum(v.failed for v in verdicts)
    lines.append(
        f"{len(verdicts)} checked, {failed} over budget, "
        f"{sum(1 for v in verdicts for x in v.violations if x.waiver)} waived; "
        + _skipped_text(skipped)
    )
    return "\n".join(lines) + "\n"


def _violation_doc(x: Violation) -> ViolationDoc:
    return ViolationDoc(
        limit=x.limit,
        allowed=x.allowed,
        actual=x.actual,
        excess=x.excess,
        why=x.why,
        waiver=None
        if x.waiver is None
        else WaiverDoc(
            reason=x.waiver.reason,
            expires=x.waiver.expires.isoformat() if x.waiver.expires else None,
        ),
    )


def _skipped_text(s: Skipped) -> str:
    files = f"skipped {s.non_elf} non-ELF files"
    if not s.not_loadable:  # as before there was such a count
        return f"{files} and {s.shared_libraries} shared libraries"
    return (
        f"{files}, {s.shared_libraries} shared libraries and {s.not_loadable} objects no "
        "loader maps"
    )


def check_doc(verdicts: Sequence[Verdict], skipped: Skipped = NOTHING_SKIPPED) -> CheckDoc:
    return CheckDoc(
        ok=not any(v.failed for v in verdicts),
        binaries=tuple(
            CheckedBinary(
                path=v.path,
                ok=not v.failed,
                private_dirty=v.facts.private_dirty,
                objects=v.facts.objects,
                missing=v.facts.missing,
                uncalibrated=v.facts.uncalibrated,
                checked=tuple(v.checked),
                violations=tuple(_violation_doc(x) for x in v.violations),
                cannot_start=v.facts.cannot_start,
            )
            for v in verdicts
        ),
        skipped=skipped,
    )


def junit(verdicts: Sequence[Verdict], errors: Sequence[ErrorDoc] = ()) -> str:
    """One testcase per binary and limit; failures for violations, skipped when waived; and
    one testcase "analysis" with an error for each input that could not be checked, so a CI
    report counts it (it is also the exit status 3)."""
    cases = []
    failures = skipped = 0
    for v in verdicts:
        by_limit = {x.limit: x for x in v.violations}
        for limit in v.checked:
            name = quoteattr(limit)
            cls = quoteattr(escaped(v.path))
            x = by_limit.get(limit)
            if x is None:
                cases.append(f"  <testcase classname={cls} name={name}/>")
            elif x.waiver is not None:
                skipped += 1
                cases.append(
                    f"  <testcase classname={cls} name={name}>"
                    f"<skipped message={quoteattr(escaped(_line(x)))}/></testcase>"
                )
            else:
                failures += 1
                cases.append(
                    f"  <testcase classname={cls} name={name}>"
                    f"<failure message={quoteattr(escaped(_line(x)))}>"
                    f"{xml_escape(escaped(_line(x)))}</failure></testcase>"
                )
    for e in errors:
        # XML 1.0 has no way to write a control character: names are escaped as in error lines.
        where, message = quoteattr(escaped(e.path or "elfcost")), escaped(e.message)
        cases.append(
            f'  <testcase classname={where} name="analysis">'
            f"<error message={quoteattr(message)}>{xml_escape(message)}</error></testcase>"
        )
    head = (
        f'<testsuite name="elfcost check" tests="{len(cases)}" failures="{failures}" '
        f'skipped="{skipped}" errors="{len(errors)}">'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + "\n".join([head, *cases, "</testsuite>"])
        + "\n"
    )
