"""`elfcost diff`: two binaries, a saved report against a binary, two trees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=120
    )


def estimate(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(run("estimate", "--format", "json", str(path)).stdout)


def test_binaries_per_object_and_cause(samples: Path) -> None:
    pie, nopie = samples / "relro_ptr_table.pie", samples / "relro_ptr_table.nopie"
    r = run("diff", "--format", "json", "-n", "129", str(pie), str(nopie))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    a, b = estimate(pie), estimate(nopie)
    delta = b["total"]["private_dirty"]["expected"] - a["total"]["private_dirty"]["expected"]
    assert d["total"]["delta_expected"] == delta < 0  # non-PIE: the pointer table is not relocated
    exe = d["objects"][0]
    assert exe["object"] == "(executable)" and exe["causes"]["relocation"] < 0
    assert exe["delta"] == exe["delta_pages"] * d["page_size"]
    assert d["fleet"]["delta"] == 129 * delta + (
        b["total"]["shared_clean"] - a["total"]["shared_clean"]
    )


def test_saved_report_against_binary(samples: Path, tmp_path: Path) -> None:
    report = tmp_path / "before.json"
    report.write_text(run("estimate", "--format", "json", str(samples / "trivial.pie")).stdout)
    r = run("diff", "--format", "json", str(report), str(samples / "trivial.musl-dyn"))
    d = json.loads(r.stdout)
    libc = next(o for o in d["objects"] if o["object"] == "libc.so.6")
    assert libc["new_expected"] == 0 and libc["delta"] < 0  # musl has no separate libc.so.6
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something/1"}')
    r = run("diff", str(bad), str(samples / "trivial.pie"))
    assert r.returncode == 3 and "not an elfcost.estimate/3 (or /2, /1) document" in r.stderr


def test_two_trees(samples: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    shutil.copy(samples / "relro_ptr_table.pie", old / "prog")
    shutil.copy(samples / "relro_ptr_table.nopie", new / "prog")
    shutil.copy(samples / "trivial.pie", new / "added")
    d = json.loads(run("diff", "--format", "json", str(old), str(new)).stdout)
    rows = {r["path"]: r for r in d["programs"]}
    assert rows["prog"]["delta"] < 0 and rows["added"]["old_expected"] == 0
    assert d["total_delta"] == sum(r["delta"] for r in d["programs"])


@pytest.mark.parametrize(
    ("mangle", "says"),
    [
        (lambda d: d.pop("objects"), "missing required field `objects`"),
        (lambda d: d["objects"][0].update(role="plugin"), "$.objects[0].role"),
        (
            lambda d: d.update(schema="elfcost.deps/1"),
            "not an elfcost.estimate/3 (or /2, /1) document",
        ),
        (lambda d: d["total"].update(shared_clean="lots"), "$.total.shared_clean"),
        # a \udcXX escape (a byte that is not UTF-8) where a number belongs: once an internal
        # error (msgspec could not print the text it refused)
        (lambda d: d.update(page_size="\udc80"), "Expected `int`, got `str` - at `$.page_size`"),
        (lambda d: d["objects"][0].update(role="\udcff"), "$.objects[0].role"),
    ],
)
def test_a_malformed_saved_report_is_one_line_and_exit_3(
    samples: Path, tmp_path: Path, mangle: object, says: str
) -> None:
    doc = estimate(samples / "relro_ptr_table.pie")
    mangle(doc)  # type: ignore[operator]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    r = run("diff", str(bad), str(samples / "relro_ptr_table.pie"))
    assert r.returncode == 3, r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"elfcost: error: {bad}: ") and says in line
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[]\n", "not an elfcost.estimate/3 (or /2, /1) document: Expected `object`, got `array`"),
        (b"null", "Expected `object`, got `null`"),
        (b"  12\n", "Expected `object`, got `int`"),
        (b"LINES", "not one document: JSON Lines of several documents"),
    ],
)
def test_json_that_is_no_report_is_named_as_such(tmp_path: Path, content: bytes, says: str) -> None:
    """What starts as JSON is a saved report that is wrong, not "not an ELF file"; elfcost's
    JSON Lines of several estimates are named as such."""
    bad = tmp_path / "bad.json"
    if content == b"LINES":
        content = run("--format", "json", "/bin/true", "/bin/sleep").stdout.encode()
    bad.write_bytes(content)
    r = run("diff", str(bad), "/bin/true")
    assert r.returncode == 3 and r.stderr.startswith(f"elfcost: error: {bad}: "), r.stderr
    assert says in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_report_after_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    saved = tmp_path / "bom.json"
    saved.write_bytes(b"\xef\xbb\xbf" + run("--format", "json", "/bin/true").stdout.encode())
    r = run("diff", "--format", "json", str(saved), "/bin/true")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total"]["delta_expected"] == 0


def test_a_fifo_given_as_a_saved_report_is_refused_without_blocking(
    samples: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    r = run("diff", str(fifo), str(samples / "relro_ptr_table.pie"))
    assert r.returncode == 3, r.stderr
    assert r.stderr == f"elfcost: error: {fifo}: not a regular file\n"
