"""Every dynamically linked program in /usr/bin and /usr/sbin, resolved by elfcost and by the
real loader (`ld.so --list`, which maps without running the program): same objects, same order."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from elfcost.elf.reader import read_dso
from elfcost.errors import ElfcostError
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

pytestmark = pytest.mark.integration

GLIBC_LDSO = "/lib64/ld-linux-x86-64.so.2"


def loader_list(ldso: str, path: str, env: dict[str, str] | None = None) -> list[str]:
    """Paths `ld.so --list` reports, in order; 'MISSING:name' for libraries not found."""
    out = subprocess.run(
        [ldso, "--list", path], capture_output=True, text=True, env=env or {}, timeout=30
    )
    paths = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if m := re.match(r"(\S+) => not found", line):
            paths.append("MISSING:" + m.group(1))
        elif m := re.match(r"(\S+) => (\S+) \(0x", line):
            paths.append(m.group(2))
        elif m := re.match(r"(/\S+) \(0x", line):
            paths.append(m.group(1))
    return paths


def elfcost_list(path: str, host: Host) -> list[str]:
    g = resolve(path, host)
    return [o.dso.path for o in g.objects[1:]] + ["MISSING:" + r.needed for r in g.missing]


def host_programs() -> list[str]:
    out = []
    for d in ("/usr/bin", "/usr/sbin"):
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            try:
                dso = read_dso(p, sections=False)
            except ElfcostError:
                continue
            if dso.interp and "ld-linux" in dso.interp:
                out.append(p)
    return out


@pytest.mark.skipif(not Path(GLIBC_LDSO).exists(), reason="not a glibc x86_64 host")
def test_every_host_program_resolves_like_the_loader() -> None:
    host = Host()
    programs = host_programs()
    assert len(programs) > 100
    disagreements = []
    for p in programs:
        # `ld.so --list` takes $ORIGIN of the main program from the path it was given; a real
        # exec takes it from /proc/self/exe, the real path (elf/dl-origin.c). elfcost models the
        # exec, so ask the loader about the real path (this matters for /usr/bin/java -> ...).
        real = loader_list(GLIBC_LDSO, os.path.realpath(p))
        mine = elfcost_list(p, host)
        if real != mine:
            disagreements.append((p, real, mine))
    assert disagreements == []
