"""The TCB's size comes from the libc itself when the profile was measured on another build."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from elfcost.cost.estimate import _tcb_bytes
from elfcost.cost.profiles import Profile, all_profiles
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
    x86_64 = _profile("glibc-dynamic")
    # The x86_64 profile chosen for an i386 program (as before the i386 profile existed):
    tcb, why = _tcb_bytes(graph, replace(x86_64, fallback=True))
    assert tcb == 1216 != x86_64.tls_tcb_bytes and "_thread_db_sizeof_pthread" in why
    # The build the profile was measured on keeps the profile's figure.
    native = resolve("/bin/sleep", Host())
    assert _tcb_bytes(native, x86_64) == (x86_64.tls_tcb_bytes, "")
    # musl records no such symbol; its profile's figure stands.
    musl = _profile("musl-dynamic")
    assert _tcb_bytes(graph, musl) == (musl.tls_tcb_bytes, "")


def test_a_missing_or_wrong_sized_symbol_is_none(tmp_path: Path) -> None:
    assert glibc_pthread_size([read_dso("/bin/sleep")]) is None  # not defined there
    assert glibc_pthread_size([]) is None
