"""`elfcost measure --all`: every process the caller may read, measured once each.

Only what /proc lets the caller read without ptrace: /proc/PID/smaps and smaps_rollup (the
kernel checks PTRACE_MODE_READ, so a user reads their own processes and root reads all of them,
but nothing is attached or stopped), and the ELF files the mappings name. pagemap is not read:
per-page detail for hundreds of processes costs more than it tells, so written pages are not
reported and a line split between an object and something else is divided by page count.

A busy machine changes while it is read: a process can exit between listing /proc and reading
its smaps, or between smaps and smaps_rollup. Such a process is skipped and counted as vanished;
one whose files the caller may not read (another user's, as non-root) is counted as unreadable;
kernel threads and zombies map nothing and are counted apart. None of these is an error.

Each ELF file is read once per run, keyed by the (device, inode) smaps prints: by the path
smaps shows when that path still names the mapped file, else through /proc/PID/map_files
(root only: a deleted file, another mount namespace). A file reached neither way is not an
object: its pages stay in [other_file].
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence

import msgspec

from elfcost.elf.reader import is_elf, read_dso
from elfcost.errors import ElfcostError, MeasurementError
from elfcost.model import Dso, Estimate
from elfcost.runtime.attribute import MappedObject, attribute
from elfcost.runtime.capture import mapped_files
from elfcost.runtime.measure import read_smaps_and_rollup
from elfcost.runtime.records import (
    DELETED_SUFFIX,
    USAGE_FIELDS,
    SmapsEntry,
    Usage,
)

# smaps_rollup field -> Usage attribute (the rollup prints every smaps counter, summed).
ROLLUP_USAGE: Mapping[str, str] = {
    "Rss": "rss",
    "Pss": "pss",
    "Pss_Dirty": "pss_dirty",
    "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty",
    "Private_Clean": "private_clean",
    "Private_Dirty": "private_dirty",
    "Anonymous": "anonymous",
    "Swap": "swap",
    "SwapPss": "swap_pss",
}


class ProcessSample(msgspec.Struct, frozen=True, kw_only=True):
    """One process of the machine: its totals and what each object and bucket holds."""

    pid: int
    program: str  # the executable's path as smaps shows it; "[comm]" when it maps none
    exe_id: tuple[int, int, int] | None  # the executable's (major, minor, inode) in smaps
    usage: Usage  # smaps_rollup (the sum of the smaps lines where there is no rollup)
    lines_usage: Usage  # the sum of the smaps lines, which objects and buckets add up to
    objects: tuple[tuple[str, Usage], ...]  # (path as smaps shows it, usage), load order
    buckets: tuple[tuple[str, Usage], ...]  # records.BUCKET_NAMES order


class MachineRead(msgspec.Struct, frozen=True, kw_only=True):
    """Every process read, and the ones that could not be."""

    page_size: int
    samples: tuple[ProcessSample, ...]  # by pid
    vanished: int  # exited while being read
    unreadable: int  # not the caller's to read (EACCES, EPERM)
    without_memory: int  # kernel threads and zombies: nothing mapped


FileKey = tuple[int, int, int]  # (major, minor, inode) as smaps prints them


class _Files:
    """The ELF objects of the machine, each read once: (major, minor, inode) -> Dso or None."""

    def __init__(self) -> None:
        self.known: dict[FileKey, Dso | None] = {}

    def get(self, pid: int, e: SmapsEntry) -> Dso | None:
        key = (*e.dev_major_minor, e.inode)
        if key not in self.known:
            self.known[key] = self._read(pid, e, key)
        return self.known[key]

    @staticmethod
    def _read(pid: int, e: SmapsEntry, key: FileKey) -> Dso | None:
        candidates = []
        if not e.deleted and e.name.startswith("/"):
            try:
                st = os.stat(e.name)
                if (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) == key:
                    candidates.append(e.name)
            except OSError:
                pass
        candidates.append(f"/proc/{pid}/map_files/{e.start:x}-{e.end:x}")
        for file in candidates:
            if not is_elf(file):
                continue
            try:
                return read_dso(file, path=e.name, sections=False)
            except ElfcostError:
                continue
        return None


def _usage_of_rollup(rollup: Mapping[str, int], lines: Usage) -> Usage:
    """The process's counters from smaps_rollup, each missing one from the smaps lines."""
    fields = {f: getattr(lines, f) for f in USAGE_FIELDS}
    for name, attr in ROLLUP_USAGE.items():
        if name in rollup:
            fields[attr] = rollup[name]
    return Usage(**fields)


def _program(pid: int, entries: Sequence[SmapsEntry]) -> str:
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(DELETED_SUFFIX)
    except OSError:
        exe = ""
    if exe and any(e.name == exe for e in entries):
        return exe
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            comm = f.read(64).decode("utf-8", "replace").strip()
    except OSError:
        comm = "?"
    return f"[{comm}]"


def sample(pid: int, files: _Files, page_size: int) -> ProcessSample | None:
    """Process `pid` measured (None: it maps nothing); raises MeasurementError."""
    entries, rollup = read_smaps_and_rollup(pid)
    if not entries:
        return None
    program = _program(pid, entries)
    exe = next((e for e in entries if e.is_file and e.name == program), None)
    objects = []
    for e in mapped_files(entries, program):
        dso = files.get(pid, e)
        if dso is not None:
            objects.append(MappedObject(dso=dso, names=(e.name,)))
    m = attribute(entries, objects, pid=pid, page_size=page_size, stop="snapshot", pages=None)
    return ProcessSample(
        pid=pid,
        program=program,
        exe_id=(*exe.dev_major_minor, exe.inode) if exe is not None else None,
        usage=_usage_of_rollup(rollup, m.total),
        lines_usage=m.total,
        objects=tuple((o.path, o.usage) for o in m.objects if o.mapped_path is not None),
        buckets=tuple((b.name, b.usage) for b in m.buckets),
    )


def _gone(pid: int, exc: MeasurementError) -> bool:
    """Whether a read failed because the process exited (else: it was not ours to read)."""
    denied = {os.strerror(errno.EACCES), os.strerror(errno.EPERM)}
    return exc.why not in denied or not os.path.exists(f"/proc/{pid}")


def read_machine(
    *, pids: Sequence[int] | None = None, progress: Callable[[int, int], None] | None = None
) -> MachineRead:
    """Every process in /proc but this one (or those of `pids`), measured once each."""
    if pids is None:
        try:
            pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
        except OSError as exc:
            raise MeasurementError("/proc", "listing", exc.strerror or str(exc)) from None
    me = os.getpid()
    page_size = os.sysconf("SC_PAGE_SIZE")
    files = _Files()
    samples: list[ProcessSample] = []
    vanished = unreadable = empty = 0
    todo = [p for p in pids if p != me]
    for i, pid in enumerate(todo):
        if progress is not None:
            progress(i, len(todo))
        try:
            s = sample(pid, files, page_size)
        except MeasurementError as exc:
            if _gone(pid, exc):
                vanished += 1
            else:
                unreadable += 1
            continue
        if s is None:
            empty += 1
        else:
            samples.append(s)
    return MachineRead(
        page_size=page_size,
        samples=tuple(samples),
        vanished=vanished,
        unreadable=unreadable,
        without_memory=empty,
    )


# ---------------------------------------------------------------------------------------------
# The model's view of the machine's programs


class ProgramEstimates(msgspec.Struct, frozen=True, kw_only=True):
    """Each program's estimate as built and, with an `--assume`, relinked; and the programs
    that could not be estimated, with the reason."""

    as_built: Mapping[str, Estimate]
    relinked: Mapping[str, Estimate]
    not_estimated: Mapping[str, str]


def estimate_programs(
    samples: Sequence[ProcessSample], page_size: int, assume: str | None = None
) -> ProgramEstimates:
    """The estimate of each program `samples` run, read from this machine's files, once per
    program; with `assume` (a cost/whatif.py RELINKS key), its what-if too. A program is
    estimated only when its path here is the file the processes map (same device and inode):
    not a deleted or replaced executable, nor one seen in another mount namespace."""
    from elfcost.cost.estimate import Options
    from elfcost.cost.whatif import RELINKS
    from elfcost.predict import ObjectMemo, estimate, relink_whatif
    from elfcost.resolve.host import Host
    from elfcost.resolve.search import resolve

    host = Host()  # with section headers: the constructor analysis reads them, as estimate does
    memo = ObjectMemo()  # each library read and estimated once for every program loading it
    options = Options(page_size=page_size)
    as_built: dict[str, Estimate] = {}
    relinked: dict[str, Estimate] = {}
    failed: dict[str, str] = {}
    for program, exe_id in dict.fromkeys((s.program, s.exe_id) for s in samples):
        if program in as_built or program in failed:
            continue
        if exe_id is None:
            failed[program] = "no executable file mapped"
            continue
        try:
            st = os.stat(program)
        except OSError as exc:
            failed[program] = exc.strerror or str(exc)
            continue
        if (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) != exe_id:
            failed[program] = "not the file the processes run (replaced, or another namespace)"
            continue
        try:
            graph = resolve(program, host)
            est = estimate(graph, options, memo=memo)
            as_built[program] = est
            if assume is not None and assume in RELINKS:
                relinked[program] = relink_whatif(graph, assume, host, options, dynamic=est)
        except ElfcostError as exc:
            as_built.pop(program, None)
            failed[program] = exc.why
    return ProgramEstimates(as_built=as_built, relinked=relinked, not_estimated=failed)
