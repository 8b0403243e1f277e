"""Analyse many files at once: the library behind `elfcost scan PATH...`.

Inputs are ELF files, directories (walked recursively in name order; a symbolic link inside a
directory is never followed, so nothing outside the tree is reached through one: its target is
scanned where the walk finds it), root file systems (ScanOptions.root: every input is read
inside it and loader paths are relative to it, as Host.locate reads them) and package archives
(archive.py: unpacked into a private temporary directory, removed afterwards, and scanned as a
root). With ScanOptions.archive, a directory input is one archive instead: a directory of
packages or a Debian repository, every package installed in one root (repo.py: an index, no
tree on disk); its results name their package, and they are not cached. With a cluster
(ScanOptions.scheduler) the archive's packages are indexed, and its members read, on the
cluster's workers (repo.index_on_worker, repo.StoreHost), not in this process.

Every ELF file is examined. Programs (Dso.is_program: ET_EXEC, DF_1_PIE, or PT_INTERP without a
DT_SONAME) get a full estimate; a shared library found under a directory is not estimated as a
root, only classified and counted (by the calling process, when there are workers: none of
them sees it), and analysed as a dependency of the programs that load it:
each worker reads each object once (Host's cache) and estimates each library once (ObjectMemo).
A file named explicitly is always estimated, a library too; named explicitly, a non-ELF file or
an object file is an input error, while under a directory it is skipped and counted.

Results from an earlier run are reused from the on-disk cache (cache.py) when nothing they were
computed from has changed; the calling process looks them up itself. Everything else goes to
an engine (engine.py): `jobs` worker processes, started only when needed, files sent in chunks,
or with ScanOptions.scheduler the workers of a Dask cluster. Local workers are forked, or
spawned if the caller runs threads (engine.mp_context), so a script that scans while running
threads must do so under `if __name__ == "__main__":`, as multiprocessing's spawn requires.
Results are yielded in input order (the inputs in the order given, each directory in name
order) whatever the number of processes, so output is reproducible; on_progress(done, total)
is called as files are answered, in any order. Unless an input is an archive (which must be
unpacked or indexed before the workers start: it is a root of their configuration),
directories are walked while the workers analyse what was found so far: the total grows until
the walk ends. A file the walk finds not to be ELF is counted there (its first bytes read),
and is not sent anywhere.

Use:
    scan = Scan(["/usr/bin"], ScanOptions(jobs=4), on_progress=bar.update)
    for result in scan.results(): ...      # ScanResult, one per program or error
    scan.summary                           # ScanSummary, complete once results() is exhausted
    rank(results, top=10)                  # most expensive programs and libraries
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import glob
import importlib
import multiprocessing.util
import operator
import os
import posixpath
import shutil
import signal
import stat
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec

import elfcost
from elfcost.cost.estimate import BIND_NOW, Options
from elfcost.cost.whatif import RELINKS
from elfcost.documents import (
    ArchiveRoot,
    EstimateDoc,
    InstalledPackage,
    ScanResultDoc,
    ScanSummary,
    decode,
    encode,
    encode_line,
)
from elfcost.elf.reader import ELF_MAGIC, is_elf, read_dso
from elfcost.errors import ElfcostError, InputError, NotElfError, UnsupportedElfError
from elfcost.files import head_and_stat
from elfcost.model import Dso
from elfcost.pipeline import Scenario, page_size_for, with_page_note
from elfcost.predict import ObjectMemo, estimate, relink_whatif, remedies, static_lib
from elfcost.report.jsonout import estimate_doc
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.scan import archive, cache, engine, repo

if TYPE_CHECKING:
    import distributed

ProgressHook = Callable[[int, int], None]
# ELF files per task sent to a worker (the others never leave this process): a program's
# estimate takes ~3 ms of a worker's CPU (a cold scan of /usr/bin and /usr/sbin: 2.5 s for 876
# programs), a round trip ~0.2 ms; small tasks balance the load and move the progress bar. (A
# library under a directory is classified by this process: no task holds one.)
CHUNK = 8
# Files sent to the workers ahead of the oldest one still with them (see _outcomes).
LOOKAHEAD = 2048
# Outcomes held, at most, behind the oldest file still with the workers: most are a few
# bytes (a file that is not ELF), a program's from the cache tens of KB.
HELD = 8 * LOOKAHEAD
PROGRESS_EVERY = 0.05  # seconds between two progress reports
# Loader configuration read inside a root: a change re-resolves every program (cache.py).
LOADER_CONFIG = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ld.so.preload")


JOBS_PER_CPU = 4  # the most workers per core a scan starts, whatever it is asked for
# What a cluster's worker keeps of an archive's members for one scan (repo.StoreHost).
WORKER_STORE_BYTES = 2 << 30


class ScanOptions(msgspec.Struct, frozen=True, kw_only=True):
    root: str = "/"  # sysroot: inputs are read inside it, loader paths are relative to it
    ld_library_path: tuple[str, ...] | None = None  # None: LD_LIBRARY_PATH is not used
    preload: tuple[str, ...] = ()  # LD_PRELOAD (Host.preload); /etc/ld.so.preload is always read
    isa_level: str | None = None  # the CPU's level for glibc-hwcaps (Host.isa_level)
    page_size: int | None = None  # None: this machine's
    # what-if: binding mode, every program linked statically or against the other libc
    # (cost/whatif.py)
    assume: (
        Literal["bind-now", "lazy", "static", "musl", "glibc", "musl-static", "glibc-static"] | None
    ) = None
    # --assume static-lib=NAME: these libraries linked in, in the programs that load them (the
    # others are estimated as built, with a note)
    static_libs: tuple[str, ...] = ()
    jobs: int | None = None  # worker processes; None: os.cpu_count(); 1: in this process
    # A Dask scheduler's address (tcp://HOST:PORT): its workers analyse, `jobs` is not used
    scheduler: str | None = None
    cache_dir: str | None = None  # None: $XDG_CACHE_HOME/elfcost or ~/.cache/elfcost
    no_cache: bool = False
    max_archive_bytes: int = archive.MAX_BYTES  # what one archive may unpack to
    # Each directory input is an archive (repo.py): its packages are installed in one root.
    archive: bool = False
    # With `scheduler`: what each worker keeps of an archive's members (repo.StoreHost)
    worker_store_bytes: int = WORKER_STORE_BYTES
    # Each program's remedies too (predict.remedies): the estimates' `savings`, a few more
    # estimates per program. Not with a relinking `assume`.
    remedies: bool = False

    @classmethod
    def of(cls, host: Host, scenario: Scenario, **options: Any) -> ScanOptions:
        """The options of a scan with `host`'s loader settings and `scenario`'s what-ifs."""
        return cls(
            root=host.root,
            ld_library_path=host.ld_library_path,
            preload=host.preload,
            isa_level=host.isa_level,
            page_size=scenario.page_size,
            assume=scenario.assume,  # type: ignore[arg-type]  # Scenario.of checked it
            static_libs=scenario.static_libs,
            **options,
        )


class ScanResult(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """One estimated program (doc: elfcost.estimate/3) or one input that failed (error).

    The document travels as the JSON text the analysis made (from a worker, or from the
    cache) and `doc` decodes it on first use: decoding is most of a warm scan's time, and
    JSON Lines output can write `doc_json` as it is.
    """

    path: str  # as named or found: in a root, root + loader path; in an archive, archive!path
    loader_path: str  # as the loader opens it (the doc's "binary")
    doc_json: str | None  # the elfcost.estimate/3 document, compact JSON
    error: str | None  # "path: what: why", like ElfcostError
    cached: bool = False  # the document came from the on-disk cache
    package: str | None = None  # in an archive (ScanOptions.archive): the package holding it

    @functools.cached_property
    def doc(self) -> EstimateDoc | None:
        """The estimate, decoded with validation (a cache hit is the text the analysis wrote:
        the cache checked its hash)."""
        if self.doc_json is None:
            return None
        return decode(self.doc_json, EstimateDoc, source=self.path)

    def jsonl(self) -> str:
        """This result as one line of elfcost.scan-result/2 (`scan --format jsonl`)."""
        head = encode(
            ScanResultDoc(
                path=self.path,
                loader_path=self.loader_path,
                cached=self.cached,
                error=self.error,
                package=self.package,
                estimate=None,
            ),
            pretty=False,
        )
        # The estimate is already JSON text: written as is, never decoded and encoded again.
        return f"{head.removesuffix('null}')}{self.doc_json or 'null'}}}"


# -- the scan ----------------------------------------------------------------------------------


class Scan:
    """One scan of `inputs`; results() runs it (again, reusing the cache, if called again)."""

    def __init__(
        self,
        inputs: Sequence[str],
        options: ScanOptions | None = None,
        *,
        on_progress: ProgressHook | None = None,
    ) -> None:
        self.inputs = tuple(inputs)
        self.options = options or ScanOptions()
        self.on_progress = on_progress
        self._counts = _Counts()

    @property
    def summary(self) -> ScanSummary:
        """Counts of the last run of results(), complete once it is exhausted."""
        return self._counts.summary()

    def results(self) -> Iterator[ScanResult]:
        """The programs' estimates and the errors, in input order (see the module docstring)."""
        counts = self._counts = _Counts()
        with contextlib.ExitStack() as cleanup:
            # The cluster first: an address nothing answers at is reported before any work.
            scheduler = self.options.scheduler
            client = engine.connect(scheduler, cleanup) if scheduler else None
            found = _Discovery(self.options, cleanup, self._jobs(), client)
            targets: Iterable[_Target]
            if found.streams(self.inputs):
                targets = found.stream(self.inputs)  # walked while the workers analyse
            else:
                for raw in self.inputs:
                    found.add(raw)
                targets = found.targets
            # Streaming, the sites are this machine's or the root's alone: no archive adds one.
            config = _config(self.options, found.sites, found.remote, found.scan)
            outcomes = _outcomes(
                targets,
                config,
                self._jobs(),
                self._progress,
                client,
                placed=found.placed,
                answered=lambda: found.not_elf,
            )
            for target, outcome in outcomes:
                counts.add(target, outcome)
                result = _result(target, outcome)
                if result is not None:
                    yield result
            counts.symlinks, counts.duplicates = found.symlinks, found.duplicates
            counts.files += found.not_elf
            counts.not_elf += found.not_elf
            counts.archives = found.archives
            counts.roots = found.roots

    def _jobs(self) -> int:
        """The workers asked for, at most JOBS_PER_CPU per core: `-j 100000` is no fork bomb."""
        cpus = os.cpu_count() or 1
        return max(1, min(self.options.jobs or cpus, JOBS_PER_CPU * cpus))

    def _progress(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)


def scan_cache_dir(options: ScanOptions) -> str | None:
    """Where the scan's cache lives, or None when caching is off."""
    if options.no_cache:
        return None
    return options.cache_dir or cache.default_dir()


# -- discovery (in this process) ---------------------------------------------------------------


class _Site(msgspec.Struct, frozen=True, kw_only=True):
    """Where files come from: this machine, a root file system, or an unpacked archive."""

    root: str  # the Host's root
    real_root: str
    prefix: str | None  # shown path = prefix + loader path; None: as walked (this machine)
    archive: str | None = None  # the archive, absolute: its identity keys the cache
    index: bool = False  # an archive's index (repo.py), read through repo.ArchiveHost
    # An archive indexed on a cluster: its ELF members are read where they are analysed
    # (repo.StoreHost), not in this process.
    remote: bool = False

    def loader_path(self, file: str) -> str:
        if self.prefix is None:
            return os.path.abspath(file)
        return "/" + os.path.relpath(file, self.real_root)

    def shown(self, file: str) -> str:
        return file if self.prefix is None else self.prefix + self.loader_path(file)


class _Target(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # as shown
    file: str  # on this machine
    loader_path: str
    site: _Site
    explicit: bool
    error: str | None = None  # an input error found before analysis
    package: str | None = None  # the package it comes from, in an archive's index
    elf: bool = False  # found ELF when it was walked (its first bytes need not be read again)


class _Discovery:
    """Turns the inputs into the list of files to examine, in input order."""

    def __init__(
        self,
        options: ScanOptions,
        cleanup: contextlib.ExitStack,
        jobs: int = 1,
        client: distributed.Client | None = None,
    ) -> None:
        self.options = options
        self.jobs = jobs  # processes that may read an archive's packages
        self.client = client  # a cluster: its workers index an archive's packages
        self.remote: dict[str, repo.ArchiveIndex] = {}  # by the site's root: indexed there
        self.scan = uuid.uuid4().hex if client is not None else ""  # names it on the workers
        # (archive, package name) -> the cluster worker that indexed it and keeps its members
        self.placed: dict[tuple[str, str], str] = {}
        self.cleanup = cleanup
        root = options.root
        self.host = Host(root=root)
        if self.host.confined:
            self.site = _Site(root=root, real_root=os.path.realpath(root), prefix=root.rstrip("/"))
        else:
            self.site = _Site(root="/", real_root="/", prefix=None)
        self.sites: list[_Site] = [self.site]
        self.targets: list[_Target] = []
        self.seen: set[tuple[int, int]] = set()
        self.symlinks = self.duplicates = self.archives = 0
        # Files found walking that are not ELF (their first bytes read here): counted, not
        # targets. A root file system is mostly such files (/usr/lib: 69,000 of 71,000).
        self.not_elf = 0
        self.roots: list[ArchiveRoot] = []
        self._tmp: str | None = None

    def add(self, raw: str) -> None:
        """One input, named by the user: followed if it is a symbolic link."""
        for _ in self._add(raw):
            pass

    def streams(self, inputs: Sequence[str]) -> bool:
        """Whether `inputs` can be found as they are analysed (stream): none is an archive,
        which adds a site (a root of its own) that the workers' configuration must hold."""
        if self.options.archive:
            return False
        for raw in inputs:
            file = self._where(raw)[1]
            if archive.is_archive(file) and os.path.isfile(file):  # by name first: no stat
                return False
        return True

    def stream(self, inputs: Sequence[str]) -> Iterator[_Target]:
        """The targets of `inputs` (see streams), in input order, each directory walked when
        the targets before it have been taken: the workers analyse the first programs of a
        large tree while the rest of it is walked."""
        for raw in inputs:
            for _ in self._add(raw):
                yield from self._take()
            yield from self._take()

    def _take(self) -> list[_Target]:
        found, self.targets = self.targets, []
        return found

    def _where(self, raw: str) -> tuple[str, str, str]:
        """An input's loader path, its file on this machine, and how it is shown."""
        if self.site.prefix is None:
            return os.path.abspath(raw), raw, raw
        # Inside a root, shown as root + loader path like the files found by walking it.
        loader = self.host.loader_path(raw)
        return loader, self.host.locate(loader) or "", self.site.prefix + loader

    def _add(self, raw: str) -> Iterator[None]:
        """add, yielding after each directory walked."""
        loader, file, shown = self._where(raw)
        try:
            st = os.stat(file)  # once: a scan may name thousands of files
        except (OSError, ValueError):  # as os.path.exists: not there, or not to be looked at
            self._error(raw, loader, InputError(raw, "", "no such file or directory"))
            return
        if stat.S_ISDIR(st.st_mode) and self.options.archive:
            self._index(raw, file)
        elif stat.S_ISDIR(st.st_mode):
            yield from self._walk(file, self.site)
        elif archive.is_archive(file) and stat.S_ISREG(st.st_mode):
            self._unpack(raw, file)
        else:
            self._file(file, st, self.site, explicit=True, shown=shown, loader=loader)

    def _error(self, shown: str, loader: str, exc: ElfcostError | str) -> None:
        self.targets.append(
            _Target(
                path=shown,
                file="",
                loader_path=loader,
                site=self.site,
                explicit=True,
                error=str(exc),
            )
        )

    def _file(
        self,
        file: str,
        st: os.stat_result,
        site: _Site,
        *,
        explicit: bool,
        shown: str | None = None,
        loader: str | None = None,
        seen: bool = False,
    ) -> None:
        """`seen`: the caller has asked _seen already (and found it ELF: see _Target.elf)."""
        if not seen and self._seen(st):
            return
        self.targets.append(
            _Target(
                path=shown or site.shown(file),
                file=file,
                loader_path=loader or site.loader_path(file),
                site=site,
                explicit=explicit,
                elf=seen,
            )
        )

    def _seen(self, st: os.stat_result) -> bool:
        """Whether this file was met before (a hard link, named twice): examined once."""
        if (st.st_dev, st.st_ino) in self.seen:
            self.duplicates += 1
            return True
        self.seen.add((st.st_dev, st.st_ino))
        return False

    def _walk(self, top: str, site: _Site) -> Iterator[None]:
        """Every file under `top`, a directory at a time (yielding after each).

        os.scandir rather than os.walk: sorted, iterative, and no stat for a symlink's
        target."""
        stack = [top]
        by_name = operator.attrgetter("name")
        # Under an absolute, normal top, each entry's path is absolute and normal too (a name
        # holds no "/" and is never "." or ".."): on this machine, its own loader path.
        as_is = site.prefix is None and top == os.path.abspath(top)
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=by_name)
            except OSError as exc:
                err = InputError(site.shown(d), "listing", exc.strerror or str(exc))
                self._error(site.shown(d), site.loader_path(d), err)
                continue
            subdirs = []
            for e in entries:
                if e.is_symlink():
                    self.symlinks += 1
                elif e.is_dir(follow_symlinks=False):
                    subdirs.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    path = e.path
                    found = head_and_stat(path, len(ELF_MAGIC))
                    if found is None:  # not to be opened: a duplicate, or not read
                        try:
                            st = e.stat(follow_symlinks=False)
                        except OSError:  # gone since it was listed
                            st = None
                        if st is None or not self._seen(st):
                            self.not_elf += 1
                        continue
                    head, st = found
                    if self._seen(st):
                        continue
                    if head != ELF_MAGIC:
                        self.not_elf += 1
                        continue
                    loader = path if as_is else None
                    self._file(path, st, site, explicit=False, loader=loader, seen=True)
                # devices, FIFOs and sockets are not files to read
            stack.extend(reversed(subdirs))
            yield

    def _tmpdir(self) -> str:
        if self._tmp is None:
            self._tmp = self.cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="elfcost-scan-")
            )
        return tempfile.mkdtemp(dir=self._tmp)

    def _index(self, raw: str, directory: str) -> None:
        """An archive: its packages indexed into one root (repo.py); each bad package is an
        error of its own and the others are scanned."""
        store = self._tmpdir()
        client = self.client
        remote: repo.RemoteIndexer | None = None
        indexed_on: dict[str, str] = {}  # package file -> the worker that indexed it
        if client is not None:

            def remote(jobs: Sequence[tuple[str, int, int]]) -> Iterator[repo.Indexed]:
                assert client is not None
                # The members a worker writes as it indexes stay there for the analysis, which
                # is placed there (Work.place).
                keep = (self.scan, self.options.worker_store_bytes)
                tasks = [(*job, *keep) for job in jobs]
                for one in engine.in_order(
                    client, repo.index_on_worker, tasks, _index_died, "index"
                ):
                    if one.worker and one.package is not None:
                        indexed_on[one.package.file] = one.worker
                    yield one

        try:
            index = repo.build(
                directory,
                store,
                max_bytes=self.options.max_archive_bytes,
                jobs=self.jobs,
                mp_context=engine.mp_context(),
                remote=remote,
            )
        except InputError as exc:
            self._error(raw, "", exc)
            return
        for e in index.errors:
            self._error(e.file, "", e.message)
        # The package installed under each name (the later of two versions), where it was read.
        self.placed.update(
            ((directory, p.name), indexed_on[p.file])
            for p in index.packages
            if p.file in indexed_on
        )
        self.archives += 1
        self.roots.append(archive_root(raw, index))
        prefix = raw + "!"
        site = _Site(
            root=store,
            real_root=store,
            prefix=prefix,
            archive=directory,
            index=True,
            remote=remote is not None,
        )
        self.sites.append(site)
        members = list(repo.elf_members(index, store))
        if site.remote:
            # Package by package: a cluster's task holds whole packages, each read once there.
            order = {p.name: n for n, p in enumerate(index.packages)}
            members.sort(key=lambda m: (order[m[2]], m[0]))
            self.remote[store] = index
        for loader, blob, package in members:
            self.targets.append(
                _Target(
                    path=prefix + loader,
                    file=blob,
                    loader_path=loader,
                    site=site,
                    explicit=False,
                    package=package,
                )
            )

    def _unpack(self, raw: str, file: str) -> None:
        if self._seen(os.stat(file)):
            return
        dest = self._tmpdir()
        try:
            archive.unpack(file, dest, max_bytes=self.options.max_archive_bytes)
        except InputError as exc:
            self._error(raw, "", exc)
            return
        self.archives += 1
        site = _Site(
            root=dest,
            real_root=os.path.realpath(dest),
            prefix=raw + "!",
            archive=os.path.abspath(file),
        )
        self.sites.append(site)
        for _ in self._walk(site.real_root, site):
            pass


# -- configuration shared with the workers -----------------------------------------------------


class _Config(msgspec.Struct, frozen=True, kw_only=True):
    estimate: Options
    page_size: int | None  # --page-size; None: each program's (pipeline.page_size_for)
    # --assume static, musl, glibc, ...: each program's what-if instead of its estimate
    relink: str | None
    static_libs: tuple[str, ...]  # --assume static-lib=NAME
    ld_library_path: tuple[str, ...] | None
    preload: tuple[str, ...]
    isa_level: str | None
    cache_dir: str | None
    envs: dict[str, str]  # Host root -> what its cache entries depend on besides the files
    remedies: bool = False
    # Archives indexed on a cluster, by their site's root: the index every worker is sent
    # once, with the config; each worker reads the members it needs (repo.StoreHost).
    archives: dict[str, repo.ArchiveIndex] = msgspec.field(default_factory=dict)
    store_bytes: int = 0  # what a worker keeps of their members
    scan: str = ""  # names the scan on the workers (release_stores)


def _config(
    options: ScanOptions,
    sites: Sequence[_Site],
    remote: dict[str, repo.ArchiveIndex] | None = None,
    scan: str = "",
) -> _Config:
    opts = Options(
        page_size=options.page_size or os.sysconf("SC_PAGE_SIZE"),
        bind_now=BIND_NOW.get(options.assume or ""),
    )
    relink = options.assume if options.assume in RELINKS else None
    cache_dir = scan_cache_dir(options)
    envs: dict[str, str] = {}
    if cache_dir is not None:
        code = cache.code_hash()
        for site in sites:
            envs[site.root] = cache.digest(
                [
                    code,
                    opts.page_size,
                    opts.bind_now,
                    relink,
                    options.static_libs,
                    options.ld_library_path,
                    options.preload,
                    _loader_env(site, options.isa_level),
                    options.remedies,
                ]
            )
    return _Config(
        estimate=opts,
        page_size=options.page_size,
        relink=relink,
        static_libs=options.static_libs,
        ld_library_path=options.ld_library_path,
        preload=options.preload,
        isa_level=options.isa_level,
        cache_dir=cache_dir,
        envs=envs,
        remedies=options.remedies,
        archives=remote or {},
        store_bytes=options.worker_store_bytes,
        scan=scan if remote else "",
    )


def _loader_env(site: _Site, isa_level: str | None = None) -> Any:
    """What resolution depends on besides the files: the root's loader configuration and the
    CPU's glibc-hwcaps levels (this CPU's, or `isa_level`'s). An archive's is fixed by the
    archive's identity."""
    if site.archive is not None:
        return "archive"
    host = Host(root=site.root, isa_level=isa_level)
    musl = glob.glob(os.path.join(site.real_root, "etc", "ld-musl-*.path"))
    config = [*LOADER_CONFIG, *("/etc/" + os.path.basename(m) for m in sorted(musl))]
    return [
        site.real_root,
        host.glibc_hwcaps(os.uname().machine),
        [(p, cache.file_stat(host.locate(p))) for p in config],
    ]


# -- work (in the workers) ---------------------------------------------------------------------

_Kind = Literal["program", "library", "not_elf", "not_loadable", "error"]


class _Outcome(msgspec.Struct, frozen=True, kw_only=True):
    kind: _Kind
    elf: bool = True
    # The estimate's JSON text, UTF-8: bytes from the worker (or the cache) to ScanResult,
    # decoded as a document only if ScanResult.doc is read.
    text: bytes | None = None
    error: str | None = None
    cached: bool = False


class _Worker:
    """One process's state: a Host per root and an ObjectMemo, kept across its chunks."""

    def __init__(self, config: _Config) -> None:
        self.config = config
        self.hosts: dict[str, Host] = {}
        self.memo = ObjectMemo()
        self.cache = cache.ResultCache(config.cache_dir) if config.cache_dir else None
        # What the programs quick() classified name (DT_NEEDED), by id of their target, until
        # needed() is asked: read once in the calling process.
        self.named: dict[int, frozenset[str]] = {}

    def host(self, root: str) -> Host:
        if root not in self.hosts and root in self.config.archives:
            self.hosts[root] = repo.StoreHost(
                root=_worker_store(self, self.config.scan),
                shared=self.config.archives[root],
                max_bytes=self.config.store_bytes,
                scan=self.config.scan,
                ld_library_path=self.config.ld_library_path,
                preload=self.config.preload,
                isa_level=self.config.isa_level,
            )
        if root not in self.hosts:
            c = self.config
            # An archive's root is its index, not a tree (repo.py).
            kind = repo.ArchiveHost if repo.is_archive_root(root) else Host
            self.hosts[root] = kind(
                root=root,
                ld_library_path=c.ld_library_path,
                preload=c.preload,
                isa_level=c.isa_level,
            )
        return self.hosts[root]

    def run(self, chunk: Sequence[_Target], *, look_up: bool = True) -> list[_Outcome]:
        for host in self.hosts.values():
            if isinstance(host, repo.StoreHost):
                host.begin()  # within its bound before the task, not during it
        return [self.one(t, look_up=look_up) for t in chunk]

    def one(self, t: _Target, *, look_up: bool = True) -> _Outcome:
        """t's outcome; look_up=False: the parent found no valid cache entry for it."""
        try:
            if t.site.remote:  # a member of an archive indexed on a cluster: read it here
                file = self.host(t.site.root).locate(t.loader_path)
                t = msgspec.structs.replace(t, file=file or "")
            return self._analyse(t, look_up)
        except ElfcostError as exc:
            host = self.host(t.site.root)
            if isinstance(host, repo.ArchiveHost):  # a member, named as its archive holds it
                member = host.member_of(exc.path)
                if member != t.loader_path and member in host.index.members:
                    exc = ElfcostError(f"{t.site.prefix}{member}", exc.what, exc.why)
            elf = t.site.remote or is_elf(t.file)  # a remote member was ELF when indexed
            return _Outcome(kind="error", elf=elf, error=_message(exc, t))
        except Exception as exc:  # a bug in elfcost: one line for this file, the scan goes on
            return _Outcome(
                kind="error", error=f"{t.path}: internal error: {type(exc).__name__}: {exc}"
            )

    def quick(self, t: _Target, *, classify: bool = False) -> _Outcome | None:
        """t's outcome if it is not ELF or the cache has it, else None (analyse it). With
        `classify` (the files that go to workers), its headers are read here: a library or an
        object the loader refuses, found under a directory, needs no estimate and its cache
        entry is stored here (no worker needs to see it: most ELF files of a root file system
        are libraries); what the others name (DT_NEEDED) is kept for needed(). Never raises:
        an error here is found again, and reported, by the analysis."""
        if t.site.remote:
            return None  # its content is on the workers; not cached (an archive's member)
        try:
            if not t.elf and not is_elf(t.file):
                return _not_elf(t)
            slot = self._slot(t)
            hit = self._cached(t, slot)
            if hit is not None or not classify:
                return hit
            found = self._read(t, slot, sections=False, versions=False)
            if isinstance(found, _Outcome):
                return found
            self.named[id(t)] = frozenset(found.needed)
            return None
        except Exception:
            return None

    def needed(self, t: _Target) -> frozenset[str]:
        """The libraries t names (DT_NEEDED), as quick() read them, asked by the local pool as
        t is added: it sends the programs that name the same ones to the same worker, which
        reads and analyses each library once (libLLVM's constructors and 400,000 relocations
        take ~0.1 s). Nothing when t could not be read here (the analysis reports it) or is
        read on the workers (an archive's member on a cluster). The worker reads t's headers
        again: sending them would cost about what reading them does (~0.1 ms)."""
        return self.named.pop(id(t), frozenset())

    def _read(
        self, t: _Target, slot: _Slot | None, *, sections: bool, versions: bool = True
    ) -> Dso | _Outcome:
        """t's headers, or its outcome (its cache entry stored) when it needs no estimate: an
        object the loader refuses or a library, found under a directory. `versions=False`
        (classifying: the version tables only ever add a warning, never decide the kind)."""
        try:
            # Not kept unless resolved: most files under /usr/lib are never loaded by the
            # programs this worker sees, and Host keeps every object it reads for the run.
            dso = read_dso(t.file, path=t.loader_path, sections=sections, versions=versions)
        except UnsupportedElfError:
            if t.explicit:
                raise
            self._store(t, slot, None, cache.Entry(kind="not_loadable", text=None))
            return _Outcome(kind="not_loadable")
        if not dso.is_program and not t.explicit:
            self._store(t, slot, None, cache.Entry(kind="library", text=None))
            return _Outcome(kind="library")
        return dso

    def _analyse(self, t: _Target, look_up: bool) -> _Outcome:
        if not is_elf(t.file):
            return _not_elf(t)
        slot = self._slot(t)
        hit = self._cached(t, slot) if look_up else None
        if hit is not None:
            return hit
        host = self.host(t.site.root)
        # A file the host finds at its loader path is read as the host reads it, and handed
        # to it if it is resolved below, so that it is not read twice; any other (an archive's
        # member) headers only.
        same = not isinstance(host, repo.ArchiveHost) and host.locate(t.loader_path) == t.file
        dso = self._read(t, slot, sections=same and host.sections)
        if isinstance(dso, _Outcome):
            return dso
        kind = "program" if dso.is_program else "library"
        if same:
            host.adopt(t.loader_path, dso)
        graph = resolve(t.loader_path, host)
        # A program of another machine (a foreign root) is estimated with that machine's pages.
        size, note = page_size_for(graph.root.dso, self.config.page_size)
        opts = msgspec.structs.replace(self.config.estimate, page_size=size)
        est = with_page_note(estimate(graph, opts, memo=self.memo), note)
        found = None
        if self.config.relink is not None:
            host = self.host(t.site.root)
            est = relink_whatif(graph, self.config.relink, host, opts, dynamic=est)
            est = with_page_note(est, note)
        elif self.config.remedies and not self.config.static_libs:
            host = self.host(t.site.root)
            found = [
                (how, with_page_note(r, note))
                for how, r in remedies(graph, host, opts, dynamic=est)
            ]
        if self.config.static_libs and graph.root.dso.is_program:
            est = static_lib(graph, self.config.static_libs, opts, dynamic=est, strict=False)
        text = encode_line(estimate_doc(est, remedies=found))
        self._store(t, slot, graph, cache.Entry(kind=kind, text=text))
        return _Outcome(kind="program", text=text)

    def _slot(self, t: _Target) -> _Slot | None:
        """Where t's cache entry lives: keyed by the identity of the file (or of the archive
        it came from), the loader path, the root and the options that change the result."""
        if self.cache is None or t.site.index:
            return None  # an archive's results are not cached: its identity is many files
        identity_file = t.site.archive or t.file
        identity = cache.file_stat(identity_file)
        if identity is None:
            return None
        o = self.config.estimate
        key = [
            identity[:2],
            t.site.archive or t.site.real_root,
            t.loader_path,
            o.page_size,
            o.bind_now,
            self.config.relink,
            self.config.static_libs,
            self.config.ld_library_path,
            self.config.preload,
            self.config.isa_level,
        ]
        return _Slot(
            key=cache.digest(key),
            env=self.config.envs.get(t.site.root, ""),
            identity=(identity_file, identity),
        )

    def _cached(self, t: _Target, slot: _Slot | None) -> _Outcome | None:
        if slot is None or self.cache is None:
            return None
        entry = self.cache.load(slot.key, slot.env, self.host(t.site.root).locate)
        if entry is None:
            return None
        if entry.text is not None and (entry.kind == "program" or t.explicit):
            return _Outcome(kind="program", text=entry.text, cached=True)
        if not t.explicit and entry.kind == "library":
            return _Outcome(kind="library", cached=True)
        if not t.explicit and entry.kind == "not_loadable":
            return _Outcome(kind="not_loadable", cached=True)
        return None  # classified under a directory, now named: it needs an estimate

    def _store(
        self, t: _Target, slot: _Slot | None, graph: DependencyGraph | None, entry: cache.Entry
    ) -> None:
        if slot is None or self.cache is None:
            return
        files: set[str] = set()
        dirs: set[str] = set()
        # An archive's members change only with the archive, whose identity is checked.
        if graph is not None and t.site.archive is None:
            files, dirs = _depends_on(graph)
        locate = self.host(t.site.root).locate
        validity = self.cache.observe(slot.env, slot.identity, files, dirs, locate)
        self.cache.store(slot.key, validity, entry)


class _Slot(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # the entry's, in the cache
    env: str
    identity: tuple[str, cache.Stat]


def _not_elf(t: _Target) -> _Outcome:
    if t.explicit:
        return _Outcome(
            kind="error", elf=False, error=str(NotElfError(t.path, "", "not an ELF file"))
        )
    return _Outcome(kind="not_elf", elf=False)


def _depends_on(graph: DependencyGraph) -> tuple[set[str], set[str]]:
    """Loader paths of every object mapped, and of every directory the loader searched."""
    files = {o.dso.path for o in graph.objects}
    dirs = {posixpath.dirname(p) for p in files}
    for r in graph.resolutions:
        for a in r.tried:
            if a.path.startswith("/"):
                dirs.add(posixpath.dirname(a.path))
    return files, dirs


def _message(exc: ElfcostError, t: _Target) -> str:
    """The error with the file named as the user knows it, not as unpacked or located."""
    where = exc.path
    if where in (t.file, t.loader_path):
        where = t.path
    elif t.site.prefix is not None and where.startswith(t.site.real_root.rstrip("/") + "/"):
        where = t.site.prefix + "/" + os.path.relpath(where, t.site.real_root)
    return str(ElfcostError(where, exc.what, exc.why))


_WORKER: _Worker | None = None


def _init_worker(config: _Config) -> None:
    global _WORKER
    # A terminal's Ctrl-C reaches the whole process group: the scan's own process handles it
    # and ends the workers; SIGTERM ends a worker as it would any process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.set_threshold(*elfcost.COLLECTOR_THRESHOLDS)  # a process of elfcost's own (see there)
    elfcost.own_process()
    _WORKER = _Worker(config)
    if _WORKER.cache is not None:
        # The worker's pack of entries is indexed when it exits, which the scan waits for
        # (the pool's shutdown joins it): a scan that has returned has its entries found.
        multiprocessing.util.Finalize(None, _WORKER.cache.close, exitpriority=10)


def _run_chunk(chunk: Sequence[_Target]) -> list[_Outcome]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(chunk, look_up=False)


# A Dask worker's state, per thread (a worker may run several tasks at once in its threads):
# kept across the tasks of one scan, whose config is the same object in every task.
_TASK_STATE = threading.local()


def _run_task(config: _Config, chunk: Sequence[_Target]) -> list[_Outcome]:
    """One task on a Dask worker (engine.DaskEngine); the config was scattered to it once."""
    worker: _Worker | None = getattr(_TASK_STATE, "worker", None)
    if worker is None or worker.config is not config:
        worker = _TASK_STATE.worker = _Worker(config)
    try:
        return worker.run(chunk, look_up=False)
    finally:
        if worker.cache is not None:
            # A pack of the task's own: a worker is not told when a scan ends, and a task's
            # entries must be found once its results are.
            worker.cache.close()


def _package(t: _Target) -> Hashable | None:
    """The archive t came from (the package, in an archive indexed on a cluster): a cluster
    task holds whole packages."""
    return (t.site.archive, t.package) if t.site.remote else t.site.archive


def _preload() -> None:
    """What a worker imports for its first programs (numpy for relocation tables, capstone
    for initialisers, and elfcost's modules that use them),
    imported in this process before the workers are forked: they share it instead of each
    importing it (~0.15 s of CPU a worker; a cold scan of /usr/bin + /usr/sbin with 2 workers
    took 0.3 s less CPU). numpy as elfcost's own processes load it (elfcost.import_numpy)."""
    try:
        elfcost.import_numpy()
        for name in _PRELOADED:
            importlib.import_module(name)
    except ImportError:
        pass  # the worker that needs it says so, for its file


_PRELOADED = (
    "capstone",
    "elfcost.elf.ctors",
    "elfcost.elf.formats",
    "elfcost.elf.libc",
)


def _placed(placed: Mapping[tuple[str, str], str], t: _Target) -> str | None:
    """The cluster worker that indexed t's package and keeps its members, if known."""
    if t.site.archive is None or t.package is None:
        return None
    return placed.get((t.site.archive, t.package))


# What the workers of this process keep for each scan of an archive indexed on a cluster:
# directories, removed when the scan ends (release_stores) or with the _Worker.
_STORES: dict[str, list[str]] = {}
_STORES_LOCK = threading.Lock()


def _worker_store(owner: _Worker, scan: str) -> str:
    """An empty directory for an archive's members on this worker, removed with `owner` (a
    later scan's worker replaces it), at exit, or by release_stores(scan)."""
    d = tempfile.mkdtemp(prefix="elfcost-store-")
    weakref.finalize(owner, shutil.rmtree, d, True)
    with _STORES_LOCK:
        _STORES.setdefault(scan, []).append(d)
    return d


def release_stores(scan: str) -> None:
    """Run on every worker when the scan is done (engine.Work.release)."""
    with _STORES_LOCK:
        dirs = _STORES.pop(scan, [])
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    repo.release_kept(scan)


def _index_died(job: tuple[object, ...], why: str) -> repo.Indexed:
    """A package whose indexing task's workers died: not installed, the scan goes on."""
    file = str(job[0])
    return repo.Indexed(
        file=file, package=None, found={}, stored=[], written=0, error=f"{file}: indexing: {why}"
    )


# -- dispatch (in this process) ----------------------------------------------------------------


def _outcomes(
    targets: Iterable[_Target],
    config: _Config,
    jobs: int,
    hook: ProgressHook,
    client: distributed.Client | None = None,
    placed: Mapping[tuple[str, str], str] | None = None,
    answered: Callable[[], int] = lambda: 0,
) -> Iterator[tuple[_Target, _Outcome]]:
    """Every target's outcome, in target order. `targets`: a list, or an iterator that finds
    them as they are asked for (_Discovery.stream; the progress's total grows as it does);
    `answered()`: the files the walk has found not to be ELF so far, counted as done.

    This process answers what it can at once: input errors, files that are not ELF (four
    bytes read) and results the cache holds (a few stats), so a warm scan starts no worker
    and a directory of data files sends the workers only its ELF files. The rest goes to the
    workers in chunks (the local pool's, or the cluster's with `client`), while this process
    reads ahead; it waits for the oldest outstanding file once the engine's lookahead (for the
    local pool LOOKAHEAD) files are outstanding, or HELD files are waiting behind it, which
    bounds the outcomes held for files that come after it. (Counting outstanding files, not
    all files: an archive is mostly files that are not ELF, and the workers must not run dry
    while this process reads them.)
    """
    listed = isinstance(targets, Sequence)
    known = sum(1 for t in targets if t.error is None) if listed else 0
    progress = _Progress(hook, answered() + known, growing=not listed)
    counted = answered()
    if counted:
        progress.advance(counted)
    local = _Worker(config)
    work: engine.Work[_Target, _Outcome, _Config] = engine.Work(
        config=config,
        init=_init_worker,
        run=_run_chunk,
        remote=_run_task,
        died=_died,
        advance=progress.advance,
        package=_package,
        release=functools.partial(release_stores, config.scan) if config.scan else None,
        place=functools.partial(_placed, placed or {}),
        shares=local.needed,
        preload=_preload,
    )
    pool: engine.Engine[_Target, _Outcome] | None = None
    if client is not None:
        pool = engine.DaskEngine[_Target, _Outcome, _Config](client, work)
    elif jobs > 1:
        pool = engine.LocalPool[_Target, _Outcome, _Config](work, jobs, CHUNK, LOOKAHEAD)
    queue: collections.deque[tuple[_Target, _Outcome | None]] = collections.deque()
    try:
        for t in targets:
            if not listed:  # found since the last one: this target, and files not ELF
                walked = answered()
                progress.grow(walked - counted + (t.error is None), done=walked - counted)
                counted = walked
            if t.error:
                o: _Outcome | None = _Outcome(kind="error", elf=False, error=t.error)
            else:
                o = local.quick(t, classify=pool is not None)
            if o is None and pool is None:
                o = local.one(t, look_up=False)
            if o is None and pool is not None:
                pool.add(t)
                local.named.pop(id(t), None)  # an engine that did not ask
            elif t.error is None:
                progress.advance(1)
            queue.append((t, o))
            yield from _drain(queue, pool, keep=HELD)
        if not listed:  # the walk is over: the total is known
            walked = answered()
            progress.grow(walked - counted, done=walked - counted)
            progress.close()
        yield from _drain(queue, pool, keep=0)
    except BaseException:  # interrupted, or the caller stopped early: end the workers now
        if pool is not None:
            pool.abort()
        raise
    finally:
        if pool is not None:
            pool.close()  # the workers' packs of entries are indexed once it returns
        if local.cache is not None:
            local.cache.close()
    if local.cache is not None:
        local.cache.tidy()  # every run adds packs: merged once there are many


def _drain(
    queue: collections.deque[tuple[_Target, _Outcome | None]],
    pool: engine.Engine[_Target, _Outcome] | None,
    keep: int,
) -> Iterator[tuple[_Target, _Outcome]]:
    """The finished outcomes at the head of the queue, waiting while more than `keep` wait
    or more than the engine's lookahead are with it."""
    while queue:
        t, o = queue[0]
        if o is None:
            assert pool is not None  # only the pool leaves an outcome to come
            o = pool.take(t, block=len(queue) > keep or pool.outstanding > pool.lookahead)
            if o is None:
                return
        queue.popleft()
        yield t, o


class _Progress:
    """Calls the hook at the start, at the end, and at most every PROGRESS_EVERY seconds in
    between: a warm scan of /usr/lib answers 60,000 files in a few seconds. A `growing`
    total (files still being found) is final once close() is called; until then, reaching
    it is not the end."""

    def __init__(self, hook: ProgressHook, total: int, *, growing: bool = False) -> None:
        self.hook, self.total, self.done = hook, total, 0
        self.growing = growing
        self.last = time.monotonic()
        hook(0, total)

    def grow(self, more: int, *, done: int = 0) -> None:
        """`more` files found, of which `done` are answered already."""
        self.total += more
        self.advance(done)

    def close(self) -> None:
        if self.growing:
            self.growing = False
            self.advance(0)

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        end = self.done >= self.total and not self.growing
        if end or now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.hook(self.done, self.total)


def _died(chunk: Sequence[_Target], why: str) -> list[_Outcome]:
    """A worker died (killed, out of memory): its files are errors, the scan goes on."""
    return [_Outcome(kind="error", error=f"{t.path}: analysis: {why}") for t in chunk]


# -- results -----------------------------------------------------------------------------------


class _Counts(msgspec.Struct):
    files: int = 0
    elf: int = 0
    programs: int = 0
    libraries: int = 0
    not_elf: int = 0
    not_loadable: int = 0
    symlinks: int = 0
    duplicates: int = 0
    archives: int = 0
    errors: int = 0
    hits: int = 0
    roots: list[ArchiveRoot] = msgspec.field(default_factory=list)

    def add(self, t: _Target, o: _Outcome) -> None:
        self.files += t.error is None
        self.elf += o.elf
        self.programs += o.kind == "program"
        self.libraries += o.kind == "library"
        self.not_elf += o.kind == "not_elf"
        self.not_loadable += o.kind == "not_loadable"
        self.errors += o.kind == "error"
        self.hits += o.cached

    def summary(self) -> ScanSummary:
        return ScanSummary(
            files_seen=self.files,
            elf_files=self.elf,
            executables=self.programs,
            libraries=self.libraries,
            skipped_non_elf=self.not_elf,
            not_loadable=self.not_loadable,
            symlinks=self.symlinks,
            duplicates=self.duplicates,
            archives=self.archives,
            errors=self.errors,
            cache_hits=self.hits,
            archive_roots=tuple(self.roots),
        )


def _result(t: _Target, o: _Outcome) -> ScanResult | None:
    if o.kind == "program" and o.text is not None:
        return ScanResult(
            path=t.path,
            loader_path=t.loader_path,
            doc_json=o.text.decode(),
            error=None,
            cached=o.cached,
            package=t.package,
        )
    if o.kind == "error":
        return ScanResult(
            path=t.path, loader_path=t.loader_path, doc_json=None, error=o.error, package=t.package
        )
    return None


def archive_root(shown: str, index: repo.ArchiveIndex) -> ArchiveRoot:
    """What the summary says of one archive scanned as a root."""
    return ArchiveRoot(
        path=shown,
        kind=index.kind,
        architecture=index.architecture,
        machine=index.machine,
        packages=tuple(
            InstalledPackage(name=p.name, version=p.version, file=p.file) for p in index.packages
        ),
        errors=len(index.errors),
        conflicts=index.conflicts,
    )
