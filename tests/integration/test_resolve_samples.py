"""One loader rule per scenario (sample_binaries/README.md), elfcost against the real loaders.

glibc's oracle is trace mode (`LD_TRACE_LOADED_OBJECTS=1 ld.so EXE`, what ldd does: it maps
without running the program and, unlike `--list`, carries on past a missing library). musl's is
`ld-musl --list`. The main program is given by its real path: a real exec takes $ORIGIN from
/proc/self/exe, the loaders' command mode from the path given (see test_origin_symlink).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from elfcost.model import FoundVia
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

pytestmark = pytest.mark.integration

GLIBC = "/lib64/ld-linux-x86-64.so.2"
MUSL = "/lib/ld-musl-x86_64.so.1"


def oracle(
    exe: Path, *, musl: bool, llp: str | None = None, cwd: Path | None = None
) -> tuple[list[str], set[str]]:
    """(libraries in load order as real paths, names reported missing)."""
    env = {} if llp is None else {"LD_LIBRARY_PATH": llp}
    if musl:
        cmd = [MUSL, "--list", str(exe)]
    else:
        cmd = [GLIBC, str(exe)]
        env["LD_TRACE_LOADED_OBJECTS"] = "1"
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=30)
    paths: list[str] = []
    missing: set[str] = set()
    for line in out.stdout.splitlines():
        line = line.strip()
        if m := re.match(r"(\S+) => not found", line):
            missing.add(m.group(1))
        elif m := re.match(r"(\S+) => (\S+) \(0x", line):
            paths.append(os.path.realpath(os.path.join(cwd or ".", m.group(2))))
        elif m := re.match(r"(\S*/\S+) \(0x", line):  # the loader, or a DT_NEEDED with '/'
            paths.append(os.path.realpath(os.path.join(cwd or ".", m.group(1))))
    if m := re.search(r"Error loading shared library (\S+):", out.stderr):
        missing.add(m.group(1))
    return list(dict.fromkeys(paths)), missing


def mine(
    exe: Path, *, llp: str | None = None, cwd: Path | None = None
) -> tuple[list[str], set[str]]:
    host = Host(
        ld_library_path=tuple(llp.split(":")) if llp else None, cwd=str(cwd) if cwd else os.getcwd()
    )
    g = resolve(str(exe), host)
    # glibc unlinks ld.so from its list when no object needs it (elf/rtld.c, rtld_multiple_ref);
    # it is still mapped, so elfcost keeps it for the cost but the oracle does not print it.
    objects = [o for o in g.objects[1:] if not (o.role == "interpreter" and o.parent is None)]
    paths = [os.path.realpath(os.path.join(host.cwd, o.dso.path)) for o in objects]
    return list(dict.fromkeys(paths)), {r.needed for r in g.missing}


def same(
    exe: Path, *, musl: bool = False, llp: str | None = None, cwd: Path | None = None
) -> tuple[list[str], set[str]]:
    want = oracle(exe, musl=musl, llp=llp, cwd=cwd)
    got = mine(exe, llp=llp, cwd=cwd)
    if musl:
        # ld-musl --list prints the loader first; elfcost places it where it is first needed.
        assert sorted(got[0]) == sorted(want[0]) and got[1] == want[1]
        ldso = os.path.realpath(MUSL)
        assert [p for p in got[0] if p != ldso] == [p for p in want[0] if p != ldso]
    else:
        assert got == want
    return got


@pytest.fixture(scope="module")
def R(samples: Path) -> Path:
    if not Path(GLIBC).exists():
        pytest.skip("not a glibc x86_64 host")
    return samples / "resolve"


def test_rpath_beats_ld_library_path_beats_runpath(R: Path) -> None:
    d = R / "rpath_vs_runpath"
    assert same(d / "exe_rpath")[0][0].endswith("A/libdup.so")
    assert same(d / "exe_rpath", llp=str(d / "C"))[0][0].endswith("A/libdup.so")
    assert same(d / "exe_runpath")[0][0].endswith("B/libdup.so")
    assert same(d / "exe_runpath", llp=str(d / "C"))[0][0].endswith("C/libdup.so")


def test_rpath_is_inherited_runpath_is_not(R: Path) -> None:
    libs, missing = same(R / "rpath_inherit" / "exe")
    assert any(p.endswith("lib/libleaf.so") for p in libs) and not missing
    _, missing = same(R / "runpath_noinherit" / "exe")
    assert missing == {"libleaf.so"}


def test_origin_symlink(R: Path) -> None:
    d = R / "origin_symlink"
    # The main program through a symlink: elfcost follows the exec (/proc/self/exe).
    libs, _ = mine(d / "link" / "bin" / "exe")
    assert libs[0] == os.path.realpath(d / "real" / "lib" / "libori.so")
    same(d / "real" / "bin" / "exe")
    # A library found through a symlinked directory: its $ORIGIN is that directory, and
    # "alias/lib/../deps" is resolved physically, landing in pkg/deps.
    libs, _ = same(d / "app" / "exe")
    assert os.path.realpath(d / "pkg" / "deps" / "libdep.so") in libs


def test_nodeflib(R: Path) -> None:
    d = R / "nodeflib"
    assert same(d / "exe_nodeflib")[1] == {"libz.so.1", "libc.so.6"}
    assert same(d / "exe_nodeflib", llp="/lib/x86_64-linux-gnu")[1] == set()
    same(d / "exe_default")
    assert same(d / "exe_via_lib")[1] == {"libz.so.1"}


def test_missing_lists_every_path_tried(R: Path) -> None:
    _, missing = same(R / "missing" / "exe")
    assert missing == {"libdoesnotexist.so"}
    g = resolve(str(R / "missing" / "exe"), Host())
    tried = g.missing[0].tried
    assert [a.via for a in tried][-1] is FoundVia.DEFAULT
    assert all(a.outcome != "found" for a in tried)


def test_self_needed_and_cycle(R: Path) -> None:
    libs, _ = same(R / "self_needed" / "exe")
    assert sum(p.endswith("libself.so") for p in libs) == 1
    libs, missing = same(R / "cycle" / "exe")
    # Breadth first: the executable's own libc.so.6 comes before libcyca's libcycb.so.
    assert not missing and [os.path.basename(p) for p in libs][:3] == [
        "libcyca.so",
        "libc.so.6",
        "libcycb.so",
    ]
    g = resolve(str(R / "cycle" / "exe"), Host())
    assert g.cycles()


def test_wrong_class_is_skipped(R: Path) -> None:
    libs, _ = same(R / "wrong_class" / "exe")
    assert any(p.endswith("lib64/libwc.so") for p in libs)
    g = resolve(str(R / "wrong_class" / "exe"), Host())
    outcomes = [
        a.outcome
        for r in g.resolutions
        if r.needed == "libwc.so"
        for a in r.tried
        if "lib32" in a.path
    ]
    assert outcomes == ["wrong ELF class (32-bit)"]


def test_needed_with_slash(R: Path) -> None:
    d = R / "needed_slash"
    same(d / "exe", cwd=d)
    assert same(d / "exe", cwd=R)[1] == {"./sub/libslash.so"}
    same(d / "exe_abs", cwd=R)


@pytest.mark.parametrize(
    "scenario",
    [
        "rpath_vs_runpath/exe_rpath",
        "rpath_vs_runpath/exe_runpath",
        "rpath_inherit/exe",
        "runpath_noinherit/exe",
        "missing/exe",
        "wrong_class/exe",
        "origin_symlink/app/exe",
    ],
)
def test_musl(R: Path, has_musl: bool, scenario: str) -> None:
    if not has_musl:
        pytest.skip("musl not installed")
    exe = R / "musl" / scenario
    same(exe, musl=True)
    if scenario.startswith("rpath_vs_runpath"):
        libs, _ = same(exe, musl=True, llp=str(exe.parent / "C"))
        assert libs[0].endswith("C/libdup.so")  # musl: LD_LIBRARY_PATH first, always


@pytest.mark.parametrize(
    "subdirs", [(), ("x86_64",), ("tls",), ("x86_64", "glibc-hwcaps/x86-64-v2")]
)
def test_hwcaps_subdirectories(tmp_path: Path, subdirs: tuple[str, ...]) -> None:
    """glibc searches glibc-hwcaps/<level>/ and (2.36) the legacy tls/, x86_64/ subdirectories
    of every directory before the directory itself."""
    if not Path(GLIBC).exists():
        pytest.skip("not a glibc x86_64 host")
    lib = tmp_path / "lib"
    lib.mkdir()
    (tmp_path / "l.c").write_text("int f(void) { return 1; }\n")
    (tmp_path / "m.c").write_text("int f(void); int main(void) { return f(); }\n")
    for d in ("", *subdirs):
        (lib / d).mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "gcc",
                "-shared",
                "-fPIC",
                "-Wl,-soname,libhw.so",
                "-o",
                str(lib / d / "libhw.so"),
                str(tmp_path / "l.c"),
            ],
            check=True,
        )
    exe = tmp_path / "m"
    subprocess.run(
        ["gcc", "-o", str(exe), str(tmp_path / "m.c"), f"-L{lib}", "-lhw", f"-Wl,-rpath,{lib}"],
        check=True,
    )
    libs, _ = same(exe)
    assert libs[0].startswith(str(lib))
