"""Loader rules, one scenario per test (libtree's style): tiny libraries built with gcc (and
musl-gcc) in a temporary directory, resolved by elfcost and by the real loader.

The oracles: glibc's trace mode (`LD_TRACE_LOADED_OBJECTS=1 ld.so EXE`, what ldd does) and
`ld-musl --list`. A scenario that needs a loader configuration of its own (ld.so.cache,
ld.so.conf, /etc/ld.so.preload) is a small root: the host's ld.so and libc.so.6 copied in,
`ldconfig -r ROOT` run on it, and glibc's loader run inside it with chroot (root only). elfcost
resolves the same root with `Host(root=...)`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from elfcost.model import FoundVia, LoaderFamily
from elfcost.predict import estimate
from elfcost.resolve import ldcache
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

pytestmark = pytest.mark.integration

GLIBC = "/lib64/ld-linux-x86-64.so.2"
MUSL = "/lib/ld-musl-x86_64.so.1"
LIBDIR = "lib/x86_64-linux-gnu"


# -- building ----------------------------------------------------------------------------------


def cc(*args: str | Path, compiler: str = "gcc") -> None:
    subprocess.run([compiler, *map(str, args)], check=True, capture_output=True)


def lib(
    out: Path,
    soname: str,
    code: str = "int f(void) { return 1; }",
    *extra: str | Path,
    compiler: str = "gcc",
) -> Path:
    """A shared library `out` with DT_SONAME `soname` (and `extra` link arguments)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name + ".c")
    src.write_text(code + "\n")
    cc("-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", out, src, *extra, compiler=compiler)
    return out


def program(out: Path, *link: str | Path, compiler: str = "gcc") -> Path:
    """A program calling nothing, with `link` arguments (-L, -l, -Wl,-rpath, ...)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name + ".c")
    src.write_text("int main(void) { return 0; }\n")
    cc("-o", out, src, "-Wl,--no-as-needed", *link, compiler=compiler)
    return out


@pytest.fixture
def glibc_host() -> None:
    if not Path(GLIBC).exists() or shutil.which("gcc") is None:
        pytest.skip("needs gcc and glibc's x86_64 loader")


@pytest.fixture
def musl_host() -> None:
    if not Path(MUSL).exists() or shutil.which("musl-gcc") is None:
        pytest.skip("needs musl-gcc and musl's x86_64 loader")


@pytest.fixture
def root(tmp_path: Path, glibc_host: None) -> Path:
    """A root holding the host's glibc loader and libc.so.6, where chroot works."""
    if os.geteuid() != 0 or shutil.which("ldconfig") is None:
        pytest.skip("needs root (for chroot) and ldconfig")
    r = tmp_path / "root"
    for d in (LIBDIR, "lib64", "etc", "bin"):
        (r / d).mkdir(parents=True)
    shutil.copy(os.path.realpath(GLIBC), r / "lib64" / "ld-linux-x86-64.so.2")
    shutil.copy(os.path.realpath(f"/{LIBDIR}/libc.so.6"), r / LIBDIR / "libc.so.6")
    try:
        subprocess.run(
            [GLIBC, "--version"], check=True, capture_output=True, preexec_fn=lambda: _enter(r)
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("chroot does not work here")
    return r


def ldconfig(root: Path) -> None:
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)


# -- the real loaders --------------------------------------------------------------------------


class Listing:
    """What a loader reported: the libraries in load order, the names not found, the error
    that stopped it (None if it went through) and its standard error."""

    def __init__(self, paths: list[str], missing: set[str], error: str | None, stderr: str):
        self.paths, self.missing, self.error, self.stderr = paths, missing, error, stderr


def _parse(out: subprocess.CompletedProcess[str], musl: bool) -> Listing:
    paths: list[str] = []
    missing: set[str] = set()
    for line in out.stdout.splitlines():
        line = line.strip()
        if m := re.match(r"(\S+) => not found", line):
            missing.add(m[1])
        elif m := re.match(r"(\S+) => (\S+) \(", line):
            paths.append(m[2])
        elif m := re.match(r"(/\S+) \(0x", line):
            paths.append(m[1])
    error = None
    if m := re.search(r"error while loading shared libraries: (.*)", out.stderr):
        error = m[1]
    elif musl and (
        m := re.search(r"Error loading shared library (\S+): (.*?) \(needed", out.stderr)
    ):
        missing.add(m[1])
        error = m[2]
    # glibc prints ld.so when something needs it; musl prints itself first, always.
    loaders = {GLIBC, os.path.realpath(GLIBC), MUSL, os.path.realpath(MUSL)}
    paths = [p for p in paths if p not in loaders]
    return Listing(list(dict.fromkeys(paths)), missing, error, out.stderr)


def _enter(root: Path) -> None:
    os.chroot(root)
    os.chdir("/")


def glibc_lists(exe: Path, env: dict[str, str] | None = None, root: Path | None = None) -> Listing:
    """glibc's trace mode on `exe` (inside `root` with chroot: `exe` is then a loader path)."""
    out = subprocess.run(
        [GLIBC, str(exe)],
        capture_output=True,
        text=True,
        env={"LD_TRACE_LOADED_OBJECTS": "1", **(env or {})},
        timeout=30,
        # chroot(2) in the child, not chroot(1): the environment must reach ld.so only.
        preexec_fn=None if root is None else lambda: _enter(root),
    )
    return _parse(out, musl=False)


def musl_lists(exe: Path, env: dict[str, str] | None = None) -> Listing:
    out = subprocess.run(
        [MUSL, "--list", str(exe)], capture_output=True, text=True, env=env or {}, timeout=30
    )
    return _parse(out, musl=True)


def loader_paths(graph: DependencyGraph) -> list[str]:
    """The libraries in load order, as the loaders list them (without ld.so)."""
    return [o.dso.path for o in graph.objects[1:] if o.role != "interpreter"]


# -- 1. glibc-hwcaps entries in ld.so.cache ----------------------------------------------------

# GLIBC_TUNABLES that bring this CPU down to each level for the glibc-hwcaps choice (glibc
# 2.33+: sysdeps/x86/cpu-tunables.c masks the feature, dl-hwcaps-subdirs.c reads the level).
LEVEL_TUNABLE = {
    "baseline": "glibc.cpu.hwcaps=-SSE4_2",
    "x86-64-v2": "glibc.cpu.hwcaps=-AVX2",
    "x86-64-v3": "glibc.cpu.hwcaps=-AVX512F",
    "x86-64-v4": "",
}


@pytest.fixture
def hwcaps_root(root: Path) -> Path:
    """libhw.so.1 in /opt/lib and in each of its glibc-hwcaps subdirectories, all cached."""
    for sub in ("", "glibc-hwcaps/x86-64-v2", "glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v4"):
        lib(root / "opt/lib" / sub / "libhw.so.1", "libhw.so.1")
    program(root / "bin/m", f"-L{root}/opt/lib", "-l:libhw.so.1")
    (root / "etc/ld.so.conf").write_text("/opt/lib\n")
    ldconfig(root)
    return root


@pytest.mark.parametrize("level", list(LEVEL_TUNABLE))
def test_cache_hwcaps_entry_by_isa_level(hwcaps_root: Path, level: str) -> None:
    """glibc takes the ld.so.cache entry of the best glibc-hwcaps subdirectory the CPU
    supports (elf/dl-cache.c search_cache); --isa-level says which for a root."""
    if level != "baseline" and level not in Host().glibc_hwcaps("x86_64"):
        pytest.skip(f"this CPU is not {level}")
    env = {"GLIBC_TUNABLES": LEVEL_TUNABLE[level]} if LEVEL_TUNABLE[level] else {}
    real = glibc_lists(Path("/bin/m"), env, root=hwcaps_root)
    g = resolve("/bin/m", Host(root=str(hwcaps_root), isa_level=level))
    assert loader_paths(g) == real.paths
    sub = "" if level == "baseline" else f"glibc-hwcaps/{level}/"
    assert real.paths[0] == f"/opt/lib/{sub}libhw.so.1"
    assert g.resolutions[0].via is FoundVia.LD_SO_CACHE


def test_cache_hwcaps_foreign_root_defaults_to_baseline(hwcaps_root: Path) -> None:
    """A root's CPU is not this one: without --isa-level, only the plain entry is used."""
    g = resolve("/bin/m", Host(root=str(hwcaps_root)))
    assert loader_paths(g)[0] == "/opt/lib/libhw.so.1"
    real = glibc_lists(Path("/bin/m"), {"GLIBC_TUNABLES": LEVEL_TUNABLE["baseline"]}, hwcaps_root)
    assert loader_paths(g) == real.paths


def test_cache_hwcaps_isa_level_of_the_library(root: Path) -> None:
    """ldconfig records a glibc-hwcaps library's GNU_PROPERTY_X86_ISA_1_NEEDED in its entry;
    glibc skips the entry on a CPU below it (sysdeps/x86/dl-isa-level.h). This CPU cannot be
    brought below its real ISA level for that check (the tunables mask only the glibc-hwcaps
    choice), so the real loader is not asked: the entry, as ldconfig wrote it, is."""
    v4 = ("-march=x86-64-v4", "-mneeded")
    try:
        lib(root / "opt/lib/glibc-hwcaps/x86-64-v3/libhw.so.1", "libhw.so.1", "int f;", *v4)
    except subprocess.CalledProcessError:
        pytest.skip("this gcc cannot mark the ISA level needed (-mneeded)")
    lib(root / "opt/lib/glibc-hwcaps/x86-64-v2/libhw.so.1", "libhw.so.1")
    lib(root / "opt/lib/libhw.so.1", "libhw.so.1")
    (root / "etc/ld.so.conf").write_text("/opt/lib\n")
    ldconfig(root)
    cache = ldcache.parse((root / "etc/ld.so.cache").read_bytes())
    v3 = next(e for e in cache.entries("libhw.so.1") if e.hwcaps == "x86-64-v3")
    assert v3.isa_level == 3  # x86-64-v4 needed
    flags, hwcaps = (0x0303,), ("x86-64-v3", "x86-64-v2")
    chosen = cache.lookup("libhw.so.1", flags, hwcaps, isa_level=2)
    assert chosen is not None and chosen.hwcaps == "x86-64-v2"
    chosen = cache.lookup("libhw.so.1", flags, ("x86-64-v4", *hwcaps), isa_level=3)
    assert chosen is not None and chosen.hwcaps == "x86-64-v3"


# -- 2. ld.so.conf without ld.so.cache ---------------------------------------------------------


@pytest.fixture
def conf_root(root: Path) -> Path:
    """libconf.so.1 in /opt/lib, which ld.so.conf lists; no ld.so.cache yet."""
    lib(root / "opt/lib/libconf.so.1", "libconf.so.1")
    program(root / "bin/m", f"-L{root}/opt/lib", "-l:libconf.so.1")
    (root / "etc/ld.so.conf").write_text("/opt/lib\n")
    return root


def test_conf_without_cache_is_not_read(conf_root: Path) -> None:
    """glibc never reads ld.so.conf: without ld.so.cache, /opt/lib is not searched."""
    real = glibc_lists(Path("/bin/m"), root=conf_root)
    assert real.missing == {"libconf.so.1"}
    g = resolve("/bin/m", Host(root=str(conf_root)))
    assert {r.needed for r in g.missing} == real.missing
    tried = g.missing[0].tried
    assert [(a.path, a.outcome) for a in tried if a.via is FoundVia.LD_SO_CACHE] == [
        ("/etc/ld.so.cache", "no such file"),
        (
            "/opt/lib/libconf.so.1",
            "not searched: in a directory of ld.so.conf only, which glibc never reads; "
            "there is no ld.so.cache: ldconfig has not been run",
        ),
    ]
    assert any("until ldconfig is run" in w for w in g.warnings)
    # Once ldconfig has run, both find it through the cache.
    ldconfig(conf_root)
    real = glibc_lists(Path("/bin/m"), root=conf_root)
    g = resolve("/bin/m", Host(root=str(conf_root)))
    assert loader_paths(g) == real.paths and real.paths[0] == "/opt/lib/libconf.so.1"
    assert not g.warnings


def test_conf_library_installed_after_ldconfig(conf_root: Path) -> None:
    """A stale cache: the library arrived in an ld.so.conf directory after ldconfig ran."""
    (conf_root / "opt/lib/libconf.so.1").rename(conf_root / "libconf.so.1")
    ldconfig(conf_root)
    (conf_root / "libconf.so.1").rename(conf_root / "opt/lib/libconf.so.1")
    real = glibc_lists(Path("/bin/m"), root=conf_root)
    assert real.missing == {"libconf.so.1"}
    g = resolve("/bin/m", Host(root=str(conf_root)))
    assert {r.needed for r in g.missing} == real.missing
    outcomes = [a.outcome for a in g.missing[0].tried if a.via is FoundVia.LD_SO_CACHE]
    assert outcomes[0] == "no entry for libconf.so.1"
    assert outcomes[1].endswith("ldconfig has not been run since it was installed")


# -- 3. candidates the loader cannot load ------------------------------------------------------


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _no_pt_dynamic(path: Path) -> None:
    """Turn PT_DYNAMIC into PT_NULL (64-bit little-endian file)."""
    import struct

    raw = path.read_bytes()
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", raw, 32)[0],
        *struct.unpack_from("<HH", raw, 54),
    )
    for i in range(phnum):
        if struct.unpack_from("<I", raw, phoff + i * phentsize)[0] == 2:
            _patch(path, phoff + i * phentsize, b"\0\0\0\0")


def candidate(kind: str, out: Path, compiler: str) -> None:
    """Put a `kind` of file at `out`, where the loader looks for libx.so first."""
    src = out.parent / "cand.c"
    src.write_text("int f(void) { return 1; }\nint main(void) { return 0; }\n")
    if kind == "directory":
        out.mkdir()
    elif kind == "empty":
        out.write_bytes(b"")
    elif kind == "text":
        out.write_text("INPUT(-lc)\n" * 20)
    elif kind == "pie":
        cc("-fPIE", "-pie", "-o", out, src, compiler=compiler)
    elif kind == "exec":
        cc("-no-pie", "-o", out, src, compiler=compiler)
    elif kind == "static-exec":
        cc("-no-pie", "-static", "-o", out, src, compiler=compiler)
    elif kind == "other-machine":
        shutil.copy(Path(__file__).parents[1] / "data/elf/aarch64/libfix.so.1", out)
    elif kind in ("osabi", "no-dynamic"):
        cc("-shared", "-fPIC", "-Wl,-soname,libx.so", "-o", out, src, compiler=compiler)
        if kind == "osabi":
            _patch(out, 7, b"\x09")  # ELFOSABI_FREEBSD
        else:
            _no_pt_dynamic(out)
    else:
        raise AssertionError(kind)


def _scenario(tmp_path: Path, kind: str, compiler: str) -> Path:
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    lib(b / "libx.so", "libx.so", compiler=compiler)
    candidate(kind, a / "libx.so", compiler)
    return program(tmp_path / "m", f"-L{b}", "-lx", f"-Wl,-rpath,{a}:{b}", compiler=compiler)


# kind -> what glibc says (elf/dl-load.c); None: skipped, libx.so is found in B.
GLIBC_REFUSES = {
    "directory": "cannot read file data",
    "empty": "file too short",
    "text": "invalid ELF header",
    "pie": "cannot dynamically load position-independent executable",
    "exec": "cannot dynamically load executable",
    "osabi": "ELF file OS ABI invalid",
    "no-dynamic": "object file has no dynamic section",
    "other-machine": None,
}


@pytest.mark.parametrize("kind", list(GLIBC_REFUSES))
def test_glibc_unloadable_candidate(tmp_path: Path, glibc_host: None, kind: str) -> None:
    exe = _scenario(tmp_path, kind, "gcc")
    real = glibc_lists(exe)
    g = resolve(str(exe), Host())
    expected = GLIBC_REFUSES[kind]
    if expected is None:
        assert real.error is None and real.paths[0] == str(tmp_path / "B/libx.so")
        assert loader_paths(g) == real.paths
        return
    assert real.error is not None and expected in real.error, real.stderr
    (r,) = g.missing
    assert r.needed == "libx.so" and r.tried[-1].outcome.startswith("the loader stops: " + expected)
    assert r.tried[-2].path == str(tmp_path / "A/libx.so")
    assert any("the program does not start" in w for w in g.warnings)


# kind -> musl's errno text (ldso/dynlink.c map_library); None: musl maps it.
MUSL_REFUSES = {
    "directory": "Is a directory",
    "empty": "Exec format error",
    "text": "Exec format error",
    "static-exec": "Exec format error",
    "pie": None,
    "exec": None,
}


@pytest.mark.parametrize("kind", list(MUSL_REFUSES))
def test_musl_unloadable_candidate(tmp_path: Path, musl_host: None, kind: str) -> None:
    exe = _scenario(tmp_path, kind, "musl-gcc")
    real = musl_lists(exe)
    g = resolve(str(exe), Host())
    expected = MUSL_REFUSES[kind]
    if expected is None:
        assert real.error is None and real.paths[0] == str(tmp_path / "A/libx.so")
        assert loader_paths(g) == real.paths
        return
    assert real.error == expected, real.stderr
    (r,) = g.missing
    assert r.tried[-1].outcome == "the loader stops: " + expected


# -- 4. symbol versions ------------------------------------------------------------------------

BOTH = "V1 { global: f1; local: *; };\nV2 { global: f2; } V1;\n"
ONLY_V1 = "V1 { global: f1; f2; local: *; };\n"


def _weaken(exe: Path, version: str) -> None:
    """Set VER_FLG_WEAK on `version` in exe's DT_VERNEED (GNU ld no longer sets it itself)."""
    import struct

    from elfcost.elf.reader import read_dso, vaddr_to_offset

    d = read_dso(str(exe))
    assert d.dynamic is not None
    addr = next(e.value for e in d.dynamic.entries if e.tag == 0x6FFFFFFE)
    off = vaddr_to_offset(d.phdrs, addr)
    assert off is not None
    raw = bytearray(exe.read_bytes())
    strtab = vaddr_to_offset(d.phdrs, d.dynamic.strtab or 0) or 0
    while True:
        _v, cnt, _file, aux, nxt = struct.unpack_from("<HHIII", raw, off)
        a = off + aux
        for _ in range(cnt):
            _h, flags, _o, name, anext = struct.unpack_from("<IHHII", raw, a)
            if raw[strtab + name :].split(b"\0", 1)[0] == version.encode():
                struct.pack_into("<H", raw, a + 4, flags | 2)
            a += anext
        if not nxt:
            break
        off += nxt
    exe.write_bytes(bytes(raw))


@pytest.mark.parametrize("case", ["defined", "not-defined", "weak", "no-verdef"])
def test_symbol_versions(tmp_path: Path, glibc_host: None, case: str) -> None:
    """Each DT_VERNEED version must be in the DT_VERDEF of the object it names: glibc's
    "version `V2' not found" stops the program (elf/dl-version.c), a weak one and an object
    without versions are messages only."""
    code = "int f1(void) { return 1; }\nint f2(void) { return 2; }"
    (tmp_path / "both.map").write_text(BOTH)
    (tmp_path / "v1.map").write_text(ONLY_V1)
    lib(tmp_path / "libv.so", "libv.so", code, f"-Wl,--version-script={tmp_path / 'both.map'}")
    src = tmp_path / "m.c"
    src.write_text("int f2(void);\nint main(void) { return f2() != 2; }\n")
    exe = tmp_path / "m"
    cc("-o", exe, src, f"-L{tmp_path}", "-lv", f"-Wl,-rpath,{tmp_path}")
    # The library the program runs with is not the one it was linked against.
    script = {"defined": "both.map", "not-defined": "v1.map", "weak": "v1.map"}.get(case)
    extra = [f"-Wl,--version-script={tmp_path / script}"] if script else []
    lib(tmp_path / "libv.so", "libv.so", code, *extra)
    if case == "weak":
        _weaken(exe, "V2")
    real = glibc_lists(exe)
    reported = {
        line.removeprefix(f"{exe}: ") for line in real.stderr.splitlines() if "(required by" in line
    }
    g = resolve(str(exe), Host())
    assert {v.message for v in g.versions} == reported
    fatal = [v for v in g.versions if v.fatal]
    assert bool(fatal) == (case == "not-defined")
    if case != "defined":
        assert reported, real.stderr
        (v,) = g.versions
        assert v.parent == str(exe) and v.found == str(tmp_path / "libv.so")
        assert any(v.message in w for w in g.warnings)
        assert any(v.message in w for w in estimate(g).warnings)
    if fatal:
        # A real run stops before main, with exit status 1 (elf/rtld.c version_check_doit).
        assert subprocess.run([str(exe)], capture_output=True).returncode == 1


# -- 4b. the CPU's ISA level ------------------------------------------------------------------


def _isa_needed_at(path: Path) -> int:
    """File offset of the GNU_PROPERTY_X86_ISA_1_NEEDED value (64-bit little-endian file)."""
    import struct

    from elfcost.elf.reader import read_dso
    from elfcost.model import PT_GNU_PROPERTY

    seg = next(p for p in read_dso(str(path)).phdrs if p.p_type == PT_GNU_PROPERTY)
    raw = path.read_bytes()[seg.offset : seg.offset + seg.filesz]
    namesz, _descsz, _type = struct.unpack_from("<III", raw, 0)
    at = 12 + ((namesz + 3) & ~3)
    while at + 8 <= len(raw):
        pr_type, size = struct.unpack_from("<II", raw, at)
        if pr_type == 0xC0008002:
            return seg.offset + at + 8
        at += 8 + ((size + 7) & ~7)
    raise AssertionError(f"{path}: no GNU_PROPERTY_X86_ISA_1_NEEDED")


def _isa_lib(tmp_path: Path, march: str) -> Path:
    try:
        lib(tmp_path / "libisa.so", "libisa.so", "int f(void) { return 1; }", march, "-mneeded")
    except subprocess.CalledProcessError:
        pytest.skip("this gcc cannot mark the ISA level needed (-mneeded)")
    return program(tmp_path / "m", f"-L{tmp_path}", "-lisa", f"-Wl,-rpath,{tmp_path}")


def test_isa_level_the_cpu_lacks_stops_the_program(tmp_path: Path, glibc_host: None) -> None:
    """glibc checks every object's GNU_PROPERTY_X86_ISA_1_NEEDED against the CPU before main
    (sysdeps/x86/dl-prop.h dl_isa_level_check): a level the CPU lacks stops the program with
    "CPU ISA level is lower than required". No CPU lacks the baseline and this one may have
    x86-64-v4, so the library is marked with a level no CPU has yet (bit 4, after v4)."""
    if os.uname().machine != "x86_64":
        pytest.skip("an x86-64 check")
    exe = _isa_lib(tmp_path, "-march=x86-64-v2")
    libisa = tmp_path / "libisa.so"
    g = resolve(str(exe), Host())
    assert g.stops == ()  # this CPU has x86-64-v2: the real program runs
    assert subprocess.run([str(exe)], capture_output=True).returncode == 0
    at = _isa_needed_at(libisa)
    _patch(libisa, at, (0x13).to_bytes(4, "little"))  # baseline, v2 and the unknown bit 4
    real = subprocess.run([str(exe)], capture_output=True, text=True)
    assert real.returncode == 127
    assert f"{libisa}: CPU ISA level is lower than required" in real.stderr
    g = resolve(str(exe), Host())
    (stop,) = g.stops
    assert stop.startswith(f"{libisa}: CPU ISA level is lower than required")
    assert "unknown levels 0x10" in stop
    assert any(stop in w and "does not start" in w for w in estimate(g).warnings)
    # check --strict fails on it, and its JSON says why.
    out = subprocess.run(
        [sys.executable, "-m", "elfcost", "check", "--strict", "--format", "json", str(exe)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stderr
    (binary,) = json.loads(out.stdout)["binaries"]
    assert binary["cannot_start"] == [stop]
    assert "the loader stops before main" in binary["violations"][0]["why"]


def test_isa_level_of_another_cpu(tmp_path: Path, glibc_host: None) -> None:
    """--isa-level names the CPU the program will run on: an x86-64-v3 library stops it on a
    baseline or x86-64-v2 CPU, not on an x86-64-v3 one (the rule above, for a CPU that is not
    this one)."""
    exe = _isa_lib(tmp_path, "-march=x86-64-v3")
    for level, stops in (("baseline", 1), ("x86-64-v2", 1), ("x86-64-v3", 0), ("x86-64-v4", 0)):
        g = resolve(str(exe), Host(isa_level=level))
        assert len(g.stops) == stops, (level, g.stops)
    (stop,) = resolve(str(exe), Host(isa_level="x86-64-v2")).stops
    assert "needs baseline, x86-64-v2, x86-64-v3; the CPU has baseline, x86-64-v2)" in stop


# -- 5. preloading -----------------------------------------------------------------------------


def _preload_scenario(top: Path, compiler: str = "gcc") -> Path:
    """m needs libx.so (in L), which needs libp.so.1 (in P); libp.so.1 needs libq.so (in L).
    A copy of libp, with the same DT_SONAME, waits in top/libp_copy.so to be preloaded."""
    nas = "-Wl,--no-as-needed"
    lib(top / "L/libq.so", "libq.so", compiler=compiler)
    lib(top / "P/libp.so.1", "libp.so.1", "int p;", nas, f"-L{top}/L", "-lq",
        f"-Wl,-rpath,{top}/L", compiler=compiler)  # fmt: skip
    shutil.copy(top / "P/libp.so.1", top / "libp_copy.so")
    lib(top / "L/libx.so", "libx.so", "int x;", nas, f"-L{top}/P", "-l:libp.so.1",
        f"-Wl,-rpath,{top}/P", compiler=compiler)  # fmt: skip
    return program(top / "m", f"-L{top}/L", "-lx", f"-Wl,-rpath,{top}/L", compiler=compiler)


@pytest.mark.parametrize(
    "names",
    [
        ["{top}/libp_copy.so"],  # by path; its DT_SONAME answers libx.so's libp.so.1
        ["libq.so"],  # by name, searched as the program's DT_NEEDED (its RUNPATH)
        ["nothere.so", "{top}/libp_copy.so", "libc.so.6"],  # a missing one is ignored
    ],
)
def test_glibc_ld_preload(tmp_path: Path, glibc_host: None, names: list[str]) -> None:
    exe = _preload_scenario(tmp_path)
    names = [n.format(top=tmp_path) for n in names]
    real = glibc_lists(exe, {"LD_PRELOAD": " ".join(names)})
    g = resolve(str(exe), Host(preload=tuple(names)))
    assert loader_paths(g) == real.paths
    pre = [r for r in g.resolutions if r.preload]
    assert [r.needed for r in pre] == [n for n in names if n != "nothere.so"]
    assert all(r.preload == "LD_PRELOAD" and r.parent == str(exe) for r in pre)
    if "nothere.so" in names:
        assert "cannot be preloaded" in real.stderr
        assert "object 'nothere.so' from LD_PRELOAD cannot be preloaded (cannot open shared " \
            "object file): ignored" in g.warnings  # fmt: skip
        assert not g.missing


def test_glibc_ld_so_preload_file(root: Path) -> None:
    """/etc/ld.so.preload of the root, after LD_PRELOAD; comments and ':' separators."""
    lib(root / "opt/libpre.so", "libpre.so")
    lib(root / "opt/libenv.so", "libenv.so")
    lib(root / "opt/lib/libx.so", "libx.so")
    program(root / "bin/m", f"-L{root}/opt/lib", "-lx", "-Wl,-rpath,/opt/lib")
    (root / "etc/ld.so.preload").write_text("# preloaded\n/opt/libpre.so:libnone.so # gone\n")
    ldconfig(root)
    for env in ({}, {"LD_PRELOAD": "/opt/libenv.so"}):
        real = glibc_lists(Path("/bin/m"), env, root=root)
        host = Host(root=str(root), preload=tuple(env.values()))
        g = resolve("/bin/m", host)
        assert loader_paths(g) == real.paths
        assert real.paths[: len(env) + 1] == [*env.values(), "/opt/libpre.so"]
        assert [r.preload for r in g.resolutions if r.preload] == [
            *(["LD_PRELOAD"] * len(env)),
            "/etc/ld.so.preload",
        ]
        assert any("libnone.so" in w for w in g.warnings) and "libnone.so" in real.stderr


def test_musl_ld_preload(tmp_path: Path, musl_host: None) -> None:
    """musl: LD_PRELOAD first; a preloaded path has no short name, so libx.so's libp.so.1 is
    a second object (ldso/dynlink.c load_library); no /etc/ld.so.preload."""
    exe = _preload_scenario(tmp_path, "musl-gcc")
    names = [str(tmp_path / "libp_copy.so"), "libq.so", "nothere.so"]
    real = musl_lists(exe, {"LD_PRELOAD": " ".join(names)})
    g = resolve(str(exe), Host(preload=tuple(names)))
    assert loader_paths(g) == real.paths
    assert real.paths[0] == names[0] and str(tmp_path / "P/libp.so.1") in real.paths
    assert not g.missing and not real.missing


# -- the command line --------------------------------------------------------------------------


def elfcost(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _deps_paths(out: subprocess.CompletedProcess[str]) -> list[str]:
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    return [o["path"] for o in doc["objects"][1:] if o["role"] != "interpreter"]


def test_cli_preload(tmp_path: Path, glibc_host: None) -> None:
    """--preload LIBS; LD_PRELOAD from the environment only with --env-preload."""
    exe = _preload_scenario(tmp_path)
    copy = str(tmp_path / "libp_copy.so")
    plain = _deps_paths(elfcost("deps", "--format", "json", str(exe)))
    assert copy not in plain
    given = _deps_paths(
        elfcost("deps", "--format", "json", "--preload", f"{copy}:libq.so", str(exe))
    )
    real = glibc_lists(exe, {"LD_PRELOAD": f"{copy}:libq.so"})
    assert given == real.paths and given[:2] == [copy, str(tmp_path / "L/libq.so")]
    env = {"LD_PRELOAD": copy}
    assert _deps_paths(elfcost("deps", "--format", "json", str(exe), env=env)) == plain
    inherited = elfcost("deps", "--format", "json", "--env-preload", str(exe), env=env)
    assert _deps_paths(inherited)[0] == copy
    scanned = elfcost("scan", "--no-cache", "--format", "jsonl", "--preload", copy, str(exe))
    assert scanned.returncode == 0, scanned.stderr
    est = json.loads(scanned.stdout.splitlines()[0])["estimate"]
    assert est["objects"][1]["path"] == copy  # scan's workers preload it too


def test_cli_isa_level(hwcaps_root: Path) -> None:
    args = ("deps", "--format", "json", "--root", str(hwcaps_root))
    assert _deps_paths(elfcost(*args, "/bin/m"))[0] == "/opt/lib/libhw.so.1"
    v3 = _deps_paths(elfcost(*args, "--isa-level", "x86-64-v3", "/bin/m"))
    assert v3[0] == "/opt/lib/glibc-hwcaps/x86-64-v3/libhw.so.1"
    assert elfcost(*args, "--isa-level", "x86-64-v9", "/bin/m").returncode == 2


# -- 6. musl roots -----------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "elf"


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(new) <= len(old) and data.count(old) == 1
    return data.replace(old, new.ljust(len(old), b"\0"))


@pytest.fixture
def musl_aarch64_root(tmp_path: Path) -> Path:
    """An Alpine-like aarch64 root made from the committed glibc fixtures: hello's PT_INTERP
    and DT_NEEDED rewritten to musl's (/lib/ld-musl-aarch64.so.1, libc.so), libfix.so.1 next
    to it (no DT_NEEDED), and a stand-in for musl's loader; no ld.so.cache, no glibc."""
    r = tmp_path / "alpine"
    (r / "lib").mkdir(parents=True)
    (r / "usr/bin").mkdir(parents=True)
    hello = (FIXTURES / "aarch64/hello").read_bytes()
    hello = _replace(hello, b"/lib/ld-linux-aarch64.so.1\0", b"/lib/ld-musl-aarch64.so.1\0")
    hello = _replace(hello, b"libc.so.6\0", b"libc.so\0")
    (r / "usr/bin/hello").write_bytes(hello)
    libfix = (FIXTURES / "aarch64/libfix.so.1").read_bytes()
    (r / "usr/bin/libfix.so.1").write_bytes(libfix)
    (r / "lib/ld-musl-aarch64.so.1").write_bytes(_replace(libfix, b"libfix.so.1\0", b"libc.so\0"))
    return r


def _no_glibc(warnings: tuple[str, ...]) -> None:
    assert not [w for w in warnings if "ld-linux" in w or "glibc" in w.lower()], warnings


def test_musl_aarch64_program(musl_aarch64_root: Path) -> None:
    host = Host(root=str(musl_aarch64_root))
    g = resolve("/usr/bin/hello", host)
    assert g.family is LoaderFamily.MUSL and g.interp == "/lib/ld-musl-aarch64.so.1"
    assert {r.needed: r.found for r in g.resolutions} == {
        "libfix.so.1": "/usr/bin/libfix.so.1",
        "libc.so": "/lib/ld-musl-aarch64.so.1",
    }
    assert not g.missing
    _no_glibc(g.warnings)
    _no_glibc(estimate(g).warnings)


def test_musl_only_root_library(musl_aarch64_root: Path) -> None:
    """A library naming no libc, analysed alone in a musl-only root: the process loading it
    has musl's loader, not a glibc one the root does not have."""
    g = resolve("/usr/bin/libfix.so.1", Host(root=str(musl_aarch64_root)))
    assert g.family is LoaderFamily.MUSL and g.interp == "/lib/ld-musl-aarch64.so.1"
    _no_glibc(g.warnings)
    _no_glibc(estimate(g).warnings)
    # Where glibc's loader is installed, it is glibc's.
    (musl_aarch64_root / "lib/ld-linux-aarch64.so.1").write_bytes(
        (FIXTURES / "aarch64/libfix.so.1").read_bytes()
    )
    g = resolve("/usr/bin/libfix.so.1", Host(root=str(musl_aarch64_root)))
    assert g.family is LoaderFamily.GLIBC and g.interp == "/lib/ld-linux-aarch64.so.1"
