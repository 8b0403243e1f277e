"""The small pure parsers: the auxiliary vector and /proc/PID/stat."""

from __future__ import annotations

import os
import struct

import pytest

from elfcost.errors import MeasurementError
from elfcost.runtime.auxv import AT_BASE, AT_ENTRY, AT_NULL, AT_PAGESZ, parse_auxv
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
