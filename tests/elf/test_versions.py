"""DT_VERNEED and DT_VERDEF as the reader sees them, checked against binutils' `readelf -V`
(host libraries, and the committed fixtures of other machines: both byte orders, both classes)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from elfcost.elf.reader import read_dso

DATA = Path(__file__).resolve().parents[1] / "data" / "elf"
HOST = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/usr/bin/python3",
]


def readelf_versions(path: str) -> tuple[list[tuple[str, list[str], list[str]]], list[str] | None]:
    """(needs as (file, versions, weak versions), definitions or None) from `readelf -V`."""
    out = subprocess.run(
        ["readelf", "-V", "--wide", path], capture_output=True, text=True, check=True
    ).stdout
    needs: list[tuple[str, list[str], list[str]]] = []
    defs: list[str] | None = None
    section = None
    for line in out.splitlines():
        if line.startswith("Version definition section"):
            section, defs = "def", []
        elif line.startswith("Version needs section"):
            section = "need"
        elif line.startswith("Version symbols section"):
            section = None
        elif section == "def" and (m := re.search(r"Cnt: \d+\s+Name: (\S+)", line)):
            assert defs is not None
            defs.append(m[1])
        elif section == "need" and (m := re.search(r"File: (\S+)", line)):
            needs.append((m[1], [], []))
        elif section == "need" and (m := re.search(r"Name: (\S+)\s+Flags: (.*?)\s+Version", line)):
            needs[-1][1].append(m[1])
            if "WEAK" in m[2]:
                needs[-1][2].append(m[1])
    return needs, defs


def files() -> list[str]:
    host = [p for p in HOST if Path(p).exists()]
    fixtures = sorted(
        str(p)
        for p in DATA.glob("*/*")
        if p.parent.name != "src" and p.is_file() and p.suffix != ".nosections"
    )
    return host + fixtures


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf not installed")
@pytest.mark.parametrize("path", files())
def test_versions_match_readelf(path: str) -> None:
    try:
        d = read_dso(path)
    except Exception:
        pytest.skip("not an ELF object")
    needs, defs = readelf_versions(path)
    dyn = d.dynamic
    assert dyn is not None
    assert [(n.file, list(n.versions), list(n.weak)) for n in dyn.verneed] == needs
    assert (None if dyn.verdef is None else list(dyn.verdef)) == defs


@pytest.mark.parametrize("path", sorted(str(p) for p in DATA.glob("*/hello.nosections")))
def test_versions_need_no_section_headers(path: str) -> None:
    """Read through PT_DYNAMIC, as the loader reads them: the same without section headers."""
    stripped = read_dso(path).dynamic
    full = read_dso(path.removesuffix(".nosections")).dynamic
    assert stripped is not None and full is not None
    assert stripped.verneed == full.verneed and stripped.verneed
    assert stripped.verdef == full.verdef
