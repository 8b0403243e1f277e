"""Shared fixtures: the sample binaries, built once per session by sample_binaries/Makefile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def samples() -> Path:
    out = ROOT / "build" / "samples"
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler: the samples cannot be built")
    # make is idempotent: a no-op when `make samples` already built them.
    subprocess.run(
        ["make", "-C", str(ROOT / "sample_binaries"), f"OUT={out}", "-j2"],
        check=True,
        capture_output=True,
    )
    os.sync()  # freshly written binaries show dirty page cache as Private_Dirty
    return out


@pytest.fixture(scope="session")
def link_modes() -> tuple[str, ...]:
    """Every link mode sample_binaries/Makefile knows: glibc's, musl's, i386 glibc's (its lists)."""
    text = (ROOT / "sample_binaries" / "Makefile").read_text()
    modes: list[str] = []
    for var in ("GLIBC_MODES", "MUSL_MODES", "I386_MODES"):
        m = re.search(rf"^{var} :=(.*)$", text, re.M)
        assert m, f"sample_binaries/Makefile has no {var}"
        modes.extend(m[1].split())
    return tuple(modes)


@pytest.fixture(scope="session")
def has_musl() -> bool:
    return shutil.which("musl-gcc") is not None and Path("/lib/ld-musl-x86_64.so.1").exists()
