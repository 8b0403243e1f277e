"""`elfcost check` as a library: the policy file and flags, the baseline file, each program's
facts and its verdict. gate.py decides; this module reads and writes the files and the ELF
inputs it needs.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from msgspec.structs import replace

from elfcost.check.gate import (
    Facts,
    Policy,
    PolicyError,
    Verdict,
    evaluate,
    load_policy,
    updated_baseline,
)
from elfcost.cost.causes import info
from elfcost.documents import Baseline, decode, encode
from elfcost.errors import InputError
from elfcost.model import Cause, Estimate
from elfcost.pipeline import Analysis, Each, analyse
from elfcost.report.units import kib
from elfcost.resolve.host import Host


def policy_of(budget: str | None, overrides: Mapping[str, Any]) -> Policy:
    """The policy file `budget` (or no policy), with `overrides` (Limits fields, from flags)
    replacing its defaults. Raises PolicyError when the file cannot be read or used."""
    policy = Policy()
    if budget:
        try:
            with open(budget, encoding="utf-8") as fh:
                policy = load_policy(fh.read(), source=budget)
        except OSError as exc:
            raise PolicyError(str(exc)) from None
    return replace(policy, defaults=replace(policy.defaults, **overrides))


def baseline_path(policy: Policy, budget: str | None, given: str | None) -> str | None:
    """The baseline file: the one given, else the policy's (relative to the policy file)."""
    if given is None and budget and policy.baseline_file:
        return os.path.join(os.path.dirname(budget), policy.baseline_file)
    return given


def read_baseline(path: str) -> dict[str, int]:
    """{path: bytes} from a JSON baseline; a file not yet written is an empty baseline, one
    that is not a baseline an InputError naming it (exit 3)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BASELINE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InputError(path, "baseline", exc.strerror or str(exc)) from None
    if len(data) > MAX_BASELINE_BYTES:
        raise InputError(path, "baseline", f"larger than {MAX_BASELINE_BYTES} bytes")
    baseline: dict[str, int] = decode(data, Baseline, source=path)
    return baseline


# A baseline holds one number per binary: a million binaries fit in well under this.
MAX_BASELINE_BYTES = 64 * 1024 * 1024


def write_baseline(path: str, old: Mapping[str, int], verdicts: Sequence[Verdict]) -> None:
    """The ratchet (gate.updated_baseline) written back to `path`."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(encode(updated_baseline(old, verdicts)) + "\n")


def facts_of(analysis: Analysis, path: str) -> Facts:
    """What the gate checks about one program, `path` as its globs match it."""
    est = analysis.estimate
    textrel = {
        o.dso.path
        for o in analysis.graph.objects
        if o.dso.dynamic is not None and o.dso.dynamic.textrel
    }
    return Facts(
        path=path,
        private_dirty=est.total.expected,
        private_dirty_high=est.total.high,
        shared_clean=est.shared_clean,
        objects=len(est.objects),
        textrel=tuple(o.path for o in est.objects if o.path in textrel),
        missing=tuple(m.needed for m in est.missing),
        biggest=biggest_cause(est, path),
    )


def biggest_cause(est: Estimate, path: str) -> str | None:
    """The largest single part of the expected private dirty memory, as a phrase: one cause in
    one object (the program named `path`, as its globs match it), or one process-wide item.
    Ties go to the earlier object, then the cause the registry lists first."""
    parts: list[tuple[int, str]] = []
    for o in est.objects:
        where = path if o.role == "executable" else o.path
        counts = Counter(p.cause for p in o.pages if p.phase != "possible")
        for cause in Cause:
            if counts[cause]:
                size = counts[cause] * est.page_size
                about = info(cause)
                pages = f"{counts[cause]} page{'s' if counts[cause] > 1 else ''}"
                parts.append(
                    (size, f"{about.name}, {kib(size)} ({pages}) in {where}: {about.explanation}")
                )
    for item in est.process:
        size = item.private_dirty.expected
        if size:
            parts.append((size, f"[{item.name}], {kib(size)}: {item.detail}"))
    if not parts:
        return None
    return max(parts, key=lambda p: p[0])[1]


def check(
    programs: Sequence[str],
    policy: Policy,
    host: Host,
    *,
    baseline: Mapping[str, int] | None = None,
    page_size: int | None = None,
    assume: str | None = None,
    each: Each = nullcontext,
) -> tuple[Verdict, ...]:
    """The verdict on each program (`each` runs each one: a program that cannot be analysed
    has none). Paths are matched relative to the root: the loader path inside a root, else the
    path as given, without its leading '/'."""
    confined = os.path.realpath(host.root) != "/"
    verdicts: list[Verdict] = []
    for prog in programs:
        with each():
            loader_path = host.loader_path(prog)
            analysis = analyse(loader_path, host, page_size=page_size, assume=assume)
            path = (loader_path if confined else prog).lstrip("/")
            verdicts.append(evaluate(facts_of(analysis, path), policy, baseline=baseline))
    return tuple(verdicts)
