"""The files of a capture (measure.py's script), read within bounds, and the objects they name.

A capture is a directory or a tar file holding copies of /proc/PID/{smaps, smaps_rollup, maps,
auxv}, a `pid` file and `pagemap/START-END` files. It comes from another machine and may be
damaged or hostile, so only the files of those names are read, each through files.py (regular
files only, never blocking) and each refused beyond the size its role can have: one line and
exit 3, never a hang or an unbounded read. Other files in it are never opened.

The ELF files the capture's smaps names are read from this machine's file system, or from a
copy of the target's under `root` (resolve/host.py confines every symlink to it), so that the
capture's pages are attributed to them as a live process's are.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from typing import IO

import msgspec

from elfcost.elf.reader import is_elf
from elfcost.errors import ElfcostError, InputError
from elfcost.files import open_regular, read_bounded
from elfcost.model import Dso
from elfcost.runtime.attribute import MappedObject
from elfcost.runtime.auxv import AT_ENTRY
from elfcost.runtime.records import SmapsEntry
from elfcost.tars import BoundedTar, TarRefused

# Largest size of each file of a capture. smaps prints about 1.5 KB per mapping and maps about
# 150 bytes; a process has at most vm.max_map_count mappings (65,530 by default,
# include/linux/mm.h DEFAULT_MAX_MAP_COUNT), so 100 MB and 10 MB, with room for a raised limit.
# auxv is at most AT_VECTOR_SIZE pairs (include/linux/mm_types.h, under 1 KiB).
ROLE_LIMITS: Mapping[str, int] = {
    "smaps": 256 << 20,
    "smaps_rollup": 64 << 10,
    "maps": 32 << 20,
    "auxv": 4 << 10,
    "pid": 64,
}
PAGEMAP_DIR = "pagemap"
MIN_PAGE_SIZE = 4096  # the smallest page size of any Linux port: bounds pagemap files by name
MAX_PAGEMAP_BYTES = 1 << 30  # every pagemap file together: 512 GiB of mappings at 4 KiB
MAX_ARCHIVE_BYTES = 1 << 30  # the tar file itself
MAX_MEMBER_BYTES = 2 << 30  # every member's size together, read or not: bounds decompression
MAX_MEMBERS = 300_000  # a pagemap file per mapping: over four times vm.max_map_count
_RANGE = re.compile(r"([0-9a-f]{1,16})-([0-9a-f]{1,16})")


class Capture(msgspec.Struct, frozen=True, kw_only=True):
    """The files of one capture: each role's bytes, and pagemap's by range."""

    source: str  # the directory, tar file or smaps file given, for messages
    files: Mapping[str, bytes]  # role (a key of ROLE_LIMITS) -> contents
    pagemap: tuple[tuple[int, int, bytes], ...]  # (start, end, entries) sorted by start
    standalone: bool = False  # a saved smaps file on its own (`source` is that file)

    def name(self, role: str) -> str:
        """How errors name the file of `role`."""
        if self.standalone:
            return self.source
        if os.path.isdir(self.source):
            return os.path.join(self.source, role)
        if os.path.basename(self.source) == "smaps":
            return os.path.join(os.path.dirname(self.source), role)
        return f"{self.source}:{role}"


def _pagemap_range(name: str) -> tuple[int, int] | None:
    m = _RANGE.fullmatch(name)
    if m is None:
        return None
    start, end = int(m[1], 16), int(m[2], 16)
    return (start, end) if start < end else None


def _pagemap_limit(start: int, end: int) -> int:
    return -(-(end - start) // MIN_PAGE_SIZE) * 8


class _Budget(msgspec.Struct):
    """The pagemap bytes read so far, against MAX_PAGEMAP_BYTES."""

    source: str
    used: int = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > MAX_PAGEMAP_BYTES:
            raise InputError(
                self.source, "pagemap", f"more than the {MAX_PAGEMAP_BYTES:,} bytes allowed"
            )


def read_capture(source: str) -> Capture:
    """The capture in the directory or tar file `source`; raises InputError."""
    fd, st = open_regular_or_dir(source)
    if fd is None:
        return _read_directory(source, source)
    try:
        if st.st_size > MAX_ARCHIVE_BYTES:
            raise InputError(
                source, "capture", f"{st.st_size:,} bytes, more than the {MAX_ARCHIVE_BYTES:,}"
            )
        with os.fdopen(fd, "rb", closefd=False) as raw:
            return _read_tar(source, raw)
    finally:
        os.close(fd)


def read_smaps_file(path: str) -> Capture:
    """A saved smaps file; the rest of a capture beside it is read too when it is named
    `smaps` (a capture directory's), else it stands alone."""
    if os.path.basename(path) == "smaps":
        cap = _read_directory(os.path.dirname(path) or ".", path)
        if "smaps" in cap.files:
            return cap
    data = read_bounded(path, "smaps", ROLE_LIMITS["smaps"])
    return Capture(source=path, files={"smaps": data}, pagemap=(), standalone=True)


def open_regular_or_dir(path: str) -> tuple[int | None, os.stat_result]:
    """(None, stat) for a directory, else open_regular's (fd, stat): a FIFO, a device or a
    socket is refused before anything is read."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(path, "", exc.strerror or str(exc)) from None
    if os.path.isdir(path):
        return None, st
    return open_regular(path)


def _read_directory(top: str, source: str) -> Capture:
    files: dict[str, bytes] = {}
    for role, limit in ROLE_LIMITS.items():
        path = os.path.join(top, role)
        if os.path.lexists(path):
            files[role] = read_bounded(path, role, limit)
    pages: list[tuple[int, int, bytes]] = []
    folder = os.path.join(top, PAGEMAP_DIR)
    if os.path.isdir(folder):
        budget = _Budget(folder)
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise InputError(folder, "", exc.strerror or str(exc)) from None
        if len(names) > MAX_MEMBERS:
            raise InputError(folder, "pagemap", f"more than {MAX_MEMBERS:,} files: refused")
        for name in names:
            r = _pagemap_range(name)
            if r is not None:
                data = read_bounded(os.path.join(folder, name), "pagemap", _pagemap_limit(*r))
                budget.take(len(data))
                pages.append((*r, data))
    return Capture(source=source, files=files, pagemap=tuple(sorted(pages)))


def _read_tar(source: str, raw: IO[bytes]) -> Capture:
    """Members named as capture files, at the top or under one directory (a capture archived
    with its directory's name); every member's size is checked before it is read."""
    found: dict[str, dict[str, bytes]] = {}  # top directory ("" for none) -> role -> bytes
    pages: dict[str, list[tuple[int, int, bytes]]] = {}
    budget = _Budget(source)
    total = members = 0
    try:
        with BoundedTar.open(fileobj=raw, mode="r:*") as tar:
            for member in tar:
                members += 1
                total += max(member.size, 0)
                if members > MAX_MEMBERS or total > MAX_MEMBER_BYTES:
                    raise InputError(source, "capture", "too many or too large members: refused")
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                nested = len(parts) == 3 or (len(parts) == 2 and parts[0] != PAGEMAP_DIR)
                top, rest = (parts[0], parts[1:]) if nested else ("", parts)
                where = f"{source}:{'/'.join(parts)}"
                r = _pagemap_range(rest[1]) if len(rest) == 2 and rest[0] == PAGEMAP_DIR else None
                if r is not None:
                    data = _member(tar, member, where, _pagemap_limit(*r))
                    budget.take(len(data))
                    pages.setdefault(top, []).append((*r, data))
                elif len(rest) == 1 and rest[0] in ROLE_LIMITS:
                    data = _member(tar, member, where, ROLE_LIMITS[rest[0]])
                    found.setdefault(top, {})[rest[0]] = data
                # anything else is not a capture file: never read
    except InputError:
        raise
    except TarRefused as exc:
        raise InputError(source, "reading the capture", str(exc)) from None
    except Exception as exc:
        # tarfile and the decompressors report a corrupt or truncated stream with their own
        # types (tarfile.ReadError, EOFError, zlib.error, lzma.LZMAError): this input's error.
        raise InputError(source, "reading the capture", f"{type(exc).__name__}: {exc}") from None
    tops = [t for t in found if "smaps" in found[t]]
    top = "" if "" in tops else tops[0] if len(tops) == 1 else ""
    return Capture(
        source=source, files=found.get(top, {}), pagemap=tuple(sorted(pages.get(top, [])))
    )


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str, limit: int) -> bytes:
    if not member.isfile():
        raise InputError(where, "", "not a regular file in the archive")
    if member.size > limit:
        raise InputError(where, "", f"{member.size:,} bytes, more than the {limit:,} allowed")
    f = tar.extractfile(member)
    if f is None:
        raise InputError(where, "", "not a regular file in the archive")
    return f.read(limit + 1)


def check_pagemap(cap: Capture, page_size: int) -> None:
    """Each pagemap file must hold one 8-byte entry for each page of its range, as the capture
    script's dd copies them: a shorter file is a truncated capture, a longer or misaligned one
    was captured with another PAGE than the page size the capture itself reports."""
    for start, end, data in cap.pagemap:
        name = cap.name(f"{PAGEMAP_DIR}/{start:x}-{end:x}")
        if start % page_size or end % page_size:
            raise InputError(name, "pagemap", f"range not aligned to {page_size}-byte pages")
        want = (end - start) // page_size * 8
        if len(data) != want:
            raise InputError(
                name,
                "pagemap",
                f"{len(data):,} bytes, not the {want:,} of its {want // 8:,} pages "
                f"(truncated, or captured with a PAGE other than {page_size})",
            )


# ---------------------------------------------------------------------------------------------
# The objects a capture maps


def mapped_files(entries: Sequence[SmapsEntry], exe: str | None) -> list[SmapsEntry]:
    """The first offset-0 line of each mapped file: the executable (pathname `exe`) first, then
    the rest by falling address, which approximates load order (glibc and musl map libraries
    top-down)."""
    first: dict[str, SmapsEntry] = {}
    for e in entries:
        if e.is_file and e.offset == 0 and e.name not in first:
            first[e.name] = e
    return sorted(first.values(), key=lambda e: (e.name != exe, -e.start))


def executable_name(entries: Sequence[SmapsEntry], auxv: Mapping[int, int]) -> str | None:
    """The pathname of the file mapped at AT_ENTRY, else of the lowest file mapping (an
    executable lies below its libraries, PIE or not, on every Linux layout)."""
    entry = auxv.get(AT_ENTRY)
    for e in entries:
        if entry is not None and e.is_file and e.start <= entry < e.end:
            return e.name
    return next((e.name for e in sorted(entries, key=lambda e: e.start) if e.is_file), None)


def capture_objects(
    entries: Sequence[SmapsEntry], auxv: Mapping[int, int], root: str = "/"
) -> tuple[list[MappedObject], list[str]]:
    """The ELF objects a captured smaps maps, read under `root`, each named as smaps names it;
    and warnings: files not found, and (without a root) files that are not the mapped ones."""
    from elfcost.resolve.host import Host

    host = Host(root=root, sections=False)
    objects: list[MappedObject] = []
    missing: list[str] = []
    others: list[str] = []
    for e in mapped_files(entries, executable_name(entries, auxv)):
        if not e.name.startswith("/") or e.deleted:
            continue  # memfd, shared memory, a deleted file: nothing to read
        file = host.locate(e.name)
        if file is None:
            missing.append(e.name)
            continue
        if not is_elf(file):
            continue  # a locale archive, a cache: not an object
        try:
            dso: Dso = host.read(e.name)
        except ElfcostError:
            missing.append(e.name)
            continue
        if not host.confined and _smaps_id(e) != _file_id(dso):
            others.append(e.name)
        objects.append(MappedObject(dso=dso, names=(e.name,)))
    notes = []
    if missing:
        notes.append(f"{_some(missing)}: not found or not readable under {root}: in [other_file]")
    if others:
        notes.append(
            f"{_some(others)}: not the file the process mapped (device and inode differ): a "
            "capture from another machine needs --root with a copy of its files"
        )
    return objects, notes


def _smaps_id(e: SmapsEntry) -> tuple[int, int, int]:
    return (*e.dev_major_minor, e.inode)


def _file_id(dso: Dso) -> tuple[int, int, int]:
    return os.major(dso.file_id.dev), os.minor(dso.file_id.dev), dso.file_id.ino


def _some(names: Sequence[str]) -> str:
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more
