"""`elfcost causes` is the cause registry, and every cause any JSON document of elfcost names
is one of its names: estimates of every sample binary, a validation, a diff."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elfcost.cost.causes import CAUSES, CauseInfo
from elfcost.documents import encode
from elfcost.model import Cause

pytestmark = pytest.mark.integration


def run(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r


@pytest.fixture(scope="module")
def names() -> set[str]:
    return {c["name"] for c in json.loads(run("causes", "--format", "json").stdout)["causes"]}


def causes_in(value: Any) -> Iterator[str]:
    """Every cause a document names: the values of `cause` keys, the keys of `causes` maps."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "cause" and item is not None:
                yield item
            elif key == "causes":
                yield from item
            yield from causes_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from causes_in(item)


def test_causes_json_is_the_registry_in_precedence_order() -> None:
    doc = json.loads(run("causes", "--format", "json").stdout)
    assert list(doc) == ["causes"]
    assert [c["name"] for c in doc["causes"]] == [c.value for c in Cause]
    for row, info in zip(doc["causes"], CAUSES, strict=True):
        assert list(row) == list(CauseInfo.__struct_fields__)
        assert row == json.loads(encode(info))


def test_causes_text_lists_every_name_letter_and_label() -> None:
    lines = run("causes").stdout.splitlines()
    heads = [line for line in lines if not line.startswith("    ")]  # then the explanations
    assert len(heads) == len(CAUSES)
    for line, c in zip(heads, CAUSES, strict=True):
        assert line.split()[:3] == [c.name, c.letter, c.label]
        assert line.endswith(", ".join(c.rules))
    # Each explanation and source follow, wrapped (at spaces and hyphens) and indented.
    squeezed = "".join("".join(lines).split())
    for c in CAUSES:
        assert "".join(f"{c.explanation} Source: {c.source}.".split()) in squeezed


def elf_files(top: Path) -> list[str]:
    return sorted(
        str(p) for p in top.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"
    )


def test_every_estimate_names_registry_causes(samples: Path, names: set[str]) -> None:
    binaries = elf_files(samples)
    out = run("estimate", "--format", "json", *binaries).stdout.splitlines()
    docs = [json.loads(line) for line in out]  # one process, many inputs: JSON Lines
    assert [d["binary"] for d in docs] == binaries
    found = {c for d in docs for c in causes_in(d)}
    assert found <= names
    # The samples show most causes (sample_binaries/README.md: one behaviour each).
    assert {"textrel", "copy-reloc", "relocation", "bss-tail", "libc-startup"} <= found


def test_a_diff_names_registry_causes(samples: Path, names: set[str]) -> None:
    old, new = samples / "trivial.pie", samples / "textrel.nopie"
    doc = json.loads(run("diff", "--format", "json", str(old), str(new)).stdout)
    found = set(causes_in(doc))
    assert "textrel" in found and found <= names


@pytest.mark.runtime
def test_a_validation_names_registry_causes(samples: Path, names: set[str]) -> None:
    out = run("validate", "--format", "json", str(samples / "bss_touched.pie")).stdout
    docs = json.loads(out)
    assert [d["stop"] for d in docs] == ["entry", "idle"]
    found = {c for d in docs for c in causes_in(d)}
    assert "possible-write" in found and found <= names  # the pages main writes
