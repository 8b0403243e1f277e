"""Relocation counts per type, elfcost against LIEF (an independent parser)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from elfcost.elf.machines import BY_E_MACHINE
from elfcost.elf.reader import is_elf, read_dso
from elfcost.elf.relocs import read_relocs

lief = pytest.importorskip("lief")
pytestmark = pytest.mark.integration

HOST_LIBS = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
]


def counts_elfcost(path: str) -> dict[str, int]:
    d = read_dso(path)
    r = read_relocs(d)
    m = BY_E_MACHINE[d.e_machine]
    out = collections.Counter(
        m.reloc(0 if relr else t, 8).name if not relr else "RELATIVE(RELR)"
        for t, relr in zip(r.r_type.tolist(), r.is_relr.tolist(), strict=True)
    )
    return dict(out)


def counts_lief(path: str) -> dict[str, int]:
    b = lief.ELF.parse(path)
    m = BY_E_MACHINE[int(b.header.machine_type.value)]
    out: collections.Counter[str] = collections.Counter()
    relr_vaddrs = set()
    relr = getattr(b, "relocations", [])
    for rel in relr:
        if rel.encoding == lief.ELF.Relocation.ENCODING.RELR:
            relr_vaddrs.add(rel.address)
    out["RELATIVE(RELR)"] = len(relr_vaddrs)
    for rel in [*b.dynamic_relocations, *b.pltgot_relocations]:
        if rel.encoding == lief.ELF.Relocation.ENCODING.RELR:
            continue
        # LIEF tags the type with its architecture above bit 26; the ELF type is below.
        out[m.reloc(int(rel.type.value) & 0x3FFFFFF, 8).name] += 1
    return {k: v for k, v in out.items() if v}


def _targets(samples: Path) -> list[str]:
    found = [p for p in HOST_LIBS if Path(p).exists()]
    found += sorted(str(p) for p in samples.glob("*") if p.is_file() and is_elf(str(p)))
    found += sorted(str(p) for p in samples.glob("*.so") if is_elf(str(p)))
    big = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libLLVM*.so*"))
    if big:
        found.append(str(big[0]))
    return found


def test_counts_match_lief(samples: Path) -> None:
    mismatches = {}
    targets = _targets(samples)
    assert len(targets) > 20
    for t in targets:
        if read_dso(t).dynamic is None:
            continue  # static ET_EXEC: only the IRELATIVE section, checked elsewhere
        a, b = counts_elfcost(t), counts_lief(t)
        if a != b:
            mismatches[t] = (a, b)
    assert mismatches == {}
