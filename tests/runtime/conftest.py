"""Fixtures for the runtime tests; every test here must leave no child process behind."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("elfcost") is None:  # running from a checkout, not installed
    sys.path.insert(0, str(ROOT / "src"))

SMAPS_DATA = ROOT / "tests" / "data" / "smaps"


def _children() -> list[tuple[int, str]]:
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[1]) == me:
            out.append((int(name), text[text.find("(") + 1 : text.rfind(")")] + " " + fields[0]))
    return out


@pytest.fixture(autouse=True)
def no_children_left() -> Iterator[None]:
    """After each test, no process (zombies included) may still have this process as parent."""
    yield
    left = _children()
    assert not left, f"processes left behind: {left}"


@pytest.fixture
def smaps_text() -> dict[str, str]:
    return {p.name: p.read_text() for p in SMAPS_DATA.glob("*.txt")}
