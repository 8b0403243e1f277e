"""The JSON Schema files of report/schema/, generated from the document Structs.

`make schemas` (python -m elfcost.report.schemas) writes them; a test fails when the committed
files differ from what the Structs generate, so the schema files and the code cannot drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from elfcost import documents as d

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

# Every document elfcost writes, with the command that writes it.
DOCUMENTS: tuple[tuple[type[msgspec.Struct], str], ...] = (
    (d.DepsDoc, "elfcost deps --format json"),
    (d.EstimateDoc, "elfcost estimate --format json"),
    (d.MeasurementDoc, "elfcost measure --format json"),
    (d.MeasurementGroupDoc, "elfcost measure --pid PID... --format json"),
    (d.MachineDoc, "elfcost measure --all --format json"),
    (d.ComparisonDoc, "elfcost validate --format json"),
    (d.CheckDoc, "elfcost check --format json"),
    (d.DiffDoc, "elfcost diff --format json"),
    (d.DiffRootsDoc, "elfcost diff DIR DIR --format json"),
    (d.DiffArchivesDoc, "elfcost diff --archive OLD NEW --format json"),
    (d.ScanResultDoc, "elfcost scan --format jsonl (one line per program)"),
    (d.ScanDoc, "elfcost scan --format json"),
    (d.ErrorDoc, "an input that could not be analysed, in any --format json or jsonl"),
)


def tag(kind: type[msgspec.Struct]) -> str:
    """The document's name and version, "elfcost.estimate/1"."""
    return str(kind.__struct_config__.tag)


def file_name(kind: type[msgspec.Struct]) -> str:
    """estimate-1.json for elfcost.estimate/1."""
    name, version = tag(kind).removeprefix("elfcost.").split("/")
    return f"{name}-{version}.json"


def schema(kind: type[msgspec.Struct], title: str) -> dict[str, Any]:
    generated = msgspec.json.schema(kind)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": tag(kind),
        "title": title,
        **generated,
    }


def rendered() -> dict[str, str]:
    """File name → its text, for every document."""
    return {
        file_name(kind): json.dumps(schema(kind, title), indent=2, sort_keys=False) + "\n"
        for kind, title in DOCUMENTS
    }


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write every schema file and remove the ones no document has any more; the names."""
    files = rendered()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return sorted(files)


if __name__ == "__main__":
    for name in write():
        sys.stdout.write(f"{SCHEMA_DIR / name}\n")
