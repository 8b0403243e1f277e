"""Budgets, waivers and baselines for build scripts (`elfcost check`).

Pure: a Policy and per-binary facts in, violations out. The CLI reads the files (TOML policy,
JSON baseline) and the ELF inputs, then renders text, JSON (elfcost.check/4) or JUnit XML.

Policy file (TOML):

    [defaults]                      # every key optional
    max_private_dirty = "128K"      # expected private dirty of one instance
    instances = 129                 # with max_fleet: N x private + shared once
    max_fleet = "16M"
    max_objects = 20                # objects the loader maps
    no_textrel = true               # no object with DT_TEXTREL
    no_missing = true               # every DT_NEEDED found

    [[rule]]                        # later rules override earlier ones and the defaults
    match = "usr/bin/s6-*"          # fnmatch glob on the path (relative to --root)
    max_private_dirty = "112K"

    [[waiver]]
    match = "usr/bin/big-daemon"
    limit = "max_private_dirty"     # or "*" for every limit
    reason = "upstream bug 123: fixed in 2.1"
    expires = 2027-01-31            # optional: an expired waiver no longer applies

    [baseline]
    file = "elfcost-baseline.json"  # relative to the policy file; may only go down
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from msgspec.structs import replace

from elfcost.report.units import parse_size

LIMITS = ("max_private_dirty", "max_fleet", "max_objects", "no_textrel", "no_missing", "baseline")


class PolicyError(ValueError):
    """A policy or baseline file that cannot be used (a usage error, exit 2)."""


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    max_private_dirty: int | None = None
    instances: int = 1
    max_fleet: int | None = None
    max_objects: int | None = None
    no_textrel: bool = False
    no_missing: bool = False


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    match: str
    limits: Mapping[str, Any]


class Waiver(msgspec.Struct, frozen=True, kw_only=True):
    match: str
    limit: str  # a name from LIMITS, or "*"
    reason: str
    expires: dt.date | None = None

    def applies(self, path: str, limit: str, today: dt.date) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        return self.limit in ("*", limit) and fnmatch.fnmatchcase(path, self.match)


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    defaults: Limits = msgspec.field(default_factory=Limits)
    rules: tuple[Rule, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    baseline_file: str | None = None

    def limits_for(self, path: str) -> Limits:
        limits = self.defaults
        for r in self.rules:
            if fnmatch.fnmatchcase(path, r.match):
                limits = replace(limits, **r.limits)
        return limits


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What `check` needs to know about one binary (taken from its estimate)."""

    path: str  # as matched by globs: relative to the root, no leading '/'
    private_dirty: int  # expected, one instance
    private_dirty_high: int
    shared_clean: int
    objects: int
    textrel: tuple[str, ...]  # objects with DT_TEXTREL
    missing: tuple[str, ...]  # DT_NEEDED names not found, each once; the interpreter if absent
    # Why the real loader would stop before main (resolve's DependencyGraph.stops): a refused
    # candidate, a fatal symbol version, an ISA level the CPU lacks.
    cannot_start: tuple[str, ...] = ()
    uncalibrated: bool = False  # estimated with another machine's profile (approximate)
    # The largest part of `private_dirty`, as a phrase ("relocation, 132 KiB (33 pages) in
    # usr/sbin/foo: ..."): said with every memory limit it exceeds, so a failed build names it.
    biggest: str | None = None


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    limit: str
    allowed: int
    actual: int
    why: str
    waiver: Waiver | None = None  # set when a waiver excuses it

    @property
    def excess(self) -> int:
        return self.actual - self.allowed


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    facts: Facts
    limits: Limits
    checked: tuple[str, ...]  # the limits that applied, for JUnit test cases
    violations: tuple[Violation, ...]

    @property
    def failed(self) -> bool:
        return any(v.waiver is None for v in self.violations)


_SIZE_KEYS = ("max_private_dirty", "max_fleet")
_MEMORY = ("max_private_dirty", "max_fleet", "baseline")  # the limits on private dirty bytes
_INT_KEYS = ("instances", "max_objects")
_BOOL_KEYS = ("no_textrel", "no_missing")
# The most a count may be: as --instances and --max-objects on the command line (cli/common.py
# MAX_COUNT): a count of processes or objects, not a digit string.
MAX_COUNT = 1_000_000
_WAIVER_KEYS = ("match", "limit", "reason", "expires")
_BASELINE_KEYS = ("file",)


def _limits_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "match":
            continue
        try:
            if key in _SIZE_KEYS:
                out[key] = parse_size(value)
            elif key in _INT_KEYS:
                # A TOML boolean is a Python bool, which is an int too: true is not 1.
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"{value!r} is not a positive integer")
                if value > MAX_COUNT:
                    raise ValueError(f"{value} is more than {MAX_COUNT:,}")
                out[key] = value
            elif key in _BOOL_KEYS:
                if not isinstance(value, bool):
                    raise ValueError(f"{value!r} is not true or false")
                out[key] = value
            else:
                raise ValueError("unknown key")
        except ValueError as exc:
            raise PolicyError(f"{where}: {key}: {exc}") from None
    return out


def _table(data: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    """`[name]`, a table (empty when absent)."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise PolicyError(f"{source}: [{name}] must be a table, not {type(value).__name__}")
    return value


def _tables(data: Mapping[str, Any], name: str, source: str) -> list[Mapping[str, Any]]:
    """`[[name]]`, an array of tables (empty when absent)."""
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise PolicyError(f"{source}: {name} must be an array of tables ([[{name}]])")
    return value


def load_policy(text: str, *, source: str = "policy") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise PolicyError(f"{source}: values nested too deeply") from None
    unknown = set(data) - {"defaults", "rule", "waiver", "baseline"}
    if unknown:
        raise PolicyError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}")
    defaults = Limits(**_limits_table(_table(data, "defaults", source), f"{source}: [defaults]"))
    rules = []
    for i, r in enumerate(_tables(data, "rule", source)):
        if "match" not in r:
            raise PolicyError(f"{source}: [[rule]] #{i + 1}: no match")
        rules.append(
            Rule(
                match=str(r["match"]).lstrip("/"),
                limits=_limits_table(r, f"{source}: [[rule]] #{i + 1}"),
            )
        )
    waivers = []
    for i, w in enumerate(_tables(data, "waiver", source)):
        where = f"{source}: [[waiver]] #{i + 1}"
        # A misspelt key must not widen a waiver ("limits" for "limit" would waive every
        # limit) nor keep it for ever ("expire" for "expires").
        misspelt = sorted(set(w) - set(_WAIVER_KEYS))
        if misspelt:
            raise PolicyError(f"{where}: unknown key(s) {', '.join(misspelt)}")
        if "match" not in w or not str(w.get("reason", "")).strip():
            raise PolicyError(f"{where}: a waiver needs match and a reason")
        limit = str(w.get("limit", "*"))
        if limit != "*" and limit not in LIMITS:
            raise PolicyError(f"{where}: unknown limit {limit!r}")
        expires = w.get("expires")
        # A TOML date-time is a datetime, which is a date too, but one no date compares with.
        if expires is not None and (
            not isinstance(expires, dt.date) or isinstance(expires, dt.datetime)
        ):
            raise PolicyError(f"{where}: expires must be a date (YYYY-MM-DD)")
        waivers.append(
            Waiver(
                match=str(w["match"]).lstrip("/"),
                limit=limit,
                reason=str(w["reason"]),
                expires=expires,
            )
        )
    baseline_table = _table(data, "baseline", source)
    misspelt = sorted(set(baseline_table) - set(_BASELINE_KEYS))
    if misspelt:
        raise PolicyError(f"{source}: [baseline]: unknown key(s) {', '.join(misspelt)}")
    baseline = baseline_table.get("file")
    if baseline is not None and not isinstance(baseline, str):
        raise PolicyError(f"{source}: [baseline] file must be a string")
    return Policy(
        defaults=defaults,
        rules=tuple(rules),
        waivers=tuple(waivers),
        baseline_file=str(baseline) if baseline else None,
    )


def evaluate(
    facts: Facts,
    policy: Policy,
    *,
    baseline: Mapping[str, int] | None = None,
    today: dt.date | None = None,
) -> Verdict:
    """Every limit that applies to `facts.path`, and which of them it exceeds."""
    day = today or dt.date.today()
    lim = policy.limits_for(facts.path)
    checked: list[str] = []
    found: list[Violation] = []

    def over(limit: str, allowed: int, actual: int, why: str) -> None:
        checked.append(limit)
        if actual > allowed:
            if limit in _MEMORY and facts.biggest:
                why += f"; biggest cause: {facts.biggest}"
            waiver = next((w for w in policy.waivers if w.applies(facts.path, limit, day)), None)
            found.append(
                Violation(
                    path=facts.path,
                    limit=limit,
                    allowed=allowed,
                    actual=actual,
                    why=why,
                    waiver=waiver,
                )
            )

    if lim.max_private_dirty is not None:
        over(
            "max_private_dirty",
            lim.max_private_dirty,
            facts.private_dirty,
            "expected private dirty memory of one instance",
        )
    if lim.max_fleet is not None:
        fleet = lim.instances * facts.private_dirty + facts.shared_clean
        over(
            "max_fleet",
            lim.max_fleet,
            fleet,
            f"{lim.instances} instances x private + shared clean once",
        )
    if lim.max_objects is not None:
        over("max_objects", lim.max_objects, facts.objects, "objects the loader maps")
    if lim.no_textrel:
        over(
            "no_textrel",
            0,
            len(facts.textrel),
            "objects with text relocations: " + ", ".join(facts.textrel),
        )
    if lim.no_missing:
        whys = [f"libraries not found: {', '.join(facts.missing)}"] if facts.missing else []
        if facts.cannot_start:
            whys.append("the loader stops before main: " + "; ".join(facts.cannot_start))
        actual = len(facts.missing) + len(facts.cannot_start)
        over("no_missing", 0, actual, "; ".join(whys) or "libraries not found: ")
    if baseline is not None and facts.path in baseline:
        over("baseline", baseline[facts.path], facts.private_dirty, "the baseline may only go down")
    return Verdict(
        path=facts.path, facts=facts, limits=lim, checked=tuple(checked), violations=tuple(found)
    )


def updated_baseline(old: Mapping[str, int], verdicts: Sequence[Verdict]) -> dict[str, int]:
    """The ratchet: a binary's entry is set when new and lowered when it went down, never
    raised (a rise is a failure to fix or waive, not something to record)."""
    new = dict(old)
    for v in verdicts:
        cur = v.facts.private_dirty
        if v.path not in new or cur < new[v.path]:
            new[v.path] = cur
    return dict(sorted(new.items()))
