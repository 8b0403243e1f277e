"""The build-system recipes of docs/distribution.md, run as written on a staged tree with one
program over budget."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes"
LIBDIR = "lib/x86_64-linux-gnu"


@pytest.fixture
def staged(tmp_path: Path, samples: Path) -> Path:
    """A DESTDIR: usr/bin/sleep (within budget) and usr/bin/fat (120 KB of TLS: over)."""
    root = tmp_path / "destdir"
    (root / "usr/bin").mkdir(parents=True)
    (root / LIBDIR).mkdir(parents=True)
    (root / "lib64").mkdir()
    shutil.copy("/bin/sleep", root / "usr/bin/sleep")
    shutil.copy(samples / "tls.pie", root / "usr/bin/fat")
    for lib in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"/{LIBDIR}/{lib}", root / LIBDIR / lib)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to(f"/{LIBDIR}/ld-linux-x86-64.so.2")
    return root


def env() -> dict[str, str]:
    """`elfcost` on PATH, as an installed package puts it."""
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    if not shutil.which("elfcost", path=e["PATH"]):
        pytest.skip("the elfcost console script is not installed next to this Python")
    return e


def test_debian_rules(tmp_path: Path, staged: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "debian").mkdir(parents=True)
    shutil.move(str(staged), pkg / "debian" / "tmp")
    shutil.copy(RECIPES / "elfcost-budget.toml", pkg / "debian" / "elfcost-budget.toml")
    r = subprocess.run(
        ["make", "-f", str(RECIPES / "debian-rules.mk"), "execute_after_dh_auto_install"],
        cwd=pkg,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0  # make stops the build
    assert "FAIL usr/bin/fat" in r.stdout and "ok   usr/bin/sleep" in r.stdout


def test_buildroot_post_build(staged: Path) -> None:
    e = env() | {"BUDGET": str(RECIPES / "elfcost-budget.toml")}
    r = subprocess.run(
        ["sh", str(RECIPES / "buildroot-post-build.sh"), str(staged)],
        env=e,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1, r.stderr
    assert "FAIL usr/bin/fat" in r.stdout
    (staged / "usr/bin/fat").unlink()
    r = subprocess.run(
        ["sh", str(RECIPES / "buildroot-post-build.sh"), str(staged)],
        env=e,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_yocto_class_task(staged: Path) -> None:
    """The task body of elfcost.bbclass, with BitBake's variables expanded as BitBake would."""
    text = (RECIPES / "elfcost.bbclass").read_text()
    body = re.search(r"do_elfcost_check\(\) \{\n(.*?)\n\}", text, re.S)
    assert body is not None
    values = {
        "D": str(staged),
        "bindir": "/usr/bin",
        "sbindir": "/usr/sbin",
        "ELFCOST_BUDGET": str(RECIPES / "elfcost-budget.toml"),
    }
    values["ELFCOST_DIRS"] = f"{staged}/usr/bin {staged}/usr/sbin"
    script = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), body.group(1))
    r = subprocess.run(["sh", "-e", "-c", script], env=env(), capture_output=True, text=True)
    assert r.returncode == 1 and "FAIL usr/bin/fat" in r.stdout


def test_ci_job_junit(tmp_path: Path, staged: Path) -> None:
    e = env() | {"DESTDIR": str(staged), "BUDGET": str(RECIPES / "elfcost-budget.toml")}
    r = subprocess.run(
        ["sh", str(RECIPES / "ci-job.sh")], cwd=tmp_path, env=e, capture_output=True, text=True
    )
    assert r.returncode == 1
    suite = ET.parse(tmp_path / "elfcost-junit.xml").getroot()
    failed = {c.get("classname") for c in suite if c.find("failure") is not None}
    assert failed == {"usr/bin/fat"}
