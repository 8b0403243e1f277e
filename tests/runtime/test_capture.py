"""Captures made exactly as docs/validation.md says, measured with `elfcost measure --capture`:
every object the process maps gets its own row, as when the process is measured live."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from elfcost.runtime.launch import Launched
from elfcost.runtime.measure import discover_dsos, measure_launched

pytestmark = pytest.mark.runtime

DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


def docs_script() -> str:
    """The shell block of the 'Measuring another machine' section, as printed."""
    section = DOCS.read_text().split("## Measuring another machine", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "no script in docs/validation.md"
    return block[1]


def capture_with_docs_script(pid: int, d: Path) -> Path:
    """Run the documented script for `pid`, changing only its P, PAGE and D settings."""
    script = docs_script()
    first = "P=1234 PAGE=4096 D=/tmp/elfcost-cap"
    assert script.startswith(first + "\n"), script
    page = os.sysconf("SC_PAGE_SIZE")
    script = f"P={pid} PAGE={page} D={d}" + script[len(first) :]
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{d}.tgz"
    return Path(f"{d}.tgz")


def elfcost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=120
    )


def rows(doc: dict[str, object]) -> dict[str, tuple[int, int, list[int]]]:
    objects = doc["objects"]
    assert isinstance(objects, list)
    return {o["path"]: (o["private_dirty"], o["load_base"], o["written_pages"]) for o in objects}


def test_a_capture_by_the_documented_script_has_a_row_per_object(tmp_path: Path) -> None:
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        live = measure_launched(p, discover_dsos(p.target_pid))
        tgz = capture_with_docs_script(p.target_pid, tmp_path / "elfcost-cap")
    r = elfcost("measure", "--format", "json", "--capture", str(tgz))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    got = rows(doc)
    # the executable first, then ld.so and libc: each its own row, as when measured live
    assert list(got) == [o.path for o in live.objects]
    assert len(got) >= 3 and os.path.realpath("/bin/sleep") == next(iter(got))
    assert got == {
        o.path: (o.private_dirty, o.load_base, list(o.written_pages)) for o in live.objects
    }
    assert doc["process"]["other_file"]["private_dirty"] == 0
    assert doc["process"]["other_file"]["rss"] == live.bucket("other_file").rss
    assert not any("not found" in w or "not the file" in w for w in doc["warnings"])
    # the same files, through --smaps: the rest of the capture lies beside it
    cap = tmp_path / "elfcost-cap"
    r = elfcost("measure", "--format", "json", "--smaps", str(cap / "smaps"))
    assert r.returncode == 0, r.stderr
    assert rows(json.loads(r.stdout)) == got
    # archived with the directory's name on top (tar czf cap.tgz elfcost-cap)
    nested = tmp_path / "nested.tgz"
    with tarfile.open(nested, "w:gz") as tf:
        tf.add(cap, arcname="elfcost-cap")
    r = elfcost("measure", "--format", "json", "--capture", str(nested))
    assert r.returncode == 0, r.stderr
    assert rows(json.loads(r.stdout)) == got


def test_a_capture_read_against_a_copy_of_the_targets_files(tmp_path: Path) -> None:
    """--root: the ELF files come from a copy of the target's file system, matched by path;
    a file missing there leaves its pages in [other_file] and says so."""
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        live = measure_launched(p, discover_dsos(p.target_pid))
        tgz = capture_with_docs_script(p.target_pid, tmp_path / "elfcost-cap")
    root = tmp_path / "root"
    for o in live.objects:
        copy = root / o.path.lstrip("/")
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(o.path, copy)
    r = elfcost("measure", "--format", "json", "--root", str(root), "--capture", str(tgz))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert rows(doc) == {
        o.path: (o.private_dirty, o.load_base, list(o.written_pages)) for o in live.objects
    }
    libc = next(o for o in live.objects if os.path.basename(o.path).startswith("libc.so"))
    (root / libc.path.lstrip("/")).unlink()
    r = elfcost("measure", "--format", "json", "--root", str(root), "--capture", str(tgz))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert libc.path not in rows(doc)
    # its file's lines, not its bss (anonymous memory outside every object known)
    libc_file = sum(s.usage.rss for s in libc.lines if s.entry.is_file)
    assert doc["process"]["other_file"]["rss"] == live.bucket("other_file").rss + libc_file
    assert any(libc.path in w and "not found" in w for w in doc["warnings"])


def test_a_capture_whose_files_were_replaced_says_so(tmp_path: Path) -> None:
    """Without --root, the files are this machine's: one replaced since the capture (another
    inode at the same path) is still read, with a warning that it is not the mapped file."""
    exe = tmp_path / "sleeper"
    shutil.copy("/bin/sleep", exe)
    os.sync()
    with Launched([str(exe), "100"], at="idle", settle=0.1) as p:
        tgz = capture_with_docs_script(p.target_pid, tmp_path / "elfcost-cap")
    r = elfcost("measure", "--format", "json", "--capture", str(tgz))
    assert r.returncode == 0, r.stderr
    assert not any("not the file" in w for w in json.loads(r.stdout)["warnings"])
    fresh = tmp_path / "fresh"
    shutil.copy("/bin/sleep", fresh)
    fresh.replace(exe)  # the same bytes, another inode
    r = elfcost("measure", "--format", "json", "--capture", str(tgz))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert any(str(exe) in w and "not the file the process mapped" in w for w in doc["warnings"])
    assert next(iter(rows(doc))) == str(exe)
