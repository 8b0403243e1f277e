"""The TCB's size comes from the libc itself when the profile was measured on another build."""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec.structs import replace

from elfcost.cost.estimate import _facts_wanted, _tcb_bytes
from elfcost.cost.profiles import Profile, all_profiles
from elfcost.elf.facts import FactsWanted
from elfcost.elf.gather import read_facts
from elfcost.elf.reader import read_dso
from elfcost.elf.symbols import glibc_pthread_size
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

LIBC = {"x86_64": "/lib/x86_64-linux-gnu/libc.so.6", "i386": "/lib32/libc.so.6"}


def _profile(name: str) -> Profile:
    return next(p for p in all_profiles() if p.name == name)


@pytest.mark.parametrize(
    "machine, profile", [("x86_64", "glibc-dynamic"), ("i386", "glibc-dynamic-i386")]
)
def test_libc_records_the_size_its_profile_was_calibrated_with(machine: str, profile: str) -> None:
    if not Path(LIBC[machine]).exists():
        pytest.skip(f"no {machine} libc")
    size = glibc_pthread_size([read_dso(LIBC[machine])])
    assert size == _profile(profile).tls_tcb_bytes


def test_an_unprofiled_build_gets_its_own_tcb_size(samples: Path) -> None:
    program = samples / "tls.i386"
    if not program.exists():
        pytest.skip("no i386 samples (gcc-multilib)")
    graph = resolve(str(program), Host())
    libc = next(o for o in graph.objects if o.dso.soname == "libc.so.6")
    # The x86_64 profile chosen for an i386 program (as before the i386 profile existed):
    x86_64 = replace(_profile("glibc-dynamic"), fallback=True)
    wanted = _facts_wanted(libc, x86_64, 4096)
    assert wanted.pthread_size and "__environ" in wanted.symbols
    facts = read_facts(libc.dso, wanted)
    assert facts.pthread_size == 1216 and "__environ" in facts.symbols
    tcb, why = _tcb_bytes(x86_64, libc, facts) or (0, "")
    assert tcb == 1216 != x86_64.tls_tcb_bytes and "_thread_db_sizeof_pthread" in why
    # Its own profile was measured on this build: nothing more is read, its figure stands.
    i386 = _profile("glibc-dynamic-i386")
    assert _facts_wanted(libc, i386, 4096) == FactsWanted()
    assert _tcb_bytes(i386, libc, read_facts(libc.dso)) == (1216, "")
    # At 16 KiB pages the measured addresses do not apply: the symbols place the pages.
    assert _facts_wanted(libc, i386, 16384) == FactsWanted(
        symbols=(*i386.startup_symbols_at_entry, *i386.startup_symbols_idle)
    )


def test_musl_is_not_asked_for_a_glibc_symbol(samples: Path) -> None:
    program = samples / "trivial.musl-dyn"
    if not program.exists():
        pytest.skip("no musl samples")
    graph = resolve(str(program), Host())
    musl = _profile("musl-dynamic")
    assert not any(_facts_wanted(o, musl, 4096).pthread_size for o in graph.objects)


def test_a_missing_or_wrong_sized_symbol_is_none(tmp_path: Path) -> None:
    assert glibc_pthread_size([read_dso("/bin/sleep")]) is None  # not defined there
    assert glibc_pthread_size([]) is None
