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
