"""Calibrated loader/libc profiles: what cannot be derived from relocations (loader-model §9).

Each profile is a TOML file in cost/profiles/ that records the libc build it was measured on,
how and when. `select` picks the profile for a process; an unknown machine or libc build falls
back to the nearest profile with a warning, and its calibrated numbers get wider bounds.
"""

from __future__ import annotations

import functools
import os
import tomllib
from typing import Any

from elfcost.model import LoaderFamily
from elfcost.record import record, replace

LINKS = ("dynamic", "static", "static-pie")
# The C library's own objects: what a static link replaces by the static profile, and what the
# estimate's "where it goes" line counts as libc rather than the program (glibc's libm and the
# stubs it split off until 2.34; musl's libc.so is its loader, the interpreter).
LIBC_SONAMES = frozenset(
    {"libc.so.6", "libc.so", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"}
)


@record
class PageCounts:
    """A calibrated item in pages: at the entry point, lower bound, expected idle, upper."""

    at_entry: int
    low: int
    expected: int
    high: int


@record
class HeapCounts:
    """The program heap: calibrated pages at the entry point, low and idle; the upper bound is
    in bytes (a first sbrk's size, the same at every page size)."""

    at_entry: int
    low: int
    expected: int
    high_bytes: int


@record
class Profile:
    """The calibrated start-up figures of one libc family and link mode, and their provenance."""

    name: str
    family: str
    link: str
    machine: str
    libc_version: str
    provenance: str  # measured_on; measured_how; measured_date
    startup_object: str  # soname, "executable" or "interpreter"
    startup_build_ids: tuple[str, ...]
    startup_at_entry: tuple[int, ...]
    startup_idle: tuple[int, ...]
    startup_symbols_at_entry: tuple[str, ...]
    startup_symbols_idle: tuple[str, ...]
    startup_pages_at_entry: int
    startup_pages_idle: int
    tls_where: str  # "loader_heap" or "heap"
    tls_tcb_bytes: int
    tls_surplus_bytes: int
    tls_builtin_bytes: int
    tls_writes: str  # "memsz" (glibc dynamic memsets tbss) or "filesz"
    loader_heap_base_pages: int
    loader_heap_per_object_bytes: int
    loader_heap_small_objects: int
    stack: PageCounts
    heap: HeapCounts
    trivial_executable_pages: int = 0  # static profiles: the base of the static what-if
    fallback: bool = False  # True when chosen for a different machine or build


def _load(data: dict[str, Any]) -> Profile:
    s, t, lh, st, hp = (data[k] for k in ("libc_startup", "tls", "loader_heap", "stack", "heap"))
    return Profile(
        name=data["name"],
        family=data["family"],
        link=data["link"],
        machine=data["machine"],
        libc_version=data["libc_version"],
        provenance=f"{data['measured_on']}; {data['measured_how']}; {data['measured_date']}",
        startup_object=s["object"],
        startup_build_ids=tuple(s["build_ids"]),
        startup_at_entry=tuple(s["at_entry"]),
        startup_idle=tuple(s["idle"]),
        startup_symbols_at_entry=tuple(s["symbols_at_entry"]),
        startup_symbols_idle=tuple(s["symbols_idle"]),
        startup_pages_at_entry=s["pages_at_entry"],
        startup_pages_idle=s["pages_idle"],
        tls_where=t["where"],
        tls_tcb_bytes=t["tcb_bytes"],
        tls_surplus_bytes=t.get("surplus_bytes", 0),
        tls_builtin_bytes=t.get("builtin_bytes", 0),
        tls_writes=t["writes"],
        loader_heap_base_pages=lh["base_pages"],
        loader_heap_per_object_bytes=lh["per_object_bytes"],
        loader_heap_small_objects=lh["small_program_objects"],
        stack=PageCounts(
            at_entry=st["at_entry"], low=st["low"], expected=st["expected"], high=st["high"]
        ),
        heap=HeapCounts(
            at_entry=hp["at_entry"],
            low=hp["low"],
            expected=hp["expected"],
            high_bytes=hp["high_bytes"],
        ),
        trivial_executable_pages=data.get("trivial_executable_pages", 0),
    )


# Read beside this module (the package is installed as files): importlib.resources would cost
# more start-up time (pathlib, tempfile, urllib) than the whole estimate of a small program.
_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")


@functools.cache
def _read(name: str) -> Profile:
    with open(os.path.join(_FOLDER, name), "rb") as fh:
        return _load(tomllib.load(fh))


@functools.cache
def all_profiles() -> tuple[Profile, ...]:
    """Every shipped profile, parsed once per process (a scan selects one per program)."""
    return tuple(_read(name) for name in sorted(os.listdir(_FOLDER)) if name.endswith(".toml"))


def file_name(family: str, link: str, machine: str) -> str:
    """The file a profile is shipped in: x86_64's (the reference) unsuffixed, others suffixed."""
    return f"{family}-{link}.toml" if machine == "x86_64" else f"{family}-{link}-{machine}.toml"


def select(family: LoaderFamily | str, link: str, machine: str) -> tuple[Profile, list[str]]:
    """The profile for (libc family, link mode, machine), with warnings when it is a fallback."""
    fam = family.value if isinstance(family, LoaderFamily) else family
    # One estimate needs one profile: open its file by name rather than parse them all.
    if os.path.exists(os.path.join(_FOLDER, file_name(fam, link, machine))):
        p = _read(file_name(fam, link, machine))
        if (p.family, p.link, p.machine) == (fam, link, machine):
            return p, []
    profiles = all_profiles()
    warnings: list[str] = []
    for p in profiles:
        if p.family == fam and p.link == link and p.machine == machine:
            return p, warnings
    candidates = [p for p in profiles if p.family == fam and p.link == link]
    if not candidates:
        candidates = (
            [p for p in profiles if p.family == fam]
            or [p for p in profiles if p.family == "glibc" and p.link == link]
            or list(profiles)
        )
    # The x86_64 profiles are the reference (every cause was measured there); another
    # machine's profile is only chosen for a machine that has one.
    chosen = min(candidates, key=lambda p: p.machine != "x86_64")
    warnings.append(
        f"no calibrated profile for {fam} {link} on {machine}: using {chosen.name} "
        f"({chosen.machine}), calibrated figures are approximate"
    )
    return replace(chosen, fallback=True), warnings
