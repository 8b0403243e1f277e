"""Which libc functions an object links (elf/symbols.py linked_functions), read from real
files, and how the estimate turns them into heap and stack pages with their causes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from elfcost.elf.reader import read_dso
from elfcost.elf.symbols import find_symbols, linked_functions
from elfcost.model import Cause
from elfcost.predict import estimate
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

ASKED = ("malloc", "opendir", "printf", "fgets", "snprintf", "setlocale", "fopen")


def test_imports_of_the_samples(samples: Path) -> None:
    def imported(name: str) -> tuple[str, ...]:
        return linked_functions(read_dso(str(samples / name)), ASKED, imported=True)

    assert imported("trivial.pie") == ()
    assert imported("opendir_daemon.pie") == ("opendir",)
    assert imported("pipe_print.pie") == ("printf",)
    assert imported("stdin_read.nopie") == ("fgets",)
    assert imported("printf_format.pie") == ("snprintf",)
    # libc itself defines them: nothing imported
    assert linked_functions(read_dso("/lib/x86_64-linux-gnu/libc.so.6"), ASKED, imported=True) == ()


def test_a_static_program_is_asked_what_it_carries(samples: Path) -> None:
    def carried(name: str) -> tuple[str, ...]:
        p = samples / name
        if not p.exists():
            pytest.skip(f"{name} not built")
        return linked_functions(read_dso(str(p)), ASKED, imported=False)

    assert carried("trivial.musl-static") == ()
    assert carried("opendir_daemon.musl-static") == ("malloc", "opendir")
    assert "snprintf" in carried("printf_format.musl-static")
    # static glibc links malloc and opendir into every program (the profiles list them as
    # uninformative), printf only into one that calls it
    assert {"malloc", "opendir"} <= set(carried("trivial.static"))
    assert "printf" not in carried("trivial.static") and "printf" in carried("pipe_print.static")


def test_the_estimate_names_the_import_behind_each_heap_page(samples: Path) -> None:
    est = estimate(resolve(str(samples / "opendir_daemon.pie"), Host()))
    (heap,) = (i for i in est.process if i.name == "heap")
    assert heap.private_dirty.expected == 2 * est.page_size
    assert [p.cause for p in heap.pages] == [Cause.LIBC_HEAP, Cause.LIBC_HEAP]
    assert all("opendir (imported by opendir_daemon.pie)" in p.detail for p in heap.pages)
    trivial = estimate(resolve(str(samples / "trivial.pie"), Host()))
    assert est.total.expected - trivial.total.expected == 2 * est.page_size
    assert any("the program's own writes after main" in a for a in est.assumptions)


def test_the_json_document_carries_the_process_pages(samples: Path) -> None:
    program = samples / "stdin_read.pie"
    out = subprocess.run(
        [sys.executable, "-m", "elfcost", "estimate", "--format", "json", str(program)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = json.loads(out)
    assert doc["schema"] == "elfcost.estimate/3"
    pages = doc["process"]["heap"]["pages"]
    assert [(p["cause"], p["phase"], p["vaddr"]) for p in pages] == [
        ("libc-heap", "idle", None),
        ("stdio-buffer", "idle", None),
    ]
    assert pages[1]["detail"].startswith("fgets (imported by stdin_read.pie) reads a stream")


def test_imports_agree_with_lief_on_host_objects() -> None:
    """What each object imports, against LIEF's dynamic symbols (an independent parser): the
    undefined ones (st_shndx SHN_UNDEF) among the functions the model asks about. Programs and
    libraries of the host, whose string tables may keep a name as the tail of another."""
    lief = pytest.importorskip("lief")
    asked = (*ASKED, "free", "calloc", "realloc", "fwrite", "fputs", "puts", "strlen", "memcpy",
             "qsort", "getenv", "pthread_create", "dlopen", "__cxa_atexit", "_ZdlPv")  # fmt: skip
    files = ["/usr/bin/ls", "/usr/bin/python3", "/usr/bin/gdb", "/usr/bin/cmake"]
    files += [str(p) for p in sorted(Path("/lib/x86_64-linux-gnu").glob("lib*.so.*"))[:60]]
    checked = 0
    for f in files:
        p = Path(f)
        if not p.is_file() or p.is_symlink() or p.stat().st_size > 8 << 20:
            continue
        parsed = lief.ELF.parse(f)
        if parsed is None:
            continue
        undefined = {s.name for s in parsed.dynamic_symbols if s.shndx == 0 and s.name}
        expected = tuple(n for n in asked if n in undefined)
        assert linked_functions(read_dso(f), asked, imported=True) == expected, f
        checked += 1
    assert checked >= 20


STREAMS = ("_ZSt4cout", "_ZSt3cin", "_ZSt4cerr", "_ZSt5wclog", "_ZNSt8ios_base4InitC1Ev")


@pytest.mark.parametrize(
    "path",
    [
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",  # defines them all
        "/usr/bin/apt",  # copies cout (R_X86_64_COPY): defines it in its .bss
        "/usr/lib/x86_64-linux-gnu/libapt-pkg.so.6.0",  # imports them: defines none
        "/lib/x86_64-linux-gnu/libc.so.6",  # names none
    ],
)
def test_dynamic_definitions_agree_with_lief(path: str) -> None:
    """What an object defines of the names asked (where a reference binds), read by elfcost
    from .dynsym, against lief's own reading of the same file."""
    lief = pytest.importorskip("lief")
    if not Path(path).exists():
        pytest.skip(f"{path} not installed")
    binary = lief.parse(path)
    want = {
        s.name: (s.value, s.size)
        for s in binary.dynamic_symbols
        if s.name in STREAMS and s.shndx != 0  # SHN_UNDEF: an import
    }
    got = find_symbols(read_dso(path), (*STREAMS, "no_such_symbol"), dynamic_only=True)
    assert got == want


@pytest.mark.parametrize(
    "name",
    ["trivial.static", "trivial.musl-static", "trivial.pie", "/lib/x86_64-linux-gnu/libc.so.6"],
)
def test_symbol_definitions_agree_with_pyelftools(samples: Path, name: str) -> None:
    """Definitions by name from .symtab and .dynsym, first in section order (what a static
    program's libc start-up symbols are placed from), against pyelftools' reading."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    path = name if name.startswith("/") else str(samples / name)
    if not Path(path).exists():
        pytest.skip(f"{name} not built")
    asked = (
        "__environ",
        "main",
        "_start",
        "__libc_initial",
        "initial",
        "malloc",
        "__stack_chk_guard",
    )
    want: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as fh:
        for section in ELFFile(fh).iter_sections():
            if isinstance(section, SymbolTableSection):
                for sym in section.iter_symbols():
                    if sym.name in asked and sym["st_shndx"] != "SHN_UNDEF":
                        want.setdefault(sym.name, (sym["st_value"], sym["st_size"]))
    assert want  # each names some of them
    assert find_symbols(read_dso(path), asked) == want
