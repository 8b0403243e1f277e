"""`--assume static` against real static builds of the same samples (their estimates are
themselves checked against the kernel in tests/runtime)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SAMPLES = (
    "trivial",
    "relro_ptr_table",
    "tls",
    "bss_tail",
    "data_untouched_large",
    "stdio",
    "ifunc",
)
PAIRS = (("pie", "static"), ("nopie", "static"), ("musl-dyn", "musl-static"))


def expected(*args: str) -> dict:  # type: ignore[type-arg]
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "estimate", "--format", "json", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_static_whatif_matches_static_builds(samples: Path) -> None:
    rows = []
    for s in SAMPLES:
        for dyn, static in PAIRS:
            a, b = samples / f"{s}.{dyn}", samples / f"{s}.{static}"
            if not (a.exists() and b.exists()):
                continue
            w = expected("--assume", "static", str(a))
            real = expected(str(b))["total"]["private_dirty"]["expected"]
            guess = w["total"]["private_dirty"]["expected"]
            assert any("what-if" in x for x in w["assumptions"])  # labelled as an estimate
            assert w["loader"]["path"] is None and len(w["objects"]) == 1
            # Linking moves libc's start-up variables across page boundaries: +-2 pages.
            ok = abs(guess - real) <= max(0.15 * real, 2 * 4096)
            rows.append((a.name, guess, real, ok))
    assert len(rows) >= 15
    assert [r for r in rows if not r[3]] == []


def test_static_saves_the_linkage(samples: Path) -> None:
    dyn = expected(str(samples / "trivial.pie"))["total"]["private_dirty"]["expected"]
    w = expected("--assume", "static", str(samples / "trivial.pie"))
    assert w["total"]["private_dirty"]["expected"] < dyn / 1.5
    assert any("ld-linux" in x for x in w["assumptions"])  # says what was removed
