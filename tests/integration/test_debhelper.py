"""dh_elfcost, tested by building a real Debian package with `dpkg-buildpackage -us -uc -b`.

tests/data/debpkg is memdemo: a daemon (memdemod, package memdemo) and the shared library it
needs (libmemdemo.so.1, package libmemdemo1), debhelper compat 13, debian/rules `dh $@ --with
elfcost`. Each build runs on a copy in tmp_path with the elfcost under test: its dh_elfcost and
sequence add-on come from `python -m elfcost debhelper-env`, run by this interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import elfcost

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "data" / "debpkg"
APT = "debhelper dpkg-dev fakeroot build-essential"
TOOLS = ("dpkg-buildpackage", "dh", "fakeroot", "make", "cc", "perl")
DAEMON = "usr/sbin/memdemod"
# What the README and docs/distribution.md tell a packager to run.
EVAL = 'eval "$("$ELFCOST_PYTHON" -m elfcost debhelper-env)" && exec "$@"'

OVER = """
[[rule]]
match = "usr/sbin/memdemod"
max_private_dirty = "128K"
"""
WAIVER = """
[[waiver]]
match = "usr/sbin/memdemod"
limit = "max_private_dirty"
reason = "the handler table: tracked in bug 1234"
"""


@pytest.fixture(scope="module")
def build_env() -> dict[str, str]:
    """The environment of a package build: this Python, with this elfcost importable."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        how = "`make deps-apt` installs them" if os.geteuid() == 0 else f"apt-get install {APT}"
        pytest.skip(f"{', '.join(missing)} not installed: {how}")
    env = {
        k: v
        for k, v in os.environ.items()
        # A make above pytest (make test) must not hand its jobserver to the package's make;
        # the builder's own options and an ELFCOST set by hand must not change the build.
        if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEB_BUILD_OPTIONS", "ELFCOST")
        and not k.startswith("DH_")
    }
    src = str(Path(elfcost.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env["ELFCOST_PYTHON"] = sys.executable
    return env


def run_in(tree: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """`argv` in `tree`, after evaluating `elfcost debhelper-env` as a packager's shell would;
    standard output and error together, as a build log has them."""
    return subprocess.run(
        ["sh", "-c", EVAL, "sh", *argv],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


def build(where: Path, env: dict[str, str], budget: str = "") -> tuple[Path, str, int]:
    """Copy memdemo to `where`, add `budget` to its debian/elfcost.toml, build it: the
    source tree, the build log and dpkg-buildpackage's exit status."""
    tree = where / "memdemo-1.0"
    shutil.copytree(SOURCE, tree, symlinks=True)
    toml = tree / "debian" / "elfcost.toml"
    toml.write_text(toml.read_text() + budget)
    r = run_in(tree, env, "dpkg-buildpackage", "-us", "-uc", "-b")
    return tree, r.stdout, r.returncode


def debs(where: Path) -> set[str]:
    return {p.name.split("_")[0] for p in where.glob("*.deb")}


def junit(tree: Path) -> dict[tuple[str, str, str], ET.Element]:
    """debian/elfcost-junit.xml: its test cases by (suite, program, limit)."""
    suites = ET.parse(tree / "debian" / "elfcost-junit.xml").getroot()
    assert suites.tag == "testsuites"
    return {
        (suite.get("name", ""), case.get("classname", ""), case.get("name", "")): case
        for suite in suites
        for case in suite
    }


@pytest.fixture(scope="module")
def within(
    tmp_path_factory: pytest.TempPathFactory, build_env: dict[str, str]
) -> tuple[Path, str, int]:
    """memdemo built with its own budget, which it keeps."""
    return build(tmp_path_factory.mktemp("within"), build_env)


def test_within_budget_the_packages_are_built(within: tuple[Path, str, int]) -> None:
    tree, log, status = within
    assert status == 0, log
    assert debs(tree.parent) >= {"memdemo", "libmemdemo1"}
    # dh_elfcost ran after dh_shlibdeps, with the elfcost under test, in the package's tree.
    assert log.index("dh_shlibdeps") < log.index("dh_elfcost") < log.index("dh_builddeb")
    assert f"cd debian/memdemo && {sys.executable} -m elfcost check " in log
    assert re.search(rf"^ok   {DAEMON}: \d+ KiB private dirty, 4 objects$", log, re.M), log
    cases = junit(tree)
    assert {(suite, program, limit) for (suite, program, limit) in cases} == {
        ("elfcost check: memdemo", DAEMON, limit)
        for limit in ("max_private_dirty", "max_fleet", "no_textrel", "no_missing")
    }
    # no_missing passed: libmemdemo.so.1 was found in libmemdemo1's staged tree, and libc on
    # the build system.
    assert all(len(case) == 0 for case in cases.values())


def test_over_budget_the_build_fails_naming_program_budget_figure_and_cause(
    tmp_path: Path, build_env: dict[str, str]
) -> None:
    tree, log, status = build(tmp_path, build_env, OVER)
    assert status != 0
    assert debs(tmp_path) == set()
    m = re.search(
        rf"^dh_elfcost: error: memdemo: {DAEMON}: max_private_dirty: (\d+) KiB > 128 KiB "
        rf"\(\+\d+ KiB\): expected private dirty memory of one instance; biggest cause: "
        rf"relocation, (\d+) KiB \(\d+ pages\) in {DAEMON}: ",
        log,
        re.M,
    )
    assert m, log
    # The figure is the daemon's estimate as installed: libmemdemo.so.1 from its package.
    lib = next((tree / "debian" / "libmemdemo1").rglob("libmemdemo.so.1")).parent
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "estimate", "--format", "json", "--isa-level",
         "baseline", "--ld-library-path", str(lib), str(tree / "debian/memdemo" / DAEMON)],
        env=build_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(m[1]) * 1024 == json.loads(r.stdout)["total"]["private_dirty"]["expected"]
    # The handler table (128 KiB of pointers) is most of it.
    assert int(m[2]) >= 128
    assert "dh_elfcost: error: 1 limit(s) exceeded" in log
    (case,) = (c for c in junit(tree).values() if c.find("failure") is not None)
    assert case.get("classname") == DAEMON and case.get("name") == "max_private_dirty"


def test_waived_the_packages_are_built_with_the_waiver_in_the_report(
    tmp_path: Path, build_env: dict[str, str]
) -> None:
    tree, log, status = build(tmp_path, build_env, OVER + WAIVER)
    assert status == 0, log
    assert debs(tmp_path) >= {"memdemo", "libmemdemo1"}
    assert re.search(
        rf"^ok   {DAEMON}: .*\n     {DAEMON}: max_private_dirty: \d+ KiB > 128 KiB .*"
        r"; biggest cause: relocation, .* \[waived: the handler table: tracked in bug 1234\]$",
        log,
        re.M,
    ), log
    assert "1 checked, 0 over budget, 1 waived" in log
    skipped = {
        (c.get("classname"), c.get("name")): s.get("message", "")
        for c in junit(tree).values()
        for s in c.findall("skipped")
    }
    assert list(skipped) == [(DAEMON, "max_private_dirty")]
    reason = "[waived: the handler table: tracked in bug 1234]"
    assert reason in skipped[DAEMON, "max_private_dirty"]


# dh_elfcost run by hand in the tree built within budget: the baseline, a package's own
# budget file, DEB_BUILD_OPTIONS=noelfcost.


def test_baseline_ratchet_in_a_package_budget(
    within: tuple[Path, str, int], build_env: dict[str, str]
) -> None:
    tree, _, status = within
    assert status == 0
    own = tree / "debian" / "memdemo.elfcost.toml"  # memdemo's own, over debian/elfcost.toml
    baseline = tree / "debian" / "elfcost-baseline.json"
    own.write_text('[baseline]\nfile = "elfcost-baseline.json"\n')
    try:
        r = run_in(tree, build_env, "dh_elfcost", "--update-baseline")
        assert r.returncode == 0, r.stdout
        figure = json.loads(baseline.read_text())[DAEMON]
        assert set(json.loads(baseline.read_text())) == {DAEMON}
        baseline.write_text(json.dumps({DAEMON: figure - 4096}))
        r = run_in(tree, build_env, "dh_elfcost")
        assert r.returncode != 0
        assert re.search(
            rf"^dh_elfcost: error: memdemo: {DAEMON}: baseline: .*\(\+4 KiB\): the baseline may "
            r"only go down; biggest cause: relocation",
            r.stdout,
            re.M,
        ), r.stdout
        assert "debian/memdemo.elfcost.toml" in r.stdout.splitlines()[-1]
        # The ratchet never raises a figure.
        run_in(tree, build_env, "dh_elfcost", "--update-baseline")
        assert json.loads(baseline.read_text()) == {DAEMON: figure - 4096}
    finally:
        own.unlink()
        baseline.unlink(missing_ok=True)


def test_noelfcost_skips_the_check(
    within: tuple[Path, str, int], build_env: dict[str, str]
) -> None:
    tree, _, status = within
    assert status == 0
    own = tree / "debian" / "memdemo.elfcost.toml"
    own.write_text('[defaults]\nmax_private_dirty = "4K"\n')
    try:
        assert run_in(tree, build_env, "dh_elfcost").returncode != 0
        r = run_in(tree, build_env | {"DEB_BUILD_OPTIONS": "nocheck noelfcost"}, "dh_elfcost")
        assert (r.returncode, r.stdout) == (0, "")
    finally:
        own.unlink()


def test_debhelper_env_and_make_install_debhelper(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "debhelper-env", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(r.stdout)
    here = Path(doc["path"])
    assert doc["elfcost"] == [sys.executable, "-m", "elfcost"]
    assert os.access(here / "dh_elfcost", os.X_OK)
    assert (Path(doc["perl5lib"]) / "Debian/Debhelper/Sequence/elfcost.pm").is_file()
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    subprocess.run(
        ["make", "-s", "-C", str(REPO), "install-debhelper", f"DESTDIR={tmp_path}"],
        check=True,
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")},
    )
    tool = tmp_path / "usr/local/bin/dh_elfcost"
    module = tmp_path / "usr/share/perl5/Debian/Debhelper/Sequence/elfcost.pm"
    assert os.access(tool, os.X_OK) and module.is_file()
    assert tool.read_bytes() == (here / "dh_elfcost").read_bytes()
    if Path("/usr/share/perl5/Debian/Debhelper/Dh_Lib.pm").exists():
        for f in (tool, module):  # compiles against the installed debhelper
            r = subprocess.run(["perl", "-c", str(f)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        if shutil.which("podchecker"):  # its manual page
            r = subprocess.run(["podchecker", str(tool)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
