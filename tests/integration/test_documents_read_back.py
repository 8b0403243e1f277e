"""Every JSON document the commands write reads back into its Struct, validated, and encodes
to the same values again: what elfcost writes is exactly what it can read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Union

import pytest

from elfcost import documents as d
from elfcost.report.schemas import DOCUMENTS

pytestmark = pytest.mark.integration

# The documents are tagged by their "schema" field: one decode picks the right Struct.
Any_ = Union[tuple(kind for kind, _ in DOCUMENTS)]  # type: ignore[valid-type]  # noqa: UP007


def documents_in(stdout: str) -> list[Any]:
    """One indented document, an array of them (validate), or JSON Lines."""
    text = stdout.strip()
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines()]


def read_back(stdout: str) -> list[str]:
    """Decode each document into its Struct and check it encodes to the same values."""
    tags = []
    for value in documents_in(stdout):
        doc = d.decode(json.dumps(value), Any_, source="stdout")
        assert json.loads(d.encode(doc)) == value
        tags.append(value["schema"])
    return tags


def stdout_of(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


def test_estimate_deps_check_diff_scan_read_back(samples: Path, tmp_path: Path) -> None:
    pie, nopie = str(samples / "ownlib.pie"), str(samples / "relro_ptr_table.nopie")
    assert read_back(stdout_of("estimate", "--format", "json", pie)) == ["elfcost.estimate/3"]
    assert (
        read_back(stdout_of("estimate", "--format", "json", pie, nopie))
        == ["elfcost.estimate/3"] * 2
    )
    assert read_back(stdout_of("deps", "--format", "json", pie)) == ["elfcost.deps/1"]
    assert read_back(stdout_of("check", "--format", "json", pie, nopie)) == ["elfcost.check/4"]
    assert read_back(stdout_of("diff", "--format", "json", pie, nopie)) == ["elfcost.diff/1"]
    tags = read_back(
        stdout_of("scan", "--format", "jsonl", "--cache-dir", str(tmp_path), pie, nopie)
    )
    assert tags == ["elfcost.scan-result/2"] * 2 + [tags[-1]] and tags[-1].startswith(
        "elfcost.scan/"
    )


@pytest.mark.runtime
def test_measurement_and_comparison_read_back(samples: Path) -> None:
    exe = str(samples / "trivial.pie")
    assert read_back(stdout_of("measure", "--at", "entry", "--format", "json", "--", exe)) == [
        "elfcost.measurement/1"
    ]
    assert read_back(stdout_of("validate", "--format", "json", exe)) == ["elfcost.comparison/2"] * 2
