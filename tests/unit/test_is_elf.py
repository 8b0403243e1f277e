"""reader.is_elf, which a scan asks of every file it walks: true only for something that can
be read at an offset and starts with the ELF magic; nothing blocks, nothing raises."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from elfcost.elf.reader import ELF_MAGIC, is_elf


def test_elf_files_and_others(tmp_path: Path) -> None:
    assert is_elf("/bin/sh")
    assert is_elf("/lib/x86_64-linux-gnu/libc.so.6") or not Path("/lib/x86_64-linux-gnu").is_dir()
    (tmp_path / "script").write_text("#!/bin/sh\n")
    (tmp_path / "short").write_bytes(ELF_MAGIC[:3])
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "magic").write_bytes(ELF_MAGIC)  # the magic alone: is_elf says yes, read_dso
    assert is_elf(str(tmp_path / "magic"))  # then says what is wrong with it
    for name in ("script", "short", "empty", "missing"):
        assert not is_elf(str(tmp_path / name)), name
    assert not is_elf(str(tmp_path))  # a directory
    assert not is_elf("/dev/zero")  # a device that reads as zeros


def test_a_fifo_is_not_elf_and_does_not_block(tmp_path: Path) -> None:
    empty = tmp_path / "empty-fifo"
    os.mkfifo(empty)
    assert not is_elf(str(empty))  # no writer: a blocking open would wait for one
    fed = tmp_path / "fed-fifo"
    os.mkfifo(fed)
    # A writer that has put the magic in the pipe: a stream is not read (no offset to read at).
    writer_ready = threading.Event()

    def write() -> None:
        fd = os.open(fed, os.O_WRONLY)
        writer_ready.set()
        os.write(fd, ELF_MAGIC)
        os.close(fd)

    reader = os.open(fed, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer's open return
    try:
        t = threading.Thread(target=write)
        t.start()
        assert writer_ready.wait(30)
        t.join(30)
        assert not is_elf(str(fed))
    finally:
        os.close(reader)


def test_a_socket_is_not_elf(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))
        assert not is_elf(str(path))
