"""elfcost.files: inputs are opened without blocking, regular files only, and bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elfcost.errors import InputError
from elfcost.files import read_bounded


def _sparse(path: str, size: int) -> None:
    """A file that claims `size` bytes and holds none (no disk used)."""
    with open(path, "wb") as fh:
        fh.truncate(size)


def test_a_small_regular_file_is_read_whole(tmp_path: Path) -> None:
    f = tmp_path / "ok.json"
    f.write_bytes(b"{}" * 100)
    assert read_bounded(str(f), "report", 200) == b"{}" * 100


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: os.mkfifo(p), "not a regular file"),  # would block a plain open()
        (lambda p: os.symlink("/dev/zero", p), "not a regular file"),  # endless
        (lambda p: os.mkdir(p), "a directory"),
        # A regular file to fstat, but reading it fails: still one line, not "internal error".
        (lambda p: os.symlink("/proc/self/mem", p), "Input/output error"),
        (lambda p: _sparse(p, 100 << 30), "more than the 1,024 allowed"),
        (lambda p: None, "No such file or directory"),
    ],
    ids=["fifo", "dev-zero", "directory", "proc-mem", "sparse-100G", "absent"],
)
def test_what_is_not_a_bounded_regular_file_is_one_clean_error(
    tmp_path: Path, make: object, says: str
) -> None:
    p = str(tmp_path / "input")
    make(p)  # type: ignore[operator]
    with pytest.raises(InputError) as e:
        read_bounded(p, "baseline", 1024)
    assert str(e.value).startswith(p + ": ")
    assert says in str(e.value)
