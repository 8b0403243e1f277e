"""A scan reads each program it estimates once: the read that tells a program from a library
is the one its resolution uses (Host.adopt), with the section headers the host reads; the
result is the same as a standalone estimate's."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from elfcost.elf import reader
from elfcost.model import Dso
from elfcost.pipeline import make_host
from elfcost.predict import estimate
from elfcost.report.jsonout import dumps, estimate_doc
from elfcost.resolve import host as host_module
from elfcost.resolve.search import resolve
from elfcost.scan import Scan, ScanOptions
from elfcost.scan import run as scan_run

pytestmark = pytest.mark.integration


def counted(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Reads of each file, by the scan and by the host, from here on."""
    reads: collections.Counter[str] = collections.Counter()

    def read_dso(file: str, **kw: object) -> Dso:
        reads[file] += 1
        return reader.read_dso(file, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_run, "read_dso", read_dso)
    monkeypatch.setattr(host_module, "read_dso", read_dso)
    return reads


@pytest.mark.parametrize("named", [True, False], ids=["named", "in-a-directory"])
def test_each_program_read_once(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    programs = [samples / "bss_tail.pie", samples / "bss_huge.pie"]
    for p in programs:
        shutil.copy(p, tmp_path / p.name)
    inputs = [str(tmp_path / p.name) for p in programs] if named else [str(tmp_path)]
    reads = counted(monkeypatch)
    scan = Scan(inputs, ScanOptions(jobs=1, no_cache=True))
    results = {r.path: r for r in scan.results()}
    assert scan.summary.executables == 2
    for p in programs:
        file = str(tmp_path / p.name)
        assert reads[file] == 1, reads
        # The estimate is a standalone one's: the host's read, sections included.
        doc = results[file].doc
        assert doc is not None
        alone = estimate(resolve(file, make_host()))
        assert dumps(doc, pretty=False) == dumps(estimate_doc(alone), pretty=False)
        assert any(p.sections for o in doc.objects for p in o.pages if o.role == "executable")


def test_libraries_under_a_directory_are_classified_without_a_worker(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library found under a directory needs no estimate: the scanning process reads its
    headers once (as it reads a program's, for the pool's choice) and stores its cache entry;
    no worker is started for a directory of libraries. A program among them starts the pool,
    and is read once here."""
    from elfcost.scan import engine

    started: list[int] = []
    real = engine.ProcessPoolExecutor

    def executor(*args: object, **kw: object) -> object:
        started.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "ProcessPoolExecutor", executor)
    libs = tmp_path / "lib"
    libs.mkdir()
    for name in ("libown.so", "libctorinit.so"):
        shutil.copy(samples / name, libs / name)
    (libs / "README").write_text("not ELF\n")
    reads = counted(monkeypatch)
    for cache in ("cold", "warm"):  # the entries stored here are found the next time
        scan = Scan([str(libs)], ScanOptions(jobs=2, cache_dir=str(tmp_path / "cache")))
        assert list(scan.results()) == []
        summary = scan.summary
        assert (summary.libraries, summary.executables, summary.skipped_non_elf) == (2, 0, 1)
        assert summary.cache_hits == (2 if cache == "warm" else 0), cache
    assert started == []
    assert reads == {str(libs / "libown.so"): 1, str(libs / "libctorinit.so"): 1}
    shutil.copy(samples / "ownlib.pie", libs / "ownlib")
    scan = Scan([str(libs)], ScanOptions(jobs=2, no_cache=True))
    assert [r.path for r in scan.results()] == [str(libs / "ownlib")]
    assert started == [1] and reads[str(libs / "ownlib")] == 1


def test_the_pool_is_told_what_each_program_names(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local pool's choice of worker (engine.Work.shares) gets each program's DT_NEEDED
    from the calling process's one read of it, named or found under a directory."""
    told: dict[str, frozenset[str]] = {}
    real = scan_run._Worker.needed

    def needed(self: scan_run._Worker, t: scan_run._Target) -> frozenset[str]:
        told[t.path] = real(self, t)
        return told[t.path]

    monkeypatch.setattr(scan_run._Worker, "needed", needed)
    d = tmp_path / "bin"
    d.mkdir()
    shutil.copy(samples / "bss_tail.pie", d / "bss_tail")
    named = str(samples / "ownlib.pie")
    reads = counted(monkeypatch)
    results = list(Scan([named, str(d)], ScanOptions(jobs=2, no_cache=True)).results())
    assert [r.error for r in results] == [None, None]
    assert told == {
        named: frozenset({"libown.so", "libc.so.6"}),
        str(d / "bss_tail"): frozenset({"libc.so.6"}),
    }
    assert reads[named] == 1 and reads[str(d / "bss_tail")] == 1  # in this process
