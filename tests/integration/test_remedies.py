"""What each remedy saves, up front: in every estimate's JSON, text and HTML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from elfcost import documents as d
from elfcost.report import words
from elfcost.report.units import size

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "build" / "samples"
GLIBC = str(SAMPLES / "copy_reloc.pie")
MUSL = str(SAMPLES / "copy_reloc.musl-dyn")
STATIC = str(SAMPLES / "ctor.static")


def run(*args: str, columns: str | None = None) -> str:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def doc_of(*args: str) -> d.EstimateDoc:
    return d.decode(run("estimate", "--format", "json", *args), d.EstimateDoc, source="stdout")


def test_each_remedy_is_its_what_if_against_the_program_as_built() -> None:
    doc = doc_of("-n", "129", GLIBC)
    assert doc.savings is not None
    names = [s.assume for s in doc.savings]
    assert {"static", "musl", "musl-static"} <= set(names)
    assert "glibc" not in names and "static-lib" not in names
    saved = [s.per_instance for s in doc.savings]
    assert saved == sorted(saved, reverse=True)  # the largest saving first
    built = doc.total.private_dirty.expected
    for s in doc.savings:
        whatif = doc_of("-n", "129", "--assume", s.assume, GLIBC)
        assert whatif.savings is None  # a what-if's estimate weighs no remedies of its own
        assert s.expected == whatif.total.private_dirty.expected
        assert s.per_instance == built - s.expected
        assert s.fleet == doc.total.fleet.total_expected - whatif.total.fleet.total_expected


def test_a_musl_program_weighs_glibc_and_a_static_one_nothing() -> None:
    musl = doc_of(MUSL)
    assert musl.savings is not None
    assert {s.assume for s in musl.savings} >= {"static", "glibc"}
    assert "musl" not in {s.assume for s in musl.savings}
    glibc = next(s for s in musl.savings if s.assume == "glibc")
    assert glibc.per_instance < 0  # a cost, kept and ranked last
    assert musl.savings[-1] == glibc
    assert doc_of(STATIC).savings == ()
    lib = str(SAMPLES / "libown.so")
    assert doc_of(lib).savings == ()  # relinking is a program's
    assert "relinking is a program's, and this is a shared library" in run("estimate", lib)


def test_text_says_what_one_more_instance_costs_and_the_biggest_saving() -> None:
    doc = doc_of("-n", "129", GLIBC)
    assert doc.savings
    best = doc.savings[0]
    out = run("estimate", "-n", "129", GLIBC)
    lines = out.splitlines()
    r = doc.total.private_dirty
    assert lines[1].startswith(f"one more instance costs {size(r.expected)} of private dirty")
    assert lines[2].startswith(f"biggest saving: {words.remedy_name(best.assume)}")
    assert f"{size(best.fleet)} for 129 instances" in lines[2]
    # The ranked table follows the per-object table, before where the memory goes.
    head = next(i for i, x in enumerate(lines) if "remedy (--assume)" in x)
    assert "saves / 129" in lines[head]
    assert head > next(i for i, x in enumerate(lines) if "total private dirty" in x)
    assert head < next(i for i, x in enumerate(lines) if x.startswith("where "))
    rows = [x for x in lines[head:] if x.startswith("│")]
    assert [x.split("│")[1].strip() for x in rows] == [s.assume for s in doc.savings]
    narrow = run("estimate", "-n", "129", GLIBC, columns="80")
    assert max(len(x) for x in narrow.splitlines()) <= 80
    assert "remedy (--assume)" in narrow and "biggest saving" in narrow


def test_static_program_text_says_there_is_nothing_to_weigh() -> None:
    out = run("estimate", STATIC)
    assert "no remedy to weigh: the program is statically linked" in out
    assert "remedy (--assume)" not in out
    assert "one more instance" not in run("estimate", "--assume", "static", GLIBC)


def test_html_lists_the_remedies() -> None:
    out = run("estimate", "--format", "html", "-n", "10", GLIBC)
    assert "What each remedy saves" in out and "biggest saving" in out
    assert "<td>musl-static</td>" in out and "saves / 10 instances" in out


def test_diff_still_reads_a_saved_estimate_1(tmp_path: Path) -> None:
    value = json.loads(run("estimate", "--format", "json", GLIBC))
    del value["savings"]
    value["schema"] = "elfcost.estimate/1"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(value))
    out = json.loads(run("diff", "--format", "json", str(old), GLIBC))
    assert out["schema"] == "elfcost.diff/1" and out["total"]["delta_expected"] == 0
    assert d.decode_estimate(old.read_text(), source="old.json").savings is None


def test_weighing_the_remedies_reads_each_object_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import Counter

    from elfcost import predict
    from elfcost.pipeline import analyse, make_host

    reads: Counter[str] = Counter()
    real = predict.read_facts

    def counted(dso: object, wanted: object) -> object:
        reads[getattr(dso, "path", "")] += 1
        return real(dso, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(predict, "read_facts", counted)
    a = analyse(GLIBC, make_host(), remedies=True)
    assert a.remedies is not None and len(a.remedies) >= 3
    assert reads and max(reads.values()) == 1, reads
