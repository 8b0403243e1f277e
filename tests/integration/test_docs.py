"""The docs describe what the code does now: the CLI reference is generated from --help, and
every `elfcost` command in a shell block of README.md and docs/*.md is run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Commands that need something a test machine cannot provide, and why (none at present).
NOT_RUN: dict[str, str] = {}


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import make_cli_md
    finally:
        sys.path.pop(0)
    assert (REPO / "docs" / "cli.md").read_text() == make_cli_md.render(), (
        "docs/cli.md is stale: run python3 docs/make_cli_md.py"
    )


def doc_commands() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line.startswith("elfcost ") and "..." not in line:
                    out.append((doc.name, line))
    return out


@pytest.fixture(scope="module")
def workspace(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding everything the docs' examples name."""
    w = tmp_path_factory.mktemp("docs")
    lib = "lib/x86_64-linux-gnu"
    for root in (w / "DESTDIR", w / "rootfs"):
        (root / "usr/bin").mkdir(parents=True)
        (root / lib).mkdir(parents=True)
        (root / "lib64").mkdir()
        shutil.copy("/bin/sleep", root / "usr/bin/foo")
        for name in ("libc.so.6", "ld-linux-x86-64.so.2"):
            shutil.copy(f"/{lib}/{name}", root / lib / name)
        (root / "lib64/ld-linux-x86-64.so.2").symlink_to(f"/{lib}/ld-linux-x86-64.so.2")
    for side, sample in (("old", "relro_ptr_table.pie"), ("new", "relro_ptr_table.nopie")):
        (w / side / "usr/bin").mkdir(parents=True)
        shutil.copy(samples / sample, w / side / "usr/bin/foo")
    shutil.copy(samples / "trivial.pie", w / "foo")
    for name in ("server", "daemon"):
        shutil.copy(samples / "trivial.pie", w / name)
    # A supervisor whose child is called "worker", for `measure --follow worker`.
    shutil.copy(samples / "trivial.pie", w / "worker")
    (w / "supervisor").write_text("#!/bin/sh\n./worker &\nwait\n")
    (w / "supervisor").chmod(0o755)
    # Archives for `scan --archive` and `diff --archive`: a real package built with dpkg-deb,
    # its program once as a PIE and once not.
    for side, sample in (("old-release", "relro_ptr_table.pie"), ("new-release", "trivial.pie")):
        tree = w / "deb-trees" / side
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN" / "control").write_text(
            "Package: foo\nVersion: 1.0\nArchitecture: amd64\nMaintainer: t <t@example.org>\n"
            "Description: docs example\n"
        )
        (tree / "usr/bin").mkdir(parents=True)
        shutil.copy(samples / sample, tree / "usr/bin/foo")
        (w / side).mkdir()
        subprocess.run(
            [
                "dpkg-deb",
                "--root-owner-group",
                "-b",
                str(tree),
                str(w / side / "foo_1.0_amd64.deb"),
            ],
            check=True,
            capture_output=True,
        )
    shutil.copytree(w / "new-release", w / "debs")
    (w / "weights.txt").write_text("129 /usr/bin/foo\n")
    budget = REPO / "docs" / "recipes" / "elfcost-budget.toml"
    shutil.copy(budget, w / "budget.toml")
    shutil.copy(budget, w / "elfcost-budget.toml")
    svc = Path("/tmp/svc")
    svc.mkdir(exist_ok=True)
    (svc / "down").touch()
    (svc / "run").write_text("#!/bin/sh\nexec sleep 1000\n")
    (svc / "run").chmod(0o755)
    for name in ("before.json", "after.json"):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "elfcost",
                "estimate",
                "--format",
                "json",
                str(samples / "trivial.pie"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        (w / name).write_text(r.stdout)
    return w


def test_every_documented_command_runs(workspace: Path, samples: Path) -> None:
    commands = doc_commands()
    assert len(commands) > 30
    sleepers = [subprocess.Popen(["/bin/sleep", "300"]) for _ in range(2)]
    from elfcost.runtime.measure import CAPTURE_SCRIPT

    cap = workspace / "elfcost-cap"
    subprocess.run(
        ["sh", "-c", f"P={sleepers[0].pid} PAGE=4096 D={cap}\n{CAPTURE_SCRIPT}"],
        check=True,
        capture_output=True,
    )
    with tarfile.open(workspace / "cap.tgz", "w:gz") as tf:
        tf.add(cap, arcname=".")
    shutil.copy(cap / "smaps", workspace / "saved.smaps")
    subst = {
        "1234": str(sleepers[0].pid),
        "1235": str(sleepers[1].pid),
        "/srv/rootfs": str(workspace / "rootfs"),
        "build/samples": str(samples),
    }
    failures = []
    try:
        for doc, line in commands:
            if line in NOT_RUN:
                continue
            for a, b in subst.items():
                line_run = line.replace(a, b) if a in line else None
                if line_run is not None:
                    line = line_run
            argv = shlex.split(line)
            r = subprocess.run(
                [sys.executable, "-m", "elfcost", *argv[1:]],
                cwd=workspace,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "COLUMNS": "120"},
            )
            bad = (
                r.returncode not in (0, 1)
                or "Traceback" in r.stderr
                or ("internal error" in r.stderr)
            )
            if bad:
                failures.append(f"{doc}: {line}: exit {r.returncode}: {r.stderr.strip()[:300]}")
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    assert failures == []
