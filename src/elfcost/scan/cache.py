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

File format: one line of JSON (the header above plus the kind of file), a newline, then the
result's JSON text as the analysis produced it (so a hit returns it without re-encoding).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
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
            header = msgspec.json.decode(first, type=Header)
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
                msgspec.json.decode(text, type=EstimateDoc)
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
        try:
            os.makedirs(os.path.dirname(slot), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(slot), prefix=".tmp-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(msgspec.json.encode(header).decode() + "\n" + (entry.text or ""))
                os.replace(tmp, slot)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # a read-only or full disk costs the next run time, never this one's result
