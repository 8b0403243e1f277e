"""Imports point one way: no stage imports a later one (docs/how-elfcost-works.md, the
pipeline). Checked on the syntax tree, function-level (lazy) imports included."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "elfcost"

# Each top-level module or package of elfcost, by layer: a unit may import its own layer's
# units only if it is the same unit, and any unit of a lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "model"),
    ("files",),
    ("documents",),
    ("elf",),
    ("resolve",),
    ("cost",),
    ("predict",),
    ("pipeline", "runtime"),
    ("analysis",),
    ("report",),
    ("diffing", "check", "scan"),
    ("cli",),
    ("__main__",),
)
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """elfcost.cost.rules → cost; elfcost → elfcost (the package's own __init__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "elfcost"


def imported(source: str) -> Iterator[str]:
    """Every elfcost module `source` imports, at any depth."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("elfcost"):
            if node.module == "elfcost":
                yield from (f"elfcost.{a.name}" for a in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("elfcost"))


def violations(unit: str, source: str) -> list[str]:
    bad = []
    for target in imported(source):
        other = unit_of(target)
        if other in (unit, "elfcost"):
            continue
        if other not in RANK:
            bad.append(f"{target}: a unit no layer names")
        elif RANK[other] > RANK[unit] or (RANK[other] == RANK[unit] and other != unit):
            bad.append(f"{target} ({other}, layer {RANK[other]}) from layer {RANK[unit]}")
    return bad


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        yield rel.parts[0].removesuffix(".py"), path


def test_every_unit_has_a_layer() -> None:
    units = {u for u, _ in modules()} - {"__init__"}
    assert units <= set(RANK), units - set(RANK)


@pytest.mark.parametrize(("unit", "path"), list(modules()), ids=lambda v: str(v))
def test_imports_point_down(unit: str, path: Path) -> None:
    if unit == "__init__":
        return
    assert violations(unit, path.read_text()) == []


@pytest.mark.parametrize(
    ("unit", "source"),
    [
        ("cost", "from elfcost.report import text"),
        ("report", "def f():\n    from elfcost.scan import Scan\n"),
        ("scan", "from elfcost import check"),
        ("elf", "import elfcost.resolve.host"),
        ("model", "from elfcost.nowhere import x"),
    ],
)
def test_the_check_catches_an_import_that_points_up(unit: str, source: str) -> None:
    assert violations(unit, source)
