"""The cost stage computes from values: nothing under cost/ opens a file, and it imports only
the model, the errors, itself and pure helpers, which are held to the same rule.

Checked on the syntax tree of every module the cost stage reaches (elfcost imports followed
transitively, in function bodies and TYPE_CHECKING blocks too), not by searching the text.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
COST = SRC / "elfcost" / "cost"

# What the cost stage may import from elfcost: the model, the errors, itself, and helpers that
# hold values and tables only.
PURE_HELPERS = frozenset(
    {
        "elfcost.model",
        "elfcost.errors",
        "elfcost.elf.facts",  # ObjectFacts and the relocation groups
        "elfcost.elf.machines",  # relocation type tables
        "elfcost.resolve.graph",  # DependencyGraph, a Struct of loaded objects
    }
)
# Standard and third-party modules that reach files, processes or ELF parsers.
IO_MODULES = frozenset(
    {
        "builtins",
        "fileinput",
        "glob",
        "importlib",
        "io",
        "lief",
        "mmap",
        "os",
        "pathlib",
        "shutil",
        "socket",
        "subprocess",
        "tempfile",
        "tomllib",
        "elftools",
    }
)
IO_CALLS = frozenset({"open", "__import__", "exec", "eval", "compile"})
IO_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "open"})


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def module_path(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(tree: ast.AST, package: str) -> list[str]:
    """Every module an import statement names: `from a import b` counts as a.b when a.b is a
    module of elfcost (a submodule import), else as a."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append(sub if module_path(sub) is not None else base)
    return out


def io_uses(tree: ast.AST) -> list[str]:
    """Calls and attribute uses that reach a file, by name."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in IO_CALLS:
                found.append(f"{f.id}() at line {node.lineno}")
            if isinstance(f, ast.Attribute) and f.attr in IO_METHODS:
                found.append(f".{f.attr}() at line {node.lineno}")
        value = node.value if isinstance(node, ast.Attribute) else None
        if (
            isinstance(node, ast.Attribute)
            and isinstance(value, ast.Name)
            and value.id in IO_MODULES
        ):
            found.append(f"{value.id}.{node.attr} at line {node.lineno}")
    return found


def problems(source: str, name: str, package: str) -> list[str]:
    tree = ast.parse(source, filename=name)
    out = [f"{name}: {use}" for use in io_uses(tree)]
    for mod in imported_modules(tree, package):
        top = mod.split(".")[0]
        if top in IO_MODULES:
            out.append(f"{name}: imports {mod}")
        elif top == "elfcost" and not (mod.startswith("elfcost.cost") or mod in PURE_HELPERS):
            out.append(f"{name}: imports {mod}, which is not the model, the errors or pure")
    return out


def reached_modules() -> dict[str, Path]:
    """The cost modules and every elfcost module they import, transitively."""
    todo = [module_name(p) for p in sorted(COST.glob("*.py"))]
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        path = module_path(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        todo.extend(m for m in imported_modules(tree, package) if m.startswith("elfcost"))
    return seen


def test_the_cost_stage_and_what_it_imports_read_no_file() -> None:
    modules = reached_modules()
    # Every cost module is checked, and the helpers it imports with them.
    assert {"elfcost.cost.estimate", "elfcost.cost.rules", "elfcost.cost.whatif"} <= set(modules)
    assert "elfcost.elf.facts" in modules
    found = []
    for name, path in sorted(modules.items()):
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found += problems(path.read_text(encoding="utf-8"), name, package)
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "from os import path",
        "import pathlib",
        "from mmap import mmap",
        "from elftools.elf.elffile import ELFFile",
        "from elfcost.elf.reader import read_dso",
        "from elfcost.elf import reader",
        "from elfcost.elf.gather import read_facts",
        "from elfcost.resolve.host import Host",
        "def f():\n    from elfcost.elf.symbols import find_symbols",
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from elfcost.resolve.swap import LibcSwap",
        "from ..elf import relocs",
        "def f(p):\n    return open(p).read()",
        "def f(p):\n    return p.read_bytes()",
        "def f(p):\n    return os.stat(p)",
    ],
)
def test_the_check_sees_each_way_of_reaching_a_file(source: str) -> None:
    assert problems(source, "elfcost.cost.example", "elfcost.cost") != []


def test_the_check_lets_values_through() -> None:
    source = (
        "from collections.abc import Mapping\nimport msgspec\n"
        "from elfcost.cost.pages import align_down\nfrom elfcost.elf.facts import ObjectFacts\n"
        "from elfcost.model import Dso\nfrom . import rules\n"
    )
    assert problems(source, "elfcost.cost.example", "elfcost.cost") == []
