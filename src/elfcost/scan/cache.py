"""On-disk cache of analysis results across runs (used by `elfcost scan`).

An entry holds one analysed file's result, keyed by a hash of the file's identity: its
(st_dev, st_ino) or, for a member of an archive, the archive's identity and the member's path;
with the loader path, the root and the options that change the result. Keying by identity
rather than by content means a rewritten file's new entry supersedes its old one, so the live
entries grow with the number of files scanned, not with the number of times they changed.

An entry is used only if everything it was computed from is unchanged:
- `env`: a hash of elfcost's own code and profiles, the options and the loader configuration
  of the root (ld.so.cache, ld.so.conf, musl's path file), made by the caller;
- the file itself (or the archive holding it): dev, ino, size, mtime_ns, ctime_ns;
- every object of the program's dependency graph, looked up again by loader path (a library
  rewritten, replaced or re-pointed by its symlink changes the result);
- every directory the loader searched (a library installed earlier in the search order changes
  the result without changing any object that was found).

Entries live in packs, not in a file each: creating a file costs most of a millisecond of
kernel time on a journalled file system (measured here: 876 entries as files in 256
directories, 0.8 s of system time; appended to one file, 6 ms), about as long as estimating a
program. Each process that writes (a pool worker, a Dask task, the scan's own process) appends
its entries to a pack of its own, `<writer>.pack`, and when it is done writes the pack's index,
`<writer>.idx` (the entries' keys, offsets and lengths, and the pack's size), through a
temporary file renamed into place. An index is written once and a pack is never changed after
it, so a reader needs no lock: it reads every index, the one indexed later winning for a key,
and reads an entry from its pack with one pread. A pack without an index (its writer was killed,
or is still writing) is not read. When there are more than MAX_PACKS indexes, the scan's own
process merges them (tidy): the live entries of every pack, the stale ones (their file
changed) and the superseded ones dropped, into new packs; then the old ones are removed.
A merge takes a lock; a scan that finds it taken leaves the merge to that one.

A cache that cannot be read or written is a miss, never an error: `rm -rf` it at will. Every
file in it is opened without blocking, as a regular file only, and read within bounds (an
index of more than MAX_INDEX_BYTES, an entry of more than MAX_ENTRY_BYTES, a pack that is not
the size its index says: not read). An entry is one line of JSON (the header below, with the
kind of file and a hash of the text), a newline, then the result's JSON text as the analysis
produced it (so a hit returns it without re-encoding or decoding; an entry whose text does
not have its hash is a miss).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import msgspec

from elfcost.errors import ElfcostError
from elfcost.files import open_regular, read_bounded

FORMAT = 2  # 1: a file per entry
Stat = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


def file_stat(path: str | None) -> Stat | None:
    """The identity and version of a file or directory (symlinks followed), None if absent."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL byte, which no path holds (a damaged entry)
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
    text: bytes | None  # the result's JSON text (UTF-8), if one was computed


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
    stats: dict[tuple[Callable[[str], str | None], str], Stat | None] | None = None,
) -> Validity:
    """The Validity of a result computed now from these loader paths. `stats`, if given,
    keeps their file_stat for a run, as entry_of does: the programs of a scan depend on the
    same libraries and directories, which the run's Host reads once and keeps (so the first
    stat is also the one that describes what the analysis read)."""

    def stat(p: str) -> Stat | None:
        if stats is None:
            return file_stat(locate(p))
        if (locate, p) not in stats:
            stats[locate, p] = file_stat(locate(p))
        return stats[locate, p]

    return Validity(
        env=env,
        identity=identity,
        files=tuple((p, stat(p)) for p in sorted(set(files))),
        dirs=tuple((p, stat(p)) for p in sorted(set(dirs))),
    )


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """The first line of an entry: what it was computed from, and what kind of file it is."""

    format: int
    env: str
    identity: tuple[str, Stat]
    files: tuple[tuple[str, Stat | None], ...]
    dirs: tuple[tuple[str, Stat | None], ...]
    kind: str
    text_hash: str  # of the text after the header line (entry_of)


_Count = Annotated[int, msgspec.Meta(ge=0)]


class PackIndex(msgspec.Struct, frozen=True, kw_only=True):
    """A pack's index (`<writer>.idx`): its entries by key, and the pack's size when it was
    closed (a pack of another size was replaced or damaged: not read)."""

    format: int
    # When the pack was indexed (time.time_ns()): of two entries for a key, the one indexed
    # later is used. A merged pack takes the latest time of the packs it merged.
    written: int
    size: _Count
    entries: list[tuple[str, _Count, _Count]]  # key, offset, length


# An entry holds one program's estimate; anything larger was not written by this cache.
MAX_ENTRY_BYTES = 64 * 1024 * 1024
# Entries per pack that a merge writes: its index, ~90 bytes an entry, stays well within
# MAX_INDEX_BYTES (an index larger than that was not written by this cache).
MAX_PACK_ENTRIES = 100_000
MAX_INDEX_BYTES = 32 * 1024 * 1024
MAX_PACKS = 16  # indexes in the cache before the scan merges them (tidy)
# A pack without an index is a writer's that is still running, or was killed: removed by a
# merge once it is this old.
ABANDONED_SECONDS = 24 * 3600


class ResultCache:
    """The cache in `directory`, as one process (or one thread of a Dask worker) uses it: it
    reads the packs indexed before its first look-up, and appends what it stores to a pack
    of its own, which close() indexes."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.join(directory, f"scan-{FORMAT}")
        self._where: dict[str, tuple[str, int, int]] | None = None  # key -> pack, offset, len
        self._sizes: dict[str, int] = {}  # pack -> its size, as its index gives it
        self._fds: dict[str, int | None] = {}  # pack -> fd; None: not readable
        self._out: _Pack | None = None
        self._broken = False  # a write failed: nothing more is written by this cache
        # Loader paths' file_stat, kept from the first look-up to close(): see entry_of.
        self._stats: dict[tuple[Callable[[str], str | None], str], Stat | None] = {}

    # -- reading -------------------------------------------------------------------------------

    def load(self, key: str, env: str, locate: Callable[[str], str | None]) -> Entry | None:
        """The entry stored for `key` if it is still valid; `locate` maps loader paths to
        files. Absent, torn by a crash, from another format or altered: a miss."""
        data = self.read(key)
        return entry_of(data, env, locate, self._stats) if data is not None else None

    def read(self, key: str) -> bytes | None:
        """The bytes last stored for `key` in an indexed pack, or None."""
        where = self._index().get(key)
        if where is None:
            return None
        pack, offset, length = where
        fd = self._fd(pack)
        if fd is None:
            return None
        try:
            data = os.pread(fd, length, offset)
        except OSError:
            return None
        return data if len(data) == length else None

    def entries(self) -> Iterator[tuple[str, bytes]]:
        """Every key indexed, with its bytes."""
        for key in list(self._index()):
            data = self.read(key)
            if data is not None:
                yield key, data

    def _index(self) -> dict[str, tuple[str, int, int]]:
        if self._where is None:
            self._where = {}
            for name, index in self._indexes():
                pack = name.removesuffix(".idx") + ".pack"
                self._sizes[pack] = index.size
                for key, offset, length in index.entries:
                    if offset + length <= index.size and length <= MAX_ENTRY_BYTES:
                        self._where[key] = (pack, offset, length)  # a later one wins
        return self._where

    def _indexes(self) -> list[tuple[str, PackIndex]]:
        """The indexes that read, the earliest written first."""
        found = []
        for name in self._index_names():
            index = _read_index(os.path.join(self.directory, name))
            if index is not None:
                found.append((index.written, name, index))
        return [(name, index) for _, name, index in sorted(found, key=lambda f: f[:2])]

    def _index_names(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.directory) if n.endswith(".idx")]
        except OSError:
            return []

    def _fd(self, pack: str) -> int | None:
        """The open pack, if it is a regular file of the size its index gives."""
        if pack not in self._fds:
            fd: int | None = None
            with contextlib.suppress(ElfcostError):
                fd, st = open_regular(os.path.join(self.directory, pack))
                if st.st_size != self._sizes.get(pack):
                    os.close(fd)  # replaced or damaged since it was indexed
                    fd = None
            self._fds[pack] = fd
        return self._fds[pack]

    # -- writing -------------------------------------------------------------------------------

    def observe(
        self,
        env: str,
        identity: tuple[str, Stat],
        files: Iterable[str],
        dirs: Iterable[str],
        locate: Callable[[str], str | None],
    ) -> Validity:
        """observe, with the loader paths' file_stat kept from the first look-up to close()."""
        return observe(env, identity, files, dirs, locate, self._stats)

    def store(self, key: str, validity: Validity, entry: Entry) -> None:
        text = entry.text or b""
        header = Header(
            format=FORMAT,
            env=validity.env,
            identity=validity.identity,
            files=validity.files,
            dirs=validity.dirs,
            kind=entry.kind,
            text_hash=_hash(text),
        )
        try:
            head = _ENCODER.encode(header)
        except UnicodeEncodeError:
            return  # a path that is not UTF-8 (os.fsdecode's surrogates): not cached, a miss
        self.put(key, head + b"\n" + text)

    def put(self, key: str, data: bytes) -> None:
        """`data` for `key`, appended to this cache's pack (found by later runs once close()
        has indexed it). A disk that is read-only or full costs a later run time, never this
        one its result: after a failed write, nothing more is written."""
        if self._broken:
            return
        try:
            if self._out is None:
                self._out = _Pack(self.directory)
            self._out.append(key, data)
        except OSError:
            self._broken = True

    def close(self) -> None:
        """Index this cache's pack (its entries are then found by any later reader), and
        close the packs read."""
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except OSError:
                self._broken = True
        for fd in self._fds.values():
            if fd is not None:
                os.close(fd)
        self._fds.clear()
        self._where = None
        self._sizes.clear()
        self._stats.clear()

    # -- merging ---------------------------------------------------------------------------------

    def tidy(self, now: float | None = None) -> bool:
        """Merge the packs when there are more than MAX_PACKS indexes; True if merged. Entries
        superseded by a later one, or whose file changed since, are left out; packs without
        an index older than ABANDONED_SECONDS, and temporary files as old, are removed."""
        if len(self._index_names()) <= MAX_PACKS:
            return False
        try:
            lock = os.open(
                os.path.join(self.directory, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except OSError:
            return False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            return False  # another scan is merging
        try:
            return self._merge(time.time() if now is None else now)
        finally:
            os.close(lock)  # and the lock with it

    def _merge(self, now: float) -> bool:
        old = self._index_names()
        if len(old) <= MAX_PACKS:
            return False  # merged by another scan meanwhile
        source = ResultCache(os.path.dirname(self.directory))
        newest = max((index.written for _, index in source._indexes()), default=0)
        packs: list[_Pack] = []
        try:
            out: _Pack | None = None
            for key, data in source.entries():
                if not _current(data):
                    continue
                if out is None or len(out.entries) >= MAX_PACK_ENTRIES:
                    out = _Pack(self.directory)
                    packs.append(out)
                out.append(key, data)
            for p in packs:
                # As new as the newest index merged, no newer: a pack another scan indexed
                # after this merge began holds later entries, and must still win.
                p.close(written=newest)
        except OSError:
            for p in packs:
                p.discard()
            return False
        finally:
            source.close()
        for name in old:
            for path in (name, name.removesuffix(".idx") + ".pack"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, path))
        self._remove_abandoned(now)
        return True

    def _remove_abandoned(self, now: float) -> None:
        try:
            names = set(os.listdir(self.directory))
        except OSError:
            return
        for n in names:
            indexed = n.endswith(".pack") and n.removesuffix(".pack") + ".idx" in names
            if not (n.endswith(".pack") or n.startswith(".tmp-")) or indexed:
                continue
            path = os.path.join(self.directory, n)
            with contextlib.suppress(OSError):
                if now - os.lstat(path).st_mtime > ABANDONED_SECONDS:
                    os.unlink(path)


def entry_of(
    data: bytes,
    env: str,
    locate: Callable[[str], str | None],
    stats: dict[tuple[Callable[[str], str | None], str], Stat | None] | None = None,
) -> Entry | None:
    """The entry `data` holds if it is of this format and env, still valid, and whole (its
    text has the hash its header gives: what the analysis wrote, which its encoder made from
    a valid estimate); else None. `stats`, if given, keeps the loader paths' file_stat for a
    run: most entries depend on the same libraries and directories."""
    try:
        first, _, rest = data.partition(b"\n")
        header = _HEADER.decode(first)
        if header.format != FORMAT or header.env != env or header.text_hash != _hash(rest):
            return None
        path, st = header.identity
        if file_stat(path) != st:
            return None
        for p, st2 in (*header.files, *header.dirs):
            if stats is None:
                now = file_stat(locate(p))
            elif (locate, p) in stats:
                now = stats[locate, p]
            else:
                now = stats[locate, p] = file_stat(locate(p))
            if now != st2:
                return None
        return Entry(kind=header.kind, text=rest or None)
    except (ValueError, msgspec.DecodeError, RecursionError):
        # RecursionError: msgspec skips an unknown field's value recursively, and gives up on
        # one nested a thousand levels deep
        return None


def _hash(text: bytes) -> str:
    """What tells a whole entry's text from a damaged one: decoding the estimate with
    validation took most of a warm scan's time. SHA-256, which the CPU computes itself where
    it has the SHA extensions (x86 SHA-NI, the ARMv8 crypto extensions): 51 MB of entries in
    0.03 s here, where BLAKE2b took 0.09 s (a third of a warm scan of /usr/bin)."""
    return hashlib.sha256(text).hexdigest()[:32]


def _current(data: bytes) -> bool:
    """Whether an entry may still be used: its header reads, and its file (or archive) is the
    one it was computed from. (What else it depends on is checked when it is loaded.)"""
    try:
        header = _HEADER.decode(data.partition(b"\n")[0])
    except (msgspec.DecodeError, RecursionError):
        return False
    return header.format == FORMAT and file_stat(header.identity[0]) == header.identity[1]


def _read_index(path: str) -> PackIndex | None:
    try:
        index = _INDEX.decode(read_bounded(path, "scan cache index", MAX_INDEX_BYTES))
    except (ElfcostError, msgspec.DecodeError, RecursionError):
        return None
    return index if index.format == FORMAT else None


class _Pack:
    """A pack being written by this process: entries appended, then indexed by close()."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        # Named by this machine, this process, a random token and a counter: no other writer
        # uses the name (O_EXCL checks it), on a cache directory shared by many machines too.
        self.name = f"{_HOST}-{os.getpid()}-{_TOKEN}-{next(_NAMES)}"
        self.directory = directory
        self.path = os.path.join(directory, self.name + ".pack")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self.fd = os.open(self.path, flags, 0o600)
        self.size = 0
        self.entries: list[tuple[str, int, int]] = []

    def append(self, key: str, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.entries.append((key, self.size, len(data)))
        self.size += len(data)

    def close(self, written: int | None = None) -> None:
        """The index, written beside the pack through a temporary file renamed into place;
        a pack of no entries is removed."""
        try:
            # The pack's size on disk: a write that failed half way left bytes past the last
            # entry, which the reader's size check must not take for damage.
            size = os.fstat(self.fd).st_size
        finally:
            os.close(self.fd)
        if not self.entries:
            os.unlink(self.path)
            return
        index = PackIndex(
            format=FORMAT,
            written=time.time_ns() if written is None else written,
            size=size,
            entries=self.entries,
        )
        tmp = os.path.join(self.directory, f".tmp-{self.name}.idx")
        with open(tmp, "xb") as fh:
            fh.write(_ENCODER.encode(index))
        os.replace(tmp, os.path.join(self.directory, self.name + ".idx"))

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        for path in (self.path, os.path.join(self.directory, self.name + ".idx")):
            with contextlib.suppress(OSError):
                os.unlink(path)


_HOST = "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname()) or "host"
_TOKEN = os.urandom(4).hex()  # a leftover of a killed process with the same pid is no clash
_NAMES = itertools.count()  # shared by the threads of a process (a Dask worker's)
_ENCODER = msgspec.json.Encoder()
_HEADER = msgspec.json.Decoder(Header)
_INDEX = msgspec.json.Decoder(PackIndex)
