"""`elfcost scan --archive`: a directory of real Debian packages, or a repository of them,
scanned as one installed system (scan/repo.py), its Parquet tables, and `diff` of two."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from elfcost.documents import ScanDoc
from elfcost.report.html import scan_html
from elfcost.report.text import scan_text
from elfcost.scan import Scan, ScanOptions, ScanResult

pytestmark = pytest.mark.integration


def _copy(debs: dict[str, Path], dest: Path, *, leave_out: tuple[str, ...] = ()) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name, f in debs.items():
        if name not in leave_out:
            shutil.copyfile(f, dest / f.name)
    return dest


def _scan(*dirs: Path, jobs: int = 2) -> tuple[list[ScanResult], Scan]:
    sc = Scan([str(d) for d in dirs], ScanOptions(archive=True, jobs=jobs, no_cache=True))
    return list(sc.results()), sc


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=600
    )


def _objects(r: ScanResult) -> list[str]:
    assert r.doc is not None
    return [o.path for o in r.doc.objects]


def _deb(build: Path, name: str, files: dict[str, Path | str]) -> Path:
    """A real amd64 package made by dpkg-deb from `files` (loader path -> file or text)."""
    tree = build / "trees" / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        textwrap.dedent(f"""\
            Package: {name}
            Version: 1.0
            Architecture: amd64
            Maintainer: elfcost tests <tests@example.org>
            Description: a package of the archive tests
            """)
    )
    for path, content in files.items():
        dest = tree / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, dest)
        else:
            dest.write_text(content)
    out = build / f"{name}_1.0_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _demo(build: Path) -> tuple[Path, Path]:
    """libdemo.so.1 and a program that needs it, built with gcc."""
    (build / "src").mkdir(parents=True)
    (build / "src" / "lib.c").write_text(
        "int counter = 1;\nint *where = &counter;\nint demo_value(void) { return *where; }\n"
    )
    (build / "src" / "main.c").write_text(
        "int demo_value(void);\nint main(void) { return demo_value() != 1; }\n"
    )
    lib = build / "libdemo.so.1"
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libdemo.so.1",
            "-o",
            str(lib),
            str(build / "src" / "lib.c"),
        ],
        check=True,
    )
    prog = build / "demo-program"
    subprocess.run(["gcc", "-o", str(prog), str(build / "src" / "main.c"), str(lib)], check=True)
    return lib, prog


def test_libraries_come_from_the_other_packages(
    arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    archive = _copy(arm64_debs, tmp_path / "arm64")
    results, sc = _scan(archive)
    errors = [r.error for r in results if r.error]
    assert errors == []
    programs = {r.loader_path: r for r in results}
    # coreutils alone would miss libselinux, libacl, libattr, libpcre2 and libc: each comes
    # from its own package of the archive.
    ls = programs["/bin/ls"]
    assert ls.package == "coreutils" and ls.path == f"{archive}!/bin/ls"
    assert ls.doc is not None and ls.doc.machine == "aarch64"
    names = {p.rsplit("/", 1)[-1] for p in _objects(ls)}
    assert {"libselinux.so.1", "libc.so.6", "libpcre2-8.so.0", "ld-linux-aarch64.so.1"} <= names
    # A closed set: no program misses a library or its interpreter.
    missing = {p: r.doc.missing for p, r in programs.items() if r.doc and r.doc.missing}
    assert missing == {}
    assert {"/bin/bash", "/bin/dash", "/usr/bin/zstd", "/usr/bin/pzstd", "/bin/grep"} <= set(
        programs
    )
    assert programs["/bin/bash"].package == "bash" and programs["/bin/dash"].package == "dash"
    # The root's machine is the packages' architecture.
    (root,) = sc.summary.archive_roots
    assert (root.architecture, root.machine, root.kind) == ("arm64", "aarch64", "packages")
    assert {p.name for p in root.packages} == set(arm64_debs)
    assert sc.summary.executables == len(results)


def test_ldconfig_is_run_over_the_snippets(
    amd64_libc_debs: dict[str, Path], tmp_path: Path
) -> None:
    """A library in a directory only an ld.so.conf.d snippet names is found, through the cache
    ldconfig makes at installation: without the snippet, it is missing."""
    if shutil.which("gcc") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs gcc and dpkg-deb")
    build = tmp_path / "build"
    lib, prog = _demo(build)
    libpkg = _deb(build, "libdemo1", {"/opt/demo/lib/libdemo.so.1": lib})
    snippet = _deb(
        build, "libdemo1-conf", {"/etc/ld.so.conf.d/demo.conf": "# demo\n/opt/demo/lib\n"}
    )
    progpkg = _deb(build, "demo", {"/usr/bin/demo": prog})

    without = _copy(amd64_libc_debs, tmp_path / "without")
    for f in (libpkg, progpkg):
        shutil.copyfile(f, without / f.name)
    with_conf = _copy(amd64_libc_debs, tmp_path / "with")
    for f in (libpkg, progpkg, snippet):
        shutil.copyfile(f, with_conf / f.name)

    results, _ = _scan(without, with_conf, jobs=1)
    demo = {r.path: r for r in results if r.loader_path == "/usr/bin/demo"}
    lost, found = demo[f"{without}!/usr/bin/demo"], demo[f"{with_conf}!/usr/bin/demo"]
    assert lost.doc is not None and [m.needed for m in lost.doc.missing] == ["libdemo.so.1"]
    assert found.doc is not None and not found.doc.missing
    assert "/opt/demo/lib/libdemo.so.1" in _objects(found)
    assert found.package == "demo"


def test_a_truncated_package_is_reported_and_the_rest_completes(
    arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    archive = _copy(arm64_debs, tmp_path / "arm64")
    broken = archive / arm64_debs["coreutils"].name
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    results, sc = _scan(archive)
    errors = [r for r in results if r.error]
    assert len(errors) == 1 and errors[0].path == str(broken)
    assert str(broken) in (errors[0].error or "")
    programs = {r.loader_path: r for r in results if r.doc is not None}
    assert "/bin/ls" not in programs  # nothing of the broken package is installed
    assert {"/bin/bash", "/bin/dash", "/bin/grep"} <= set(programs)
    assert programs["/bin/bash"].doc is not None and not programs["/bin/bash"].doc.missing
    (root,) = sc.summary.archive_roots
    assert root.errors == 1 and "coreutils" not in {p.name for p in root.packages}
    r = _cli("scan", "--archive", "--no-cache", "--format", "json", str(archive))
    assert r.returncode == 3 and f"{broken}: " in r.stderr
    assert json.loads(r.stdout)["summary"]["executables"] == len(programs)


def test_a_debian_repository(arm64_debs: dict[str, Path], tmp_path: Path) -> None:
    """dists/*/main/binary-arm64/Packages.xz, as dpkg-scanpackages writes it, naming the
    files under pool/: the packages it lists are the root."""
    if shutil.which("dpkg-scanpackages") is None:
        pytest.skip("needs dpkg-scanpackages (dpkg-dev)")
    repo = tmp_path / "repo"
    pool = repo / "pool" / "main"
    listed = {n: f for n, f in arm64_debs.items() if n != "bash"}
    _copy(listed, pool)
    shutil.copyfile(arm64_debs["bash"], tmp_path / arm64_debs["bash"].name)  # not in pool/
    index = subprocess.run(
        ["dpkg-scanpackages", "--arch", "arm64", "pool"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout
    where = repo / "dists" / "bookworm" / "main" / "binary-arm64"
    where.mkdir(parents=True)
    import lzma

    (where / "Packages.xz").write_bytes(lzma.compress(index))
    results, sc = _scan(repo)
    assert [r.error for r in results if r.error] == []
    programs = {r.loader_path: r for r in results}
    assert "/bin/ls" in programs and "/bin/bash" not in programs
    (root,) = sc.summary.archive_roots
    assert (root.kind, root.machine) == ("repository", "aarch64")
    assert len(root.packages) == len(listed)


def test_parquet_tables(arm64_debs: dict[str, Path], tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    archive = _copy(arm64_debs, tmp_path / "arm64")
    out = tmp_path / "tables"
    r = _cli(
        "scan",
        "--archive",
        "--no-cache",
        "--remedies",
        "--format",
        "parquet",
        "-o",
        str(out),
        str(archive),
    )
    assert r.returncode == 0, r.stderr
    jl = _cli("scan", "--archive", "--no-cache", "--format", "jsonl", str(archive))
    lines = [json.loads(x) for x in jl.stdout.splitlines()[:-1]]
    programs = pq.read_table(out / "programs.parquet").to_pylist()
    objects = pq.read_table(out / "objects.parquet").to_pylist()
    assert len(programs) == len(lines)
    assert len(objects) == sum(len(x["estimate"]["objects"]) for x in lines)
    by_path = {p["path"]: p for p in programs}
    for x in lines:
        p = by_path[x["path"]]
        assert p["package"] == x["package"] and p["archive"] == f"{archive}!"
        assert p["expected"] == x["estimate"]["total"]["private_dirty"]["expected"]
        assert p["machine"] == "aarch64"
        # Every dynamic program has a static what-if; a static one (ldconfig) has none.
        static = x["estimate"]["loader"]["family"] == "none"
        assert (p["saved_static"] is None) == static
    # One query: which programs load libselinux, and what it costs them in all.
    users = [o for o in objects if o["soname"] == "libselinux.so.1"]
    assert {o["package"] for o in users} >= {"coreutils", "sed", "tar"}
    firsts = [o for o in objects if o["position"] == 0]
    assert len(firsts) == len(programs)
    r = _cli("scan", "--archive", "--format", "parquet", str(archive))
    assert r.returncode == 2 and "-o DIR" in r.stderr


def test_weights_and_savings(arm64_debs: dict[str, Path], tmp_path: Path) -> None:
    archive = _copy(arm64_debs, tmp_path / "arm64")
    weights = tmp_path / "weights"
    weights.write_text("# instances program\n100 /bin/dash\n")
    common = ("scan", "--archive", "--no-cache", "--remedies", "--top", "1000")
    lines = [
        json.loads(x) for x in _cli(*common, "--format", "jsonl", str(archive)).stdout.splitlines()
    ]
    plain = lines[-1]
    (dash_doc,) = (x["estimate"] for x in lines[:-1] if x["loader_path"] == "/bin/dash")
    r = _cli(*common, "--format", "json", "--weights", str(weights), str(archive))
    assert r.returncode == 0, r.stderr
    heavy = json.loads(r.stdout)
    dash = next(p for p in heavy["ranking"]["programs"] if p["path"].endswith("!/bin/dash"))
    assert dash["instances"] == 100 and heavy["ranking"]["programs"][0] == dash
    libs = {x["path"]: x for x in plain["ranking"]["libraries"]}
    libs_w = {x["path"]: x for x in heavy["ranking"]["libraries"]}
    key = next(k for k in libs if k.endswith("/libc.so.6"))
    (dash_libc,) = (o for o in dash_doc["objects"] if o["path"].endswith("/libc.so.6"))
    extra = 99 * dash_libc["private_dirty"]["expected"]
    assert extra > 0 and libs_w[key]["private_dirty"] == libs[key]["private_dirty"] + extra
    static = {w["assume"]: w for w in plain["ranking"]["savings"]}["static"]
    static_w = {w["assume"]: w for w in heavy["ranking"]["savings"]}["static"]
    (dash_static,) = (s for s in dash_doc["savings"] if s["assume"] == "static")
    assert static_w["instances"] == static["instances"] + 99
    assert static_w["saved"] == static["saved"] + 99 * dash_static["per_instance"]
    assert static["programs"] == static_w["programs"] > 100
    doc = msgspec.json.decode(r.stdout, type=ScanDoc)
    text = scan_text(doc.summary, doc.ranking)
    assert "--assume static" in text and "machine aarch64 (arm64)" in text
    assert "times their instances" in text
    page = scan_html(doc)
    assert "What-ifs over the scan" in page and "--assume static" in page
    assert "machine aarch64 (arm64)" in page and "x instances" in page


def test_diff_two_archives(
    arm64_debs: dict[str, Path], arm64_older_zstd: dict[str, Path], tmp_path: Path
) -> None:
    """Two releases: the old one has an older zstd and hostname, the new one the current zstd
    and libcap2-bin instead of hostname."""
    old = _copy({**arm64_debs, **arm64_older_zstd}, tmp_path / "old", leave_out=("libcap2-bin",))
    new = _copy(arm64_debs, tmp_path / "new", leave_out=("hostname",))
    r = _cli("diff", "--archive", "--format", "json", str(old), str(new))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "elfcost.diff-archives/1"
    rows = {p["name"]: p for p in doc["packages"]}
    assert rows["hostname"]["status"] == "removed" and rows["hostname"]["new_version"] is None
    (gone,) = rows["hostname"]["programs"]
    assert gone["path"] == "/bin/hostname" and gone["new_expected"] == 0 < gone["old_expected"]
    assert rows["libcap2-bin"]["status"] == "added"
    assert {p["path"] for p in rows["libcap2-bin"]["programs"]} >= {"/sbin/getcap", "/sbin/setcap"}
    for name in ("zstd", "libzstd1"):
        assert rows[name]["status"] == "changed"
        assert rows[name]["old_version"] != rows[name]["new_version"]
    for p in doc["packages"]:
        assert p["delta"] == p["new_expected"] - p["old_expected"]
        for prog in p["programs"]:
            assert prog["delta"] == prog["new_expected"] - prog["old_expected"] != 0 or (
                p["status"] in ("added", "removed")
            )
    # Every other package is the same file in both: counted, not listed.
    assert doc["unchanged"] == len(arm64_debs) - 4 - sum(
        1 for p in doc["packages"] if p["status"] == "same"
    )
    assert doc["total_delta"] == sum(p["delta"] for p in doc["packages"])
    text = _cli("diff", "--archive", str(old), str(new))
    assert text.returncode == 0 and "hostname" in text.stdout and "(absent)" in text.stdout


def test_two_versions_of_a_package_install_the_later(
    arm64_debs: dict[str, Path], arm64_older_zstd: dict[str, Path], tmp_path: Path
) -> None:
    archive = _copy(arm64_debs, tmp_path / "both")
    older = arm64_older_zstd["zstd"]
    shutil.copyfile(older, archive / older.name)
    results, sc = _scan(archive)
    errors = [r for r in results if r.error]
    assert [e.path for e in errors] == [str(archive / older.name)]
    assert "is installed instead" in (errors[0].error or "")
    (root,) = sc.summary.archive_roots
    (zstd,) = (p for p in root.packages if p.name == "zstd")
    assert zstd.file == str(archive / arm64_debs["zstd"].name)


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_store_is_bounded(arm64_debs: dict[str, Path], tmp_path: Path, jobs: int) -> None:
    """Only ELF members and the loader's configuration are kept, within the bound, in package
    order; a package that does not fit is refused and leaves nothing behind."""
    from elfcost.scan import repo

    archive = _copy(arm64_debs, tmp_path / "arm64")
    whole = tmp_path / "whole"
    whole.mkdir()
    full = repo.build(str(archive), str(whole), jobs=jobs)
    kept = {m.blob: m.size for m in full.members.values() if m.kind == "file"}
    assert sum(kept.values()) == sum(f.stat().st_size for f in (whole / "blobs").iterdir())
    for blob in kept:
        head = (whole / blob).read_bytes()[:4]
        assert head == b"\x7fELF" or any(
            p.startswith("/etc/ld.so.conf") for p, m in full.members.items() if m.blob == blob
        )
    limit = sum(kept.values()) // 2
    small = tmp_path / "small"
    small.mkdir()
    index = repo.build(str(archive), str(small), max_bytes=limit, jobs=jobs)
    assert index.errors and all("exceed" in e.message for e in index.errors)
    assert len(index.packages) + len(index.errors) == len(arm64_debs)
    on_disk = {f"blobs/{f.name}": f.stat().st_size for f in (small / "blobs").iterdir()}
    assert on_disk == {m.blob: m.size for m in index.members.values() if m.kind == "file"}
    assert sum(on_disk.values()) <= limit


def test_an_alpine_archive(tmp_path: Path) -> None:
    """.apk packages (gzip'd tar segments: signature, .PKGINFO, data) built around this
    machine's musl: the program's library and musl's loader come from the other packages, the
    names and the architecture from .PKGINFO."""
    import gzip
    import io
    import tarfile

    musl = Path("/usr/lib/x86_64-linux-musl/libc.so")
    if shutil.which("musl-gcc") is None or not musl.exists():
        pytest.skip("needs musl-gcc and musl")
    src = tmp_path / "src"
    src.mkdir()
    (src / "lib.c").write_text("int demo_value(void) { return 42; }\n")
    (src / "main.c").write_text("int demo_value(void);\nint main(void) { return !demo_value(); }\n")
    lib, prog = tmp_path / "libdemo.so.1", tmp_path / "demo"
    subprocess.run(
        [
            "musl-gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libdemo.so.1",
            "-o",
            str(lib),
            str(src / "lib.c"),
        ],
        check=True,
    )
    subprocess.run(["musl-gcc", "-o", str(prog), str(src / "main.c"), str(lib)], check=True)

    def apk(name: str, files: dict[str, Path]) -> bytes:
        def segment(members: dict[str, bytes]) -> bytes:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                for path, data in members.items():
                    info = tarfile.TarInfo(path)
                    info.size, info.mode = len(data), 0o755
                    tf.addfile(info, io.BytesIO(data))
            return gzip.compress(buf.getvalue())

        info = f"pkgname = {name}\npkgver = 1.0-r0\narch = x86_64\n".encode()
        return (
            segment({".SIGN.RSA.key.rsa.pub": b"signature"})
            + segment({".PKGINFO": info})
            + segment({p.lstrip("/"): f.read_bytes() for p, f in files.items()})
        )

    archive = tmp_path / "alpine"
    archive.mkdir()
    (archive / "musl-1.0-r0.apk").write_bytes(apk("musl", {"/lib/ld-musl-x86_64.so.1": musl}))
    (archive / "libdemo-1.0-r0.apk").write_bytes(apk("libdemo", {"/usr/lib/libdemo.so.1": lib}))
    (archive / "demo-1.0-r0.apk").write_bytes(apk("demo", {"/usr/bin/demo": prog}))
    results, sc = _scan(archive, jobs=1)
    assert [r.error for r in results if r.error] == []
    (demo,) = (r for r in results if r.loader_path == "/usr/bin/demo")
    assert demo.package == "demo" and demo.doc is not None and not demo.doc.missing
    assert {"/usr/lib/libdemo.so.1", "/lib/ld-musl-x86_64.so.1"} <= set(_objects(demo))
    (root,) = sc.summary.archive_roots
    assert (root.architecture, root.machine) == ("x86_64", "x86_64")
    assert {(p.name, p.version) for p in root.packages} == {
        ("musl", "1.0-r0"),
        ("libdemo", "1.0-r0"),
        ("demo", "1.0-r0"),
    }


def test_a_malformed_member_is_named_as_the_archive_holds_it(
    amd64_libc_debs: dict[str, Path], tmp_path: Path
) -> None:
    """A library whose DT_RELASZ runs past the end of the file: the program that loads it is
    an error naming the library by its path in the archive, not by the store's file."""
    import struct

    if shutil.which("gcc") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs gcc and dpkg-deb")
    build = tmp_path / "build"
    lib, prog = _demo(build)
    data = bytearray(lib.read_bytes())
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 0x20)[0],
        *struct.unpack_from("<HH", data, 0x36),
    )
    (dyn,) = (
        struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)[2]
        for i in range(phnum)
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 2  # PT_DYNAMIC
    )
    patched = 0
    for off in range(dyn, len(data) - 16, 16):
        tag = struct.unpack_from("<q", data, off)[0]
        if tag == 0:
            break
        if tag == 8:  # DT_RELASZ
            struct.pack_into("<Q", data, off + 8, 1 << 40)
            patched += 1
    assert patched == 1
    lib.write_bytes(bytes(data))
    archive = _copy(amd64_libc_debs, tmp_path / "archive")
    for f in (
        _deb(build, "libdemo1", {"/usr/lib/x86_64-linux-gnu/libdemo.so.1": lib}),
        _deb(build, "demo", {"/usr/bin/demo": prog}),
    ):
        shutil.copyfile(f, archive / f.name)
    results, _ = _scan(archive, jobs=1)
    (demo,) = (r for r in results if r.loader_path == "/usr/bin/demo")
    assert demo.error is not None and "blobs" not in demo.error
    assert demo.error.startswith(f"{archive}!/usr/lib/x86_64-linux-gnu/libdemo.so.1: ")


def test_an_index_built_elsewhere_and_a_workers_store(
    arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    """`scan --archive --scheduler`'s parts without a cluster: the packages indexed as a
    cluster's worker indexes them (index_on_worker: entries, configuration and what ldconfig
    reads come back, no ELF file), and a worker's StoreHost reading the members it needs from
    the package files, within its bound."""
    from elfcost.errors import InputError
    from elfcost.scan import repo

    archive = _copy(arm64_debs, tmp_path / "arm64")
    local_store, caller = tmp_path / "local", tmp_path / "caller"
    local_store.mkdir()
    caller.mkdir()
    local = repo.build(str(archive), str(local_store), jobs=1)
    index = repo.build(
        str(archive), str(caller), remote=lambda jobs: (repo.index_on_worker(*j) for j in jobs)
    )
    assert index.members == local.members and index.packages == local.packages
    # ldconfig's cache, made in the caller from what the workers read, is the one ldconfig
    # makes reading the files.
    assert index.ld_so_cache is not None
    assert index.ld_so_cache == repo.ArchiveHost(root=str(local_store)).ld_so_cache()
    assert "libc.so.6" in index.ld_so_cache.raw
    # The caller keeps the loader's configuration only.
    kept = [f.read_bytes()[:4] for f in (caller / "blobs").iterdir()]
    assert kept and b"\x7fELF" not in kept

    worker = tmp_path / "worker"
    worker.mkdir()
    host = repo.StoreHost(root=str(worker), shared=index, max_bytes=1)
    ls = host.read("/bin/ls")
    assert ls.is_program and ls.file.startswith(str(worker))
    libc = host.read("/lib/aarch64-linux-gnu/libc.so.6")
    assert libc.soname == "libc.so.6"
    # Both packages were read, each member the index has of them written: nothing else.
    written = {f.name for f in (worker / "blobs").iterdir()}
    wanted = {
        m.blob.rsplit("/", 1)[1]
        for m in index.members.values()
        if m.blob and index.packages[m.package].name in ("coreutils", "libc6")
    }
    assert written == wanted and host.held_bytes() > 1
    host.begin()  # over its bound of 1 byte: everything is dropped before the next task
    assert host.held_bytes() == 0 and not any((worker / "blobs").iterdir())
    libc_again = host.read("/lib/aarch64-linux-gnu/libc.so.6")
    again = host.read("/bin/ls")  # read again from the package, not from a stale object
    assert again is not ls and again.file == ls.file and Path(again.file).is_file()
    assert again.dynamic == ls.dynamic
    # A member's identity, which the loader compares to load a file once, is its own in the
    # root, not its store file's inode: the same after the store dropped and wrote it again
    # (when a freed inode came back on another member, libc passed for a library already
    # loaded and was left out of a program's objects), and another member's is another.
    assert again.file_id == ls.file_id and libc_again.file_id == libc.file_id
    assert ls.file_id != libc.file_id
    ls_blob = index.members[host.realpath("/bin/ls")].blob
    assert ls.file_id == repo.member_file_id(ls_blob)
    # What the host keeps of its searches goes with the files: a program resolved after a
    # drop has objects whose files are there to be read.
    from elfcost.resolve.search import resolve

    assert resolve("/bin/ls", host).root.dso.needed
    host.begin()
    graph = resolve("/bin/ls", host)
    assert len(graph.objects) > 2 and all(Path(o.dso.file).is_file() for o in graph.objects)

    # A package file that is not the one indexed (another file at its path on a worker).
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(arm64_debs["dash"], archive / arm64_debs["coreutils"].name)
    stale = repo.StoreHost(root=str(other), shared=index, max_bytes=1 << 30)
    with pytest.raises(InputError, match="not as when the archive was indexed"):
        stale.read("/bin/ls")
