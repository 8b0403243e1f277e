"""The small pure parsers: the auxiliary vector and /proc/PID/stat."""

from __future__ import annotations

import os
import struct
import subprocess
import time
from pathlib import Path

import pytest

from elfcost.errors import MeasurementError
from elfcost.runtime.auxv import (
    AT_BASE,
    AT_ENTRY,
    AT_NULL,
    AT_PAGESZ,
    AT_SECURE,
    auxv_word_bytes,
    parse_auxv,
)
from elfcost.runtime.procfs import parse_stat, read_stat, read_text


def test_auxv_pairs_up_to_at_null() -> None:
    data = struct.pack("<6Q", AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_NULL, 0)
    data += struct.pack("<2Q", AT_BASE, 0xDEAD)  # after AT_NULL: ignored
    assert parse_auxv(data) == {AT_PAGESZ: 4096, AT_ENTRY: 0x401000}


def test_auxv_32_bit_big_endian_and_a_partial_tail() -> None:
    data = struct.pack(">4I", AT_PAGESZ, 65536, AT_ENTRY, 0x10000) + b"\x00\x00"
    assert parse_auxv(data, word_bytes=4, little_endian=False) == {
        AT_PAGESZ: 65536,
        AT_ENTRY: 0x10000,
    }


def test_stat_with_spaces_and_parentheses_in_comm() -> None:
    fields = ["S", "1", *["0"] * 9, "7", "3", *["0"] * 6, "12345"]
    st = parse_stat(f"4242 (my (odd) prog) {' '.join(fields)} 0 0\n")
    assert (st.pid, st.comm, st.state, st.ppid) == (4242, "my (odd) prog", "S", 1)
    assert (st.utime_ticks, st.stime_ticks, st.cpu_ticks, st.starttime_ticks) == (7, 3, 10, 12345)


def test_stat_of_this_process() -> None:
    st = read_stat(os.getpid())
    assert st is not None and st.pid == os.getpid() and st.ppid == os.getppid()


def test_reading_a_missing_proc_file_is_a_measurement_error() -> None:
    assert read_stat(2**22 + 1) is None  # above pid_max
    with pytest.raises(MeasurementError, match="/proc/4194305/smaps: reading"):
        read_text(2**22 + 1, "smaps")


def test_auxv_word_size_is_read_from_the_vector_itself() -> None:
    """/proc/PID/auxv has the process's words: 4-byte pairs for an i386 process on x86_64.
    A 64-bit vector whose values are 0 must not be taken for 32-bit pairs (AT_SECURE 0 read
    as 4-byte words ends at a false AT_NULL)."""
    v64 = struct.pack("<8Q", AT_SECURE, 0, AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_NULL, 0)
    assert auxv_word_bytes(v64) == 8
    assert parse_auxv(v64) == {AT_SECURE: 0, AT_PAGESZ: 4096, AT_ENTRY: 0x401000}
    v32 = struct.pack("<8I", 32, 0xF7F8E560, AT_PAGESZ, 4096, AT_ENTRY, 0x56556000, AT_NULL, 0)
    assert auxv_word_bytes(v32) == 4
    assert parse_auxv(v32) == {32: 0xF7F8E560, AT_PAGESZ: 4096, AT_ENTRY: 0x56556000}
    assert auxv_word_bytes(b"") == 8  # nothing to go by: the native word


@pytest.mark.runtime
@pytest.mark.parametrize("mode, word", [("pie", 8), ("i386", 4)])
def test_auxv_of_a_live_process(samples: Path, mode: str, word: int) -> None:
    program = samples / f"trivial.{mode}"
    if not program.exists():
        pytest.skip(f"no {mode} samples")
    p = subprocess.Popen([str(program)])
    try:
        deadline = time.monotonic() + 5
        while True:
            # Until the execve is over: the child is Python before it, and the kernel points
            # /proc/PID/exe at the program (begin_new_exec) before it writes the new auxiliary
            # vector (create_elf_tables), so the exe link alone is not enough.
            exe = os.readlink(f"/proc/{p.pid}/exe")
            data = Path(f"/proc/{p.pid}/auxv").read_bytes()
            auxv = parse_auxv(data)
            if exe == str(program.resolve()) and AT_ENTRY in auxv:
                break
            assert time.monotonic() < deadline, "the program was not exec'd"
            time.sleep(0.01)
    finally:
        p.kill()
        p.wait()
    assert auxv_word_bytes(data) == word
    assert auxv[AT_PAGESZ] == os.sysconf("SC_PAGE_SIZE")
    assert auxv[AT_ENTRY] > 0 and auxv[AT_ENTRY] < 1 << (8 * word)
