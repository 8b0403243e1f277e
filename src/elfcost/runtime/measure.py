"""Measure a process (live, or from files captured on another machine) and write it as JSON.

Live: `measure_pid` reads /proc/PID/{smaps,smaps_rollup,pagemap,auxv} and attributes them
(attribute.py). Best on a process held still (launch.Launched holds it under ptrace), so that
smaps, smaps_rollup and pagemap describe the same moment.

Captured: `measure_capture` reads a directory or a tar file holding copies of those files. /proc
files report a size of 0, so `tar -C /proc/PID smaps` archives empty files; copy them with `cat`
first. pagemap cannot be copied whole (it has an entry for every page of the address space, 256
GiB on x86_64), so each mapped range is copied on its own with `dd`, into pagemap/START-END (the
range as printed in maps). Run this on the target (POSIX sh; busybox works; PAGE is the page
size, `getconf PAGESIZE`; `---p` ranges and the 16-digit [vsyscall] range are skipped):

    P=1234 PAGE=4096 D=/tmp/elfcost-cap; mkdir -p $D/pagemap && cd /proc/$P &&
    for f in smaps smaps_rollup maps auxv; do cat $f >$D/$f; done; echo $P >$D/pid;
    while read r p x; do case $r$p in ????????????????-*|*---p) continue;; esac;
    s=$((0x${r%-*}/PAGE)); n=$((0x${r#*-}/PAGE-s));
    dd if=pagemap of=$D/pagemap/$r bs=8 skip=$s count=$n 2>/dev/null; done <$D/maps;
    tar czf $D.tgz -C $D . && echo $D.tgz

`kill -STOP $P` before and `kill -CONT $P` after make the copies agree with each other. Only
smaps is required; without pagemap there are no written pages, and without auxv the page size
is taken from smaps' KernelPageSize.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import msgspec

import elfcost
from elfcost.documents import GroupRow as GroupRowDoc
from elfcost.documents import (
    MeasuredBucket,
    MeasuredObject,
    MeasurementDoc,
    MeasurementGroupDoc,
    UsageDoc,
)
from elfcost.elf.symbols import glibc_pthread_size
from elfcost.errors import Each, ElfcostError, InputError, MeasurementError
from elfcost.model import Dso
from elfcost.runtime.attribute import (
    GLIBC_X86_64_TCB_BYTES,
    MappedObject,
    attribute,
    group,
    reconcile,
)
from elfcost.runtime.auxv import AT_PAGESZ, parse_auxv
from elfcost.runtime.capture import (
    Capture,
    capture_objects,
    check_pagemap,
    mapped_files,
    read_capture,
    read_smaps_file,
)
from elfcost.runtime.launch import CLEAN_PATH, At, Launched
from elfcost.runtime.pagemap import decode, read_pagemap
from elfcost.runtime.procfs import read_bytes, read_text
from elfcost.runtime.records import (
    GroupRow,
    Measurement,
    PageFlags,
    ProgramGroup,
    SmapsEntry,
    Stop,
    Usage,
    sum_usage,
    usage_of,
)
from elfcost.runtime.smaps import parse_rollup, parse_smaps

USER_ADDRESS_LIMIT = 1 << 56  # above any user address (57-bit VA); [vsyscall] lives up there
# The command above, for tests and for `--help` texts: P, PAGE and D are set by the caller.
CAPTURE_SCRIPT = (
    "mkdir -p $D/pagemap && cd /proc/$P &&\n"
    "for f in smaps smaps_rollup maps auxv; do cat $f >$D/$f; done; echo $P >$D/pid;\n"
    "while read r p x; do case $r$p in ????????????????-*|*---p) continue;; esac;\n"
    "s=$((0x${r%-*}/PAGE)); n=$((0x${r#*-}/PAGE-s));\n"
    "dd if=pagemap of=$D/pagemap/$r bs=8 skip=$s count=$n 2>/dev/null; done <$D/maps;\n"
    "tar czf $D.tgz -C $D . && echo $D.tgz\n"
)


def object_names(dso: Dso) -> tuple[str, ...]:
    """The pathnames smaps may print for `dso`: as given, and with symbolic links resolved."""
    names = {dso.path, dso.file}
    for p in (dso.path, dso.file):
        names.add(os.path.realpath(p))
    return tuple(sorted(names))


def mapped_objects(dsos: Iterable[Dso | MappedObject]) -> list[MappedObject]:
    return [
        d if isinstance(d, MappedObject) else MappedObject(dso=d, names=object_names(d))
        for d in dsos
    ]


def pagemap_ranges(entries: Sequence[SmapsEntry]) -> list[tuple[int, int]]:
    """The lines worth reading pagemap for: user addresses with something resident or swapped."""
    return [
        (e.start, e.end)
        for e in entries
        if e.end <= USER_ADDRESS_LIMIT and e.start < e.end and (e.rss or e.swap)
    ]


def measure_pid(
    pid: int,
    dsos: Iterable[Dso | MappedObject],
    *,
    stop: Stop = "snapshot",
    thread_pointer: int | None = None,
    sync: bool = True,
    pagemap: bool = True,
) -> Measurement:
    """Measure process `pid` now and attribute its memory to `dsos` (in load order).

    `sync` writes back dirty page cache first: a binary written moments ago would otherwise show
    its text as Private_Dirty (loader-model.md §1.6). `thread_pointer` (from a ptrace stop: %fs
    base, or %gs base for i386) places the TLS block. Raises MeasurementError if /proc cannot be
    read.
    """
    if sync:
        os.sync()
    auxv = parse_auxv(read_bytes(pid, "auxv"))
    page_size = auxv.get(AT_PAGESZ) or os.sysconf("SC_PAGE_SIZE")
    entries, rollup = read_smaps_and_rollup(pid)
    pages = read_pagemap(pid, pagemap_ranges(entries), page_size=page_size) if pagemap else None
    objects = mapped_objects(dsos)
    return attribute(
        entries,
        objects,
        pid=pid,
        page_size=page_size,
        stop=stop,
        pages=pages,
        rollup=rollup,
        thread_pointer=thread_pointer,
        auxv=auxv,
        tcb_bytes=_tcb_bytes(objects) if thread_pointer else GLIBC_X86_64_TCB_BYTES,
    )


def _tcb_bytes(objects: Sequence[MappedObject]) -> int:
    """The TCB above the thread pointer: glibc's sizeof (struct pthread) as its libc records it
    (1216 B for i386, 2368 B for x86_64 glibc 2.36), else x86_64 glibc's."""
    return glibc_pthread_size(o.dso for o in objects) or GLIBC_X86_64_TCB_BYTES


SMAPS_ATTEMPTS = 3


def read_smaps_and_rollup(pid: int) -> tuple[tuple[SmapsEntry, ...], dict[str, int]]:
    """smaps and smaps_rollup read back to back, until they agree.

    Even for a process held still, Pss moves whenever another process maps or unmaps a page it
    shares (every libc mapping on the machine), and the two files are two separate reads; so a
    read whose sums disagree with the rollup is retried a few times before it is kept (and
    attribute.reconcile then reports the difference).
    """
    for _ in range(SMAPS_ATTEMPTS):
        entries = parse_smaps(read_text(pid, "smaps"), source=f"/proc/{pid}/smaps")
        try:
            text = read_text(pid, "smaps_rollup")
        except MeasurementError:
            return entries, {}  # before 4.14
        rollup = parse_rollup(text, source=f"/proc/{pid}/smaps_rollup")
        total = sum_usage(usage_of(e) for e in entries)
        if not reconcile(total, rollup, lines=len(entries)):
            break
    return entries, rollup


def measure_launched(
    launched: Launched, dsos: Iterable[Dso | MappedObject], *, sync: bool = True
) -> Measurement:
    """Measure a process started and held by `Launched`, at the point it is held."""
    return measure_pid(
        launched.target_pid,
        dsos,
        stop=launched.stop,
        thread_pointer=launched.thread_pointer,
        sync=sync,
    )


# ---------------------------------------------------------------------------------------------
# Captures


def capture_pages(cap: Capture, page_size: int) -> tuple[PageFlags, ...] | None:
    """The capture's pagemap/START-END files as PageFlags; None if it has none."""
    check_pagemap(cap, page_size)
    out = [decode(data, start=start, page_size=page_size) for start, _end, data in cap.pagemap]
    return tuple(out) if out else None


def capture_page_size(cap: Capture, entries: Sequence[SmapsEntry], auxv: Mapping[int, int]) -> int:
    """AT_PAGESZ, else the KernelPageSize smaps prints, else 4096; refused unless a power of
    two the kernel could run with (4 KiB to 1 MiB: every port's base page size lies within)."""
    size = auxv.get(AT_PAGESZ) or next(
        (e.kernel_page_size for e in entries if e.kernel_page_size), 4096
    )
    if size & (size - 1) or not 4096 <= size <= 1 << 20:
        what = "auxv" if auxv.get(AT_PAGESZ) else "smaps"
        raise InputError(cap.name(what), "page size", f"{size} is not a page size")
    return size


def measure_capture(
    source: str | Capture,
    dsos: Iterable[Dso | MappedObject] | None = None,
    *,
    stop: Stop = "snapshot",
    root: str = "/",
) -> Measurement:
    """Measure from files captured with the command in this module's docstring.

    `source` is the capture directory or a tar file (any compression tarfile reads), or a
    Capture already read. `dsos` are matched by (dev, inode), else by path, else by an
    unambiguous file name (with a warning); None: the ELF files the capture's smaps names, read
    under `root` (a copy of the target's file system; capture.capture_objects).
    """
    cap = source if isinstance(source, Capture) else read_capture(source)
    if "smaps" not in cap.files:
        raise InputError(cap.source, "reading the capture", "no smaps file in it")
    text = cap.files["smaps"].decode("utf-8", "surrogateescape")
    entries = parse_smaps(text, source=cap.name("smaps"))
    if not entries:  # every process maps its stack and the vDSO at least; a kernel thread none
        raise InputError(cap.name("smaps"), "reading the capture", "no mapping in it")
    auxv = parse_auxv(cap.files["auxv"]) if "auxv" in cap.files else {}
    page_size = capture_page_size(cap, entries, auxv)
    rollup_text = cap.files.get("smaps_rollup", b"").decode("utf-8", "surrogateescape")
    rollup = parse_rollup(rollup_text, source=cap.name("smaps_rollup")) if rollup_text else {}
    pid_text = cap.files.get("pid", b"").strip()
    notes: list[str] = []
    if dsos is None:
        objects, notes = capture_objects(entries, auxv, root)
    else:
        objects = mapped_objects(dsos)
    return attribute(
        entries,
        objects,
        pid=int(pid_text) if pid_text.isdigit() else 0,
        page_size=page_size,
        stop=stop,
        pages=capture_pages(cap, page_size),
        rollup=rollup,
        auxv=auxv,
        warnings=notes,
    )


# ---------------------------------------------------------------------------------------------
# Discovering the objects of a running process


def smaps_ids(dsos: Sequence[Dso]) -> frozenset[tuple[int, int, int]]:
    """The (major, minor, inode) by which smaps names each file of `dsos`."""
    return frozenset(
        (os.major(d.file_id.dev), os.minor(d.file_id.dev), d.file_id.ino) for d in dsos
    )


def discover_dsos(
    pid: int,
    entries: Sequence[SmapsEntry] | None = None,
    *,
    skip: frozenset[tuple[int, int, int]] = frozenset(),
) -> tuple[Dso, ...]:
    """The ELF objects mapped in `pid`: the executable first, then the rest by falling address.

    glibc and musl map libraries top-down in load order, so falling address approximates it.
    Each file is read through /proc/PID/map_files, which reaches deleted files and other mount
    namespaces. Files that are not ELF (locale archives, caches) are skipped, and so are the
    files in `skip`, given as smaps prints them: (major, minor, inode).
    """
    from elfcost.elf.reader import is_elf, read_dso

    if entries is None:
        entries = parse_smaps(read_text(pid, "smaps"), source=f"/proc/{pid}/smaps")
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError as exc:
        raise MeasurementError(f"/proc/{pid}/exe", "readlink", exc.strerror or str(exc)) from None
    out: list[Dso] = []
    for e in mapped_files(entries, exe):
        if (*e.dev_major_minor, e.inode) in skip:
            continue  # already read by the caller (the objects it planned for)
        file = f"/proc/{pid}/map_files/{e.start:x}-{e.end:x}"
        if not is_elf(file):
            continue
        try:
            out.append(read_dso(file, path=e.name, sections=False))
        except ElfcostError:
            continue
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Planning a measurement of a program started for it


def environment(items: Sequence[str], *, clean: bool = False) -> dict[str, str]:
    """The started program's environment: elfcost's own as it was given (or only PATH, if
    `clean`), with each NAME=VALUE of `items` set."""
    env = {"PATH": CLEAN_PATH} if clean else dict(os.environ)
    for name in elfcost.ADDED_ENVIRONMENT:  # elfcost's setting, not the program's
        env.pop(name, None)
    for item in items:
        key, _, value = item.partition("=")
        env[key] = value
    return env


class Start(msgspec.Struct, frozen=True, kw_only=True):
    """How a program is started to be measured (launch.Launched's settings): its environment
    (`environment` of `env` and `clean_env`), and when it is idle or given up on."""

    env: tuple[str, ...] = ()  # NAME=VALUE
    clean_env: bool = False
    settle: float = 0.3
    delay: float | None = None
    timeout: float = 10.0

    def launch(
        self, argv: Sequence[str], at: At, *, follow: str | None = None, root: str | None = None
    ) -> Launched:
        """`argv` started and held at `at` (a `with` block's); inside `root` (chroot) if given."""
        return Launched(
            list(argv),
            at=at,
            env=environment(self.env, clean=self.clean_env),
            settle=self.settle,
            delay=self.delay,
            timeout=self.timeout,
            follow=follow,
            root=root,
        )


DEFAULT_START = Start()


def planned_dsos(program: str) -> list[Dso]:
    """The objects elfcost's resolver expects for `program` (searched on PATH without a '/'),
    so that measure names them as estimate does; none for a file that is not ELF (a script)."""
    from elfcost.resolve.host import Host
    from elfcost.resolve.search import resolve

    path = program if "/" in program else (shutil.which(program) or program)
    try:
        return [o.dso for o in resolve(path, Host()).objects]
    except ElfcostError:
        return []  # not an ELF file: measure what the process maps


def measure_command(
    argv: Sequence[str], start: Start = DEFAULT_START, *, at: At = "idle", follow: str | None = None
) -> Measurement:
    """Start `argv`, hold it at `at`, measure it and kill it. The objects the resolver planned
    come first (their path strings), then anything else mapped (dlopen); a followed
    descendant is a different program, so nothing is planned for it."""
    planned = planned_dsos(argv[0]) if follow is None else []
    with start.launch(argv, at, follow=follow) as p:
        ids = {d.file_id for d in planned}
        found = discover_dsos(p.target_pid, skip=smaps_ids(planned))
        return measure_launched(p, [*planned, *(d for d in found if d.file_id not in ids)])


def measure(
    command: Sequence[str] = (),
    pids: Sequence[int] = (),
    capture: str | None = None,
    *,
    smaps: str | None = None,
    root: str = "/",
    start: Start = DEFAULT_START,
    at: At = "idle",
    follow: str | None = None,
    each: Each = nullcontext,
) -> list[Measurement]:
    """`elfcost measure`: `command` started for it (measure_command), each live process of
    `pids`, the files captured in `capture` (a directory or tar file) and a saved `smaps` file
    (with the rest of its capture beside it), each under `each`. A capture's objects are read
    under `root`."""
    out: list[Measurement] = []
    if command:
        with each():
            out.append(measure_command(command, start, at=at, follow=follow))
    for pid in pids:
        with each():
            out.append(measure_pid(pid, discover_dsos(pid)))
    if capture:
        with each():
            out.append(measure_capture(capture, root=root))
    if smaps:
        with each():
            out.append(measure_capture(read_smaps_file(smaps), root=root))
    return out


def group_of(measurements: Sequence[Measurement]) -> ProgramGroup:
    """Several processes of one program summed (attribute.group), named by its executable."""
    first = measurements[0].objects
    return group(os.path.basename(first[0].path) if first else "?", measurements)


# ---------------------------------------------------------------------------------------------
# JSON


def _usage_fields(u: Usage) -> dict[str, int]:
    return {
        "private_dirty": u.private_dirty,
        "private_clean": u.private_clean,
        "shared_clean": u.shared_clean,
        "shared_dirty": u.shared_dirty,
        "rss": u.rss,
        "pss": u.pss,
        "swap": u.swap,
    }


def to_json(m: Measurement) -> MeasurementDoc:
    """The measurement as its document, `elfcost.measurement/1`.

    Sizes are bytes; object `written_pages` are link-time page addresses (runtime - load_base),
    process buckets' are runtime page addresses.
    """
    page_size: Any = m.page_size  # a page size the kernel reported: one of documents.PageSize
    stop: Any = m.stop
    return MeasurementDoc(
        pid=m.pid,
        page_size=page_size,
        stop=stop,
        objects=tuple(
            MeasuredObject(
                path=o.path,
                mapped_path=o.mapped_path,
                load_base=o.load_base,
                **_usage_fields(o.usage),
                written_pages=o.written_pages,
            )
            for o in m.objects
        ),
        process={
            b.name: MeasuredBucket(**_usage_fields(b.usage), written_pages=b.written_pages)
            for b in m.buckets
        },
        total=UsageDoc(**_usage_fields(m.total)),
        rollup=dict(m.rollup),
        has_pagemap=m.has_pagemap,
        thread_pointer=m.thread_pointer,
        warnings=m.warnings,
    )


def group_to_json(g: ProgramGroup) -> MeasurementGroupDoc:
    """Several processes of one program (ps_mem style), `elfcost.measurement-group/1`."""

    def row(r: GroupRow) -> GroupRowDoc:
        return GroupRowDoc(
            name=r.name,
            uss=r.uss,
            pss=r.pss,
            rss=r.rss,
            shared=r.shared,
            private_dirty=r.private_dirty,
            swap=r.swap,
        )

    return MeasurementGroupDoc(
        name=g.name,
        pids=g.pids,
        total=row(g.total),
        objects=tuple(row(o) for o in g.objects),
        process=tuple(row(b) for b in g.buckets),
    )
