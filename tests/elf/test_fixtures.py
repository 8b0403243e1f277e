"""The reader on committed fixtures for other machines, checked against binutils' readelf."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from elfcost.elf.machines import BY_E_MACHINE
from elfcost.elf.reader import read_dso
from elfcost.elf.relocs import read_relocs
from elfcost.model import PT_LOAD

DATA = Path(__file__).resolve().parents[1] / "data" / "elf"
EXPECTED = json.loads((DATA / "expected.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_headers_match_readelf(name: str) -> None:
    exp = EXPECTED[name]
    d = read_dso(str(DATA / name))
    assert d.elf_class == exp["class"]
    assert d.little_endian == (exp["endian"] == "little")
    assert d.e_machine == exp["e_machine"]
    assert d.e_type == exp["e_type"]
    assert d.entry == exp["entry"]
    assert d.interp == exp["interp"]
    assert list(d.needed) == exp["needed"]
    assert d.soname == exp["soname"]
    assert list(d.dynamic.runpath if d.dynamic else ()) == exp["runpath"]
    assert list(d.dynamic.rpath if d.dynamic else ()) == exp["rpath"]
    loads = [
        [s.offset, s.vaddr, s.filesz, s.memsz, int(s.flags), s.align]
        for s in d.phdrs
        if s.p_type == PT_LOAD
    ]
    assert loads == exp["loads"]
    if exp["tls"]:
        assert d.tls is not None
        assert (d.tls.filesz, d.tls.memsz) == (exp["tls"]["filesz"], exp["tls"]["memsz"])
    if exp["relro"]:
        assert d.relro is not None and [d.relro.vaddr, d.relro.memsz] == exp["relro"]
    # Section headers are optional detail: the .nosections copies read the same.
    assert bool(d.sections) == exp["has_section_headers"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_relocation_counts_match_readelf(name: str) -> None:
    exp = EXPECTED[name]
    d = read_dso(str(DATA / name))
    r = read_relocs(d)
    machine = BY_E_MACHINE[d.e_machine]
    word = d.elf_class // 8
    counts = collections.Counter(
        "R_RELR" if relr else machine.reloc(t, word).name
        for t, relr in zip(r.r_type.tolist(), r.is_relr.tolist(), strict=True)
    )
    assert dict(counts) == exp["relocs_by_type"]


def test_every_listed_machine_has_a_fixture() -> None:
    machines = {BY_E_MACHINE[e["e_machine"]].name for e in EXPECTED.values()}
    assert {"aarch64", "arm", "i386", "riscv64", "ppc64", "s390x"} <= machines
    endians = {e["endian"] for e in EXPECTED.values()}
    assert endians == {"little", "big"}
