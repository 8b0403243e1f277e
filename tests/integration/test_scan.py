"""elfcost.scan: directories, roots, package archives, the cache, counting and the ranking."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from elfcost.analysis import rank
from elfcost.cost.estimate import Options
from elfcost.documents import EstimateDoc, ScanSummary, encode
from elfcost.elf.reader import is_elf, read_dso
from elfcost.predict import ObjectMemo, estimate
from elfcost.report.jsonout import estimate_doc, load_schema
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.scan import Scan, ScanOptions, ScanResult
from elfcost.scan.archive import unpack

pytestmark = pytest.mark.integration

LIBDIR = "/lib/x86_64-linux-gnu"


def scan(inputs: Sequence[str | Path], **options: Any) -> tuple[list[ScanResult], ScanSummary]:
    """Scan in this process, without the cache, unless told otherwise."""
    options.setdefault("jobs", 1)
    options.setdefault("no_cache", True)
    s = Scan([str(i) for i in inputs], ScanOptions(**options))
    results = list(s.results())
    return results, s.summary


def object_paths(r: ScanResult) -> list[str]:
    assert r.doc is not None, r.error
    return [o.path for o in r.doc.objects]


@pytest.fixture
def ownlib(samples: Path, tmp_path: Path) -> Path:
    """A program and its own library (RUNPATH $ORIGIN) in a directory of their own."""
    d = tmp_path / "app"
    d.mkdir()
    shutil.copy(samples / "ownlib.pie", d / "ownlib")
    shutil.copy(samples / "libown.so", d / "libown.so")
    (d / "README").write_text("not ELF\n")
    return d


def package_tree(samples: Path, top: Path) -> Path:
    """What a package installs: a program, its library in the default directory, a text file."""
    (top / "usr/bin").mkdir(parents=True)
    (top / LIBDIR.lstrip("/")).mkdir(parents=True)
    shutil.copy(samples / "ownlib.pie", top / "usr/bin/ownlib")
    shutil.copy(samples / "libown.so", top / LIBDIR.lstrip("/") / "libown.so")
    (top / "usr/bin/README").write_text("documentation\n")
    return top


# -- directories -------------------------------------------------------------------------------

Progress = list[tuple[int, int]]


@pytest.fixture(scope="module")
def samples_scan(samples: Path) -> tuple[list[ScanResult], ScanSummary, Progress]:
    """The samples directory scanned once in a pool of two, with the progress reported."""
    seen: Progress = []
    s = Scan(
        [str(samples)],
        ScanOptions(jobs=2, no_cache=True),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    results = list(s.results())
    return results, s.summary, seen


def test_samples_dir_counts_and_order(
    samples: Path, samples_scan: tuple[list[ScanResult], ScanSummary, Progress]
) -> None:
    regular, elf, programs = [], [], []
    for d, dirs, files in os.walk(samples):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.islink(p):
                continue
            regular.append(p)
            if is_elf(p):
                elf.append(p)
                if read_dso(p, sections=False).is_program:
                    programs.append(p)
    results, summary, _ = samples_scan
    assert summary.files_seen == len(regular) - summary.duplicates
    assert summary.elf_files == len(elf)
    assert summary.executables == len(programs)
    assert summary.libraries + summary.not_loadable == len(elf) - len(programs)
    assert summary.skipped_non_elf == len(regular) - len(elf)
    assert summary.errors == 0 and summary.cache_hits == 0
    assert sorted(r.path for r in results) == sorted(programs)
    # Input order: each directory's files in name order before its subdirectories.
    top = [r.path for r in results if os.path.dirname(r.path) == str(samples)]
    assert top == sorted(top)
    schema = load_schema("estimate-3")
    for r in results[:5]:
        jsonschema.validate(json.loads(encode(r.doc)), schema, cls=jsonschema.Draft202012Validator)
        assert r.doc is not None and r.doc.binary == r.loader_path == os.path.abspath(r.path)


def test_object_memo_changes_no_estimate(samples: Path) -> None:
    """Libraries estimated once and reused across programs: the same documents as alone."""
    memo, host = ObjectMemo(), Host()
    # One sample per loader and link mode: glibc lazy and now, musl, static-pie.
    kinds = (".lazy", ".now", ".musl-dyn", ".static-pie")
    programs = sorted(str(p) for p in samples.iterdir() if p.name.endswith(kinds))
    for p in programs:
        alone = estimate_doc(estimate(resolve(p, Host()), Options(page_size=4096)))
        shared = estimate_doc(estimate(resolve(p, host), Options(page_size=4096), memo=memo))
        assert shared == alone, p


def test_same_results_in_one_process_and_in_a_pool(samples: Path) -> None:
    one, _ = scan([samples / "resolve"], jobs=1)
    pool, _ = scan([samples / "resolve"], jobs=2)
    assert [(r.path, r.doc, r.error) for r in one] == [(r.path, r.doc, r.error) for r in pool]


SPAWNED = """
import json, sys, threading
from elfcost.scan import Scan, ScanOptions

def main():
    alive = threading.Event()  # another thread, as a progress bar has: workers are spawned
    threading.Thread(target=alive.wait, daemon=True).start()
    scan = Scan([sys.argv[1]], ScanOptions(jobs=2, no_cache=True))
    print(json.dumps([[r.path, r.doc_json, r.error] for r in scan.results()]))
    alive.set()

if __name__ == "__main__":
    main()
"""


def test_spawned_workers_when_the_caller_has_threads(samples: Path, tmp_path: Path) -> None:
    script = tmp_path / "scan_with_a_thread.py"
    script.write_text(SPAWNED)
    out = subprocess.run(
        [sys.executable, str(script), str(samples / "resolve")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    one, _ = scan([samples / "resolve"], jobs=1)
    assert json.loads(out) == [[r.path, r.doc_json, r.error] for r in one]


def test_progress_reaches_the_total(
    samples_scan: tuple[list[ScanResult], ScanSummary, Progress],
) -> None:
    _, summary, seen = samples_scan
    total = summary.files_seen
    # A directory is walked while its programs are analysed: the total grows to the files
    # found, never past them, and is reached at the end.
    assert seen[0][0] == 0 and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [t for _, t in seen] == sorted(t for _, t in seen)
    assert all(d <= t for d, t in seen)


def test_progress_of_an_archive_knows_its_total_at_once(samples: Path, tmp_path: Path) -> None:
    """An archive among the inputs is unpacked before anything is analysed (it is a root of
    its own, which the workers are told of): the total is known from the first report."""
    pkg = tmp_path / "pkg.tar.gz"
    with tarfile.open(pkg, "w:gz") as tar:
        tar.add(samples / "trivial.pie", arcname="usr/bin/trivial")
        tar.add(samples / "opendir_daemon.pie", arcname="usr/bin/daemon")
    seen: Progress = []
    s = Scan(
        [str(pkg), str(samples / "trivial.pie")],
        ScanOptions(jobs=1, no_cache=True),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    list(s.results())
    total = s.summary.files_seen
    assert total == 3 and seen[0] == (0, total) and seen[-1] == (total, total)


def test_a_directory_is_walked_while_its_first_programs_are_analysed(
    ownlib: Path, tmp_path: Path
) -> None:
    """The first result of a scan of two directories comes before the second is walked:
    no report so far counted its files. The results and counts are those of the whole."""
    second = tmp_path / "second"
    second.mkdir()
    for n in range(20):
        (second / f"data{n:02}.txt").write_text("not ELF\n")
    shutil.copy(ownlib / "ownlib", second / "ownlib-copy")
    seen: Progress = []
    s = Scan(
        [str(ownlib), str(second)],
        ScanOptions(jobs=1, no_cache=True),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    results = s.results()
    first = next(results)
    assert first.path == str(ownlib / "ownlib")
    assert max(t for _, t in seen) <= 3  # the first directory's files: the second not walked
    rest = list(results)
    assert [r.path for r in rest] == [str(second / "ownlib-copy")]
    summary = s.summary
    assert (summary.files_seen, summary.skipped_non_elf, summary.executables) == (24, 21, 2)
    assert seen[-1] == (24, 24)


def test_non_elf_is_counted_under_a_directory_and_an_error_when_named(
    ownlib: Path, tmp_path: Path
) -> None:
    (ownlib / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (ownlib / "sub").mkdir()
    (ownlib / "sub" / "data.bin").write_bytes(b"\x7fEL")  # too short for the ELF magic
    results, summary = scan([ownlib])
    assert summary.skipped_non_elf == 3 and summary.errors == 0
    assert summary.executables == 1 and summary.libraries == 1 and summary.files_seen == 5
    results, summary = scan([ownlib / "README", ownlib / "ownlib", tmp_path / "missing"])
    assert [r.error for r in results] == [
        f"{ownlib / 'README'}: not an ELF file",
        None,
        f"{tmp_path / 'missing'}: no such file or directory",
    ]
    assert summary.errors == 2 and summary.executables == 1 and summary.skipped_non_elf == 0


def test_named_library_is_estimated_found_library_is_not(ownlib: Path, tmp_path: Path) -> None:
    cached: dict[str, Any] = {"no_cache": False, "cache_dir": str(tmp_path / "cache")}
    for _ in range(2):  # computed, then from the cache: the same either way
        results, summary = scan([ownlib / "libown.so"], **cached)
        assert summary.executables == 1 and summary.libraries == 0
        assert results[0].doc is not None and results[0].doc.objects[0].role == "library"
        results, summary = scan([ownlib], **cached)
        assert [Path(r.path).name for r in results] == ["ownlib"]
        assert summary.libraries == 1
    assert summary.cache_hits == 2


def test_object_files_are_skipped_under_a_directory(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    src = tmp_path / "a.c"
    src.write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", "-c", str(src), "-o", str(tmp_path / "a.o")], check=True)
    _, summary = scan([tmp_path])
    assert summary.not_loadable == 1 and summary.errors == 0 and summary.elf_files == 1
    results, summary = scan([tmp_path / "a.o"])
    assert summary.errors == 1 and results[0].error is not None and "ET_REL" in results[0].error


def test_symlinks_are_not_followed_and_hard_links_counted_once(
    ownlib: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy("/bin/true", outside / "true")
    os.symlink(outside, ownlib / "linked-dir")
    os.symlink(outside / "true", ownlib / "linked-file")
    os.link(ownlib / "ownlib", ownlib / "ownlib-hardlink")
    results, summary = scan([ownlib])
    assert summary.symlinks == 2 and summary.duplicates == 1
    assert [Path(r.path).name for r in results] == ["ownlib"]
    # Named explicitly, a symlink is followed.
    results, _ = scan([ownlib / "linked-file"])
    assert results[0].doc is not None and results[0].loader_path == str(ownlib / "linked-file")


def test_a_hard_linked_file_that_is_not_elf_is_a_duplicate(ownlib: Path) -> None:
    """The walk takes a file's identity from the file it opened to read its first bytes: a
    second name of a data file is a duplicate, not a second file that is not ELF."""
    os.link(ownlib / "README", ownlib / "README-again")
    _, summary = scan([ownlib])
    assert summary.duplicates == 1 and summary.skipped_non_elf == 1
    assert summary.files_seen == 3 and summary.errors == 0


def test_a_file_gone_while_the_walk_reads_it_is_not_an_error(
    ownlib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file removed between the directory's listing and its first read (a tree that
    changes while it is scanned): counted as not ELF, never a traceback; the others go on."""
    from elfcost.scan import run

    real = run.head_and_stat

    def removed_first(path: str, n: int) -> Any:
        if path.endswith("/README"):
            os.unlink(path)
        return real(path, n)

    monkeypatch.setattr(run, "head_and_stat", removed_first)
    results, summary = scan([ownlib])
    assert summary.skipped_non_elf == 1 and summary.errors == 0
    assert [Path(r.path).name for r in results] == ["ownlib"] and results[0].doc is not None
    assert not (ownlib / "README").exists()


# -- a root file system ------------------------------------------------------------------------


@pytest.fixture
def sysroot(samples: Path, tmp_path: Path) -> Path:
    root = package_tree(samples, tmp_path / "root")
    lib = root / LIBDIR.lstrip("/")
    for name in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"{LIBDIR}/{name}", lib / name)
    (root / "lib64").mkdir()
    os.symlink(f"{LIBDIR}/ld-linux-x86-64.so.2", root / "lib64/ld-linux-x86-64.so.2")
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text("")
    # Leads out of the root: must be neither followed nor resolved outside it.
    os.symlink("/usr/bin", root / "usr/bin/host-bin")
    return root


def test_root_loader_paths_are_inside_it(sysroot: Path) -> None:
    results, summary = scan([sysroot], root=str(sysroot))
    assert summary.executables == 1 and summary.errors == 0 and summary.symlinks == 2
    (r,) = results
    assert r.loader_path == "/usr/bin/ownlib" and r.path == f"{sysroot}/usr/bin/ownlib"
    assert object_paths(r) == [
        "/usr/bin/ownlib",
        f"{LIBDIR}/libown.so",
        f"{LIBDIR}/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]
    assert r.doc is not None and r.doc.missing == ()
    # A path inside the root, however named, is the same program.
    named, _ = scan(["/usr/bin/ownlib", sysroot / "usr/bin/ownlib"], root=str(sysroot))
    assert [n.loader_path for n in named] == ["/usr/bin/ownlib"]


def test_host_loader_path(sysroot: Path) -> None:
    host = Host(root=str(sysroot))
    assert host.loader_path(str(sysroot / "usr/bin/ownlib")) == "/usr/bin/ownlib"
    assert host.loader_path(str(sysroot)) == "/"
    assert host.loader_path("usr/bin/ownlib") == "/usr/bin/ownlib"
    assert Host().loader_path("build/x") == "build/x"


# -- archives ----------------------------------------------------------------------------------


def leftovers() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("elfcost-scan-")}


def check_package(results: Sequence[ScanResult], summary: ScanSummary, archive: Path) -> None:
    assert summary.archives == 1 and summary.errors == 0, [r.error for r in results]
    assert summary.executables == 1 and summary.libraries == 1 and summary.skipped_non_elf >= 1
    (r,) = results
    assert r.path == f"{archive}!/usr/bin/ownlib" and r.loader_path == "/usr/bin/ownlib"
    assert object_paths(r)[:2] == ["/usr/bin/ownlib", f"{LIBDIR}/libown.so"]
    # Only what the package holds: libc is not in it.
    assert r.doc is not None and {m.needed for m in r.doc.missing} == {"libc.so.6"}
    libs = {lib.path: lib.programs for lib in rank(ranked(results)).libraries}
    assert libs == {f"{archive}!{LIBDIR}/libown.so": (r.path,)}


@pytest.mark.parametrize("compression", ["xz", "gzip", "none", "zstd"])
def test_deb_built_with_dpkg_deb(samples: Path, tmp_path: Path, compression: str) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("no dpkg-deb")
    tree = package_tree(samples, tmp_path / "pkg")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text(
        "Package: ownlib\nVersion: 1.0\nArchitecture: amd64\n"
        "Maintainer: Nobody <nobody@example.org>\nDescription: test package\n"
    )
    deb = tmp_path / "ownlib_1.0_amd64.deb"
    subprocess.run(
        ["dpkg-deb", f"-Z{compression}", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    if compression == "zstd":
        pytest.importorskip("zstandard")
    before = leftovers()
    results, summary = scan([deb])
    check_package(results, summary, deb)
    assert leftovers() == before  # the unpacked tree is removed


def test_zstd_without_the_module_is_a_clear_error(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("zstd") is None:
        pytest.skip("no zstd command to make the archive")
    package_tree(samples, tmp_path / "pkg")
    archive = tmp_path / "pkg.tar.zst"
    subprocess.run(
        ["tar", "--zstd", "-C", str(tmp_path / "pkg"), "-cf", str(archive), "usr"], check=True
    )
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard raises ImportError
    results, summary = scan([archive])
    assert summary.errors == 1 and results[0].error is not None
    assert "install the zstandard module" in results[0].error


def tar_bytes(members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o755
    return info, data


def package_members(samples: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [
        file_member("./usr/bin/ownlib", (samples / "ownlib.pie").read_bytes()),
        file_member(f".{LIBDIR}/libown.so", (samples / "libown.so").read_bytes()),
        file_member("./usr/share/doc/ownlib/README", b"documentation\n"),
    ]


def test_tar_gz_built_with_tarfile(samples: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ownlib.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(package_members(samples))))
    results, summary = scan([archive])
    check_package(results, summary, archive)


def test_apk_gzip_segments(samples: Path, tmp_path: Path) -> None:
    """Alpine: a signature, a control and a data segment, each gzip'd, one after another."""
    segments = [
        tar_bytes([file_member(".SIGN.RSA.key.rsa.pub", b"signature")]),
        tar_bytes([file_member(".PKGINFO", b"pkgname = ownlib\n")]),
        tar_bytes(package_members(samples)),
    ]
    archive = tmp_path / "ownlib-1.0-r0.apk"
    archive.write_bytes(b"".join(gzip.compress(s) for s in segments))
    results, summary = scan([archive])
    check_package(results, summary, archive)
    assert summary.skipped_non_elf == 3


def test_unsafe_archives_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    escape = tmp_path / "escape.tar"
    escape.write_bytes(tar_bytes([file_member("../../evil", b"x")]))
    absolute = tmp_path / "absolute.tar"
    absolute.write_bytes(tar_bytes([file_member(str(outside / "evil"), b"x")]))
    results, summary = scan([escape, absolute])
    assert summary.errors == 2
    assert all(r.error is not None and "'..': refused" in r.error for r in results)
    assert not (outside / "evil").exists()


def test_archive_links_and_devices_stay_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = tarfile.TarInfo("lib")
    link.type, link.linkname = tarfile.SYMTYPE, str(outside)
    dev = tarfile.TarInfo("dev/null")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
    hard = tarfile.TarInfo("usr/bin/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "usr/bin/true"
    archive = tmp_path / "links.tar"
    true = Path("/bin/true").read_bytes()
    archive.write_bytes(
        tar_bytes(
            [
                (link, None),
                file_member("lib/written-through-link", b"x"),
                (dev, None),
                file_member("usr/bin/true", true),
                (hard, None),
            ]
        )
    )
    results, summary = scan([archive])
    assert os.listdir(outside) == []
    assert summary.errors == 0 and summary.symlinks == 1 and summary.duplicates == 1
    assert [r.loader_path for r in results] == ["/usr/bin/hard"]  # the first name, in order
    dest = tmp_path / "unpacked"
    dest.mkdir()
    unpacked = unpack(str(archive), str(dest))
    assert (unpacked.files, unpacked.links) == (2, 1)
    assert unpacked.skipped == (
        "lib/written-through-link: a parent is a symbolic link or a file",
        "dev/null: device, FIFO or other special file, not unpacked",
    )
    assert not (dest / "dev" / "null").exists()


def test_archive_size_is_bounded(samples: Path, tmp_path: Path) -> None:
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(package_members(samples))))
    results, summary = scan([archive], max_archive_bytes=1000)
    assert summary.errors == 1 and results[0].error is not None
    assert "unpacks to more than 1000 bytes" in results[0].error


def rpm_bytes(files: dict[str, bytes]) -> bytes:
    """A minimal binary RPM: lead, empty signature, a header naming the payload's compressor,
    and a gzip'd cpio (newc) payload, as rpmbuild lays them out."""

    def header(entries: Sequence[tuple[int, int, bytes]]) -> bytes:
        index, store = b"", b""
        for tag, kind, value in entries:
            index += struct.pack(">iiii", tag, kind, len(store), 1)
            store += value
        head = b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">ii", len(entries), len(store))
        return head + index + store

    lead = struct.pack(">4sBBhh66shh16s", b"\xed\xab\xee\xdb", 3, 0, 0, 1, b"ownlib", 1, 5, b"")
    signature = header([])
    signature += b"\0" * (-len(signature) % 8)
    main = header([(1000, 6, b"ownlib\0"), (1125, 6, b"gzip\0")])
    cpio = b""
    for i, (name, data) in enumerate([*files.items(), ("TRAILER!!!", b"")]):
        mode = 0o100755 if data or name != "TRAILER!!!" else 0
        fields = [i + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        entry = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        entry += b"\0" * (-len(entry) % 4) + data
        cpio += entry + b"\0" * (-len(entry) % 4)
    return lead + signature + main + gzip.compress(cpio)


def test_rpm(samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "ownlib-1.0-1.x86_64.rpm"
    archive.write_bytes(
        rpm_bytes(
            {
                "./usr/bin/ownlib": (samples / "ownlib.pie").read_bytes(),
                f".{LIBDIR}/libown.so": (samples / "libown.so").read_bytes(),
                "./usr/share/doc/ownlib/README": b"documentation\n",
            }
        )
    )
    if importlib.util.find_spec("rpmfile") is None:
        results, summary = scan([archive])
        assert results[0].error is not None and "rpm not supported" in results[0].error
        return
    results, summary = scan([archive])
    check_package(results, summary, archive)
    monkeypatch.setitem(sys.modules, "rpmfile", None)
    results, summary = scan([archive])
    assert summary.errors == 1 and results[0].error is not None
    assert "rpm not supported" in results[0].error


# -- the cache ---------------------------------------------------------------------------------


def test_cache_hit_then_invalidated_by_a_library_change(
    samples: Path, ownlib: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"

    def run() -> tuple[bool, ScanSummary, ScanResult]:
        results, summary = scan([ownlib], no_cache=False, cache_dir=str(cache))
        (r,) = results
        return r.cached, summary, r

    cached, summary, first = run()
    assert not cached and summary.cache_hits == 0
    cached, summary, second = run()
    assert cached and summary.cache_hits == 2  # the program and the library's classification
    assert second.doc == first.doc
    # The program's estimate depends on its library: touching it is enough to re-analyse.
    lib = ownlib / "libown.so"
    st = lib.stat()
    os.utime(lib, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    cached, summary, third = run()
    assert not cached and third.doc == first.doc
    assert run()[0]
    # Replaced by another build: a new estimate, not the stale one.
    lib.unlink()
    shutil.copy(samples / "musl" / "libown.so", lib)
    cached, _, fourth = run()
    assert not cached and fourth.doc != first.doc
    # A file appearing in a directory the loader searches may change the resolution.
    assert run()[0]
    (ownlib / "new-file").write_text("")
    assert not run()[0]
    # Other options are other entries; no_cache neither reads nor writes.
    _, summary = scan([ownlib], no_cache=False, cache_dir=str(cache), page_size=65536)
    assert summary.cache_hits == 0
    _, summary = scan([ownlib], no_cache=True, cache_dir=str(cache))
    assert summary.cache_hits == 0


def test_a_pool_worker_that_dies_loses_only_its_own_files(
    samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file whose analysis kills its worker (as the kernel's OOM killer would): the files
    # that worker held are errors, a new worker takes its place, every other file is analysed.
    import signal
    import threading

    from elfcost.scan import engine, run

    reference, _ = scan([samples], jobs=1)
    poison = str(samples / "trivial.pie")
    one = run._Worker.one

    def dying(self: run._Worker, t: Any, *, look_up: bool = True) -> Any:
        if t.path == poison:
            os.kill(os.getpid(), signal.SIGKILL)
        return one(self, t, look_up=look_up)

    monkeypatch.setattr(run._Worker, "one", dying)  # in the forked workers too
    assert threading.active_count() == 1  # so the workers are forked, with the patch
    results, _ = scan([samples], jobs=2)
    died = [r for r in results if r.error is not None]
    assert any(r.path == poison for r in died)
    assert all(r.error.endswith("analysis: the worker process died") for r in died)  # type: ignore[union-attr]
    assert len(died) <= engine.IN_FLIGHT * run.CHUNK
    by_path = {r.path: r for r in reference}
    analysed = {r.path: r.doc_json for r in results if r.error is None}
    # Every file is there (a library whose classification died is an error line too), and
    # every one analysed is as a scan without deaths gives it.
    assert set(by_path) <= set(analysed) | {r.path for r in died}
    assert analysed == {p: by_path[p].doc_json for p in analysed}
    assert len(analysed) >= len(reference) - len(died) > 0


def test_pool_workers_have_indexed_every_entry_when_the_scan_returns(
    samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each worker indexes its pack of entries when it exits: a scan that has returned must
    # have them all indexed, whole (a later run, even one started at once, finds each).
    # A slow disk, in the forked workers: the index is still being written as the work ends.
    from elfcost.scan import cache as cache_module

    close = cache_module._Pack.close

    def slow_close(self: cache_module._Pack, written: int | None = None) -> None:
        time.sleep(0.2)
        close(self, written)

    monkeypatch.setattr(cache_module._Pack, "close", slow_close)
    cache = tmp_path / "cache"
    _, first = scan([samples], jobs=2, no_cache=False, cache_dir=str(cache))
    assert first.cache_hits == 0 and first.executables > 10
    assert not list(cache.rglob(".tmp-*"))
    packs = list(cache.rglob("*.pack"))
    assert 1 <= len(packs) <= 3  # the workers' (one each, if it analysed anything), this one's
    assert sorted(p.with_suffix(".idx") for p in packs) == sorted(cache.rglob("*.idx"))
    _, second = scan([samples], jobs=2, no_cache=False, cache_dir=str(cache))
    assert second.cache_hits == first.elf_files - first.errors


def test_assume_static_scans_the_static_what_if(samples: Path, tmp_path: Path) -> None:
    from elfcost.cost.estimate import Options
    from elfcost.cost.whatif import static_whatif
    from elfcost.resolve.host import Host
    from elfcost.resolve.search import resolve

    exe = samples / "trivial.pie"
    cache = tmp_path / "cache"
    (built,), _ = scan([exe], no_cache=False, cache_dir=str(cache))
    (static,), summary = scan([exe], no_cache=False, cache_dir=str(cache), assume="static")
    assert summary.cache_hits == 0  # the as-built entry is not the what-if's
    assert static.doc is not None and built.doc is not None
    graph, opts = resolve(str(exe), Host()), Options(page_size=os.sysconf("SC_PAGE_SIZE"))
    ref = static_whatif(graph, opts, dynamic=estimate(graph, opts))
    assert static.doc.total.private_dirty.expected == ref.total.expected
    assert ref.total.expected < built.doc.total.private_dirty.expected
    assert not any(o.role == "interpreter" for o in static.doc.objects)
    (again,), summary = scan([exe], no_cache=False, cache_dir=str(cache), assume="static")
    assert again.cached and again.doc == static.doc


def test_assume_musl_scans_the_libc_what_if_cached_apart(samples: Path, tmp_path: Path) -> None:
    exe = samples / "ownlib.pie"
    cache = tmp_path / "cache"
    (built,), _ = scan([exe], no_cache=False, cache_dir=str(cache))
    (musl,), summary = scan([exe], no_cache=False, cache_dir=str(cache), assume="musl")
    assert summary.cache_hits == 0  # neither the as-built entry nor the static one
    assert musl.doc is not None and built.doc is not None
    assert musl.doc.loader.family.value == "musl" and built.doc.loader.family.value == "glibc"
    real = scan([samples / "ownlib.musl-dyn"], no_cache=True)[0][0].doc
    assert real is not None
    assert musl.doc.total.private_dirty == real.total.private_dirty
    (again,), summary = scan([exe], no_cache=False, cache_dir=str(cache), assume="musl")
    assert again.cached and again.doc == musl.doc
    (glibc,), _ = scan([exe], no_cache=False, cache_dir=str(cache), assume="glibc")
    assert glibc.doc is not None and not glibc.cached  # "already glibc" is its own entry
    assert glibc.doc.total == built.doc.total


def test_cache_of_an_archive_keyed_by_the_archive(samples: Path, tmp_path: Path) -> None:
    archive = tmp_path / "ownlib.tar.gz"
    archive.write_bytes(gzip.compress(tar_bytes(package_members(samples))))
    opts: dict[str, Any] = {"no_cache": False, "cache_dir": str(tmp_path / "cache")}
    assert scan([archive], **opts)[1].cache_hits == 0
    results, summary = scan([archive], **opts)
    assert summary.cache_hits == 2 and results[0].cached  # unpacked anew, still the same
    archive.write_bytes(gzip.compress(tar_bytes(package_members(samples)[:2])))
    assert scan([archive], **opts)[1].cache_hits == 0


def test_unwritable_cache_is_not_an_error(ownlib: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    results, summary = scan([ownlib], no_cache=False, cache_dir=str(blocked))
    assert summary.errors == 0 and results[0].doc is not None


# -- ranking -----------------------------------------------------------------------------------


def test_rank_reverse_dependencies(
    samples: Path, samples_scan: tuple[list[ScanResult], ScanSummary, Progress]
) -> None:
    results, _, _ = samples_scan
    ranking = rank(ranked(results), top=None)
    costs = [p.private_dirty for p in ranking.programs]
    assert costs == sorted(costs, reverse=True) and len(costs) == len(results)
    libs = {lib.path: lib for lib in ranking.libraries}
    own = libs[str(samples / "libown.so")]
    users = sorted(r.path for r in results if str(samples / "libown.so") in object_paths(r))
    assert own.programs == tuple(users) and len(users) >= 5
    assert own.soname == "libown.so"
    assert own.private_dirty == sum(
        o.private_dirty.expected
        for r in results
        if r.doc is not None
        for o in r.doc.objects[1:]
        if o.path == str(samples / "libown.so")
    )
    top = rank(ranked(results), top=3)
    assert len(top.programs) == 3 and top.libraries == ranking.libraries[:3]


def ranked(results: Sequence[ScanResult]) -> list[tuple[str, str, EstimateDoc]]:
    return [(r.path, r.loader_path, r.doc) for r in results if r.doc is not None]


def test_rank_sums_over_programs_and_skips_errors(
    make_estimate: Callable[..., EstimateDoc],
) -> None:
    x, y = ("/l/x", "x", "library", 5), ("/l/y", "y", "library", 1)
    a = make_estimate([("/bin/a", None, "executable", 0), x, y], {"stack": 24})
    b = make_estimate([("/bin/b", None, "executable", 0), x], {"stack": 45})
    results = [
        ScanResult(path="/bin/a", loader_path="/bin/a", doc_json=encode(a), error=None),
        ScanResult(path="/bin/b", loader_path="/bin/b", doc_json=encode(b), error=None),
        ScanResult(
            path="/bin/c", loader_path="/bin/c", doc_json=None, error="/bin/c: not an ELF file"
        ),
    ]
    ranking = rank(ranked(results), top=1)
    assert [p.path for p in ranking.programs] == ["/bin/b"]
    (lib,) = ranking.libraries
    assert (lib.path, lib.private_dirty, lib.programs) == ("/l/x", 10, ("/bin/a", "/bin/b"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", "scan", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_formats_and_exit_codes(samples: Path, tmp_path: Path) -> None:
    d = samples / "resolve"
    r = _cli("--no-cache", "--format", "jsonl", str(d))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[-1]["schema"] == "elfcost.scan/4"
    results = lines[:-1]
    assert results and all(x["schema"] == "elfcost.scan-result/2" for x in results)
    for x in results:
        jsonschema.validate(x["estimate"], load_schema("estimate-3"))
    assert lines[-1]["summary"]["executables"] == len(results)
    notelf = tmp_path / "notes.txt"
    notelf.write_text("hello\n")
    r = _cli("--no-cache", "--format", "json", str(notelf), str(samples / "trivial.pie"))
    assert r.returncode == 3 and "notes.txt: not an ELF file" in r.stderr
    doc = json.loads(r.stdout)
    assert doc["ranking"]["programs"][0]["path"].endswith("trivial.pie")
    out = tmp_path / "scan.html"
    assert _cli("--no-cache", "--format", "html", "-o", str(out), str(d)).returncode == 0
    assert "<!doctype html" in out.read_text()[:200].lower()
    assert _cli().returncode == 2  # nothing to scan


def test_a_relative_directory_is_shown_as_given(
    ownlib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files found under a relative directory are shown under it, as given; their loader paths
    (the loader's $ORIGIN, the cache keys) are absolute and normal whatever the spelling."""
    monkeypatch.chdir(ownlib.parent)
    for top in ("app", "app/", "./app/../app"):
        results, summary = scan([top])
        assert summary.executables == 1, top
        (r,) = (r for r in results if r.doc is not None)
        assert r.path == os.path.join(top, "ownlib"), top
        assert r.loader_path == str(ownlib / "ownlib"), top
        # $ORIGIN is the program's directory: its own library is found there
        assert str(ownlib / "libown.so") in object_paths(r), top
    results, _ = scan([ownlib])  # absolute: shown as walked
    assert [r.path for r in results if r.doc is not None] == [str(ownlib / "ownlib")]
