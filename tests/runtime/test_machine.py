"""`elfcost measure --all` on this machine, busy or not: the processes a test starts are found,
grouped per program and per object, with the numbers their own smaps_rollup gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from elfcost.analysis import LINKAGE_CAUSES
from elfcost.runtime.launch import Launched
from elfcost.runtime.machine import read_machine
from elfcost.runtime.smaps import parse_rollup, parse_smaps

pytestmark = pytest.mark.runtime

INSTANCES = 3
SOURCES = Path(__file__).resolve().parents[2] / "sample_binaries" / "src"


def elfcost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def programs(tmp_path: Path) -> dict[str, Path]:
    """A dynamic program with its own library (RUNPATH $ORIGIN) and a static one, built from
    the samples' sources into a directory of the test's own, so that their groups hold only
    the test's processes (and nothing else rebuilding the shared samples can change them)."""
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    d = tmp_path / "bin"
    d.mkdir()

    def gcc(*args: str) -> None:
        subprocess.run(["gcc", "-O2", *args], check=True, capture_output=True, cwd=d)

    gcc("-shared", "-fPIC", str(SOURCES / "libown.c"), "-o", "libown.so")
    gcc(
        "-fPIE",
        "-pie",
        str(SOURCES / "ownlib.c"),
        "-o",
        "ownlib.pie",
        "-L.",
        "-lown",
        "-Wl,-rpath,$ORIGIN",
    )
    gcc("-static", str(SOURCES / "trivial.c"), "-o", "trivial.static")
    os.sync()  # a file written moments ago shows its dirty page cache as Private_Dirty
    return {"dynamic": d / "ownlib.pie", "static": d / "trivial.static", "lib": d / "libown.so"}


@contextmanager
def started(paths: Sequence[Path]) -> Iterator[dict[str, list[int]]]:
    """INSTANCES processes of each program, idle (paused) and not held, ended on leaving."""
    with ExitStack() as stack:
        pids: dict[str, list[int]] = {}
        for path in paths:
            for _ in range(INSTANCES):
                p = stack.enter_context(Launched([str(path)], at="idle", settle=0.1, hold=False))
                pids.setdefault(str(path), []).append(p.target_pid)
        yield pids


def rollup(pid: int) -> dict[str, int]:
    return parse_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


def estimate(path: Path, *extra: str) -> dict[str, Any]:
    r = elfcost("estimate", "--format", "json", *extra, str(path))
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def linkage_bytes(doc: dict[str, Any]) -> int:
    """The estimate's pages of the linkage causes, and its TLS and loader heap items."""
    causes = {c.value for c in LINKAGE_CAUSES}
    pages = sum(
        1
        for o in doc["objects"]
        for p in o["pages"]
        if p["phase"] != "possible" and p["cause"] in causes
    )
    items = sum(
        doc["process"][n]["expected"] for n in ("tls", "loader_heap") if n in doc["process"]
    )
    return int(pages * doc["page_size"] + items)


def test_all_finds_the_started_processes_with_their_rollups(programs: dict[str, Path]) -> None:
    dynamic, static = programs["dynamic"], programs["static"]
    with started([dynamic, static]) as pids:
        r = elfcost("measure", "--all", "--format", "json")
        after = {pid: rollup(pid) for group in pids.values() for pid in group}
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "elfcost.machine/1"
    rows = by(doc["programs"], "program")
    processes = by(doc["processes"], "pid")
    for path, group in pids.items():
        row = rows[path]
        assert sorted(row["pids"]) == sorted(group)
        # What an idle process holds privately does not move: equal to the rollups read now.
        assert row["uss"] == sum(
            after[p]["Private_Clean"] + after[p]["Private_Dirty"] for p in group
        )
        assert row["rss"] == sum(after[p]["Rss"] for p in group)
        assert row["private_dirty"] == sum(after[p]["Private_Dirty"] for p in group)
        assert row["swap"] == sum(after[p]["Swap"] for p in group)
        assert row["shared"] == row["pss"] - row["uss"]
        for p in group:
            assert processes[p]["rss"] == after[p]["Rss"]
            assert processes[p]["private_dirty"] == after[p]["Private_Dirty"]
    # The static program shares pages only among its own instances, and the vDSO with every
    # process: its Pss moves by the vDSO page's share alone, which rounds to under 1 KiB.
    group = pids[str(static)]
    assert abs(rows[str(static)]["pss"] - sum(after[p]["Pss"] for p in group)) <= 1024 * len(group)

    # Totals: the sums of every process's rollup, as the rows give them, and per program.
    total = doc["total"]
    assert (
        total["processes"] == len(doc["processes"]) == sum(len(p["pids"]) for p in doc["programs"])
    )
    for field in ("uss", "pss", "rss", "private_dirty", "swap"):
        assert total[field] == sum(p[field] for p in doc["processes"])
        assert total[field] == sum(p[field] for p in doc["programs"])

    # librank: the program's own library, in its processes only, at least its file's pages.
    lib = by(doc["libraries"], "path")[str(programs["lib"])]
    assert (lib["processes"], lib["programs"]) == (INSTANCES, 1)
    assert lib["rss"] >= lib["pss"] >= lib["uss"] > 0 and lib["private_dirty"] > 0

    # Linkage: the model's pages for the linkage, times the instances.
    for path in (dynamic, static):
        assert rows[str(path)]["linkage"] == INSTANCES * linkage_bytes(estimate(path))
    assert rows[str(dynamic)]["linkage"] > rows[str(static)]["linkage"]
    assert doc["linkage"]["expected"] == sum(doc["linkage"]["by_cause"].values())
    assert doc["linkage"]["expected"] == sum(
        p["linkage"] for p in doc["programs"] if p["linkage"] is not None
    )
    assert doc["relink"] is None


def test_all_file_rows_hold_the_files_pages(programs: dict[str, Path]) -> None:
    """An object's row holds at least the smaps lines of its file in every process (read by
    the test, independently of elfcost's attribution)."""
    dynamic, lib = programs["dynamic"], str(programs["lib"])
    with started([dynamic]) as pids:
        r = elfcost("measure", "--all", "--format", "json")
        lines = [
            e
            for p in pids[str(dynamic)]
            for e in parse_smaps(Path(f"/proc/{p}/smaps").read_text())
            if e.name == lib
        ]
    assert r.returncode == 0, r.stderr
    row = by(json.loads(r.stdout)["libraries"], "path")[lib]
    assert row["rss"] >= sum(e.rss for e in lines) > 0
    assert row["private_dirty"] >= sum(e.private_dirty for e in lines) > 0


def test_all_assume_static(programs: dict[str, Path]) -> None:
    dynamic, static = programs["dynamic"], programs["static"]
    with started([dynamic, static]):
        r = elfcost("measure", "--all", "--assume", "static", "--format", "json")
    assert r.returncode == 0, r.stderr
    relink = json.loads(r.stdout)["relink"]
    assert relink["assume"] == "static"
    rows = by(relink["programs"], "program")
    built, relinked = estimate(dynamic), estimate(dynamic, "--assume", "static")
    per = (
        built["total"]["private_dirty"]["expected"] - relinked["total"]["private_dirty"]["expected"]
    )
    row = rows[str(dynamic)]
    assert per > 0 and row["saved"] == INSTANCES * per and row["processes"] == INSTANCES
    # libc's and ld.so's text becomes the program's own copy: more than its share of it now
    assert row["text"] > 0
    # a program linked statically already: nothing to save, no text to copy
    assert (rows[str(static)]["saved"], rows[str(static)]["text"]) == (0, 0)
    assert relink["saved"] == sum(p["saved"] for p in relink["programs"])
    assert relink["text"] == sum(p["text"] for p in relink["programs"])
    assert relink["net"] == relink["saved"] - relink["text"]
    r = elfcost("measure", "--all", "--assume", "static")
    assert r.returncode == 0 and "net" in r.stdout, r.stderr


def test_all_on_a_busy_machine() -> None:
    """Processes start and exit all the time while --all reads: each is measured or counted
    as skipped, never a traceback, and the totals still add up."""
    churn = subprocess.Popen(
        ["sh", "-c", "while :; do /bin/true; /bin/sleep 0.001; done"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        runs = [elfcost("measure", "--all", "--format", "json") for _ in range(3)]
    finally:
        churn.kill()
        churn.wait()
    for r in runs:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        doc = json.loads(r.stdout)
        assert doc["total"]["rss"] == sum(p["rss"] for p in doc["processes"])
        assert doc["total"]["pss"] == sum(p["pss"] for p in doc["programs"])


def test_exited_zombie_and_kernel_processes_are_counted_not_errors() -> None:
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()  # reaped: its pid names no process now
    zombie = subprocess.Popen(["/bin/true"])
    try:
        # Polled: /bin/true exits at once, then stays a zombie until it is reaped.
        deadline = time.monotonic() + 30
        while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        kthreadd = 2  # kernel threads map nothing
        read = read_machine(pids=[gone.pid, zombie.pid, kthreadd, os.getpid()])
    finally:
        zombie.wait()
    assert read.samples == ()
    assert (read.vanished, read.without_memory) == (1, 2)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root")
def test_other_users_processes_are_counted_as_unreadable(tmp_path: Path) -> None:
    """As another user, root's processes cannot be read: counted, not an error."""
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from elfcost.runtime.machine import read_machine;"
        "r = read_machine(pids=[1, int(sys.argv[2])]);"
        "print(len(r.samples), r.unreadable, r.vanished)"
    )
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1, hold=False) as p:
        r = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
                str(src),
                str(p.target_pid),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if r.returncode != 0 and "Permission denied" in r.stderr:
        pytest.skip("the checkout is not readable by another user")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "2", "0"]


@pytest.mark.skipif(shutil.which("smem") is None, reason="no smem (apt-get install smem)")
def test_all_agrees_with_smem(programs: dict[str, Path]) -> None:
    """smem sums the smaps lines, elfcost's process rows are smaps_rollup: USS and RSS are the
    same; smem's PSS falls short by the kernel's per-line truncation, under 1 KiB a line (and
    the vDSO page's share, which moves with every process started: another KiB)."""
    static = programs["static"]
    with started([static]) as pids:
        r = elfcost("measure", "--all", "--format", "json")
        out = subprocess.run(
            ["smem", "-H", "-c", "pid uss pss rss", "-P", f"^{static}$"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        lines = {
            p: len(parse_smaps(Path(f"/proc/{p}/smaps").read_text())) for p in pids[str(static)]
        }
    assert r.returncode == 0, r.stderr
    rows = by(json.loads(r.stdout)["processes"], "pid")
    smem = {int(f[0]): [int(v) * 1024 for v in f[1:]] for f in map(str.split, out.splitlines())}
    assert sorted(smem) == sorted(pids[str(static)])
    for pid, (uss, pss, rss) in smem.items():
        assert (rows[pid]["uss"], rows[pid]["rss"]) == (uss, rss)
        assert -1024 <= rows[pid]["pss"] - pss < (lines[pid] + 1) * 1024


def test_all_usage_errors() -> None:
    for args in (
        ("--assume", "static", "--pid", "1"),
        ("--all", "--pid", "1"),
        ("--all", "--assume", "lazy"),
    ):
        r = elfcost("measure", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
