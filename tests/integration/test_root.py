"""--root: everything is read inside the sysroot, and no link can lead outside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

pytestmark = pytest.mark.integration

LIBDIR = "/lib/x86_64-linux-gnu"


@pytest.fixture
def sysroot(tmp_path: Path) -> Path:
    if not Path("/usr/bin/python3.11").exists() and not Path("/usr/bin/python3").exists():
        pytest.skip("needs the host's python3 as a sample program")
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / LIBDIR.lstrip("/")).mkdir(parents=True)
    (root / "lib64").mkdir()
    (root / "etc").mkdir()
    shutil.copy(os.path.realpath("/usr/bin/python3"), root / "usr/bin/python3")
    for lib in ("libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"{LIBDIR}/{lib}", root / LIBDIR.lstrip("/") / lib)
    # Absolute symlink inside the root: must resolve inside it.
    os.symlink(f"{LIBDIR}/ld-linux-x86-64.so.2", root / "lib64/ld-linux-x86-64.so.2")
    # Absolute symlink whose target exists only outside the root: must not be followed out.
    os.symlink(f"{LIBDIR}/libz.so.1.2.13", root / LIBDIR.lstrip("/") / "libz.so.1")
    # Relative symlink climbing above the root: clamped at the root, so not found either.
    os.symlink(
        "../../../../../../../../lib/x86_64-linux-gnu/libexpat.so.1",
        root / LIBDIR.lstrip("/") / "libexpat.so.1",
    )
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    return root


def test_resolves_inside_root_only(sysroot: Path) -> None:
    g = resolve("/usr/bin/python3", Host(root=str(sysroot)))
    paths = [o.dso.path for o in g.objects]
    assert paths[0] == "/usr/bin/python3"
    assert f"{LIBDIR}/libc.so.6" in paths and f"{LIBDIR}/libm.so.6" in paths
    files = [o.dso.file for o in g.objects]
    assert all(f.startswith(str(sysroot)) for f in files), files
    assert {m.needed for m in g.missing} == {"libz.so.1", "libexpat.so.1"}


def test_no_file_outside_root_is_opened(sysroot: Path) -> None:
    """Python's audit hooks see every open; none may leave the root."""
    code = f"""
import sys, json
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.predict import estimate
opened = []
sys.addaudithook(lambda ev, args: opened.append(str(args[0])) if ev == "open" else None)
est = estimate(resolve("/usr/bin/python3", Host(root={str(sysroot)!r})))
print(json.dumps(opened))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    opened = [p for p in json.loads(out.splitlines()[-1]) if not p.endswith((".py", ".pyc"))]
    outside = [
        p
        for p in opened
        if not p.startswith(str(sysroot))
        and "site-packages" not in p
        and "/elfcost/" not in p
        and not p.startswith(sys.prefix)
    ]
    assert opened, "the audit hook saw no open at all"
    assert outside == []


def test_cli_root_json(sysroot: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "elfcost",
            "deps",
            "--root",
            str(sysroot),
            "--format",
            "json",
            str(sysroot / "usr/bin/python3"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["binary"] == "/usr/bin/python3"
    assert {m["needed"] for m in doc["missing"]} == {"libz.so.1", "libexpat.so.1"}
