"""An archive as one root: a directory of packages, or a Debian repository, with every package
installed (`elfcost scan --archive DIR`).

A directory of package files (.deb, .apk, .rpm, found recursively) or a Debian-style repository
(dists/*/*/binary-*/Packages[.xz|.gz] naming files under pool/) is one system: a program's
libraries are found in the other packages, and the ld.so.conf.d snippets they ship are read as
ldconfig would read them when the packages are installed.

Nothing is unpacked to a tree. Each package's data is read once, as a stream (a .deb's
data.tar.xz/zst/gz cannot be read at an offset without decompressing what precedes it), into
an index: loader path -> Member (package, kind, size, mode, symbolic link target). Only what the
loader reads is kept: the content of ELF members (recognised by their first four bytes) and of
the loader's configuration files (ld.so.conf, ld.so.conf.d/*, ld.so.preload, musl's path
file), each written once to a private store (one file per member: the ELF readers pread and
mmap a file); other regular files are counted and dropped. Directories are those the kept
members imply. The store is bounded (ScanOptions.max_archive_bytes, ELF bytes only) and is
removed with the scan's temporary directory. Packages are read in worker processes
(build's `jobs`). The index is saved beside the store (msgpack), so a worker process reading
the root by its store directory (ArchiveHost) loads it once.

On a cluster (build's `remote`), each package is indexed by a task on a worker
(index_on_worker), which sends back the index entries, the loader configuration's content and
what ldconfig reads of each ELF member, not the members: the caller's store holds the
configuration only, and the index the cache ldconfig would write. The analysis runs on the
workers, each reading the members it needs from the package files into a bounded store of its
own (StoreHost), or taking those it wrote while indexing: the archive must be at the same path
on every worker.

As dpkg would, the first package (in file-name or Packages order) to ship a path keeps it;
the later ones are counted as conflicts. Two files of the same package: the later version
(compare_versions, dpkg's order) is installed and the other reported. The packages'
architecture decides the root's machine: the most common architecture other than `all`
(dpkg's names mapped to the kernel's, amd64 -> x86_64); packages of another architecture are
reported as not installed. A truncated or corrupt package is
reported as an error, with nothing of it indexed, and the others are scanned.

ldconfig is emulated, since an installed system has run it (libc-bin's trigger): ArchiveHost
answers ld_so_cache() with the cache ldconfig would write from the root's ld.so.conf
directories, then its own system directories (glibc elf/ldconfig.c main: add_system_dir of
SLIBDIR and LIBDIR, /lib/<triplet> and /usr/lib/<triplet> on Debian), looking at files named
lib* or ld-* containing ".so" (elf/ldconfig.c search_dir); the first directory holding a soname
gives its entry. glibc-hwcaps subdirectories are not scanned for it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fnmatch
import hashlib
import lzma
import os
import posixpath
import shutil
import tempfile
import threading
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cached_property
from multiprocessing.context import BaseContext
from typing import IO, Any, Literal

import msgspec

from elfcost.elf.machines import BY_NAME, NATIVE, machine_for
from elfcost.elf.reader import ELF_MAGIC, is_elf, read_dso
from elfcost.errors import ElfcostError, InputError, NotElfError
from elfcost.files import read_bounded
from elfcost.model import Dso, FileId
from elfcost.resolve import ldcache
from elfcost.resolve.confined import Entry, follow
from elfcost.resolve.host import Host
from elfcost.scan import archive

PACKAGE_SUFFIXES = (".deb", ".apk", ".rpm")
INDEX_NAME = "index.msgpack"  # in the store directory: what marks a root as an archive's
BLOBS = "blobs"
MAX_PACKAGES_INDEX = 1 << 28  # bytes of one Packages file, uncompressed (Debian's: ~60 MB)
MAX_CONFIG_BYTES = 1 << 20  # a loader configuration file kept in the store
_CONFIG = ("/etc/ld.so.conf", "/etc/ld.so.preload")

# dpkg's architecture names, as the kernel (uname -m) and Alpine and RPM name the machine.
DPKG_MACHINES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "armhf": "armv7l",
    "armel": "armv5tel",
    "i386": "i686",
    "ppc64el": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64el": "mips64",
    "mipsel": "mips",
    "loong64": "loongarch64",
    "x86": "i686",  # Alpine's name for i386
    "armv7": "armv7l",  # Alpine's
    "noarch": "all",  # RPM's
}


def member_file_id(blob: str) -> FileId:
    """A member's file identity in an archive's root, from its content file's name in the
    index (64 bits of a hash: unique among any archive's members)."""
    digest = hashlib.blake2b(blob.encode(), digest_size=8).digest()
    return FileId(dev=0, ino=int.from_bytes(digest, "little"))


class Member(msgspec.Struct, frozen=True, array_like=True):
    """One path of the root."""

    kind: Literal["file", "link", "dir"]
    package: int  # index into ArchiveIndex.packages; -1 for a directory only implied
    size: int = 0
    mode: int = 0
    target: str = ""  # a symbolic link's target, as stored
    blob: str = ""  # the content, a file under the store; "" when not kept


class Package(msgspec.Struct, frozen=True, kw_only=True):
    """One package file of the archive."""

    file: str  # as found under the archive directory
    name: str
    version: str
    architecture: str
    elf: int = 0  # ELF members kept
    dropped: int = 0  # regular files not kept (not ELF, not loader configuration)


class PackageError(msgspec.Struct, frozen=True, kw_only=True):
    file: str  # the package file, or the Packages index that named it
    message: str  # "file: what: why", like ElfcostError


class ArchiveIndex(msgspec.Struct, frozen=True, kw_only=True):
    """The root an archive makes: every installed package's loader-relevant members."""

    archive: str  # the directory, as named
    kind: Literal["repository", "packages"]
    architecture: str | None  # the packages' (dpkg's or the format's name); None: no package
    machine: str | None  # the same as the kernel names it (aarch64)
    packages: tuple[Package, ...]  # installed, in the order their paths were claimed
    members: dict[str, Member]  # loader path -> member
    errors: tuple[PackageError, ...] = ()  # packages not installed: corrupt, another arch...
    conflicts: int = 0  # paths a later package also shipped (the first package keeps them)
    # The cache ldconfig would write, made when the index was built (an index built on a
    # cluster, whose ELF members are not in the caller's store); None: made on first use.
    ld_so_cache: ldcache.LdCache | None = None


class LibraryFacts(msgspec.Struct, frozen=True, array_like=True):
    """What ldconfig reads of a library (ArchiveHost._ldconfig)."""

    soname: str | None
    program: bool
    e_machine: int
    elf_class: int


def library_facts(dso: Dso) -> LibraryFacts:
    return LibraryFacts(
        soname=dso.soname, program=dso.is_program, e_machine=dso.e_machine, elf_class=dso.elf_class
    )


def archive_kind(directory: str) -> Literal["repository", "packages"] | None:
    """What `directory` is: a Debian-style repository, a directory of package files, or
    neither."""
    if _packages_indices(directory):
        return "repository"
    if next(_package_files(directory), None) is not None:
        return "packages"
    return None


def is_archive_root(root: str) -> bool:
    """Whether `root` is the store of an archive's index (scan workers make an ArchiveHost)."""
    return os.path.isfile(os.path.join(root, INDEX_NAME))


def load(root: str) -> ArchiveIndex:
    with open(os.path.join(root, INDEX_NAME), "rb") as fh:
        return msgspec.msgpack.decode(fh.read(), type=ArchiveIndex)


# -- finding the packages ------------------------------------------------------------------


def _package_files(directory: str) -> Iterator[str]:
    """Package files under `directory`, recursively, in name order; symlinks not followed."""
    stack = [directory]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                subdirs.append(e.path)
            elif e.is_file(follow_symlinks=False) and e.name.lower().endswith(PACKAGE_SUFFIXES):
                yield e.path
        stack.extend(reversed(subdirs))


def _packages_indices(directory: str) -> list[str]:
    """dists/SUITE/COMPONENT/binary-ARCH/Packages files, one per directory (the uncompressed
    one, else .xz, else .gz: they hold the same stanzas)."""
    found = []
    dists = os.path.join(directory, "dists")
    if not os.path.isdir(dists):
        return []
    for suite in sorted(os.listdir(dists)):
        sdir = os.path.join(dists, suite)
        if not os.path.isdir(sdir) or os.path.islink(sdir):
            continue  # stable -> bookworm: the suite is read under its own name
        for comp in sorted(os.listdir(sdir)):
            cdir = os.path.join(sdir, comp)
            if not os.path.isdir(cdir):
                continue
            for bdir in sorted(os.listdir(cdir)):
                if not bdir.startswith("binary-"):
                    continue
                for name in ("Packages", "Packages.xz", "Packages.gz"):
                    f = os.path.join(cdir, bdir, name)
                    if os.path.isfile(f):
                        found.append(f)
                        break
    return found


def _read_index(path: str) -> str:
    """A Packages file's text, decompressed within MAX_PACKAGES_INDEX; raises InputError."""
    data = read_bounded(path, "Packages index", MAX_PACKAGES_INDEX)
    if path.endswith((".xz", ".gz")):
        data = _decompressed(path, data)
    if len(data) > MAX_PACKAGES_INDEX:
        raise InputError(path, "", f"more than {MAX_PACKAGES_INDEX:,} bytes uncompressed")
    return data.decode("utf-8", "replace")


def _decompressed(path: str, data: bytes) -> bytes:
    """A compressed index's streams (gzip members or xz streams, one after another, as the
    gzip and xz tools write and read them), to at most MAX_PACKAGES_INDEX + 1 bytes (a small
    file may stand for gigabytes) and each to its end marker: a truncated index would lose,
    silently, the packages it no longer lists."""
    out: list[bytes] = []
    room = MAX_PACKAGES_INDEX + 1
    while room > 0:
        gz = zlib.MAX_WBITS | 16  # a gzip header and trailer
        d: Any = lzma.LZMADecompressor() if path.endswith(".xz") else zlib.decompressobj(gz)
        try:
            out.append(d.decompress(data, room))
        except (lzma.LZMAError, zlib.error) as exc:
            raise InputError(path, "decompressing", str(exc)) from None
        room -= len(out[-1])
        if room > 0 and not d.eof:
            raise InputError(path, "decompressing", "the stream ends before its end marker")
        data = d.unused_data
        if not data:
            break
    return b"".join(out)


def repository_files(directory: str) -> tuple[list[str], list[PackageError]]:
    """The package files a repository's Packages indices name (Filename:, relative to the
    repository's top), in index order, each once; and what is wrong with the indices."""
    files: list[str] = []
    errors: list[PackageError] = []
    seen: set[str] = set()
    top = os.path.realpath(directory)
    for index in _packages_indices(directory):
        try:
            text = _read_index(index)
        except InputError as exc:
            errors.append(PackageError(file=index, message=str(exc)))
            continue
        absent = 0
        for stanza in text.split("\n\n"):
            name = archive.parse_control(stanza).get("Filename")
            if not name:
                continue
            if "\0" in name:  # no path holds one
                errors.append(PackageError(file=index, message=f"{index}: {name!r}: a NUL byte"))
                continue
            f = os.path.normpath(os.path.join(directory, name))
            # A Filename: climbing out of the repository is refused, never read.
            if not os.path.realpath(f).startswith(top + os.sep):
                errors.append(PackageError(file=index, message=f"{index}: {name}: outside"))
                continue
            if f in seen:
                continue
            seen.add(f)
            if os.path.isfile(f):
                files.append(f)
            else:
                absent += 1
        if absent:
            # A partial mirror is usual: one line, not one per package.
            errors.append(
                PackageError(
                    file=index,
                    message=f"{index}: {absent} package(s) it lists are absent: not installed",
                )
            )
    return files, errors


# -- indexing one package ------------------------------------------------------------------


def _keep_as_config(path: str) -> bool:
    return (
        path in _CONFIG
        or (path.startswith("/etc/ld.so.conf.d/") and path.count("/") == 3)
        or (path.startswith("/etc/ld-musl-") and path.endswith(".path"))
    )


class _Indexer(archive._Writer):
    """read_members' sink: records members and keeps the content the loader reads."""

    package: int = 0
    found: dict[str, Member] = msgspec.field(default_factory=dict)  # path -> member
    dropped: int = 0
    pkginfo: str = ""  # an .apk's .PKGINFO
    limit: int = 0  # the whole archive's bound on kept bytes, for the message
    stored: list[str] = msgspec.field(default_factory=list)  # content files made, in order

    def _path(self, raw: str) -> str | None:
        rel = self.name(raw)
        return None if rel is None else "/" + rel

    def directory(self, raw: str) -> None:
        path = self._path(raw)
        if path is not None:
            self.found.setdefault(path, Member(kind="dir", package=self.package))

    def regular_file(self, raw: str, size: int, data: IO[bytes]) -> None:
        path = self._path(raw)
        if path is None:
            return
        if path == "/.PKGINFO" and size <= MAX_CONFIG_BYTES:  # an .apk's control fields
            self.pkginfo = data.read(size).decode("utf-8", "replace")
            return
        if path.startswith("/.") and path.count("/") == 1:
            return  # an .apk's other metadata (.SIGN.*, .pre-install): not installed files
        head = data.read(min(4, size))
        config = _keep_as_config(path) and size <= MAX_CONFIG_BYTES
        if head != ELF_MAGIC and not config:
            self.dropped += 1
            return
        if self.written + size > self.max_bytes:
            raise InputError(
                self.archive,
                "",
                f"the archive's ELF members exceed {self.limit:,} bytes: not installed",
            )
        blob = os.path.join(BLOBS, f"{self.package}-{len(self.stored)}")
        self.stored.append(blob)
        archive.write_new(os.path.join(self.dest, blob), data, size, head)
        self.written += size
        self.files += 1
        self.found[path] = Member(
            kind="file", package=self.package, size=size, mode=0o644, blob=blob
        )

    def symlink(self, raw: str, link_target: str) -> None:
        path = self._path(raw)
        if path is not None:
            self.found[path] = Member(kind="link", package=self.package, target=link_target)
            self.links += 1

    def hardlink(self, raw: str, source: str) -> None:
        path, src = self._path(raw), self._path(source)
        kept = self.found.get(src) if src is not None else None
        if path is not None and kept is not None:
            self.found[path] = kept
        elif path is not None:
            self.dropped += 1  # a link to a file not kept is a file not kept

    def special(self, raw: str, kind: str) -> None:
        self.name(raw)


def _index_package(w: _Indexer) -> Package:
    """Read one package once; raises InputError (truncated, corrupt, unsupported)."""
    file = w.archive
    lower = file.lower()
    fields: dict[str, str] = {}
    if lower.endswith(".deb"):
        fields = archive.deb_control(file)
    archive.read_members(file, w)
    if lower.endswith(".apk"):
        # .PKGINFO: "key = value" lines (abuild); pkgname, pkgver, arch.
        for line in w.pkginfo.splitlines():
            key, _, value = line.partition(" = ")
            fields.setdefault(
                {"pkgname": "Package", "pkgver": "Version", "arch": "Architecture"}.get(
                    key.strip(), key.strip()
                ),
                value.strip(),
            )
    elif lower.endswith(".rpm"):
        fields = _rpm_fields(file)
    base = os.path.basename(file)
    pkg = Package(
        file=file,
        name=fields.get("Package") or base.split("_", 1)[0],
        version=fields.get("Version", ""),
        architecture=fields.get("Architecture", ""),
        elf=sum(1 for m in w.found.values() if m.kind == "file"),
        dropped=w.dropped,
    )
    return pkg


def _rpm_fields(file: str) -> dict[str, str]:
    try:
        import rpmfile

        with rpmfile.open(file) as rpm:
            h = rpm.headers

            def text(key: str) -> str:
                v = h.get(key, b"")
                return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

            return {
                "Package": text("name"),
                "Version": text("version"),
                "Architecture": text("arch"),
            }
    except Exception:  # the members were read: only the name and architecture are missing
        return {}


# -- the whole archive ---------------------------------------------------------------------


class Indexed(msgspec.Struct, frozen=True, kw_only=True):
    """One package read (in a worker process, this one, or a cluster's worker)."""

    file: str
    package: Package | None  # None: refused (error says why), nothing of it kept
    found: dict[str, Member]
    stored: list[str]
    written: int
    error: str | None = None
    # Read on a cluster's worker (index_on_worker), where the content stays: the loader
    # configuration's content and what ldconfig reads of each ELF member, by blob.
    config: dict[str, bytes] = msgspec.field(default_factory=dict)
    facts: dict[str, LibraryFacts] = msgspec.field(default_factory=dict)
    # The cluster worker that read it, where its members stay for the analysis ("" elsewhere).
    worker: str = ""


def _index_one(job: tuple[str, str, int, int]) -> Indexed:
    file, store, i, max_bytes = job
    w = _Indexer(archive=file, dest=store, max_bytes=max_bytes, package=i, limit=max_bytes)
    try:
        pkg = _index_package(w)
    except InputError as exc:
        _remove(store, w.stored)  # nothing of a broken package stays
        return Indexed(file=file, package=None, found={}, stored=[], written=0, error=str(exc))
    return Indexed(file=file, package=pkg, found=w.found, stored=w.stored, written=w.written)


def index_on_worker(
    file: str, number: int, max_bytes: int, scan: str = "", keep: int = 0
) -> Indexed:
    """One package indexed on a cluster's worker (a task of `scan --archive --scheduler`):
    the index entries, the loader configuration's content and what ldconfig reads of each ELF
    member travel back, not the ELF files. The members written stay on this worker for the
    scan `scan`, up to `keep` bytes of the packages indexed last (an analysis task here takes
    them rather than read the package again: StoreHost); the others are read again where they
    are analysed."""
    store = tempfile.mkdtemp(prefix="elfcost-index-")
    try:
        os.mkdir(os.path.join(store, BLOBS))
        one = _index_one((file, store, number, max_bytes))
        config: dict[str, bytes] = {}
        facts: dict[str, LibraryFacts] = {}
        for path, m in sorted(one.found.items()):
            if m.kind != "file" or not m.blob or m.blob in config or m.blob in facts:
                continue
            blob = os.path.join(store, m.blob)
            if is_elf(blob):
                # As ArchiveHost.read reads it, sections included; what it cannot read,
                # ldconfig skips (no facts).
                with contextlib.suppress(ElfcostError):
                    facts[m.blob] = library_facts(read_dso(blob, path=path))
            else:
                config[m.blob] = read_bounded(blob, "loader configuration", MAX_CONFIG_BYTES)
    except BaseException:
        shutil.rmtree(store, ignore_errors=True)
        raise
    worker = ""
    if scan and keep > 0 and one.package is not None:
        _keep(scan, file, store, one.written, keep)
        worker = _worker_address()
    else:
        shutil.rmtree(store, ignore_errors=True)
    return msgspec.structs.replace(one, config=config, facts=facts, worker=worker)


def _worker_address() -> str:
    """The address of the Dask worker running this task, "" outside one."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


# What this process's indexing tasks kept: scan -> package file -> (directory, bytes), the
# package indexed least recently first.
_KEPT: dict[str, OrderedDict[str, tuple[str, int]]] = {}
_KEPT_LOCK = threading.Lock()


def _keep(scan: str, file: str, store: str, size: int, bound: int) -> None:
    with _KEPT_LOCK:
        if scan not in _KEPT:
            atexit.register(release_kept, scan)  # a worker that exits before the scan ends
        kept = _KEPT.setdefault(scan, OrderedDict())
        old = kept.pop(file, None)  # a task run again (its first worker was lost)
        kept[file] = (store, size)
        dropped = [old[0]] if old is not None else []
        total = sum(n for _, n in kept.values())
        while total > bound and len(kept) > 1:
            _, (d, n) = kept.popitem(last=False)
            dropped.append(d)
            total -= n
    for d in dropped:
        shutil.rmtree(d, ignore_errors=True)


def _take_kept(scan: str, file: str) -> str | None:
    """The directory an indexing task of this process left `file`'s members in, now the
    caller's (to move them and remove it); None if there is none."""
    with _KEPT_LOCK:
        found = _KEPT.get(scan, OrderedDict()).pop(file, None)
    return found[0] if found is not None else None


def release_kept(scan: str) -> None:
    """The scan is over: what its indexing tasks kept here is removed."""
    with _KEPT_LOCK:
        kept = _KEPT.pop(scan, OrderedDict())
    for d, _ in kept.values():
        shutil.rmtree(d, ignore_errors=True)


# Indexes the packages (file, number, max_bytes) elsewhere (a cluster), in order.
RemoteIndexer = Callable[[Sequence[tuple[str, int, int]]], Iterable[Indexed]]


def _index_all(
    files: list[str], store: str, max_bytes: int, jobs: int, context: BaseContext | None
) -> Iterator[Indexed]:
    """Each package read once, in file order; by `jobs` worker processes when more than one
    (decompressing is most of the time: an xz data.tar reads at ~30 MB/s)."""
    work = [(f, store, i, max_bytes) for i, f in enumerate(files)]
    if jobs <= 1 or len(files) < 2:
        yield from map(_index_one, work)
        return
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(files)), mp_context=context)
    try:
        yield from pool.map(_index_one, work)
    except BaseException:  # interrupted: end the workers now, not after their packages
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError):
                proc.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def build(
    directory: str,
    store: str,
    *,
    max_bytes: int = archive.MAX_BYTES,
    jobs: int = 1,
    mp_context: BaseContext | None = None,
    remote: RemoteIndexer | None = None,
) -> ArchiveIndex:
    """Index the archive `directory` into the empty directory `store` and save the index there
    (INDEX_NAME), reading the packages in `jobs` processes (of `mp_context`), or with `remote`
    on a cluster's workers (index_on_worker: the store then holds the loader configuration
    only, and the index the cache ldconfig would write). Bad packages are in the index's
    errors; raises InputError when `directory` is no archive at all. The bound `max_bytes` on
    the content kept is applied in package order: the package that would cross it, and every
    one after it that does not fit, is refused."""
    kind = archive_kind(directory)
    if kind is None:
        raise InputError(directory, "", "no package files (.deb, .apk, .rpm) and no dists/")
    errors: list[PackageError] = []
    if kind == "repository":
        files, errors = repository_files(directory)
    else:
        files = list(_package_files(directory))
    os.mkdir(os.path.join(store, BLOBS))
    indexed: list[tuple[Package, Indexed]] = []
    budget = max_bytes
    facts: dict[str, LibraryFacts] = {}
    if remote is not None:
        read: Iterable[Indexed] = remote([(f, i, max_bytes) for i, f in enumerate(files)])
    else:
        read = _index_all(files, store, max_bytes, jobs, mp_context)
    for one in read:
        for blob, content in one.config.items():  # a package read elsewhere: its configuration
            with open(os.path.join(store, blob), "xb") as fh:
                fh.write(content)
        facts.update(one.facts)
        if one.package is not None and one.written > budget:
            _remove(store, one.stored)
            over = f"the archive's ELF members exceed {max_bytes:,} bytes: not installed"
            one = msgspec.structs.replace(one, package=None, error=f"{one.file}: {over}")
        if one.package is None:
            errors.append(PackageError(file=one.file, message=one.error or one.file))
            continue
        budget -= one.written
        indexed.append((one.package, one))
    arches = Counter(p.architecture for p, _ in indexed if p.architecture not in ("all", ""))
    arch = arches.most_common(1)[0][0] if arches else None
    # Of two files of one package, the later version is installed (dpkg would upgrade to it).
    best: dict[str, Package] = {}
    for pkg, _ in indexed:
        seen = best.get(pkg.name)
        if seen is None or compare_versions(pkg.version, seen.version) > 0:
            best[pkg.name] = pkg
    members: dict[str, Member] = {}
    packages: list[Package] = []
    conflicts = 0
    for pkg, w in indexed:
        why: str | None = None
        if arch is not None and pkg.architecture not in (arch, "all", "noarch", ""):
            why = f"architecture {pkg.architecture}, not the archive's {arch}"
        elif best[pkg.name] is not pkg:
            other = best[pkg.name]
            why = f"{pkg.name} {other.version} from {other.file} is installed instead"
        if why is not None:
            errors.append(PackageError(file=pkg.file, message=f"{pkg.file}: {why}: not installed"))
            _remove(store, w.stored)
            continue
        n = len(packages)
        packages.append(pkg)
        for path, m in w.found.items():
            m = msgspec.structs.replace(m, package=n)
            old = members.get(path)
            if old is None:
                members[path] = m
            elif not (old.kind == m.kind == "dir"):
                conflicts += 1
    _imply_directories(members)
    machine = DPKG_MACHINES.get(arch, arch) if arch is not None else None
    index = ArchiveIndex(
        archive=directory,
        kind=kind,
        architecture=arch,
        machine=machine,
        packages=tuple(packages),
        members=members,
        errors=tuple(errors),
        conflicts=conflicts,
    )
    _save(index, store)
    if remote is not None:
        # The ELF members are on the workers: ldconfig is run here from what they read.
        cache = _FactsHost(root=store, facts=facts).ld_so_cache()
        index = msgspec.structs.replace(index, ld_so_cache=cache)
        _save(index, store)
    return index


def _save(index: ArchiveIndex, store: str) -> None:
    with open(os.path.join(store, INDEX_NAME), "wb") as fh:
        fh.write(msgspec.msgpack.encode(index))


def _remove(store: str, blobs: list[str]) -> None:
    for b in blobs:
        with contextlib.suppress(OSError):  # the temporary directory goes anyway
            os.unlink(os.path.join(store, b))


def _order(c: str) -> int:
    """dpkg's character order: '~' before anything, even the end; letters before the rest."""
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256 if c else 0


def _verrevcmp(a: str, b: str) -> int:
    """dpkg lib/dpkg/version.c verrevcmp: non-digit runs by _order, digit runs as numbers."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first = 0
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            first = first or ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first:
            return first
    return 0


def compare_versions(a: str, b: str) -> int:
    """Debian version order (deb-version(7)): epoch, then upstream, then revision. Negative,
    zero or positive as a is older than, the same as, or newer than b."""

    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return (int(epoch) if epoch.isdigit() else 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    return (ea - eb) or _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _imply_directories(members: dict[str, Member]) -> None:
    """Every parent of a member is a directory (tar streams may leave them out)."""
    for path in list(members):
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in members:
            members[parent] = Member(kind="dir", package=-1)
            parent = posixpath.dirname(parent)


def elf_members(index: ArchiveIndex, store: str) -> Iterator[tuple[str, str, str]]:
    """(loader path, content file, package name) of each ELF file of the root, in path order;
    a file reached by several hard links once."""
    seen: set[str] = set()
    for path in sorted(index.members):
        m = index.members[path]
        if m.kind != "file" or m.blob in seen or _keep_as_config(path):
            continue
        seen.add(m.blob)
        yield path, os.path.join(store, m.blob), index.packages[m.package].name


# -- resolving inside the archive ----------------------------------------------------------


class ArchiveHost(Host, frozen=True, kw_only=True, dict=True):
    """A Host whose file system is an archive's index (root: the store build() wrote).

    Every lookup goes through the index: symbolic links are followed inside it, as
    Host.locate follows them inside a root; the files handed to the ELF readers are the
    store's content files.
    """

    @cached_property
    def index(self) -> ArchiveIndex:
        return load(self.root)

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for path in self.index.members:
            out.setdefault(posixpath.dirname(path), []).append(posixpath.basename(path))
        for names in out.values():
            names.sort()
        return out

    @property
    def confined(self) -> bool:
        return True

    @cached_property
    def _paths_of_blobs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for path in sorted(self.index.members):
            m = self.index.members[path]
            if m.blob:
                out.setdefault(os.path.join(self.root, m.blob), path)
        return out

    def member_of(self, file: str) -> str:
        """The loader path of a content file of the store (the readers name the file they
        opened); any other path as it is."""
        return self._paths_of_blobs.get(file, file)

    def loader_path(self, path: str) -> str:
        return path if path.startswith("/") else "/" + path

    def _lookup(self, loader_path: str) -> tuple[str, Member] | None:
        """The path with every symbolic link followed, and its member; None if absent."""
        members = self.index.members

        def entry(path: str) -> Entry | None:
            m = members.get(path)
            return Entry(m.kind, m.target) if m is not None else None

        try:
            path = follow(loader_path, entry)
        except OSError:
            return None  # ENOENT, ENOTDIR or ELOOP
        return path, members.get(path, Member(kind="dir", package=-1))

    def locate(self, loader_path: str) -> str | None:
        if not loader_path.startswith("/"):
            loader_path = posixpath.join(self.cwd, loader_path)
        found = self._lookup(loader_path)
        if found is None or not found[1].blob:
            return None
        return self._content(found[1])

    def _content(self, member: Member) -> str:
        """The file holding a member's content (kept: member.blob is set)."""
        return os.path.join(self.root, member.blob)

    def exists(self, loader_path: str) -> bool:
        return self._lookup(loader_path) is not None

    def dir_exists(self, loader_dir: str) -> bool:
        found = self._lookup(loader_dir)
        return found is not None and found[1].kind == "dir"

    def file_size(self, loader_path: str) -> int | None:
        found = self._lookup(loader_path)
        return found[1].size if found is not None and found[1].kind == "file" else None

    def realpath(self, loader_path: str) -> str:
        found = self._lookup(loader_path)
        return found[0] if found is not None else posixpath.normpath(loader_path)

    def _read_file(self, loader_path: str) -> Dso:
        found = self._lookup(loader_path)
        if found is None:
            raise InputError(loader_path, "", "no such file")
        if found[1].kind == "dir":
            raise InputError(loader_path, "", os.strerror(errno.EISDIR))
        if not found[1].blob:
            raise NotElfError(loader_path, "", "not an ELF file")
        blob = self._content(found[1])
        try:
            dso = read_dso(blob, path=loader_path, sections=self.sections)
        except ElfcostError as exc:
            # Named by the member's path, never by the store's file.
            where = loader_path if exc.path == blob else exc.path
            raise type(exc)(where, exc.what, exc.why) from None
        # The identity the loader compares (st_dev/st_ino) is the member's in the root, its
        # content file in the index (hard links share one), not the store file's inode: a
        # worker's store deletes and writes files as it goes, and a freed inode number comes
        # back on another member, which would then pass for a file already loaded.
        return msgspec.structs.replace(dso, file_id=member_file_id(found[1].blob))

    def list_dir(self, loader_dir: str) -> list[str]:
        found = self._lookup(loader_dir)
        if found is None or found[1].kind != "dir":
            return []
        return self._children.get(found[0], [])

    def _glob(self, pattern: str) -> list[str]:
        found = [""]
        for part in (p for p in pattern.split("/") if p):
            matches: list[str] = []
            for rel in found:
                if not any(c in part for c in "*?["):
                    matches.append(posixpath.join(rel, part))
                    continue
                matches.extend(
                    posixpath.join(rel, n)
                    for n in self.list_dir("/" + rel)
                    if fnmatch.fnmatchcase(n, part) and (part[0] == "." or n[0] != ".")
                )
            found = matches
        return sorted("/" + f for f in found if f and self.exists("/" + f))

    def ld_so_cache(self) -> ldcache.LdCache | None:
        if self.index.ld_so_cache is not None:
            return self.index.ld_so_cache
        key = "ld.so.cache"
        if key not in self._conf_cache:
            self._conf_cache[key] = self._ldconfig()
        return self._conf_cache[key]  # type: ignore[return-value]

    def _library_facts(self, loader_path: str) -> LibraryFacts | None:
        """What ldconfig reads of the file at `loader_path`; None: it cannot read it."""
        try:
            return library_facts(self.read(loader_path))
        except ElfcostError:
            return None

    def _ldconfig(self) -> ldcache.LdCache:
        """The cache ldconfig would write in this root (see the module docstring)."""
        system: list[str] = []
        for t in _triplets(self.index.machine or ""):
            system += [f"/lib/{t}", f"/usr/lib/{t}"]
        raw: dict[str, list[ldcache.RawEntry]] = {}
        for d in dict.fromkeys((*self.ld_so_conf_dirs(), *system)):
            for name in self.list_dir(d):
                if not name.startswith(("lib", "ld-")) or ".so" not in name:
                    continue
                path = posixpath.join(d, name)
                facts = self._library_facts(path)
                if facts is None or facts.program:
                    continue  # ldconfig skips what it cannot read as a library
                machine = machine_for(facts.e_machine)
                flags = machine.glibc_cache_flags[0] if machine else 0
                if facts.elf_class == 32 and machine is not None and machine.name == "x86_64":
                    continue  # x32: not a configuration elfcost models
                soname = facts.soname or name
                entries = raw.setdefault(soname, [])
                if any(e[1] == flags for e in entries):
                    continue  # an earlier directory gave it
                # ldconfig makes the soname link when the package did not ship it.
                link = posixpath.join(d, soname)
                entries.append((link if self.exists(link) else path, flags, None, 0, 0))
        return ldcache.LdCache(raw={k: tuple(v) for k, v in raw.items()})


class _FactsHost(ArchiveHost, frozen=True, kw_only=True, dict=True):
    """An archive's root whose ELF members were read elsewhere (index_on_worker): what
    ldconfig reads of each comes from `facts`, by blob."""

    facts: dict[str, LibraryFacts]

    def _library_facts(self, loader_path: str) -> LibraryFacts | None:
        found = self._lookup(loader_path)
        if found is None or not found[1].blob:
            return None
        return self.facts.get(found[1].blob)


class StoreHost(ArchiveHost, frozen=True, kw_only=True, dict=True):
    """An archive's root on a cluster's worker: `shared` is the index the scan sent every
    worker once, `root` an empty directory of this worker's own. A member's content is
    written there when first needed, with every other member its package keeps (reading one
    member of a compressed package costs what reading all of them does), from the package
    file at the path it was indexed from: the archive must be at the same path on every
    worker. At most `max_bytes` of members are kept: before each task (begin), the packages
    used least recently are dropped until the rest fit; a task itself may go over the bound
    (every object of its programs must be there while it runs)."""

    shared: ArchiveIndex
    max_bytes: int
    scan: str = ""  # what this process's indexing tasks kept for the scan is taken first

    @cached_property
    def index(self) -> ArchiveIndex:
        return self.shared

    @cached_property
    def _held(self) -> OrderedDict[int, tuple[list[str], int]]:
        """Package (in index.packages) -> its content files here and their bytes, least
        recently used first."""
        return OrderedDict()

    @cached_property
    def _members_of(self) -> dict[int, dict[str, Member]]:
        """Package -> the members it keeps in the index (path -> member)."""
        out: dict[int, dict[str, Member]] = {}
        for path, m in self.index.members.items():
            if m.kind == "file" and m.blob:
                out.setdefault(m.package, {})[path] = m
        return out

    def held_bytes(self) -> int:
        return sum(size for _, size in self._held.values())

    def begin(self) -> None:
        """A task starts: drop the packages used least recently while over the bound, and
        forget the objects read from them (their files are gone; read again if needed)."""
        gone: set[str] = set()
        total = self.held_bytes()
        while total > self.max_bytes and self._held:
            _, (files, size) = self._held.popitem(last=False)
            for f in files:
                with contextlib.suppress(OSError):
                    os.unlink(f)
            gone.update(files)
            total -= size
        if gone:
            cache = self._dso_cache
            for path, dso in list(cache.items()):
                if isinstance(dso, Dso) and dso.file in gone:
                    del cache[path]
            # The searches kept hold objects of those files too: searched again, they read
            # their files again.
            self._search_memo.clear()

    def _content(self, member: Member) -> str:
        n = member.package
        if n in self._held:
            self._held.move_to_end(n)
        else:
            self._held[n] = self._materialise(n)
        return super()._content(member)

    def _materialise(self, n: int) -> tuple[list[str], int]:
        """Read package n once, keeping the members the index has of it; raises InputError
        (the package is unreadable here, or is not the file that was indexed)."""
        pkg = self.index.packages[n]
        wanted = self._members_of.get(n, {})
        os.makedirs(os.path.join(self.root, BLOBS), exist_ok=True)
        scratch = _take_kept(self.scan, pkg.file) if self.scan else None
        try:
            if scratch is not None:  # indexed here: its members are those of the index
                found = dict(wanted)
            else:
                scratch = tempfile.mkdtemp(dir=self.root)
                os.mkdir(os.path.join(scratch, BLOBS))
                w = _Indexer(archive=pkg.file, dest=scratch, max_bytes=1 << 62, package=n)
                _index_package(w)
                found = w.found
            files: list[str] = []
            size = 0
            for path, m in sorted(wanted.items()):
                dest = os.path.join(self.root, m.blob)
                if dest in files:
                    continue  # a hard link: one content file
                got = found.get(path)
                if got is None or not got.blob or got.size != m.size:
                    raise InputError(
                        pkg.file,
                        path,
                        "not as when the archive was indexed "
                        "(is the archive the same file at this path on every worker?)",
                    )
                os.replace(os.path.join(scratch, got.blob), dest)
                files.append(dest)
                size += m.size
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        return files, size


def _triplets(machine: str) -> tuple[str, ...]:
    """Debian's multiarch triplets for a machine named as the kernel names it (aarch64:
    aarch64-linux-gnu); none for a machine elfcost has no table for."""
    own = NATIVE.get(machine, (machine,))[0]  # the machine's own programs' label
    m = BY_NAME.get({"ppc64le": "ppc64", "mipsel": "mips"}.get(own, own))
    return m.multiarch if m is not None else ()
