"""Hostile captures for `measure --capture` and `--smaps`: every file of a capture is opened
without blocking, must be a regular file, and is refused beyond the size its role can have.
Each case ends in one line naming the file and exit 3, never a hang, a traceback or an
unbounded read."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SMAPS = Path(__file__).resolve().parents[1] / "data" / "smaps" / "glibc-pie-idle.txt"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # The timeout is the test of "never blocks": a FIFO opened for reading would hang forever.
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=60
    )


def refused(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 3, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("elfcost: error: "), r.stderr
    assert "Traceback" not in r.stderr and all(w in r.stderr for w in words), r.stderr


def capture_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cap"
    (d / "pagemap").mkdir(parents=True)
    (d / "smaps").write_bytes(SMAPS.read_bytes())
    return d


def tar_of(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_a_capture_that_is_a_fifo_or_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "cap.tgz"
    os.mkfifo(fifo)
    refused(run("measure", "--capture", str(fifo)), str(fifo), "not a regular file")
    refused(run("measure", "--capture", "/dev/zero"), "/dev/zero", "not a regular file")
    refused(run("measure", "--smaps", "/dev/zero"), "/dev/zero", "not a regular file")


def test_a_capture_that_is_not_there_is_an_input_error(tmp_path: Path) -> None:
    """Exit 3 naming it, as every other input that is missing (not a usage error, 2)."""
    missing = str(tmp_path / "missing")
    for option in ("--smaps", "--capture"):
        refused(run("measure", option, missing), missing, "No such file or directory")


@pytest.mark.parametrize("role", ["smaps", "smaps_rollup", "auxv", "pid"])
def test_a_capture_file_that_is_a_fifo_or_a_device(tmp_path: Path, role: str) -> None:
    d = capture_dir(tmp_path)
    path = d / role
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    refused(run("measure", "--capture", str(d)), str(path), "not a regular file")
    path.unlink()
    path.symlink_to("/dev/zero")
    refused(run("measure", "--capture", str(d)), str(path), "not a regular file")


def test_a_fifo_in_pagemap_and_other_files_never_opened(tmp_path: Path) -> None:
    d = capture_dir(tmp_path)
    os.mkfifo(d / "notes")  # no capture file has this name: never opened
    r = run("measure", "--format", "json", "--capture", str(d))
    assert r.returncode == 0, r.stderr
    os.mkfifo(d / "pagemap" / "1000-2000")
    refused(run("measure", "--capture", str(d)), "1000-2000", "not a regular file")


def test_huge_sparse_files(tmp_path: Path) -> None:
    d = capture_dir(tmp_path)
    with open(d / "smaps", "r+b") as f:
        f.truncate(1 << 40)  # a terabyte of holes: refused by its size, never read
    refused(run("measure", "--capture", str(d)), str(d / "smaps"), "more than the")
    refused(run("measure", "--smaps", str(d / "smaps")), str(d / "smaps"), "more than the")
    sparse = tmp_path / "cap.tgz"
    with open(sparse, "wb") as f:
        f.truncate(1 << 40)
    refused(run("measure", "--capture", str(sparse)), str(sparse), "more than the")
    # a pagemap file larger than the entries its range can have
    d = capture_dir(tmp_path / "2")
    with open(d / "pagemap" / "1000-3000", "wb") as f:
        f.truncate(1 << 30)
    refused(run("measure", "--capture", str(d)), "1000-3000", "more than the 16 allowed")


def test_an_archive_member_larger_than_its_role_is_not_unpacked(tmp_path: Path) -> None:
    # 300 MiB of zeros: a few hundred KiB compressed, refused by the size in its header
    bomb = tmp_path / "bomb.tgz"
    with tarfile.open(bomb, "w:gz") as tf:
        info = tarfile.TarInfo("smaps")
        info.size = 300 << 20

        class Zeros(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray) -> int:  # type: ignore[override]
                b[:] = bytes(len(b))
                return len(b)

        tf.addfile(info, io.BufferedReader(Zeros()))
    assert bomb.stat().st_size < 2 << 20
    refused(run("measure", "--capture", str(bomb)), "bomb.tgz:smaps", "more than the")


def test_archive_members_that_are_not_files(tmp_path: Path) -> None:
    tgz = tmp_path / "cap.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("smaps")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(info)
    refused(run("measure", "--capture", str(tgz)), "cap.tgz:smaps", "not a regular file")
    tgz = tmp_path / "dev.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.addfile(tarfile.TarInfo("pid"))
        info = tarfile.TarInfo("smaps")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 5
        tf.addfile(info)
    refused(run("measure", "--capture", str(tgz)), "dev.tgz:smaps", "not a regular file")


@pytest.mark.parametrize(
    ("role", "junk", "words"),
    [
        ("smaps", b"\xff\xfe\x00junk\x80\n", ["smaps", "line 1"]),
        ("smaps", SMAPS.read_bytes()[:-1] + b"\n\xc3\x28 Rss: 4 kB\n", ["smaps", "not a field"]),
        ("smaps_rollup", b"Rss: \xff\xff kB\n\x80\x81\n", ["smaps_rollup", "not a field"]),
        ("auxv", (6).to_bytes(8, "little") + (12345).to_bytes(8, "little") + bytes(16), ["auxv"]),
    ],
    ids=["smaps", "smaps-tail", "rollup", "auxv-page-size"],
)
def test_non_utf8_junk(tmp_path: Path, role: str, junk: bytes, words: list[str]) -> None:
    d = capture_dir(tmp_path)
    (d / role).write_bytes(junk)
    r = run("measure", "--capture", str(d))
    refused(r, *words)
    assert str(d / role) in r.stderr
    tgz = tar_of(tmp_path / "cap.tgz", {"smaps": (d / "smaps").read_bytes(), role: junk})
    refused(run("measure", "--capture", str(tgz)), f"{tgz}:{role}")


def test_a_truncated_pagemap_or_archive(tmp_path: Path) -> None:
    """A live capture made by the documented script, then damaged."""
    from elfcost.runtime.measure import CAPTURE_SCRIPT

    p = subprocess.Popen(["/bin/sleep", "100"])
    try:
        d = tmp_path / "cap"
        page = os.sysconf("SC_PAGE_SIZE")
        subprocess.run(
            ["sh", "-c", f"P={p.pid} PAGE={page} D={d}\n{CAPTURE_SCRIPT}"],
            check=True,
            capture_output=True,
        )
    finally:
        p.kill()
        p.wait()
    assert run("measure", "--capture", str(d)).returncode == 0
    victim = max((d / "pagemap").iterdir(), key=lambda f: f.stat().st_size)
    size = victim.stat().st_size
    with open(victim, "r+b") as f:
        f.truncate(size - 12)  # mid-entry, as a copy cut short leaves it
    refused(run("measure", "--capture", str(d)), victim.name, f"not the {size:,}")
    tgz = Path(f"{d}.tgz")
    data = tgz.read_bytes()
    tgz.write_bytes(data[: len(data) // 2])
    refused(run("measure", "--capture", str(tgz)), str(tgz), "reading the capture")
    tgz.write_bytes(b"\x1f\x8b" + os.urandom(4096))
    refused(run("measure", "--capture", str(tgz)), str(tgz), "reading the capture")


def test_a_saved_smaps_file_on_its_own(tmp_path: Path) -> None:
    """Not named smaps: read alone, nothing beside it opened, errors naming that file."""
    saved = tmp_path / "saved.smaps"
    saved.write_bytes(SMAPS.read_bytes())
    os.mkfifo(tmp_path / "smaps_rollup")  # beside it, but not a capture's: never opened
    r = run("measure", "--format", "json", "--smaps", str(saved))
    assert r.returncode == 0, r.stderr
    saved.write_bytes(b"\xffjunk\n")
    refused(run("measure", "--smaps", str(saved)), f"{saved}: line 1")
