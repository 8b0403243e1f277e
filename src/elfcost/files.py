"""The one way elfcost opens a file it is given: never blocking, regular files only, bounded.

Every input that is not a /proc file read on purpose comes through here: ELF files, saved
reports, budgets and baselines, scan cache entries, captures (and, for their first bytes
only, every file a scan walks: read_head). A FIFO must not hang a run, nor /dev/zero or a
sparse 100 GB file eat the machine's memory, nor /proc/self/mem end in an internal error:
each is a one-line InputError naming the file (exit 3).
"""

from __future__ import annotations

import errno
import os
import stat

from elfcost.errors import InputError


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """Open `path` read-only without blocking and insist on a regular file.

    O_NONBLOCK keeps a FIFO from blocking the open; the fstat check then rejects it, a directory,
    a device such as /dev/zero, or a socket before anything is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(path, "", "too many levels of symbolic links") from None
        raise InputError(path, "", exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise InputError(path, "", exc.strerror or str(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise InputError(path, "", kind)
    return fd, st


def read_bounded(path: str, what: str, limit: int) -> bytes:
    """The whole of the regular file `path`, refused (InputError, naming `what` the file is
    to elfcost) when it is larger than `limit` bytes. Reads at most limit + 1 bytes, whatever
    the file claims, so a file that grows while it is read is refused too."""
    fd, st = open_regular(path)
    try:
        if st.st_size > limit:
            raise InputError(path, what, f"{st.st_size:,} bytes, more than the {limit:,} allowed")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise InputError(path, what, f"more than the {limit:,} bytes allowed")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(path, what, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def read_head(path: str, n: int) -> bytes | None:
    """The first `n` bytes (or fewer) of `path`; None when it cannot be opened or read at an
    offset. Opened without blocking as open_regular does, but not checked to be a regular file:
    a FIFO, a socket or a directory fails the read (or the open) instead. For a question asked
    of every file a scan walks (is it ELF?), where that check was a fifth of the time; what
    is then read whole goes through open_regular."""
    found = head_and_stat(path, n)
    return found[0] if found is not None else None


def head_and_stat(path: str, n: int) -> tuple[bytes | None, os.stat_result] | None:
    """read_head's bytes (None: not readable at an offset) with the status of the file opened
    (fstat); None when it cannot be opened. A scan's walk asks both of every file: fstat of
    the open file costs less than a second lookup of its path (lstat)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        try:
            return os.pread(fd, n, 0), st
        except OSError:
            return None, st
    except OSError:
        return None
    finally:
        os.close(fd)
