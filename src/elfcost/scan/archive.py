"""Package archives unpacked for a scan: .deb, .apk, .tar[.gz|.xz|.bz2|.zst], .rpm.

An archive is unpacked into a directory of our own and then scanned as a root, so the loader
paths of its files are the paths it would install. Extraction is confined, whatever the archive
says: a member named with an absolute path or `..` refuses the whole archive (no package does
that); device files, FIFOs and sockets are skipped; nothing is written through a symbolic link
made by an earlier member (a member `lib -> /etc` followed by `lib/passwd` is skipped); a hard
link must name a file already unpacked; and the total size and member count are bounded.

.deb is an `ar` archive (read here: a global header and 60-byte member headers) whose data.tar
is read with tarfile. An Alpine .apk is gzip streams of tar segments one after another. zstd
(.deb from Ubuntu, .tar.zst) needs the optional `zstandard` module and .rpm the optional
`rpmfile` module (pip install 'elfcost[archives]'); without them the archive is an input error.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from typing import IO, Any

import msgspec

from elfcost.errors import InputError
from elfcost.tars import BoundedTar, TarRefused

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
ZSTD_SUFFIXES = (".tar.zst", ".tzst")
SUFFIXES = (".deb", ".apk", ".rpm", *TAR_SUFFIXES, *ZSTD_SUFFIXES)
MAX_BYTES = 4 << 30  # what one archive may unpack to
MAX_MEMBERS = 500_000  # a whole distribution's root file system has ~200,000 entries
AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60
_COPY_CHUNK = 1 << 20


def is_archive(path: str) -> bool:
    """An archive elfcost unpacks, by its name (what the packaging tools go by too)."""
    return path.lower().endswith(SUFFIXES)


class Unpacked(msgspec.Struct, frozen=True, kw_only=True):
    """What one archive unpacked to."""

    files: int  # regular files and hard links written
    links: int  # symbolic links made
    skipped: tuple[str, ...] = ()  # members not unpacked, each with the reason


def unpack(archive: str, dest: str, *, max_bytes: int = MAX_BYTES) -> Unpacked:
    """Unpack `archive` into the existing empty directory `dest`; raises InputError."""
    w = _Writer(archive, dest, max_bytes)
    read_members(archive, w)
    return Unpacked(files=w.files, links=w.links, skipped=tuple(w.skipped))


def read_members(archive: str, w: _Writer) -> None:
    """Give every member of `archive` to `w`, in archive order (unpack's writer, or a
    subclass that indexes the members instead: scan/repo.py); raises InputError."""
    name = archive.lower()
    try:
        if name.endswith(".deb"):
            _unpack_deb(archive, w)
        elif name.endswith(".rpm"):
            _unpack_rpm(archive, w)
        elif name.endswith(ZSTD_SUFFIXES):
            with open(archive, "rb") as fh:
                _unpack_tar_stream(_zstd_reader(archive, fh), w)
        else:
            # Random-access mode: gzip.GzipFile reads the several gzip members of an .apk
            # (tarfile's own stream mode stops after the first), and ignore_zeros reads past
            # the end-of-archive blocks between its tar segments.
            with BoundedTar.open(archive, mode="r:*", ignore_zeros=True) as tf:
                _unpack_tar(tf, w)
    except InputError:
        raise
    except TarRefused as exc:
        raise InputError(archive, "unpacking", str(exc)) from None
    except Exception as exc:
        # Decompressors and tarfile report a corrupt stream with their own exception types
        # (zlib.error, lzma.LZMAError, zstandard.ZstdError, tarfile.ReadError, EOFError...):
        # any of them is this archive's input error, never the end of the scan.
        raise InputError(archive, "unpacking", f"{type(exc).__name__}: {exc}") from None


# -- writing members, confined to dest --------------------------------------------------------


def write_new(path: str, data: IO[bytes], size: int, head: bytes = b"") -> None:
    """A new file at `path` (never through a symlink, never over a file) holding `head`, then
    the rest of `size` bytes read from `data`: never more than the member header said,
    whatever the stream holds."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(head)
        left = size - len(head)
        while left > 0:
            chunk = data.read(min(left, _COPY_CHUNK))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)


class _Writer(msgspec.Struct):
    archive: str
    dest: str
    max_bytes: int
    written: int = 0
    members: int = 0
    files: int = 0
    links: int = 0
    skipped: list[str] = msgspec.field(default_factory=list)
    regular: dict[str, str] = msgspec.field(default_factory=dict)  # member name -> file written

    def name(self, raw: str, *, member: bool = True) -> str | None:
        """The member's path relative to dest; None for the archive's own top directory."""
        if member:
            self.members += 1
            if self.members > MAX_MEMBERS:
                raise InputError(self.archive, "", f"more than {MAX_MEMBERS} members: refused")
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if raw.startswith("/") or ".." in parts:
            raise InputError(
                self.archive, f"member {raw!r}", "absolute path or '..': refused, not unpacked"
            )
        return "/".join(parts) or None

    def parent(self, rel: str) -> str | None:
        """dest/dirname(rel), made if missing; None when a component is not a real directory
        (a symbolic link an earlier member made must never be written through)."""
        path = self.dest
        for part in rel.split("/")[:-1]:
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                return None
        return path

    def target(self, rel: str) -> str | None:
        """Where member `rel` goes, with whatever an earlier member left there removed."""
        parent = self.parent(rel)
        if parent is None:
            self.skipped.append(f"{rel}: a parent is a symbolic link or a file")
            return None
        path = os.path.join(parent, rel.rsplit("/", 1)[-1])
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        if stat.S_ISDIR(st.st_mode):
            self.skipped.append(f"{rel}: a directory of that name exists")
            return None
        os.unlink(path)
        self.regular.pop(rel, None)
        return path

    def directory(self, raw: str) -> None:
        rel = self.name(raw)
        if rel is None:
            return
        parent = self.parent(rel)
        path = os.path.join(parent, rel.rsplit("/", 1)[-1]) if parent else None
        if path is not None and not os.path.lexists(path):
            os.mkdir(path, 0o755)

    def regular_file(self, raw: str, size: int, data: IO[bytes]) -> None:
        rel = self.name(raw)
        if rel is None:
            return
        if self.written + size > self.max_bytes:
            raise InputError(
                self.archive, "", f"unpacks to more than {self.max_bytes} bytes: refused"
            )
        path = self.target(rel)
        if path is None:
            return
        write_new(path, data, size)
        self.written += size
        self.files += 1
        self.regular[rel] = path

    def symlink(self, raw: str, link_target: str) -> None:
        # The link is only made, never followed here: the scan's walk does not follow links
        # and Host.locate resolves them inside the root.
        rel = self.name(raw)
        if rel is None:
            return
        path = self.target(rel)
        if path is not None:
            os.symlink(link_target, path)
            self.links += 1

    def hardlink(self, raw: str, source: str) -> None:
        rel = self.name(raw)
        src = self.name(source, member=False)
        if rel is None or src is None or src not in self.regular:
            self.skipped.append(f"{raw}: hard link to {source!r}, not a file unpacked before")
            return
        path = self.target(rel)
        if path is not None:
            os.link(self.regular[src], path)
            self.files += 1
            self.regular[rel] = path

    def special(self, raw: str, kind: str) -> None:
        self.name(raw)
        self.skipped.append(f"{raw}: {kind}, not unpacked")


# -- tar ---------------------------------------------------------------------------------------


def _unpack_tar(tf: tarfile.TarFile, w: _Writer) -> None:
    while (m := tf.next()) is not None:
        if m.isdir():
            w.directory(m.name)
        elif m.isreg():
            data = tf.extractfile(m)
            assert data is not None  # a regular member always has data
            w.regular_file(m.name, m.size, data)
        elif m.issym():
            w.symlink(m.name, m.linkname)
        elif m.islnk():
            w.hardlink(m.name, m.linkname)
        else:
            w.special(m.name, "device, FIFO or other special file")
        # TarFile keeps every TarInfo it has read (a root file system has ~200,000); members
        # are not looked up again, hard links resolve through _Writer.regular.
        tf.members = []  # type: ignore[attr-defined]  # an attribute typeshed leaves out


def _unpack_tar_stream(fileobj: IO[bytes], w: _Writer) -> None:
    with BoundedTar.open(fileobj=fileobj, mode="r|*", ignore_zeros=True) as tf:
        _unpack_tar(tf, w)


def _zstd_reader(archive: str, fh: IO[bytes]) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise InputError(
            archive,
            "zstd",
            "zstd-compressed: install the zstandard module to read it "
            "(pip install 'elfcost[archives]')",
        ) from None
    # zstd, like pzstd, may write several frames: read them all, as the zstd tool does.
    reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
    return reader


# -- .deb: ar ----------------------------------------------------------------------------------


class _Slice(io.RawIOBase):
    """Bytes [start, start + size) of an open file, read-only and seekable."""

    def __init__(self, fh: IO[bytes], start: int, size: int) -> None:
        super().__init__()
        self._fh, self._start, self._size, self._pos = fh, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        if n == 0:
            return 0
        data = os.pread(self._fh.fileno(), n, self._start + self._pos)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def ar_members(archive: str, fh: IO[bytes]) -> Iterator[tuple[str, int, int]]:
    """(name, offset of the data, size) of each member of an `ar` archive."""
    if fh.read(len(AR_MAGIC)) != AR_MAGIC:
        raise InputError(archive, "ar header", "not an ar archive (no !<arch> magic)")
    offset = len(AR_MAGIC)
    file_size = os.fstat(fh.fileno()).st_size
    while offset < file_size:
        fh.seek(offset)
        header = fh.read(_AR_HEADER)
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise InputError(archive, f"ar member header at 0x{offset:x}", "truncated or invalid")
        # GNU ar ends names with '/'; dpkg writes none, so strip both padding and the slash.
        name = header[:16].decode("ascii", "replace").rstrip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise InputError(archive, f"ar member {name!r}", "invalid size field") from None
        data = offset + _AR_HEADER
        if size < 0 or data + size > file_size:
            raise InputError(archive, f"ar member {name!r}", "extends beyond the end of the file")
        yield name, data, size
        offset = data + size + (size & 1)  # members are 2-byte aligned


def _unpack_deb(archive: str, w: _Writer) -> None:
    with open(archive, "rb") as fh:
        member = next((m for m in ar_members(archive, fh) if m[0].startswith("data.tar")), None)
        if member is None:
            raise InputError(archive, "ar archive", "no data.tar member: not a Debian package")
        name, start, size = member
        data = io.BufferedReader(_Slice(fh, start, size), buffer_size=_COPY_CHUNK)
        if name.endswith(".zst"):
            _unpack_tar_stream(_zstd_reader(archive, data), w)
        else:
            with BoundedTar.open(fileobj=data, mode="r:*") as tf:
                _unpack_tar(tf, w)


MAX_CONTROL_BYTES = 16 << 20  # a package's control.tar, uncompressed: kilobytes in practice


def deb_control(archive: str) -> dict[str, str]:
    """The fields of a .deb's `control` file (Package, Version, Architecture...), from its
    control.tar member (deb(5)); raises InputError. Continuation lines are dropped: the
    fields read here are one line each."""
    try:
        with open(archive, "rb") as fh:
            member = next(
                (m for m in ar_members(archive, fh) if m[0].startswith("control.tar")), None
            )
            if member is None:
                raise InputError(archive, "ar archive", "no control.tar member")
            name, start, size = member
            data: IO[bytes] = io.BufferedReader(_Slice(fh, start, size), buffer_size=_COPY_CHUNK)
            if name.endswith(".zst"):
                data = _zstd_reader(archive, data)
            with BoundedTar.open(fileobj=data, mode="r|*") as tf:
                for m in tf:
                    if m.isreg() and m.name.lstrip("./") == "control":
                        if m.size > MAX_CONTROL_BYTES:
                            raise InputError(archive, "control", "larger than 16 MiB")
                        f = tf.extractfile(m)
                        assert f is not None  # a regular member always has data
                        return parse_control(f.read(m.size).decode("utf-8", "replace"))
    except InputError:
        raise
    except Exception as exc:  # a corrupt stream, as in read_members
        raise InputError(archive, "control.tar", f"{type(exc).__name__}: {exc}") from None
    raise InputError(archive, "control.tar", "no control file")


def parse_control(text: str) -> dict[str, str]:
    """One deb822 stanza: `Field: value` lines (deb822(5)); continuation lines dropped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line[:1] in (" ", "\t", "#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip()] = value.strip()
    return fields


# -- .rpm: rpmfile -----------------------------------------------------------------------------


def _unpack_rpm(archive: str, w: _Writer) -> None:
    try:
        import rpmfile
    except ImportError:
        raise InputError(
            archive,
            "",
            "rpm not supported: install the rpmfile module to read it "
            "(pip install 'elfcost[archives]')",
        ) from None
    # rpmfile reports a malformed file with bare asserts and Exceptions: unpack() turns them
    # into this archive's input error.
    with rpmfile.open(archive) as rpm:
        for m in rpm.getmembers():  # directories are not listed: parents are made
            data = rpm.extractfile(m)
            if m.issymlink:
                target = data.read(min(m.size, 4096)).decode("utf-8", "surrogateescape")
                w.symlink(m.name, target)
            else:
                # A FIFO or device has no data: it becomes an empty file, never a node. cpio
                # stores a hard-linked file's data with its last name only: the other names
                # are empty files.
                w.regular_file(m.name, m.size, data)
