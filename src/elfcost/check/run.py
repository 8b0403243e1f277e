"""`elfcost check` as a library: the policy file and flags, the baseline file, each program's
facts and its verdict. gate.py decides; this module reads and writes the files and the ELF
inputs it needs.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext, suppress

import msgspec
from msgspec.structs import replace

from elfcost.analysis import not_found
from elfcost.check.gate import (
    Facts,
    Policy,
    Verdict,
    evaluate,
    load_policy,
    updated_baseline,
)
from elfcost.cost.causes import info
from elfcost.cost.profiles import calibrated
from elfcost.documents import Baseline, Skipped, decode, encode
from elfcost.errors import Each, OutputError
from elfcost.files import read_bounded
from elfcost.model import Cause, Estimate
from elfcost.pipeline import AS_BUILT, Analysis, Scenario, analyse, programs_in
from elfcost.report.units import kib
from elfcost.resolve.host import Host

# Called after each program with (programs done, programs in all): a progress bar's update.
Progress = Callable[[int, int], None]


def policy_of(
    budget: str | None = None, baseline: str | None = None, **limits: int | bool | None
) -> Policy:
    """The policy file `budget` (or no policy), with `limits` (Limits fields; None: not given,
    the file decides) replacing its defaults, and `baseline` as its baseline file if given, else
    the file's own (relative to the policy file). Raises InputError when the file cannot be read
    (not a regular file, too large: exit 3) and PolicyError when it cannot be used (exit 2)."""
    policy = Policy()
    if budget:
        text = read_bounded(budget, "budget", MAX_POLICY_BYTES).decode("utf-8", "replace")
        policy = load_policy(text, source=budget)
        if baseline is None and policy.baseline_file:
            baseline = os.path.join(os.path.dirname(budget), policy.baseline_file)
    given = {k: v for k, v in limits.items() if v is not None}
    return replace(policy, defaults=replace(policy.defaults, **given), baseline_file=baseline)


def read_baseline(path: str) -> dict[str, int]:
    """{path: bytes} from a JSON baseline; a file not yet written is an empty baseline, one
    that is not a baseline an InputError naming it (exit 3)."""
    if not os.path.lexists(path):
        return {}
    data = read_bounded(path, "baseline", MAX_BASELINE_BYTES)
    baseline: dict[str, int] = decode(data, Baseline, source=path)
    return baseline


# A baseline holds one number per binary: a million binaries fit in well under this; a policy
# is written by hand.
MAX_BASELINE_BYTES = 64 * 1024 * 1024
MAX_POLICY_BYTES = 16 * 1024 * 1024


def write_baseline(path: str, old: Mapping[str, int], verdicts: Sequence[Verdict]) -> None:
    """The ratchet (gate.updated_baseline) written back to `path`: whole or not at all (a
    temporary file beside it, renamed over it), so that a full disk cannot leave the next run
    a baseline it refuses. OutputError (exit 4) when it cannot be written."""
    text = encode(updated_baseline(old, verdicts)) + "\n"
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(tmp)
        raise OutputError(path, "writing the baseline", exc.strerror or str(exc)) from None


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
        missing=not_found(
            (m.needed for m in est.missing), est.loader_path, {o.role for o in est.objects}
        ),
        cannot_start=analysis.graph.stops,
        uncalibrated=est.profile != "none" and not calibrated(est.profile, est.machine),
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
    scenario: Scenario = AS_BUILT,
    *,
    baseline: Mapping[str, int] | None = None,
    each: Each = nullcontext,
    progress: Progress | None = None,
) -> tuple[Verdict, ...]:
    """The verdict on each program (`each` runs each one: a program that cannot be analysed
    has none). Paths are matched relative to the root: the loader path inside a root, else the
    path as given, without its leading '/'."""
    verdicts: list[Verdict] = []
    for done, prog in enumerate(programs, 1):
        with each():
            loader_path = host.loader_path(prog)
            analysis = analyse(loader_path, host, scenario)
            path = (loader_path if host.confined else prog).lstrip("/")
            verdicts.append(evaluate(facts_of(analysis, path), policy, baseline=baseline))
        if progress is not None:
            progress(done, len(programs))
    return tuple(verdicts)


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    """What `run` decided, and what it skipped under directories (programs_in)."""

    verdicts: tuple[Verdict, ...]
    skipped: Skipped  # under directories: as elfcost.check/4 counts them

    @property
    def failed(self) -> bool:
        return any(v.failed for v in self.verdicts)


def run(
    paths: Sequence[str],
    policy: Policy,
    host: Host,
    scenario: Scenario = AS_BUILT,
    *,
    update_baseline: bool = False,
    each: Each = nullcontext,
    progress: Progress | None = None,
) -> Checked:
    """`elfcost check` over `paths` (programs, or directories searched for them): the policy's
    baseline read first (an unusable one stops everything before any program is looked at),
    each program checked under `each`, and with `update_baseline` the ratchet written back."""
    baseline_file = policy.baseline_file
    baseline = read_baseline(baseline_file) if baseline_file else None
    found = programs_in(paths, each=each, host=host)
    verdicts = check(
        found.programs, policy, host, scenario, baseline=baseline, each=each, progress=progress
    )
    if update_baseline and baseline_file:
        write_baseline(baseline_file, baseline or {}, verdicts)
    skipped = Skipped(
        non_elf=found.skipped, shared_libraries=found.libraries, not_loadable=found.not_loadable
    )
    return Checked(verdicts=verdicts, skipped=skipped)
