"""--assume static-lib=SONAME against real builds: skalike (sample_binaries/src/skalike.c) with
libskalike.so loaded, and with libskalike.a linked in, with glibc and musl, PIE and not. The
what-if on the shared build must match the estimate of the linked-in build within one page per
object; tests/runtime/test_static_lib_measured.py holds it against the kernel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from msgspec.structs import replace

from elfcost.analysis import pairing_key
from elfcost.cli import main
from elfcost.errors import UsageError
from elfcost.model import Estimate
from elfcost.pipeline import AS_BUILT, Scenario, analyse, make_host
from elfcost.report import jsonout

if TYPE_CHECKING:
    from conftest import Skalike

P = 4096
LIB = "libskalike.so"


def per_object(est: Estimate) -> dict[str, tuple[int, int]]:
    doc = jsonout.estimate_doc(est)
    return {
        pairing_key(o): (o.private_dirty.at_entry // P, o.private_dirty.expected // P)
        for o in doc.objects
    }


def test_whatif_matches_the_linked_in_build(skalike: Skalike) -> None:
    host = make_host()
    shared = analyse(skalike.shared, host)
    whatif = analyse(skalike.shared, host, Scenario(static_libs=(LIB,)))
    linked = analyse(skalike.linked, host).estimate
    assert whatif.as_built == shared.estimate
    est = whatif.estimate
    # The library is gone from the process, as in the linked-in build; every other object
    # matches within one page, at the entry point and idle.
    got, want = per_object(est), per_object(linked)
    assert set(got) == set(want) and LIB not in got
    assert LIB in per_object(shared.estimate)
    for key in want:
        assert abs(got[key][0] - want[key][0]) <= 1, (key, got[key], want[key])
        assert abs(got[key][1] - want[key][1]) <= 1, (key, got[key], want[key])
    # The loader's heap keeps one link_map fewer: the linked-in build's figure.
    heap = {p.name: p.private_dirty for p in est.process}
    real = {p.name: p.private_dirty for p in linked.process}
    # The stack's possible pages after main come from the libc functions the process imports;
    # a shared library does not say which archive member imports what, so the what-if keeps
    # every import of the library (the unused member's too) and may bound it higher.
    assert heap["stack"].high >= real["stack"].high
    heap["stack"] = replace(heap["stack"], high=real["stack"].high)
    assert heap == real
    assert est.total.expected < shared.estimate.total.expected
    why = est.assumptions[-1]
    assert "linked in from static archives: libskalike.so" in why
    assert ("RELATIVE records of the PIE" in why) == skalike.pie


def test_usage_errors(samples: Path) -> None:
    program = str(samples / "staticlib" / "skalike.pie-shared")
    runner = CliRunner()
    for bad in ("static-lib=libc.so.6", "static-lib=libnothere.so", "static-lib="):
        r = runner.invoke(main, ["estimate", "--assume", bad, program])
        assert r.exit_code == 2, (bad, r.output)
    r = runner.invoke(
        main, ["estimate", "--assume", f"static-lib={LIB}", "--assume", "musl", program]
    )
    assert r.exit_code == 2
    r = runner.invoke(main, ["estimate", "--assume", f"static-lib={LIB}", program])
    assert r.exit_code == 0, r.output
    # A statically linked program loads no library to link in.
    r = runner.invoke(
        main, ["estimate", "--assume", f"static-lib={LIB}", str(samples / "trivial.static")]
    )
    assert r.exit_code == 2 and "statically linked" in r.output, r.output
    # The loader, named by its file name, is refused once the program is resolved.
    with pytest.raises(UsageError, match="dynamic loader"):
        analyse(program, make_host(), Scenario(static_libs=("ld-linux-x86-64.so.2",)))


def test_savings_list_static_lib(samples: Path) -> None:
    program = str(samples / "staticlib" / "skalike.pie-shared")
    a = analyse(program, make_host(), AS_BUILT, remedies=True)
    doc = jsonout.estimate_doc(a.estimate, remedies=a.remedies)
    assert doc.savings is not None
    named = {s.assume: s for s in doc.savings}
    assert f"static-lib={LIB}" in named and "static-lib=libc.so.6" not in named
    # One library besides libc: static-lib=all would be the same what-if, and is not listed.
    assert "static-lib=all" not in named
    assert named[f"static-lib={LIB}"].per_instance > 0


def test_check_and_diff_take_it(samples: Path) -> None:
    d = samples / "staticlib"
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "diff",
            "--format",
            "json",
            "--assume",
            f"static-lib={LIB}",
            str(d / "skalike.pie-shared"),
            str(d / "skalike.pie-shared"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        main,
        [
            "check",
            "--assume",
            f"static-lib={LIB}",
            "--max-private-dirty",
            "1M",
            str(d / "skalike.pie-shared"),
        ],
    )
    assert r.exit_code == 0, r.output


def test_a_saved_estimate_2_is_still_read(samples: Path, tmp_path: Path) -> None:
    # elfcost.estimate/3 differs from /2 only in what savings[].assume may hold.
    import json

    from elfcost import documents as d

    program = str(samples / "staticlib" / "skalike.pie-shared")
    r = CliRunner().invoke(main, ["estimate", "--format", "json", program])
    value = json.loads(r.output)
    assert value["schema"] == "elfcost.estimate/3"
    assert f"static-lib={LIB}" in [s["assume"] for s in value["savings"]]
    value["schema"] = "elfcost.estimate/2"
    value["savings"] = [s for s in value["savings"] if not s["assume"].startswith("static-lib=")]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(value))
    doc = d.decode_estimate(old.read_text(), source="old.json")
    assert doc.savings is not None and doc.binary == program


def test_scan_links_in_where_the_library_is_loaded(samples: Path) -> None:
    import json

    d = samples / "staticlib"
    r = CliRunner().invoke(
        main,
        [
            "scan",
            "--no-cache",
            "-j",
            "1",
            "--format",
            "jsonl",
            "--assume",
            f"static-lib={LIB}",
            str(d / "skalike.pie-shared"),
            str(d / "skalike.pie-linked"),
        ],
    )
    assert r.exit_code == 0, r.output
    docs = {
        x["path"].rsplit("/", 1)[-1]: x["estimate"]
        for x in map(json.loads, r.output.splitlines())
        if x["schema"] == "elfcost.scan-result/2"
    }
    shared, linked = docs["skalike.pie-shared"], docs["skalike.pie-linked"]
    assert LIB not in [o["soname"] for o in shared["objects"]]
    assert "linked in from static archives" in shared["assumptions"][-1]
    assert f"loads none of {LIB}" in linked["assumptions"][-1]
    for figure in ("at_entry", "expected"):
        assert shared["total"]["private_dirty"][figure] == linked["total"]["private_dirty"][figure]


def test_dynamic_symbols_are_pyelftools_s(samples: Path) -> None:
    # The struct reader of .dynsym (elf/symbols.py dynamic_symbols) against pyelftools, on the
    # samples' library and this machine's libc (glibc, and musl where installed).
    from elftools.elf.elffile import ELFFile

    from elfcost.elf.reader import read_dso
    from elfcost.elf.symbols import dynamic_symbols

    files = [samples / "staticlib" / LIB, samples / "staticlib" / "skalike.pie-shared"]
    files += [Path(p) for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/ld-musl-x86_64.so.1")]
    checked = 0
    for f in files:
        if not f.exists():
            continue
        got = dynamic_symbols(read_dso(str(f)))
        with f.open("rb") as fh:
            section = ELFFile(fh).get_section_by_name(".dynsym")
            syms = [s for s in section.iter_symbols() if s.name]  # type: ignore[union-attr]
            defined = {
                s.name: s["st_size"]
                for s in syms
                if s["st_shndx"] != "SHN_UNDEF"
                and s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT")
            }
            undefined = {s.name for s in syms if s["st_shndx"] == "SHN_UNDEF"}
        assert got.defined == defined and got.undefined == undefined, f
        checked += bool(defined)
    assert checked >= 2
