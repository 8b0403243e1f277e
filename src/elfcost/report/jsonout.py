"""Model → JSON documents (each carries "schema": "elfcost.<command>/<version>").

JSON output is an API: sizes are integers in bytes, addresses integers. The schema files ship in
report/schema/ and the tests validate every document against them.
"""

from __future__ import annotations

import json

from elfcost.model import Attempt, Estimate, Range, Resolution
from elfcost.resolve.graph import DependencyGraph

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def dumps(doc: dict[str, Any], *, pretty: bool = True) -> str:
    return json.dumps(doc, indent=2 if pretty else None, sort_keys=False)


def load_schema(name: str) -> dict[str, Any]:
    from importlib import resources  # only the tests read schemas; keep it off start-up

    text = (resources.files("elfcost.report") / "schema" / f"{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _attempt(a: Attempt) -> dict[str, Any]:
    return {"path": a.path, "via": a.via.value, "outcome": a.outcome, "origin": a.origin}


def _missing(r: Resolution) -> dict[str, Any]:
    return {"needed": r.needed, "parent": r.parent, "tried": [_attempt(a) for a in r.tried]}


def deps_doc(graph: DependencyGraph) -> dict[str, Any]:
    objects = []
    for o in graph.objects:
        objects.append(
            {
                "path": o.dso.path,
                "soname": o.dso.soname,
                "role": o.role,
                "needed": list(o.dso.needed),
                "found_via": o.found_via.value,
                "parent": o.parent,
                "machine": o.dso.machine,
                "elf_class": o.dso.elf_class,
            }
        )
    return {
        "schema": "elfcost.deps/1",
        "binary": graph.root.dso.path,
        "loader": {"family": graph.family.value, "path": graph.interp},
        "objects": objects,
        "missing": [_missing(r) for r in graph.missing],
        "warnings": list(graph.warnings),
    }


def _range(r: Range) -> dict[str, int]:
    return {"at_entry": r.at_entry, "low": r.low, "expected": r.expected, "high": r.high}


def estimate_doc(est: Estimate, *, instances: int = 1) -> dict[str, Any]:
    objects = []
    for o in est.objects:
        objects.append(
            {
                "path": o.path,
                "soname": o.soname,
                "role": o.role,
                "writable_pages": o.writable_pages,
                "pages": [
                    {
                        "vaddr": p.vaddr,
                        "cause": p.cause.value,
                        "certain": p.certain,
                        "phase": p.phase,
                        "detail": p.detail,
                        "sections": list(p.sections),
                        "relocations": p.reloc_count,
                        "relocation_types": list(p.reloc_types),
                    }
                    for p in o.pages
                ],
                "private_dirty": _range(o.private_dirty),
                "shared_clean": o.shared_clean,
                "notes": list(o.notes),
                "possible_unlisted": o.possible_unlisted,
            }
        )
    total = est.total
    fleet = {
        "instances": instances,
        "shared_clean": est.shared_clean,
        "private_dirty": _range(total.scaled(instances)),
        "total_expected": total.expected * instances + est.shared_clean,
    }
    return {
        "schema": "elfcost.estimate/1",
        "binary": est.binary,
        "page_size": est.page_size,
        "machine": est.machine,
        "loader": {"family": est.loader_family.value, "path": est.loader_path},
        "profile": est.profile,
        "objects": objects,
        "process": {
            p.name: {**_range(p.private_dirty), "certain": p.certain, "detail": p.detail}
            for p in est.process
        },
        "total": {"private_dirty": _range(total), "shared_clean": est.shared_clean, "fleet": fleet},
        "missing": [_missing(r) for r in est.missing],
        "warnings": list(est.warnings),
        "assumptions": list(est.assumptions),
    }
