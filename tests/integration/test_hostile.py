"""Hostile input through every channel: the output, signals, option values, names, programs
that detach. Each ends in one line and a documented exit code, with nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def run(*args: str, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args],
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


def processes_with(marker: str) -> list[int]:
    """Pids of the `sleep MARKER` processes (read from /proc, not from ps)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"sleep" and argv[1:2] == [marker.encode()]:
            found.append(int(pid))
    return found


def gone(marker: str, deadline_s: float = 10.0) -> bool:
    """Whether no process with `marker` is left, polled until the deadline."""
    deadline = time.monotonic() + deadline_s
    while processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- 1. output errors ------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_disk_is_one_line_and_exit_4() -> None:
    with open("/dev/full", "w") as full:
        r = run("/bin/sleep", stdout=full)
    assert r.returncode == 4, r.stderr
    assert r.stderr == "elfcost: error: stdout: writing the report: No space left on device\n"
    r = run("/bin/sleep", "-o", "/dev/full")
    assert r.returncode == 4 and r.stderr.count("\n") == 1 and "/dev/full" in r.stderr
    # an input error before it does not hide it: 4 wins over 3
    with open("/dev/full", "w") as full:
        r = run("deps", "/bin/sleep", "/nonexistent", stdout=full)
    assert r.returncode == 4 and "Traceback" not in r.stderr


def test_an_output_fifo_without_a_reader_is_refused_not_waited_on(tmp_path: Path) -> None:
    """-o FIFO that no process reads: one line, exit 4, at once (run()'s timeout would end a
    wait); with a reader, the report goes through it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args in (["/bin/true"], ["scan", "--no-cache", "/bin/true"]):
        r = run(*args, "-o", str(fifo))
        assert r.returncode == 4, (args, r.stderr)
        assert (
            r.stderr
            == f"elfcost: error: {fifo}: writing the report: a FIFO that no process reads\n"
        )
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    try:
        # The reader's open of the FIFO may come after elfcost's: until it has, try again.
        deadline = time.monotonic() + 60
        while (r := run("/bin/true", "-o", str(fifo))).returncode == 4:
            assert time.monotonic() < deadline, r.stderr
        assert r.returncode == 0, r.stderr
        out, _ = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert out.startswith("/bin/true: glibc")


def test_parquet_into_a_file_or_a_device_is_not_a_directory(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    existing = tmp_path / "keep.txt"
    existing.write_text("kept\n")
    for target in (str(existing), "/dev/full"):
        r = run("scan", "--no-cache", "--format", "parquet", "-o", target, "/bin/true")
        assert r.returncode == 4, r.stderr
        assert r.stderr == f"elfcost: error: {target}: writing Parquet: not a directory\n"
    assert existing.read_text() == "kept\n"


def test_a_closed_pipe_is_still_quiet() -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "elfcost", "deps", "/nonexistent", "/bin/sleep", "/bin/true"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 3 and "Traceback" not in err and "stdout" not in err


# -- 2. signals ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_what_elfcost_started(sig: signal.Signals, code: int) -> None:
    marker = f"{os.getpid()}{code}.5"  # sleep's argument: unique to this test
    p = subprocess.Popen(
        [sys.executable, "-m", "elfcost", "measure", "--timeout", "100", "--delay", "90",
         "--", "/bin/sleep", marker],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not processes_with(marker):
            assert time.monotonic() < deadline and p.poll() is None, "sleep never started"
            time.sleep(0.02)
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == code, err
    assert "Traceback" not in err and "Aborted" not in err
    assert gone(marker)


def children(pid: int) -> set[int]:
    found = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(p))
    return found


@pytest.mark.skipif(not os.path.isdir("/usr/lib"), reason="no /usr/lib to scan")
def test_a_signal_ends_scans_workers(tmp_path: Path) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "elfcost", "scan", "-j", "2", "--cache-dir", str(tmp_path),
         "--format", "jsonl", "/usr/lib", "/usr/bin"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(workers := children(p.pid)) < 2:
            assert time.monotonic() < deadline and p.poll() is None, "no workers started"
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{w}") for w in workers):
        assert time.monotonic() < deadline, "a worker outlived the scan"
        time.sleep(0.05)


# -- 3, 4. option values ---------------------------------------------------------------------


def test_jobs_are_at_most_four_per_core() -> None:
    from elfcost.scan import Scan, ScanOptions

    cpus = os.cpu_count() or 1
    assert Scan(["/"], ScanOptions(jobs=100_000))._jobs() == 4 * cpus
    assert Scan(["/"], ScanOptions(jobs=1))._jobs() == 1
    assert Scan(["/"], ScanOptions())._jobs() == cpus
    assert "4 per core" in run("scan", "--help").stdout


JUNK = [
    ("measure", "--timeout", "nan", "--", "/bin/true"),
    ("measure", "--timeout", "0", "--", "/bin/true"),
    ("measure", "--delay", "-5", "--", "/bin/true"),
    ("measure", "--settle", "inf", "--", "/bin/true"),
    ("measure", "--delay", "1e300", "--", "/bin/true"),
    ("measure", "--pid", "9" * 32),
    ("estimate", "--instances", "9" * 32, "/bin/true"),
    ("check", "--instances", "9" * 32, "--max-fleet", "1M", "/bin/true"),
    ("check", "--max-private-dirty", "99999999999999999999999K", "/bin/true"),
    ("check", "--max-fleet", "9" * 400, "/bin/true"),
    ("scan", "--top", "9" * 32, "/bin"),
]


@pytest.mark.parametrize("args", JUNK, ids=" ".join)
def test_junk_option_values_are_usage_errors(args: tuple[str, ...]) -> None:
    r = run(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_sizes_are_bounded() -> None:
    from elfcost.report.units import MAX_SIZE, parse_size

    assert parse_size("1.5MiB") == 1536 * 1024 and parse_size(str(MAX_SIZE)) == MAX_SIZE
    for bad in ("99999999999999999999999K", "9" * 400, -1, MAX_SIZE + 1):
        with pytest.raises(ValueError):
            parse_size(bad)


# -- 5. JSON outputs with bad inputs ---------------------------------------------------------


def json_lines(text: str) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    "args",
    [
        ("estimate", "--format", "json"),
        ("deps", "--format", "json"),
        ("check", "--format", "json"),
        ("scan", "--no-cache", "--format", "jsonl"),
    ],
    ids=lambda a: a[0],
)
def test_a_bad_input_is_an_error_document(tmp_path: Path, args: tuple[str, ...]) -> None:
    import jsonschema

    from elfcost.report.jsonout import load_schema

    bad = tmp_path / "trunc"
    bad.write_bytes(Path("/bin/true").read_bytes()[:100])
    bad.chmod(0o755)
    r = run(*args, "/bin/true", str(bad))
    assert r.returncode == 3, r.stderr
    docs = json_lines(r.stdout)
    errors = [d for d in docs if d["schema"] == "elfcost.error/1"]
    assert len(errors) == 1 and len(docs) >= 2
    assert errors[0]["path"] == str(bad) and errors[0]["exit_code"] == 3
    assert f"elfcost: error: {errors[0]['message']}\n" in r.stderr
    jsonschema.validate(errors[0], load_schema("error-1"))


def test_an_empty_name_is_no_file() -> None:
    """As the kernel's open(""): no such file, not the current directory."""
    for cmd in ("estimate", "deps", "explain"):
        r = run(cmd, "")
        assert r.returncode == 3 and r.stderr == "elfcost: error: : no such file\n", r.stderr


def test_a_single_bad_input_is_the_one_document() -> None:
    import json

    for cmd in ("estimate", "deps"):
        r = run(cmd, "--format", "json", "/nonexistent")
        assert r.returncode == 3
        assert json.loads(r.stdout) == {
            "schema": "elfcost.error/1",
            "path": "/nonexistent",
            "message": "/nonexistent: no such file",
            "exit_code": 3,
        }


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="no /proc/self/mem")
def test_a_file_that_cannot_be_read_is_one_line_naming_it() -> None:
    """/proc/self/mem is a regular file whose first read fails (EIO): one line naming the
    file and the error, exit 3, the other inputs analysed; as a preloaded library, a
    warning and the program is estimated without it."""
    for cmd in ("estimate", "deps", "check"):  # each takes several inputs
        r = run(cmd, "/proc/self/mem", "/bin/true")
        assert r.returncode == 3, (cmd, r.stderr)
        assert "elfcost: error: /proc/self/mem: reading: Input/output error\n" in r.stderr, cmd
        assert "internal error" not in r.stderr and "true" in r.stdout, cmd
    r = run("explain", "/proc/self/mem")
    assert r.returncode == 3 and r.stderr == "elfcost: error: /proc/self/mem: reading: " + (
        "Input/output error\n"
    )
    r = run("estimate", "--preload", "/proc/self/mem", "/bin/true")
    assert r.returncode == 0 and "'/proc/self/mem' from LD_PRELOAD" in r.stdout, r.stderr


# -- 6. names that would break the one-line rule ----------------------------------------------


def test_names_are_escaped_in_error_lines(tmp_path: Path) -> None:
    newline = tmp_path / "two\nlines"
    newline.write_text("not ELF\n")
    raw = os.path.join(os.fsencode(tmp_path), b"bad\xff\x1b[31mname")
    with open(raw, "wb") as fh:
        fh.write(b"not ELF either\n")
    p = subprocess.run(
        [sys.executable, "-m", "elfcost", "estimate", str(newline), raw, b"/nonexistent\n"],
        capture_output=True,
        timeout=120,
    )
    assert p.returncode == 3
    lines = p.stderr.decode("ascii").splitlines()  # the bytes that are not UTF-8 are escaped
    assert lines == [
        f"elfcost: error: {tmp_path}/two\\nlines: not an ELF file",
        f"elfcost: error: {tmp_path}/bad\\xff\\x1b[31mname: not an ELF file",
        "elfcost: error: /nonexistent\\n: no such file",
    ]
    # The JSON error document keeps the name itself (its bytes as \\udcXX, as json does).
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "deps", "--format", "json", raw],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 3 and b"\\udcff" in r.stdout


def test_a_program_whose_name_is_not_utf8_is_scanned_checked_and_diffed(
    tmp_path: Path,
) -> None:
    """A program named with a byte that is not UTF-8: its estimate's JSON holds the name as
    \\udcff (as json writes it), which elfcost reads back wherever it reads its own
    documents: a scan's results (every other program still there), with the cache (the entry
    is not cached: a miss, not an error) and with 2 workers, a baseline `check` wrote, a saved
    report given to `diff`."""
    d = tmp_path / "tree"
    d.mkdir()
    for name in ("true", "ls"):
        (d / name).write_bytes(Path(f"/bin/{name}").read_bytes())
        (d / name).chmod(0o755)
    bad = os.path.join(os.fsencode(d), b"bad\xff")
    with open(bad, "wb") as fh:
        fh.write(Path("/bin/true").read_bytes())
    os.chmod(bad, 0o755)

    def elfcost(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "elfcost", *args]
        return subprocess.run(cmd, capture_output=True, timeout=120)

    cache = str(tmp_path / "cache")
    for args in (["--no-cache"], ["--cache-dir", cache], ["--cache-dir", cache, "-j", "2"]):
        r = elfcost("scan", "--format", "json", *args, str(d))
        assert r.returncode == 0 and r.stderr == b"", (args, r.stderr)
        doc = json.loads(r.stdout)
        assert doc["summary"]["executables"] == 3 and doc["summary"]["errors"] == 0, args
        assert len(doc["ranking"]["programs"]) == 3, args
    baseline = str(tmp_path / "baseline.json")
    assert elfcost("check", "--baseline", baseline, "--update-baseline", bad).returncode == 0
    r = elfcost("check", "--baseline", baseline, bad)
    assert r.returncode == 0, r.stderr
    saved = tmp_path / "saved.json"
    saved.write_bytes(elfcost("--format", "json", bad).stdout)
    assert b"\\udcff" in saved.read_bytes()
    r = elfcost("diff", str(saved), "/bin/true")
    assert r.returncode == 0, r.stderr


# -- 7. programs that detach -----------------------------------------------------------------

DAEMON_C = r"""
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (fork() == 0) {              /* the classic double fork: setsid, fork, parent exits */
        setsid();
        if (fork() == 0) {
            char *args[] = {"sleep", argv[1], NULL};
            execv("/bin/sleep", args);
        }
        _exit(0);
    }
    pause();                        /* idle: measured, then killed */
    return 0;
}
"""


def measure_leaves_nothing(command: list[str], markers: list[str]) -> None:
    try:
        r = run("measure", "--format", "json", "--", *command)
        assert r.returncode == 0, r.stderr
        for m in markers:
            assert gone(m), f"sleep {m} outlived the measurement"
    finally:
        for m in markers:
            for pid in processes_with(m):
                os.kill(pid, signal.SIGKILL)


def test_measure_ends_daemons_started_by_a_shell() -> None:
    a, b = f"{os.getpid()}1.25", f"{os.getpid()}2.25"
    script = f'setsid sleep {a} & (setsid sh -c "sleep {b} &" &); sleep 60'
    measure_leaves_nothing(["/bin/sh", "-c", script], [a, b])


def test_measure_ends_a_double_forked_daemon(tmp_path: Path) -> None:
    import shutil

    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    exe = tmp_path / "daemon"
    subprocess.run(["gcc", "-x", "c", "-", "-o", str(exe)], input=DAEMON_C, text=True, check=True)
    marker = f"{os.getpid()}3.25"
    measure_leaves_nothing([str(exe), marker], [marker])


# -- 8. header fields that contradict each other ---------------------------------------------


def test_a_flipped_ei_class_is_refused(tmp_path: Path) -> None:
    from elfcost.elf.reader import read_dso
    from elfcost.errors import MalformedElfError

    data = bytearray(Path("/bin/true").read_bytes())
    if data[4] != 2 or data[18] != 62:
        pytest.skip("/bin/true is not x86_64")
    flipped = tmp_path / "flipped"
    flipped.write_bytes(bytes(data[:4]) + b"\x01" + bytes(data[5:]))  # EI_CLASS = ELFCLASS32
    with pytest.raises(MalformedElfError, match="e_phentsize 0, expected 32"):
        read_dso(str(flipped))
    i386_64 = tmp_path / "i386_64"
    i386_64.write_bytes(bytes(data[:18]) + b"\x03" + bytes(data[19:]))  # e_machine = EM_386
    with pytest.raises(MalformedElfError, match="ELFCLASS64 with i386: no such ABI"):
        read_dso(str(i386_64))
    r = run(str(flipped))
    assert r.returncode == 3 and r.stdout == "" and r.stderr.count("\n") == 1


@pytest.mark.skipif(not os.path.exists("/libx32/libc.so.6"), reason="no x32 libc")
def test_x32_is_still_read() -> None:
    from elfcost.elf.reader import read_dso

    dso = read_dso("/libx32/libc.so.6")  # ELFCLASS32 with EM_X86_64: an ABI, not a contradiction
    assert dso.elf_class == 32 and dso.e_machine == 62


# -- 9. tables that stand for far more than their size ----------------------------------------


def _relr_bomb(path: Path, words: int) -> bool:
    """/bin/true with a DT_RELR table of `words` words: one address, then bitmaps with every
    bit set, each standing for 63 records. Its PT_NOTE header becomes the PT_LOAD holding the
    table, and DT_RELR, DT_RELRSZ and DT_RELRENT take three of the spare DT_NULL entries at
    the end of its dynamic section. False when /bin/true has no room for that."""
    import struct

    data = bytearray(Path("/bin/true").read_bytes())
    if data[4] != 2 or data[5] != 1:
        return False  # not 64-bit little-endian
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 32)[0],
        *struct.unpack_from("<HH", data, 54),
    )
    note = dynamic = None
    for i in range(phnum):
        at = phoff + i * phentsize
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, at)
        if p_type == 4 and note is None:
            note = at
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if note is None or dynamic is None:
        return False
    tags = [struct.unpack_from("<q", data, dynamic[0] + 16 * k)[0] for k in range(dynamic[1] // 16)]
    if 0 not in tags or len(tags) - tags.index(0) < 4:
        return False
    vaddr, offset = 0x4000_0000, -(-len(data) // 4096) * 4096
    table = struct.pack("<Q", vaddr) + b"\xff" * 8 * (words - 1)
    struct.pack_into(
        "<IIQQQQQQ", data, note, 1, 4, offset, vaddr, vaddr, len(table), 64 * len(table), 4096
    )
    struct.pack_into(
        "<qQqQqQ", data, dynamic[0] + 16 * tags.index(0), 36, vaddr, 35, len(table), 37, 8
    )
    data += bytes(offset - len(data)) + table
    path.write_bytes(bytes(data))
    return True


@pytest.mark.parametrize(
    "command",
    [("--format", "json"), ("explain",), ("scan", "--no-cache", "--format", "jsonl")],
)
def test_a_packed_relocation_table_costs_its_size_not_its_records(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # 2.4 MB of DT_RELR words stand for 18.9 million records: expanded one by one, they took
    # 1.4 GB (and an 8 MB table, a MemoryError). Counted by page from the words, the estimate
    # is made in a small part of that.
    bomb = tmp_path / "relr"
    if not _relr_bomb(bomb, 300_000):
        pytest.skip("/bin/true has no PT_NOTE or no spare dynamic entries")
    out = tmp_path / "out"
    # Its peak memory (ru_maxrss, KiB) as a small parent sees it: a child of this process
    # would start from this process's own peak (Linux keeps the peak of the memory a process
    # had before exec).
    parent = (
        "import resource, subprocess, sys\n"
        "with open(sys.argv[1], 'wb') as out:\n"
        "    code = subprocess.run(sys.argv[2:], stdout=out).returncode\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    args = [sys.executable, "-m", "elfcost", *command, str(bomb)]
    r = subprocess.run(
        [sys.executable, "-c", parent, str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, peak = (int(v) for v in r.stdout.split())
    assert code == 0, r.stderr
    assert peak < 400 << 10, peak
    text = out.read_text()
    if command[0] == "--format":
        at_entry = json.loads(text)["objects"][0]["private_dirty"]["at_entry"]
        assert at_entry >= 18_899_938 * 8 // 4096 * 4096  # the records' pages, all written
    elif command[0] == "scan":
        assert json.loads(text.splitlines()[0])["error"] is None  # then the summary line
    else:
        assert "relr" in text
