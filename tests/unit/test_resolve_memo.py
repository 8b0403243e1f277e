"""What a Host keeps between the programs it resolves (resolve/search.py: the searches that do
not depend on the requester, each library's version problems): a program resolved after others
in one Host gets the graph it gets alone, in any order. Small programs and libraries are built
here with gcc (and musl-gcc), so that two programs differ only where the test says: their
directory ($ORIGIN), their DT_RPATH or DT_RUNPATH, their DT_SONAME, or their file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest

from elfcost.model import FoundVia
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

if shutil.which("gcc") is None:
    pytest.skip("no C compiler to build the programs", allow_module_level=True)

PROGRAM = "extern int f(void);\nint main(void) { return f(); }\n"


def cc(out: Path, source: str, *flags: str, compiler: str = "gcc") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name + ".c")
    src.write_text(source)
    done = subprocess.run(
        # --no-as-needed: the DT_NEEDED asked for, used or not (some toolchains default to
        # --as-needed).
        [compiler, "-o", str(out), str(src), "-Wl,--no-as-needed", *flags],
        capture_output=True,
        text=True,
    )
    if done.returncode and compiler != "gcc":
        pytest.skip(f"{compiler} cannot build: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return out


def library(out: Path, *flags: str) -> Path:
    return cc(
        out, "int f(void) { return 0; }\n", "-shared", "-fPIC", f"-Wl,-soname,{out.name}", *flags
    )


def program(out: Path, lib_dir: Path, *flags: str, compiler: str = "gcc") -> Path:
    return cc(out, PROGRAM, f"-L{lib_dir}", *flags, compiler=compiler)


def encoded(g: DependencyGraph) -> bytes:
    return msgspec.json.encode(g)


def alone(path: Path) -> bytes:
    return encoded(resolve(str(path), Host()))


def found(g: DependencyGraph, name: str) -> tuple[str | None, FoundVia | None]:
    r = next(r for r in g.resolutions if r.needed == name)
    return r.found, r.via


def beside(program: Path, name: str) -> str:
    """The library in ../lib from the program's directory, as $ORIGIN/../lib names it."""
    return os.path.join(program.parent, "..", "lib", name)


@pytest.mark.parametrize("flag", ["-Wl,--disable-new-dtags", "-Wl,--enable-new-dtags"])
def test_origin_each_program_its_own(tmp_path: Path, flag: str) -> None:
    """One program copied into two directories, each with its own libdup.so beside it: the
    same DT_RPATH (or DT_RUNPATH) $ORIGIN/../lib names two libraries, the second of which
    needs a library that is nowhere. A third copy beside the first finds the first one's."""
    library(tmp_path / "a" / "lib" / "libdup.so")
    library(tmp_path / "b" / "lib" / "libgone.so")
    library(tmp_path / "b" / "lib" / "libdup.so", f"-L{tmp_path / 'b' / 'lib'}", "-lgone")
    (tmp_path / "b" / "lib" / "libgone.so").unlink()
    first = program(
        tmp_path / "a" / "bin" / "prog", tmp_path / "a" / "lib", "-ldup", flag,
        "-Wl,-rpath,$ORIGIN/../lib",
    )  # fmt: skip
    second = tmp_path / "b" / "bin" / "prog"
    second.parent.mkdir()
    shutil.copy(first, second)
    third = shutil.copy(first, first.parent / "prog2")
    for order in ([first, second, third], [second, third, first]):
        host = Host()
        graphs = {p: resolve(str(p), host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == alone(p)
            assert found(g, "libdup.so")[0] == beside(p, "libdup.so")
        assert found(graphs[second], "libgone.so") == (None, None)
        assert all(r.needed != "libgone.so" for r in graphs[first].resolutions)
        assert all(r.needed != "libgone.so" for r in graphs[third].resolutions)


def test_rpath_and_runpath_naming_one_library(tmp_path: Path) -> None:
    """DT_RPATH is searched for the library's own DT_NEEDED too (the chain up to the program,
    elf/dl-load.c _dl_map_object), DT_RUNPATH only for the program's: libleaf.so is found
    beside libmid.so by the first, not by the second, and again by a third program with the
    same DT_NEEDED and neither."""
    lib = tmp_path / "lib"
    library(lib / "libleaf.so")
    library(lib / "libmid.so", f"-L{lib}", "-lleaf")
    progs = [
        program(tmp_path / "rpath", lib, "-lmid", f"-Wl,-rpath,{lib}", "-Wl,--disable-new-dtags"),
        program(tmp_path / "runpath", lib, "-lmid", f"-Wl,-rpath,{lib}", "-Wl,--enable-new-dtags"),
        program(tmp_path / "rpath2", lib, "-lmid", f"-Wl,-rpath,{lib}", "-Wl,--disable-new-dtags"),
    ]
    host = Host()
    graphs = [resolve(str(p), host) for p in progs]
    for p, g in zip(progs, graphs, strict=True):
        assert encoded(g) == alone(p)
    assert found(graphs[0], "libleaf.so") == (str(lib / "libleaf.so"), FoundVia.RPATH)
    assert found(graphs[1], "libleaf.so") == (None, None)
    assert found(graphs[2], "libleaf.so") == (str(lib / "libleaf.so"), FoundVia.RPATH)
    # The program's own DT_RPATH, named by the program that has it.
    leaf = next(r for r in graphs[2].resolutions if r.needed == "libleaf.so")
    assert leaf.via_object == str(progs[2])
    assert {a.origin for a in leaf.tried} == {str(progs[2])}


def test_one_library_two_versions_found(tmp_path: Path) -> None:
    """libmid.so needs version FOO of libdep.so; each program's DT_RPATH finds its own
    libdep.so (the chain's DT_RPATH applies to libmid.so's DT_NEEDED), which defines FOO for
    the first only: the second does not start (elf/dl-version.c match_symbol)."""
    for d, version in (("a", "FOO"), ("b", "BAR")):
        script = tmp_path / f"{version}.map"
        script.write_text(f"{version} {{ global: f; local: *; }};\n")
        library(tmp_path / d / "libdep.so", f"-Wl,--version-script={script}")
    mid = tmp_path / "lib" / "libmid.so"
    cc(
        mid, "extern int f(void);\nint g(void) { return f(); }\n", "-shared", "-fPIC",
        "-Wl,-soname,libmid.so", f"-L{tmp_path / 'a'}", "-ldep",
    )  # fmt: skip
    progs = []
    for d in ("a", "b"):
        # ld checks libmid.so's versions against the libdep.so of -rpath-link, the first.
        flags = (f"-Wl,-rpath,{mid.parent}:{tmp_path / d}", f"-Wl,-rpath-link,{tmp_path / 'a'}")
        source = "extern int g(void);\nint main(void) { return g(); }\n"
        prog = tmp_path / f"prog_{d}"
        progs.append(
            cc(prog, source, f"-L{mid.parent}", "-lmid", *flags, "-Wl,--disable-new-dtags")
        )
    for order in (progs, progs[::-1]):
        host = Host()
        graphs = {p: resolve(str(p), host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == alone(p)
        first, second = (graphs[p] for p in progs)
        assert not first.versions and not first.stops
        assert [(v.parent, v.version, v.fatal) for v in second.versions] == [
            (str(mid), "FOO", True)
        ]


def test_program_that_answers_by_soname(tmp_path: Path) -> None:
    """libmid.so needs libself.so, which is nowhere; a program whose DT_SONAME is libself.so
    answers it itself (glibc _dl_name_match_p), whatever a program with the same DT_NEEDED
    and DT_RUNPATH found before it."""
    lib = tmp_path / "lib"
    library(lib / "libself.so")
    library(lib / "libmid.so", f"-L{lib}", "-lself")
    (lib / "libself.so").unlink()
    flags = ("-lmid", f"-Wl,-rpath,{lib}", "-Wl,--enable-new-dtags")
    plain = program(tmp_path / "plain", lib, *flags)
    named = program(tmp_path / "named", lib, *flags, "-Wl,-soname,libself.so")
    for order in ([plain, named], [named, plain]):
        host = Host()
        graphs = {p: resolve(str(p), host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == alone(p)
        assert found(graphs[plain], "libself.so") == (None, None)
        assert found(graphs[named], "libself.so") == (str(named), FoundVia.LOADED)


def test_program_that_answers_by_file(tmp_path: Path) -> None:
    """libmid.so needs libx.so, a symbolic link to one of two programs: glibc maps a file once
    (_dl_file_id_match_p), so for that program libx.so is itself; the other refuses to load a
    PIE (_dl_map_object_from_fd) and stops."""
    lib = tmp_path / "lib"
    library(lib / "libx.so")
    library(lib / "libmid.so", f"-L{lib}", "-lx")
    # DT_RPATH: the program's is searched for libmid.so's DT_NEEDED too.
    flags = ("-lmid", f"-Wl,-rpath,{lib}", "-Wl,--disable-new-dtags")
    other = program(tmp_path / "other", lib, *flags)
    itself = program(tmp_path / "itself", lib, *flags)
    (lib / "libx.so").unlink()
    os.symlink(itself, lib / "libx.so")
    for order in ([other, itself], [itself, other]):
        host = Host()
        graphs = {p: resolve(str(p), host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == alone(p)
        assert found(graphs[itself], "libx.so") == (str(itself), FoundVia.RPATH)
        assert found(graphs[other], "libx.so") == (None, None)
        assert graphs[other].stops and not graphs[itself].stops


def test_program_that_answers_by_path(tmp_path: Path) -> None:
    """libq.so needs one of two programs by its path (a DT_NEEDED with '/'): that program
    answers it by name (l_name), the other maps nothing there: glibc refuses the PIE."""
    lib = tmp_path / "lib"
    two = tmp_path / "two"
    # A DT_NEEDED that is a path: the DT_SONAME of the object linked against.
    library(tmp_path / "stand-in" / "libtwo.so", f"-Wl,-soname,{two}")
    library(lib / "libq.so", str(tmp_path / "stand-in" / "libtwo.so"))
    flags = ("-lq", f"-Wl,-rpath,{lib}")
    one = program(tmp_path / "one", lib, *flags)
    program(two, lib, *flags)
    for order in ([one, two], [two, one]):
        host = Host()
        graphs = {p: resolve(str(p), host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == alone(p)
        assert found(graphs[two], str(two)) == (str(two), FoundVia.LOADED)
        assert found(graphs[one], str(two)) == (None, None)
        assert graphs[one].stops and not graphs[two].stops


def test_preload_file_origin_each_program_its_own(tmp_path: Path) -> None:
    """A name in /etc/ld.so.preload is searched for the program (elf/rtld.c do_preload, with
    the main map's $ORIGIN): the same program in two directories of a root preloads the
    libpre.so beside it."""
    root = tmp_path / "root"
    for lib in ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"):
        if not os.path.exists(lib):
            pytest.skip(f"no {lib}")
        (root / lib[1:]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(lib), root / lib[1:])
    (root / "etc").mkdir()
    (root / "etc" / "ld.so.preload").write_text("$ORIGIN/libpre.so\n")
    library(root / "a" / "libpre.so")
    library(root / "b" / "libgone.so")
    library(root / "b" / "libpre.so", f"-L{root / 'b'}", "-lgone")
    (root / "b" / "libgone.so").unlink()
    cc(root / "a" / "prog", "int main(void) { return 0; }\n")
    shutil.copy(root / "a" / "prog", root / "b" / "prog")
    for order in (["/a/prog", "/b/prog"], ["/b/prog", "/a/prog"]):
        host = Host(root=str(root))
        graphs = {p: resolve(p, host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == encoded(resolve(p, Host(root=str(root))))
            pre = next(r for r in g.resolutions if r.preload)
            assert pre.found == os.path.dirname(p) + "/libpre.so"
        assert found(graphs["/b/prog"], "libgone.so") == (None, None)


def test_musl_origin_each_program_its_own(tmp_path: Path) -> None:
    """musl's fixup_rpath expands $ORIGIN of each object in the chain: the same program in two
    directories finds the library beside it."""
    if shutil.which("musl-gcc") is None or not Path("/lib/ld-musl-x86_64.so.1").exists():
        pytest.skip("no musl")
    for d in ("a", "b"):
        cc(
            tmp_path / d / "lib" / "libdup.so",
            f"int f(void) {{ return {ord(d)}; }}\n",
            "-shared", "-fPIC", "-Wl,-soname,libdup.so", compiler="musl-gcc",
        )  # fmt: skip
    first = program(
        tmp_path / "a" / "bin" / "prog", tmp_path / "a" / "lib", "-ldup",
        "-Wl,-rpath,$ORIGIN/../lib", compiler="musl-gcc",
    )  # fmt: skip
    second = tmp_path / "b" / "bin" / "prog"
    second.parent.mkdir()
    shutil.copy(first, second)
    host = Host()
    graphs = {p: resolve(str(p), host) for p in (first, second)}
    for p, g in graphs.items():
        assert encoded(g) == alone(p)
        assert found(g, "libdup.so")[0] == beside(p, "libdup.so")


def test_a_library_with_runpath_searches_no_rpath(tmp_path: Path) -> None:
    """libmid.so has a DT_RUNPATH: its DT_NEEDED libleaf.so is searched there, and in no
    DT_RPATH, not even the program's (elf/dl-load.c _dl_map_object): a program whose DT_RPATH
    holds a libleaf.so does not find it through libmid.so, nor does one without. The search
    is kept for libmid.so and is the same for every program that loads it."""
    lib, leafdir, empty = tmp_path / "lib", tmp_path / "leaf", tmp_path / "empty"
    empty.mkdir()
    library(leafdir / "libleaf.so")
    library(lib / "libmid.so", f"-L{leafdir}", "-lleaf", f"-Wl,-rpath,{empty}",
            "-Wl,--enable-new-dtags")  # fmt: skip
    rpath = program(tmp_path / "rpath", lib, "-lmid", f"-Wl,-rpath,{lib}:{leafdir}",
                    "-Wl,--disable-new-dtags", f"-Wl,-rpath-link,{leafdir}")  # fmt: skip
    plain = program(tmp_path / "plain", lib, "-lmid", f"-Wl,-rpath,{lib}",
                    "-Wl,--enable-new-dtags", f"-Wl,-rpath-link,{leafdir}")  # fmt: skip
    for order in ([rpath, plain], [plain, rpath]):
        host = Host()
        graphs = {p: resolve(str(p), host) for p in order}
        for p, g in graphs.items():
            assert encoded(g) == alone(p)
            leaf = next(r for r in g.resolutions if r.needed == "libleaf.so")
            assert leaf.found is None and leaf.parent == str(lib / "libmid.so")
            assert [a.path for a in leaf.tried][:1] == [str(empty / "libleaf.so")]
