"""Imports point one way: no stage imports a later one (docs/how-elfcost-works.md, the
pipeline). Checked on the syntax tree, function-level (lazy) imports included."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "elfcost"

# Each top-level module or package of elfcost, by layer: a unit may import its own layer's
# units only if it is the same unit, and any unit of a lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "model"),
    ("files", "tars"),
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


def code_lines(source: str) -> int:
    """Lines that hold code: not blank, not only a comment, not a docstring (a string that is
    a statement of its own)."""
    lines: set[int] = set()
    depth, at_start = 0, True  # brackets open; whether the next token starts a statement
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            at_start = True
        elif tok.type == tokenize.NL:
            at_start = at_start or depth == 0
        elif tok.type not in (tokenize.COMMENT, tokenize.ENDMARKER):
            if tok.type == tokenize.OP:
                depth += (tok.string in "([{") - (tok.string in ")]}")
            if not (tok.type == tokenize.STRING and at_start):
                lines.update(range(tok.start[0], tok.end[0] + 1))
            at_start = False
    return len(lines)


def test_code_lines_counts_code_only() -> None:
    src = '# c\n"""Doc."""\n\ndef f() -> int:\n    """Doc\n    more."""\n'
    src += '    return g(\n        "x")\n'
    assert code_lines(src) == 3


def test_the_command_line_is_thin() -> None:
    """Parse, call the library, render, exit code: the command line's code stays within 700
    lines; orchestration and rendering belong to the library (issue: one typed pipeline)."""
    total = sum(code_lines(p.read_text()) for p in sorted((PACKAGE / "cli").glob("*.py")))
    assert total <= 700, f"{total} lines of command-line code"
