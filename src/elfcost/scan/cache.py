"""On-disk cache of analysis results across runs (used by `elfcost scan`).

One file per analysed file, named by a hash of its identity: the file's (st_dev, st_ino) or,
for a member of an archive, the archive's identity and the member's path; with the loader path,
the root and the options that change the result. Keying by identity rather than by content
means a rewritten file replaces its own entry, so the cache grows with the number of files
scanned, not with the number of times they changed.

An entry is used only if everything it was computed from is unchanged:
- `env`: a hash of elfcost's own code and profiles, the options and the loader configuration
  of the root (ld.so.cache, ld.so.conf, musl's path file), made by the caller;
- the file itself (or the archive holding it): dev, ino, size, mtime_ns, ctime_ns;
- every object of the program's dependency graph, looked up again by loader path (a library
  rewritten, replaced or re-pointed by its symlink changes the result);
- every directory the loader searched (a library installed earlier in the search order changes
  the result without changing any object that was found).
Entries are written atomically (a temporary file renamed), so concurrent runs never see a torn
entry. A cache that cannot be read or written is a miss, never an error: `rm -rf` it at will.
A scan's worker processes write their entries from a thread of their own (Writer): creating a
file can cost most of a millisecond (a journalled file system's metadata, in the kernel or on
the disk; a network file system's round trip), about as long as estimating a program, and the
worker goes on analysing meanwhile. Each worker waits for its writes when it exits, so a scan
that has returned has written its entries.

File format: one line of JSON (the header above plus the kind of file), a newline, then the
result's JSON text as the analysis produced it (so a hit returns it without re-encoding).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import queue
import threading
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

from elfcost.documents import EstimateDoc
from elfcost.errors import ElfcostError
from elfcost.files import read_bounded

FORMAT = 1
Stat = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


def file_stat(path: str | None) -> Stat | None:
    """The identity and version of a file or directory (symlinks followed), None if absent."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def default_dir() -> str:
    """$XDG_CACHE_HOME/elfcost, else ~/.cache/elfcost (the XDG base directory rules)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "elfcost")


def code_hash() -> str:
    """elfcost's version and the contents of its code, profiles and schemas.

    The version alone is not enough: an editable install changes without a new version.
    """
    try:
        version = metadata.version("elfcost")
    except metadata.PackageNotFoundError:
        version = "unknown"
    h = hashlib.sha256(version.encode())
    package = Path(__file__).resolve().parents[1]  # all of elfcost, not only scan/
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".toml", ".json") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(package)).encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def digest(parts: Any) -> str:
    """A stable hash of JSON-able values."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # what the file is ("program", "library")
    text: str | None  # the result's JSON text, if one was computed


class Validity(msgspec.Struct, frozen=True, kw_only=True):
    """What an entry was computed from (see the module docstring)."""

    env: str
    identity: tuple[str, Stat]  # the file, or its archive: a path on this machine
    files: tuple[tuple[str, Stat | None], ...] = ()  # loader paths
    dirs: tuple[tuple[str, Stat | None], ...] = ()  # loader paths


def observe(
    env: str,
    identity: tuple[str, Stat],
    files: Iterable[str],
    dirs: Iterable[str],
    locate: Callable[[str], str | None],
) -> Validity:
    """The Validity of a result computed now from these loader paths."""
    return Validity(
        env=env,
        identity=identity,
        files=tuple((p, file_stat(locate(p))) for p in sorted(set(files))),
        dirs=tuple((p, file_stat(locate(p))) for p in sorted(set(dirs))),
    )


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """The first line of an entry: what it was computed from, and what kind of file it is."""

    format: int
    env: str
    identity: tuple[str, Stat]
    files: tuple[tuple[str, Stat | None], ...]
    dirs: tuple[tuple[str, Stat | None], ...]
    kind: str


# An entry holds one program's estimate; anything larger was not written by this cache.
MAX_ENTRY_BYTES = 64 * 1024 * 1024


class ResultCache:
    def __init__(self, directory: str) -> None:
        self.directory = os.path.join(directory, f"scan-{FORMAT}")
        self.writer: Writer | None = None  # None: store writes before it returns
        self._dirs: set[str] = set()  # made by this process: no mkdir each time

    def slot(self, key: Any) -> str:
        name = digest(key)
        return os.path.join(self.directory, name[:2], name[2:])

    def load(self, slot: str, env: str, locate: Callable[[str], str | None]) -> Entry | None:
        """The entry in `slot` if it is still valid; `locate` maps loader paths to files.

        Absent, torn by a crash, from another format, altered or not a regular file: a miss.
        The estimate in it is decoded with validation, so a damaged entry never reaches the
        ranking or the output.
        """
        try:
            data = read_bounded(slot, "scan cache entry", MAX_ENTRY_BYTES)
            first, _, rest = data.partition(b"\n")
            header = _HEADER.decode(first)
            if header.format != FORMAT or header.env != env:
                return None
            path, st = header.identity
            if file_stat(path) != st:
                return None
            for p, st2 in (*header.files, *header.dirs):
                if file_stat(locate(p)) != st2:
                    return None
            text = rest.decode("utf-8") or None
            if text is not None:
                _ESTIMATE.decode(text)
            return Entry(kind=header.kind, text=text)
        except (ElfcostError, OSError, ValueError, msgspec.DecodeError, RecursionError):
            # RecursionError: msgspec skips an unknown field's value recursively, and gives
            # up on one nested a thousand levels deep
            return None

    def store(self, slot: str, validity: Validity, entry: Entry) -> None:
        header = Header(
            format=FORMAT,
            env=validity.env,
            identity=validity.identity,
            files=validity.files,
            dirs=validity.dirs,
            kind=entry.kind,
        )
        data = _ENCODER.encode(header) + b"\n" + (entry.text or "").encode("utf-8")
        if self.writer is not None:
            self.writer.put(self, slot, data)
        else:
            self.write(slot, data)

    def write(self, slot: str, data: bytes) -> None:
        """`data` into `slot`, through a temporary file renamed over it."""
        directory = os.path.dirname(slot)
        try:
            if directory not in self._dirs:
                os.makedirs(directory, exist_ok=True)
                self._dirs.add(directory)
            # Named by this process and a counter: no other writer uses the name (O_EXCL
            # checks it), and no random name is drawn for each entry (as mkstemp would).
            tmp = os.path.join(directory, f".tmp-{os.getpid()}-{_TOKEN}-{next(_NAMES)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                with open(fd, "wb", closefd=True) as fh:
                    fh.write(data)
                os.replace(tmp, slot)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # a read-only or full disk costs the next run time, never this one's result


_TOKEN = os.urandom(4).hex()  # a leftover of a killed process with the same pid is no clash
_NAMES = itertools.count()  # shared by the threads of a process (a Dask worker's)
_ENCODER = msgspec.json.Encoder()
_HEADER = msgspec.json.Decoder(Header)
_ESTIMATE = msgspec.json.Decoder(EstimateDoc)
# Entries encoded and not yet written, at most, per Writer: if the disk falls this far behind,
# the analysis waits for it.
WRITE_AHEAD = 64


class Writer:
    """A thread that writes entries for the process that analyses (ResultCache.writer).

    Its entries are all written once flush() returns; a process killed before that loses the
    ones not yet written, which a later run finds missing and computes again."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[ResultCache, str, bytes] | None] = queue.Queue(WRITE_AHEAD)
        self._thread: threading.Thread | None = None

    def put(self, cache: ResultCache, slot: str, data: bytes) -> None:
        if self._thread is None:
            # A daemon: a process that exits without flush() must not hang on it.
            self._thread = threading.Thread(target=self._run, name="elfcost-cache", daemon=True)
            self._thread.start()
        self._queue.put((cache, slot, data))

    def flush(self) -> None:
        """Write every entry put so far, and end the thread (the next put starts another)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            cache, slot, data = item
            # Whatever one entry meets, the thread goes on taking them: a thread that ended
            # would leave put() waiting on a full queue for ever.
            with contextlib.suppress(Exception):
                cache.write(slot, data)
