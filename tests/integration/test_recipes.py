"""The build-system recipes of docs/distribution.md, run as written on staged trees laid out as
each build system lays them out, with one program over budget.

Every tree holds usr/bin/sleep (within budget), usr/bin/fat (120 KB of TLS: over) and
usr/sbin/memdemod (tests/data/debpkg), which needs libmemdemo.so.1, a library of the same
build: the budget's no_missing shows where each recipe finds libraries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "docs" / "recipes"
TRIPLET = "x86_64-linux-gnu"
# The recipes' budget, and memdemod's own (232 KiB: over the recipes' 128K default).
MEMDEMOD = '\n[[rule]]\nmatch = "usr/sbin/memdemod"\nmax_private_dirty = "512K"\n'


@pytest.fixture(scope="module")
def memdemo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """memdemod and libmemdemo.so.1, built once."""
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("no C compiler or make")
    out = tmp_path_factory.mktemp("memdemo")
    shutil.copytree(REPO / "tests" / "data" / "debpkg", out / "src")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    subprocess.run(["make", "-s", "-C", str(out / "src")], check=True, env=env)
    return out / "src"


@pytest.fixture
def budget(tmp_path: Path) -> Path:
    b = tmp_path / "elfcost-budget.toml"
    b.write_text((RECIPES / "elfcost-budget.toml").read_text() + MEMDEMOD)
    return b


@pytest.fixture
def programs(samples: Path, memdemo: Path) -> Callable[[Path, str], None]:
    """Put the three programs in `root`, and libmemdemo.so.1 in its `libdir`."""

    def put(root: Path, libdir: str) -> None:
        for d in ("usr/bin", "usr/sbin", libdir):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy("/bin/sleep", root / "usr/bin/sleep")
        shutil.copy(samples / "tls.pie", root / "usr/bin/fat")
        shutil.copy(memdemo / "memdemod", root / "usr/sbin/memdemod")
        shutil.copy(memdemo / "libmemdemo.so.1", root / libdir / "libmemdemo.so.1")

    return put


def env() -> dict[str, str]:
    """`elfcost` on PATH, as an installed package puts it."""
    e = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    if not shutil.which("elfcost", path=e["PATH"]):
        pytest.skip("the elfcost console script is not installed next to this Python")
    return e


def verdicts(out: str) -> dict[str, str]:
    """{program: "ok" or "FAIL"} from check's text report."""
    return {m[2]: m[1] for m in re.finditer(r"^(ok|FAIL) +(\S+): ", out, re.M)}


def test_the_budget_holds_for_debians_own_s6_supervise() -> None:
    """The recipe's s6 rule is true of the s6-supervise Debian ships, not a wish."""
    if not os.path.exists("/usr/bin/s6-supervise"):
        pytest.skip("s6 not installed")
    budget = str(RECIPES / "elfcost-budget.toml")
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "check", "--budget", budget, "/usr/bin/s6-supervise"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok   usr/bin/s6-supervise")
    # The budget's own sums, in its comment and in docs/distribution.md, are the estimate's.
    doc = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "elfcost",
                "estimate",
                "--format",
                "json",
                "-n",
                "129",
                "/usr/bin/s6-supervise",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    fleet = doc["total"]["fleet"]["total_expected"] // 1024
    assert f"{fleet:,} KiB" in (RECIPES / "elfcost-budget.toml").read_text()
    assert f"{fleet:,} KiB" in (REPO / "docs" / "distribution.md").read_text()


def test_debian_rules(tmp_path: Path, budget: Path, programs: Callable[[Path, str], None]) -> None:
    """debian/tmp as dh_auto_install leaves it: the package's files only (libc is the build
    system's)."""
    pkg = tmp_path / "pkg"
    programs(pkg / "debian/tmp", f"usr/lib/{TRIPLET}")
    shutil.copy(budget, pkg / "debian" / "elfcost.toml")

    def rules() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "-f", str(RECIPES / "debian-rules.mk"), "execute_after_dh_auto_install"],
            cwd=pkg,
            env=env(),
            capture_output=True,
            text=True,
        )

    r = rules()
    assert r.returncode != 0  # make stops the build
    assert verdicts(r.stdout) == {
        "usr/bin/fat": "FAIL",
        "usr/bin/sleep": "ok",
        "usr/sbin/memdemod": "ok",
    }, r.stdout + r.stderr
    (pkg / "debian/tmp/usr/bin/fat").unlink()
    r = rules()
    assert r.returncode == 0, r.stdout + r.stderr


def test_buildroot_post_build(
    tmp_path: Path, budget: Path, programs: Callable[[Path, str], None]
) -> None:
    """$(TARGET_DIR) as Buildroot makes it for x86_64 with glibc: the whole root file system,
    libc in /lib, lib64 and usr/lib64 links to lib, no ld.so.cache."""
    target = tmp_path / "target"
    programs(target, "usr/lib")
    for d in ("lib", "bin", "sbin", "etc"):
        (target / d).mkdir(exist_ok=True)
    for lib in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"/lib/{TRIPLET}/{lib}", target / "lib" / lib)
    (target / "lib64").symlink_to("lib")
    (target / "usr/lib64").symlink_to("lib")
    e = env() | {"BUDGET": str(budget)}

    def post_build() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(RECIPES / "buildroot-post-build.sh"), str(target)],
            env=e,
            capture_output=True,
            text=True,
        )

    r = post_build()
    assert r.returncode == 1, r.stdout + r.stderr
    assert verdicts(r.stdout) == {
        "usr/bin/fat": "FAIL",
        "usr/bin/sleep": "ok",
        "usr/sbin/memdemod": "ok",
    }, r.stdout
    (target / "usr/bin/fat").unlink()
    r = post_build()
    assert r.returncode == 0, r.stdout + r.stderr


def test_yocto_class_task(
    tmp_path: Path, budget: Path, programs: Callable[[Path, str], None]
) -> None:
    """The task body of elfcost.bbclass, with BitBake's variables expanded as BitBake would, on
    ${D} and ${RECIPE_SYSROOT} as a recipe for x86-64 has them (base_libdir /lib64, libdir
    /usr/lib64): the recipe's files in one, libc in the other."""
    workdir = tmp_path / "work"
    image = workdir / "image"
    sysroot = workdir / "recipe-sysroot"
    programs(image, "usr/lib64")
    (sysroot / "lib64").mkdir(parents=True)
    (sysroot / "usr/include").mkdir(parents=True)
    for lib in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"/lib/{TRIPLET}/{lib}", sysroot / "lib64" / lib)
    shutil.copy("/usr/include/stdio.h", sysroot / "usr/include/stdio.h")

    text = (RECIPES / "elfcost.bbclass").read_text()
    body = re.search(r"do_elfcost_check\(\) \{\n(.*?)\n\}", text, re.S)
    assert body is not None
    values = {
        "D": str(image),
        "WORKDIR": str(workdir),
        "RECIPE_SYSROOT": str(sysroot),
        "bindir": "/usr/bin",
        "sbindir": "/usr/sbin",
        "base_bindir": "/bin",
        "base_sbindir": "/sbin",
        "libexecdir": "/usr/libexec",
        "ELFCOST_BUDGET": str(budget),
    }

    def expand(s: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], m[0]), s)

    for name in ("ELFCOST_DIRS", "ELFCOST_ROOT"):
        m = re.search(rf"^{name} \??= \"(.*)\"$", text, re.M)
        assert m is not None
        values[name] = expand(m[1])
    script = expand(body[1])
    r = subprocess.run(["sh", "-e", "-c", script], env=env(), capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert verdicts(r.stdout) == {
        "usr/bin/fat": "FAIL",
        "usr/bin/sleep": "ok",
        "usr/sbin/memdemod": "ok",
    }, r.stdout
    # The root is hard links into ${D} and the sysroot, not copies.
    root = Path(values["ELFCOST_ROOT"])
    assert (root / "usr/bin/sleep").stat().st_ino == (image / "usr/bin/sleep").stat().st_ino
    assert (root / "lib64/libc.so.6").stat().st_ino == (sysroot / "lib64/libc.so.6").stat().st_ino


def test_ci_job_junit(tmp_path: Path, budget: Path, programs: Callable[[Path, str], None]) -> None:
    destdir = tmp_path / "build/destdir"
    programs(destdir, f"usr/lib/{TRIPLET}")
    e = env() | {"DESTDIR": str(destdir), "BUDGET": str(budget)}
    r = subprocess.run(
        ["sh", str(RECIPES / "ci-job.sh")], cwd=tmp_path, env=e, capture_output=True, text=True
    )
    assert r.returncode == 1, r.stdout + r.stderr
    suite = ET.parse(tmp_path / "elfcost-junit.xml").getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in suite}
    failed = {case for case, c in cases.items() if c.find("failure") is not None}
    assert failed == {("usr/bin/fat", "max_private_dirty")}
    assert ("usr/sbin/memdemod", "no_missing") in cases  # libmemdemo.so.1 found in DESTDIR


def ci_yaml(name: str) -> dict[object, object]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install -e '.[test]')")
    doc = yaml.safe_load((RECIPES / name).read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("name", ["gitlab-ci.yml", "github-workflow.yml"])
def test_ci_yaml(
    name: str, tmp_path: Path, budget: Path, programs: Callable[[Path, str], None]
) -> None:
    """The CI examples are YAML of the CI's shape, publish the JUnit report also when the check
    fails, and their check step, run as the CI would run it, fails on fat and writes the report."""
    doc = ci_yaml(name)
    workspace = tmp_path / "project"
    destdir = workspace / "build/destdir"
    programs(destdir, f"usr/lib/{TRIPLET}")
    shutil.copy(budget, workspace / "elfcost-budget.toml")
    if name == "gitlab-ci.yml":
        job = doc["elfcost"]
        assert isinstance(job, dict)
        assert job["artifacts"]["when"] == "always"
        assert job["artifacts"]["reports"]["junit"] == "elfcost-junit.xml"
        script = "\n".join(job["script"])
        cwd = workspace
        variables = {"CI_PROJECT_DIR": str(workspace), "DESTDIR": str(destdir)}
    else:
        assert doc.get("on", doc.get(True)) == ["push", "pull_request"]  # YAML 1.1: on is True
        (job,) = doc["jobs"].values()  # type: ignore[attr-defined]
        steps = job["steps"]
        (check,) = (s for s in steps if "elfcost check" in s.get("run", ""))
        after = steps[steps.index(check) + 1 :]
        published = {s["uses"].split("@")[0]: s for s in after if "uses" in s}
        assert published["mikepenz/action-junit-report"]["with"]["report_paths"] == (
            "elfcost-junit.xml"
        )
        assert published["actions/upload-artifact"]["with"]["path"] == "elfcost-junit.xml"
        assert all(s["if"] == "${{ !cancelled() }}" for s in published.values())
        script = check["run"]
        cwd = workspace / check["working-directory"]
        variables = {"GITHUB_WORKSPACE": str(workspace), "DESTDIR": str(destdir)}
    assert "elfcost check " in script and "--format junit" in script
    r = subprocess.run(
        ["sh", "-e", "-c", script], cwd=cwd, env=env() | variables, capture_output=True, text=True
    )
    assert r.returncode == 1, r.stdout + r.stderr
    suite = ET.parse(workspace / "elfcost-junit.xml").getroot()
    failed = {c.get("classname") for c in suite if c.find("failure") is not None}
    assert failed == {"usr/bin/fat"}
