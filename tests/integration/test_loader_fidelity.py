"""Loader fidelity at the command line: what is not found is said wherever a figure is given,
programs are named as seen inside --root, a foreign root's page size, validate inside a root,
and scan with the whole host option group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from msgspec.structs import replace

from elfcost.elf.reader import read_dso
from elfcost.model import PT_LOAD, Dso
from elfcost.pipeline import page_size_for
from elfcost.report.jsonout import load_schema

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "data" / "elf"


def elfcost(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def foreign_root(tmp_path: Path, machine: str = "aarch64") -> Path:
    """A root holding one cross-built program and its own library ($ORIGIN), but no libc and no
    loader: what a package scanned alone looks like."""
    root = tmp_path / f"root-{machine}"
    (root / "usr/bin").mkdir(parents=True)
    for name in ("hello", "libfix.so.1"):
        shutil.copy(FIXTURES / machine / name, root / "usr/bin" / name)
    return root


# -- 1. what is not found is said everywhere ---------------------------------------------------


def test_check_says_what_was_not_found_even_when_within_the_limit(tmp_path: Path) -> None:
    root = foreign_root(tmp_path)
    r = elfcost("check", "--root", root, "--max-private-dirty", "2M", "/usr/bin/hello")
    assert r.returncode == 0, r.stderr
    line = r.stdout.splitlines()[0]
    assert line.startswith("ok ")
    assert "not found, not counted: libc.so.6, /lib/ld-linux-aarch64.so.1" in line
    assert "uncalibrated profile" in line

    r = elfcost("check", "--root", root, "--format", "json", "/usr/bin/hello")
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("check-4"))
    (b,) = doc["binaries"]
    assert b["missing"] == ["libc.so.6", "/lib/ld-linux-aarch64.so.1"]
    assert b["uncalibrated"] is True


def test_scan_marks_each_program_and_counts_them(tmp_path: Path) -> None:
    root = foreign_root(tmp_path)
    cache = tmp_path / "cache"
    r = elfcost("scan", "--cache-dir", cache, "--format", "json", root)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("scan-4"))
    assert doc["summary"]["missing"] == 1 and doc["summary"]["uncalibrated"] == 1
    (p,) = doc["ranking"]["programs"]
    assert p["missing"] == ["libc.so.6", "/lib/ld-linux-aarch64.so.1"]
    assert p["uncalibrated"] is True

    text = elfcost("scan", "--cache-dir", cache, root).stdout  # from the cache: said again
    words = " ".join(text.split())
    assert "1 with libraries not found" in words
    assert "1 on another machine's profile" in words
    assert "not found: libc.so.6" in words


def test_strict_counts_a_library_needed_twice_once(tmp_path: Path) -> None:
    """libz9.so is needed by liba9.so and libb9.so: one library not found, not two."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")

    def cc(*args: str) -> None:
        subprocess.run(["gcc", *args], check=True, capture_output=True, cwd=tmp_path)

    (tmp_path / "z.c").write_text("int z(void) { return 0; }\n")
    (tmp_path / "a.c").write_text("int z(void); int a(void) { return z(); }\n")
    (tmp_path / "b.c").write_text("int z(void); int b(void) { return z(); }\n")
    (tmp_path / "m.c").write_text(
        "int a(void); int b(void); int main(void) { return a() + b(); }\n"
    )
    cc("-shared", "-fPIC", "-Wl,-soname,libz9.so", "-o", "libz9.so", "z.c")
    for x in "ab":
        cc(
            "-shared",
            "-fPIC",
            f"-Wl,-soname,lib{x}9.so",
            "-o",
            f"lib{x}9.so",
            f"{x}.c",
            "-L.",
            "-lz9",
        )
    cc("-o", "m", "m.c", "-L.", "-la9", "-lb9", "-Wl,-rpath,$ORIGIN")
    (tmp_path / "libz9.so").unlink()

    r = elfcost("check", "--strict", "--format", "json", tmp_path / "m")
    assert r.returncode == 1, r.stderr
    (b,) = json.loads(r.stdout)["binaries"]
    assert b["missing"] == ["libz9.so"]
    (v,) = b["violations"]
    assert (v["limit"], v["actual"]) == ("no_missing", 1)


# -- 2. programs and directories as seen inside the root ---------------------------------------


def test_root_paths_are_taken_as_the_programs_see_them(tmp_path: Path) -> None:
    """/opt/app exists only inside the root; /bin is a link there (usrmerge)."""
    root = tmp_path / "root"
    (root / "opt/app/bin").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    for d in ("opt/app/bin", "usr/bin"):
        for name in ("hello", "libfix.so.1"):
            shutil.copy(FIXTURES / "aarch64" / name, root / d / name)

    r = elfcost("check", "--root", root, "--format", "json", "/opt/app", "/bin/hello")
    assert r.returncode == 0, r.stderr
    paths = [b["path"] for b in json.loads(r.stdout)["binaries"]]
    assert paths == ["opt/app/bin/hello", "bin/hello"]
    # The same directory by its path on this machine.
    r = elfcost("check", "--root", root, "--format", "json", root / "opt/app")
    assert [b["path"] for b in json.loads(r.stdout)["binaries"]] == ["opt/app/bin/hello"]

    for args in (
        ("estimate", "/opt/app/bin/hello"),
        ("deps", "/bin/hello"),
        ("explain", "/opt/app/bin/hello"),
        ("diff", "/opt/app/bin/hello", "/bin/hello"),
        ("diff", "/opt/app/bin", root / "usr/bin"),
    ):
        r = elfcost(args[0], "--root", root, *args[1:])
        assert r.returncode == 0, (args, r.stderr)
        assert "no such file" not in r.stderr

    help_text = " ".join(elfcost("check", "--help").stdout.split())
    assert "as they are seen inside the root (/usr/bin/foo)" in help_text
    assert "under it (ROOT/usr/bin/foo)" in help_text


# -- 3. a foreign program's page size and machine ----------------------------------------------


def estimate_json(*args: str | Path) -> dict[str, Any]:
    r = elfcost("estimate", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def aligned(dso: Dso, align: int) -> Dso:
    """`dso` as if linked with PT_LOAD alignment `align` (the machine's usual max-page-size)."""
    phdrs = tuple(replace(p, align=align) if p.p_type == PT_LOAD else p for p in dso.phdrs)
    return replace(dso, phdrs=phdrs)


def test_a_foreign_program_gets_its_machines_page_size_and_says_why() -> None:
    ppc = read_dso(str(FIXTURES / "ppc64le/hello"))
    size, note = page_size_for(aligned(ppc, 0x10000))
    assert size == 65536 and note is not None
    assert note.startswith("page size 64 KiB for this ppc64le program: ppc64le's usual page size")
    assert page_size_for(aligned(ppc, 0x10000), 4096) == (4096, None)  # --page-size decides
    # aarch64: 4 KiB whatever its alignment (binutils aligns to 64 KiB for either kernel).
    size, note = page_size_for(aligned(read_dso(str(FIXTURES / "aarch64/hello")), 0x10000))
    assert size == 4096 and note is not None and "aarch64's usual page size" in note
    # A program this machine runs is estimated with this machine's pages, without a word.
    assert page_size_for(read_dso("/bin/sh")) == (os.sysconf("SC_PAGE_SIZE"), None)

    # The committed fixtures are linked with 4 KiB alignment: no 64 KiB kernel maps them.
    doc = estimate_json(FIXTURES / "ppc64le/hello")
    assert doc["machine"] == "ppc64le" and doc["page_size"] == 4096
    (note,) = (w for w in doc["warnings"] if w.startswith("page size"))
    assert "ppc64le usually runs 64 KiB pages, but the program's segments are aligned" in note
    assert note in doc["assumptions"]
    assert "aligned to 0x1000" in " ".join(
        elfcost("estimate", FIXTURES / "ppc64le/hello").stdout.split()
    )
    # Big-endian POWER is named so; --page-size decides, and then nothing needs saying.
    doc = estimate_json("--page-size", "64K", FIXTURES / "ppc64/hello")
    assert doc["machine"] == "ppc64" and doc["page_size"] == 65536
    assert not any(w.startswith("page size") for w in doc["warnings"])


def test_scan_estimates_a_foreign_program_with_its_machines_page_size(tmp_path: Path) -> None:
    root = foreign_root(tmp_path, "ppc64le")
    r = elfcost("scan", "--no-cache", "--format", "jsonl", root)
    assert r.returncode == 0, r.stderr
    (line,) = (json.loads(x) for x in r.stdout.splitlines() if "scan-result/2" in x)
    est = line["estimate"]
    assert est["machine"] == "ppc64le"
    assert any(w.startswith("page size 4 KiB for this ppc64le program") for w in est["warnings"])


# -- 4. validate runs the program inside the root ----------------------------------------------


def small_root(tmp_path: Path) -> Path:
    """/usr/bin/sleep with copies of this machine's libc and loader, under /opt/r/bin (a path
    this machine does not have)."""
    root = tmp_path / "vroot"
    libdir = root / "lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    (root / "lib64").mkdir()
    (root / "opt/r/bin").mkdir(parents=True)
    shutil.copy("/usr/bin/sleep", root / "opt/r/bin/sleep")
    for lib in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"/lib/x86_64-linux-gnu/{lib}", libdir / lib)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="an x86_64 root")
def test_validate_runs_the_program_inside_the_root(tmp_path: Path) -> None:
    root = small_root(tmp_path)
    r = elfcost("validate", "--root", root, "--format", "json", "/opt/r/bin/sleep", "--", "100")
    assert r.returncode in (0, 1), r.stderr
    docs = json.loads(r.stdout)  # one array: the entry and the idle comparison
    assert docs
    for doc in docs:
        paths = {o["path"] for o in doc["objects"]}
        assert "/opt/r/bin/sleep" in paths
        assert "/lib/x86_64-linux-gnu/libc.so.6" in paths
        # Every object the estimate names was found mapped and written.
        assert all(o["measured_pages"] > 0 for o in doc["objects"]), doc["objects"]


def test_validate_with_a_root_refuses_without_root_privileges(tmp_path: Path) -> None:
    root = small_root(tmp_path)
    code = "import os, sys; os.geteuid = lambda: 1000; from elfcost.cli import run; run()"
    r = subprocess.run(
        [sys.executable, "-c", code, "validate", "--root", str(root), "/opt/r/bin/sleep"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "needs root privileges (this is uid 1000)" in " ".join(r.stderr.split())


# -- 5. scan takes the whole host option group ---------------------------------------------------


def scanned_objects(*args: str | Path) -> list[str]:
    """The objects of the one program `scan --format jsonl ARGS` estimates."""
    r = elfcost("scan", "--format", "jsonl", "-j", "1", *args)
    assert r.returncode == 0, r.stderr
    (line,) = (json.loads(x) for x in r.stdout.splitlines() if "scan-result/2" in x)
    return [o["path"] for o in line["estimate"]["objects"]]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 glibc-hwcaps")
def test_scan_takes_preload_and_isa_level_and_rereads_ld_so_preload(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    build, root = tmp_path / "build", tmp_path / "root"
    build.mkdir()
    libdir = root / "lib/x86_64-linux-gnu"
    (libdir / "glibc-hwcaps/x86-64-v3").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/ld.so.preload").write_text("")  # rewritten below, its directory unchanged

    def cc(*args: str) -> None:
        subprocess.run(["gcc", *args], check=True, capture_output=True, cwd=build)

    (build / "q.c").write_text("int q(void) { return 0; }\n")
    (build / "m.c").write_text("int q(void); int main(void) { return q(); }\n")
    cc("-shared", "-fPIC", "-Wl,-soname,libq9.so", "-o", "libq9.so", "q.c")
    cc("-shared", "-fPIC", "-Wl,-soname,libp9.so", "-o", "libp9.so", "q.c")
    cc("-o", "m", "m.c", "-L.", "-lq9")
    shutil.copy(build / "m", root / "usr/bin/m")
    for name in ("libq9.so", "libp9.so"):
        shutil.copy(build / name, libdir / name)
    shutil.copy(build / "libq9.so", libdir / "glibc-hwcaps/x86-64-v3/libq9.so")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    prog = "/usr/bin/m"

    plain = scanned_objects(*cache, "--root", root, prog)
    assert "/lib/x86_64-linux-gnu/libq9.so" in plain and not any("libp9" in p for p in plain)
    v3 = scanned_objects(*cache, "--root", root, "--isa-level", "x86-64-v3", prog)
    assert "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libq9.so" in v3
    preloaded = scanned_objects(*cache, "--root", root, "--preload", "libp9.so", prog)
    assert preloaded[1] == "/lib/x86_64-linux-gnu/libp9.so"
    # The root's /etc/ld.so.preload is loader configuration: a change is not a cache hit.
    (root / "etc/ld.so.preload").write_text("libp9.so\n")
    assert "/lib/x86_64-linux-gnu/libp9.so" in scanned_objects(*cache, "--root", root, prog)
