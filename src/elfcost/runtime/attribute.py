"""smaps lines + pagemap flags + the loaded ELF objects → a per-object `Measurement` (pure).

Every page of every smaps line goes to exactly one owner:

1. A file line of a given object (matched by the (dev, inode) that smaps prints against the
   Dso's `file_id`, else by pathname) goes to that object whole: text, rodata, the `r--p` line
   that RELRO's mprotect split off the data segment, the `rw-p` data line, `---p` gaps.
2. Every other page inside an object's span [base + min p_vaddr, base + max(p_vaddr + p_memsz)),
   page-rounded, goes to that object: the anonymous .bss beyond the file (binfmt_elf's
   `elf_load`, glibc's `_dl_map_segments` zero-fill mmap, musl's `map_library`). Containment is by
   address only, never by adjacency: the loader's malloc often mmaps right after a library, and
   adjacent anonymous mappings with equal flags merge into one line (mm/vma.c), so one smaps line
   can hold a library's .bss tail and unrelated memory (loader-model.md §1).
3. The rest goes to a process bucket (records.BUCKET_NAMES): [stack]; [heap]; `tls`, the pages
   of [thread pointer - the initial modules' PT_TLS blocks, thread pointer + TCB) (x86_64's
   TLS_TCB_AT_TP layout, glibc and musl alike) cut out of whichever anonymous mapping holds
   them, [heap] included (static glibc puts TLS on brk); `loader_heap`, lines named
   "[anon: glibc: loader malloc]" and, at the exec and entry stops, every other unnamed
   anonymous mapping, because by then only the kernel and ld.so have run (after that, ld.so's
   and the program's mmaps look the same and go to `other_anon`); `vdso` for [vdso], [vvar]
   and friends; `other_anon`; `other_file` for files that are none of the objects.

Written pages are pagemap's `present && !file && exclusive` (pagemap.py). Pages written through
a MAP_SHARED mapping are page cache, so pagemap marks them as file pages: they show in smaps'
counters but never in `written_pages`.

Where a line is split between owners, its smaps counters are apportioned page by page: each
counter is divided in proportion to the pages of each part that can hold it according to pagemap
(Private_Dirty by written pages, Rss and Pss by present pages, Swap by swapped pages, ...; see
`_WEIGHTS`), with largest-remainder rounding in whole pages (or kB) so that the parts add up to
the line exactly. Without pagemap data for the line the division is by page count, and a warning
says so. A line that is not split keeps its counters exactly as smaps printed them.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Mapping, Sequence

import msgspec
import numpy as np
from msgspec.structs import replace

from elfcost.model import ET_EXEC, Dso
from elfcost.runtime import pagemap as pm
from elfcost.runtime.auxv import AT_BASE, AT_ENTRY
from elfcost.runtime.records import (
    BUCKET_NAMES,
    USAGE_FIELDS,
    ZERO_USAGE,
    BucketName,
    GroupRow,
    LineShare,
    MatchedBy,
    Measurement,
    ObjectMeasurement,
    PageFlags,
    ProcessBucket,
    ProgramGroup,
    SmapsEntry,
    Stop,
    Usage,
    sum_usage,
    usage_of,
)

# TLS_TCB_SIZE on x86_64 glibc = sizeof(struct pthread), whose first member is the tcbhead_t the
# thread pointer points at (sysdeps/x86_64/nptl/tls.h, nptl/descr.h). 2368 in Debian 12's glibc
# 2.36: libc.so.6 exports it for libthread_db as `_thread_db_sizeof_pthread` (nptl_db/structs.def).
GLIBC_X86_64_TCB_BYTES = 2368

VDSO_NAMES = frozenset({"[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[uprobes]"})
LOADER_MALLOC_NAME = "[anon: glibc: loader malloc]"  # glibc ≥ 2.39, glibc.mem.decorate_maps=1


class MappedObject(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded ELF object and the pathnames smaps may show for it.

    smaps prints the path the kernel resolved (/usr/lib/... on a merged-/usr system, where the
    loader opened /lib/...); pass the real path here too. `dso.path` and `dso.file` always count.
    """

    dso: Dso
    names: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Apportioning


def apportion(total: int, weights: Sequence[int], *, page_size: int) -> list[int]:
    """Split `total` in proportion to `weights`, exactly, in whole units.

    The unit is a page when `total` is a multiple of it, else a kB (smaps prints kB), else a byte;
    largest-remainder rounding (ties to the earlier part) makes the parts sum to `total`.
    All weights zero: split by nothing, everything to the first part.
    """
    if not weights:
        return []
    unit = page_size if total % page_size == 0 else 1024 if total % 1024 == 0 else 1
    units, weight_sum = total // unit, sum(weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1)
    shares = [units * w // weight_sum for w in weights]
    remainders = [units * w % weight_sum for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[: units - sum(shares)]:
        shares[i] += 1
    return [s * unit for s in shares]


Mask = Callable[[pm.Raw], pm.Bools]

# Which pages of a part can hold each counter (fs/proc/task_mmu.c smaps_account): the weight of a
# part is its number of such pages. Fallbacks apply when these weigh nothing but the counter is
# not zero (pagemap read a moment apart from smaps).
_WEIGHTS: Mapping[str, Mask] = {
    "rss": pm.present,
    "pss": pm.present,
    "pss_dirty": pm.written,
    "shared_clean": lambda r: pm.present(r) & ~pm.exclusive(r),
    "shared_dirty": lambda r: pm.present(r) & ~pm.exclusive(r),
    "private_clean": lambda r: pm.present(r) & pm.exclusive(r) & ~pm.written(r),
    "private_dirty": pm.written,
    "anonymous": lambda r: pm.present(r) & ~pm.file_or_shared(r),
    "swap": pm.swapped,
    "swap_pss": pm.swapped,
}


def _split_usage(
    entry: SmapsEntry,
    parts: Sequence[tuple[int, int]],
    raws: Sequence[pm.Raw] | None,
    page_size: int,
) -> list[Usage]:
    whole = usage_of(entry)
    if len(parts) == 1:
        return [whole]
    page_counts = [(e - s) // page_size for s, e in parts]
    columns: dict[str, list[int]] = {}
    for name in USAGE_FIELDS:
        total: int = getattr(whole, name)
        weights = page_counts
        if raws is not None and total:
            for mask in (_WEIGHTS[name], pm.present):
                w = [int(np.count_nonzero(mask(r))) for r in raws]
                if sum(w):
                    weights = w
                    break
        columns[name] = apportion(total, weights, page_size=page_size)
    return [Usage(**{name: columns[name][i] for name in USAGE_FIELDS}) for i in range(len(parts))]


# ---------------------------------------------------------------------------------------------
# Objects: which lines, which base


def _page_floor(v: int, page_size: int) -> int:
    return v - v % page_size


def _page_ceil(v: int, page_size: int) -> int:
    return -(-v // page_size) * page_size


def _file_id(dso: Dso) -> tuple[int, int, int]:
    return os.major(dso.file_id.dev), os.minor(dso.file_id.dev), dso.file_id.ino


def load_base(dso: Dso, entry: SmapsEntry, page_size: int) -> int | None:
    """l_addr from one file line of `dso`: the runtime address minus the link-time address.

    The line maps file offset `entry.offset` at `entry.start`; the PT_LOAD whose page-aligned
    file range holds that offset was mapped at base + page_floor(p_vaddr) (elf_map /
    _dl_map_segments map page_floor(p_offset) there). None if no PT_LOAD maps that offset.
    """
    for seg in sorted(dso.loads, key=lambda s: s.vaddr):
        off0 = _page_floor(seg.offset, page_size)
        if off0 <= entry.offset < seg.offset + max(seg.filesz, 1):
            return entry.start - _page_floor(seg.vaddr, page_size) - (entry.offset - off0)
    return None


class _Placed(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    lines: tuple[int, ...]  # indexes into entries of the file lines matched to it
    matched_by: MatchedBy
    base: int
    span: tuple[int, int]


class _FileIndex(msgspec.Struct, frozen=True, kw_only=True):
    """The file lines of a process by (major, minor, inode) and by name, in address order."""

    by_id: Mapping[tuple[int, int, int], list[int]]
    by_name: Mapping[str, list[int]]
    by_basename: Mapping[str, list[int]]


def _index_files(entries: Sequence[SmapsEntry]) -> _FileIndex:
    by_id: dict[tuple[int, int, int], list[int]] = {}
    by_name: dict[str, list[int]] = {}
    by_basename: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        if e.is_file:
            by_id.setdefault((*e.dev_major_minor, e.inode), []).append(i)
            by_name.setdefault(e.name, []).append(i)
            by_basename.setdefault(os.path.basename(e.name), []).append(i)
    return _FileIndex(by_id=by_id, by_name=by_name, by_basename=by_basename)


def _match_lines(
    files: _FileIndex, obj: MappedObject, taken: set[int]
) -> tuple[list[int], MatchedBy | None]:
    by_id = [i for i in files.by_id.get(_file_id(obj.dso), []) if i not in taken]
    if by_id:
        return by_id, "file-id"
    names = {obj.dso.path, obj.dso.file, *obj.names}
    by_path = sorted(i for n in names for i in files.by_name.get(n, []) if i not in taken)
    if by_path:
        return by_path, "path"
    return [], None


def _match_basename(
    entries: Sequence[SmapsEntry],
    files: _FileIndex,
    obj: MappedObject,
    taken: set[int],
    others: Sequence[Dso],
) -> list[int]:
    """Last resort for captures from another machine: the same file name, if unambiguous."""
    base = os.path.basename(obj.dso.path)
    if sum(os.path.basename(d.path) == base for d in others) > 1:
        return []
    hits = [i for i in files.by_basename.get(base, []) if i not in taken]
    return hits if len({entries[i].name for i in hits}) == 1 else []


def _place(
    entries: Sequence[SmapsEntry],
    objects: Sequence[MappedObject],
    page_size: int,
    auxv: Mapping[int, int],
    warn: Callable[[str], None],
) -> list[_Placed | None]:
    taken: set[int] = set()
    placed: list[_Placed | None] = []
    dsos = [o.dso for o in objects]
    files = _index_files(entries)
    for index, obj in enumerate(objects):
        dso = obj.dso
        lines, how = _match_lines(files, obj, taken)
        if not lines:
            lines = _match_basename(entries, files, obj, taken, dsos)
            how = "basename" if lines else None
            if lines:
                warn(f"{dso.path}: matched to {entries[lines[0]].name} by file name only")
        if not lines or how is None or not dso.loads:
            warn(f"{dso.path}: not mapped in this process")
            placed.append(None)
            continue
        lowest = min(lines, key=lambda i: entries[i].start)
        base = load_base(dso, entries[lowest], page_size)
        if base is None:
            warn(f"{dso.path}: no PT_LOAD maps file offset {entries[lowest].offset:#x}")
            placed.append(None)
            continue
        if dso.e_type == ET_EXEC and base != 0:
            warn(f"{dso.path}: ET_EXEC mapped with a load bias of {base:#x}")
        if base % page_size:
            warn(f"{dso.path}: load base {base:#x} is not page-aligned")
        lo, hi = dso.span
        span = (base + _page_floor(lo, page_size), base + _page_ceil(hi, page_size))
        inside = tuple(
            i for i in lines if span[0] <= entries[i].start and entries[i].end <= span[1]
        )
        for i in sorted(set(lines) - set(inside)):
            e = entries[i]
            warn(f"{dso.path}: mapping {e.start:#x}-{e.end:#x} of the same file lies outside it")
        _check_auxv(dso, base, span, auxv, warn)
        taken.update(inside)
        placed.append(_Placed(index=index, lines=inside, matched_by=how, base=base, span=span))
    return placed


def _check_auxv(
    dso: Dso,
    base: int,
    span: tuple[int, int],
    auxv: Mapping[int, int],
    warn: Callable[[str], None],
) -> None:
    """Cross-check a base against the kernel's: AT_ENTRY (the executable), AT_BASE (ld.so)."""
    at_entry = auxv.get(AT_ENTRY)
    inside = at_entry is not None and span[0] <= at_entry < span[1]
    if inside and dso.entry and base + dso.entry != at_entry:
        warn(f"{dso.path}: base {base:#x} + e_entry {dso.entry:#x} != AT_ENTRY {at_entry:#x}")
    at_base = auxv.get(AT_BASE)
    if at_base and span[0] <= at_base < span[1] and base != at_base:
        warn(f"{dso.path}: base {base:#x} != AT_BASE {at_base:#x}")


# ---------------------------------------------------------------------------------------------
# The TLS block around the thread pointer


def tls_range(
    thread_pointer: int, dsos: Sequence[Dso], page_size: int, *, tcb_bytes: int
) -> tuple[int, int]:
    """The pages holding the main thread's static TLS and TCB, for TLS_TCB_AT_TP (x86_64).

    The initial modules' TLS blocks lie just below the thread pointer, each at an offset rounded
    up to its p_align (glibc elf/dl-tls.c _dl_determine_tlsoffset; musl __init_tls), and the TCB
    (struct pthread) starts at it. The static-TLS surplus beyond the modules is never written.
    """
    below = 0
    for d in dsos:
        tls = d.tls
        if tls is not None and tls.memsz:
            align = max(tls.align, 1)
            below = -(-(below + tls.memsz) // align) * align
    return (
        _page_floor(thread_pointer - below, page_size),
        _page_ceil(thread_pointer + tcb_bytes, page_size),
    )


# ---------------------------------------------------------------------------------------------
# Buckets


def bucket_of(entry: SmapsEntry, stop: Stop) -> BucketName:
    """The process bucket for the pages of `entry` outside every object and the TLS block."""
    name = entry.pathname
    if name in VDSO_NAMES:
        return "vdso"
    if name == "[stack]":
        return "stack"
    if name == "[heap]":
        return "heap"
    if name == LOADER_MALLOC_NAME:
        return "loader_heap"
    if entry.is_file:
        return "other_file"
    if name == "" and stop in ("exec", "entry"):
        # Before AT_ENTRY nothing but the kernel (stack, brk, vdso, ELF images) and ld.so has
        # run, so an unnamed anonymous mapping outside every object is ld.so's minimal malloc.
        return "loader_heap"
    return "other_anon"


# ---------------------------------------------------------------------------------------------
# The measurement


Owner = int | BucketName  # an object index, or a bucket


def _pieces(
    entry: SmapsEntry,
    spans: Sequence[tuple[int, int, int]],
    tls: tuple[int, int] | None,
    stop: Stop,
) -> list[tuple[int, int, Owner]]:
    """Cut `entry` into [start, end) pieces by object span, then TLS block, then bucket."""
    out: list[tuple[int, int, Owner]] = []
    bucket = bucket_of(entry, stop)
    tls_applies = tls is not None and not entry.is_file and bucket not in ("vdso", "stack")

    def rest(lo: int, hi: int) -> None:
        if tls_applies and tls is not None and tls[0] < hi and lo < tls[1]:
            a, b = max(lo, tls[0]), min(hi, tls[1])
            if lo < a:
                out.append((lo, a, bucket))
            out.append((a, b, "tls"))
            if b < hi:
                out.append((b, hi, bucket))
        else:
            out.append((lo, hi, bucket))

    # Spans are sorted and (barring a warning) disjoint: start at the last one beginning at or
    # before the line, so a process with thousands of objects is not quadratic.
    cur = entry.start
    first = max(bisect.bisect_right(spans, entry.start, key=lambda sp: sp[0]) - 1, 0)
    for k in range(first, len(spans)):
        s, e, index = spans[k]
        if s >= entry.end:
            break
        lo, hi = max(s, cur), min(e, entry.end)
        if lo >= hi:
            continue
        if cur < lo:
            rest(cur, lo)
        out.append((lo, hi, index))
        cur = hi
    if cur < entry.end:
        rest(cur, entry.end)
    return out


def attribute(
    entries: Sequence[SmapsEntry],
    objects: Sequence[MappedObject],
    *,
    pid: int,
    page_size: int,
    stop: Stop,
    pages: tuple[PageFlags, ...] | None = None,
    rollup: Mapping[str, int] | None = None,
    thread_pointer: int | None = None,
    auxv: Mapping[int, int] | None = None,
    tcb_bytes: int = GLIBC_X86_64_TCB_BYTES,
    warnings: Sequence[str] = (),
) -> Measurement:
    """Attribute every smaps line to the given objects (in load order) and process buckets.

    `pages` holds pagemap entries for (some of) the lines; None means no pagemap at all, and then
    no written pages are reported. `thread_pointer` is the main thread's FS base if it was read
    (under ptrace); without it the TLS block stays in its mapping's bucket. `auxv` is used to
    cross-check load bases. Warnings from the caller are kept, ours are appended.
    """
    notes: list[str] = list(warnings)
    warn = notes.append
    placed = _place(entries, objects, page_size, auxv or {}, warn)
    spans: list[tuple[int, int, int]] = []
    for p in sorted((p for p in placed if p is not None), key=lambda p: p.span):
        if spans and p.span[0] < spans[-1][1]:
            other = objects[spans[-1][2]].dso.path
            warn(f"{objects[p.index].dso.path}: its span overlaps that of {other}")
        spans.append((*p.span, p.index))
    claimed = {i: p.index for p in placed if p is not None for i in p.lines}
    mapped = [objects[p.index].dso for p in placed if p is not None]
    tls = (
        tls_range(thread_pointer, mapped, page_size, tcb_bytes=tcb_bytes)
        if thread_pointer
        else None
    )
    if pages is not None:
        pages = tuple(sorted(pages, key=lambda p: p.start))
    if pages is None:
        warn("no pagemap: written pages are unknown and split lines are divided by page count")

    shares: dict[Owner, list[LineShare]] = {}
    written: dict[Owner, list[int]] = {}
    line_notes: list[tuple[str, str, int]] = []
    unread: list[str] = []
    for i, entry in enumerate(entries):
        owner_of_line = claimed.get(i)
        pieces: list[tuple[int, int, Owner]] = (
            [(entry.start, entry.end, owner_of_line)]
            if owner_of_line is not None
            else _pieces(entry, spans, tls, stop)
        )
        raws: list[pm.Raw] | None = None
        if pages is not None:
            found = [pm.slice_flags(pages, s, e) for s, e, _ in pieces]
            if all(r is not None for r in found):
                raws = [r for r in found if r is not None]
            elif entry.rss or entry.swap:
                unread.append(f"{entry.start:#x}-{entry.end:#x}")
        usages = _split_usage(entry, [(s, e) for s, e, _ in pieces], raws, page_size)
        for k, (s, e, owner) in enumerate(pieces):
            shares.setdefault(owner, []).append(
                LineShare(entry=entry, start=s, end=e, usage=usages[k])
            )
            if raws is not None:
                flags = PageFlags(start=s, page_size=page_size, entries=raws[k])
                written.setdefault(owner, []).extend(pm.page_addresses(flags, pm.written(raws[k])))
        line_notes.extend(_line_notes(entry, raws, page_size))

    notes.extend(_summarise(line_notes))
    if unread:
        more = f" and {len(unread) - 5} more" if len(unread) > 5 else ""
        warn(f"no pagemap for {', '.join(unread[:5])}{more}: split by page count, no written pages")

    def total_of(owner: Owner) -> Usage:
        return sum_usage(share.usage for share in shares.get(owner, []))

    measured_objects: list[ObjectMeasurement] = []
    for index, obj in enumerate(objects):
        where = placed[index]
        if where is None:
            measured_objects.append(
                ObjectMeasurement(
                    path=obj.dso.path,
                    mapped_path=None,
                    matched_by=None,
                    load_base=None,
                    span=None,
                    usage=ZERO_USAGE,
                    written_pages=(),
                    lines=(),
                )
            )
            continue
        measured_objects.append(
            ObjectMeasurement(
                path=obj.dso.path,
                mapped_path=entries[where.lines[0]].name if where.lines else None,
                matched_by=where.matched_by,
                load_base=where.base,
                span=where.span,
                usage=total_of(index),
                written_pages=tuple(sorted(a - where.base for a in written.get(index, []))),
                lines=tuple(shares.get(index, [])),
            )
        )
    buckets = tuple(
        ProcessBucket(
            name=name,
            usage=total_of(name),
            written_pages=tuple(sorted(written.get(name, []))),
            lines=tuple(shares.get(name, [])),
        )
        for name in BUCKET_NAMES
    )
    total = sum_usage(usage_of(e) for e in entries)
    if thread_pointer and tls is None:
        warn("thread pointer known but no TLS block placed")
    if thread_pointer is None and stop in ("idle", "snapshot"):
        warn("thread pointer not read: the TLS block is counted in its mapping's bucket")
    rollup = dict(rollup or {})
    if rollup:
        notes.extend(reconcile(total, rollup, lines=len(entries)))
    return Measurement(
        pid=pid,
        page_size=page_size,
        stop=stop,
        objects=tuple(measured_objects),
        buckets=buckets,
        total=total,
        rollup=rollup,
        entries=tuple(entries),
        has_pagemap=pages is not None,
        thread_pointer=thread_pointer,
        warnings=tuple(notes),
    )


def _line_notes(
    entry: SmapsEntry, raws: Sequence[pm.Raw] | None, page_size: int
) -> list[tuple[str, str, int]]:
    """(kind, pathname, bytes) for what makes a line's numbers mean more than "written"."""
    out: list[tuple[str, str, int]] = []
    # Only a private file mapping: in a MAP_SHARED one (shared memory, /dev/zero, memfd)
    # writes go to the page cache itself, and pagemap marks those pages as file pages.
    if raws is not None and entry.is_file and entry.perms.endswith("p") and entry.private_dirty:
        cow = sum(int(np.count_nonzero(pm.written(r))) for r in raws) * page_size
        if entry.private_dirty > cow:
            # fs/proc/task_mmu.c smaps_account counts a dirty page-cache folio as dirty: a file
            # written moments ago and not yet written back (loader-model.md §1.6).
            out.append(
                ("bytes of dirty page cache (sync first)", entry.name, entry.private_dirty - cow)
            )
    if entry.anon_huge_pages:
        out.append(("bytes in transparent huge pages", entry.name, entry.anon_huge_pages))
    if entry.kernel_page_size and entry.kernel_page_size != page_size:
        out.append(
            (f"bytes in {entry.kernel_page_size}-byte hugetlb pages", entry.name, entry.size)
        )
    return out


def _summarise(notes: Sequence[tuple[str, str, int]]) -> list[str]:
    """One warning per kind and pathname, however many lines it came from."""
    sums: dict[tuple[str, str], int] = {}
    for kind, name, n in notes:
        sums[(kind, name)] = sums.get((kind, name), 0) + n
    return [f"{name or '[anonymous]'}: {n} {kind}" for (kind, name), n in sums.items()]


# Counters compared with smaps_rollup. Pss/Pss_Dirty/SwapPss are kept in fixed point and
# truncated to kB once per line in show_smap but once in total in show_smaps_rollup
# (fs/proc/task_mmu.c __show_smap: mss->pss >> PSS_SHIFT), so the sum of the lines may fall
# short of the rollup by less than 1 kB per line; the others are whole pages and must be equal.
EXACT_ROLLUP = {
    "Rss": "rss",
    "Private_Dirty": "private_dirty",
    "Private_Clean": "private_clean",
    "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty",
    "Anonymous": "anonymous",
    "Swap": "swap",
}
TRUNCATED_ROLLUP = {"Pss": "pss", "Pss_Dirty": "pss_dirty", "SwapPss": "swap_pss"}


def reconcile(total: Usage, rollup: Mapping[str, int], *, lines: int) -> list[str]:
    """Differences between the sum of the smaps lines and smaps_rollup, in words (empty: none)."""
    out: list[str] = []
    for name, attr in EXACT_ROLLUP.items():
        if name in rollup and rollup[name] != getattr(total, attr):
            out.append(f"smaps_rollup {name} {rollup[name]} != sum of smaps {getattr(total, attr)}")
    for name, attr in TRUNCATED_ROLLUP.items():
        if name in rollup:
            gap = rollup[name] - getattr(total, attr)
            if not 0 <= gap < max(lines, 1) * 1024:
                out.append(
                    f"smaps_rollup {name} {rollup[name]} != sum of smaps {getattr(total, attr)}"
                )
    return out


# ---------------------------------------------------------------------------------------------
# Several processes of one program


def _row(name: str, usages: Sequence[Usage]) -> GroupRow:
    return GroupRow(
        name=name,
        uss=sum(u.uss for u in usages),
        pss=sum(u.pss for u in usages),
        rss=sum(u.rss for u in usages),
        private_dirty=sum(u.private_dirty for u in usages),
        swap=sum(u.swap for u in usages),
    )


def group(name: str, measurements: Sequence[Measurement]) -> ProgramGroup:
    """Sum several processes of one program the way ps_mem does.

    Private memory (USS) is summed; shared memory is counted once overall by summing Pss, which
    the kernel already divides between every process mapping a page. ps_mem's "Shared" is
    Σ Pss - Σ USS and its "RAM used" is USS + Shared, i.e. Σ Pss.
    """
    objects: dict[str, list[Usage]] = {}
    for m in measurements:
        for o in m.objects:
            objects.setdefault(o.path, []).append(o.usage)
    return ProgramGroup(
        name=name,
        pids=tuple(m.pid for m in measurements),
        total=_row(name, [m.total for m in measurements]),
        objects=tuple(_row(path, us) for path, us in objects.items()),
        buckets=tuple(_row(b, [m.bucket(b).usage for m in measurements]) for b in BUCKET_NAMES),
    )


def without_lines(m: Measurement) -> Measurement:
    """The same measurement without per-line detail (smaller to keep or send)."""
    return replace(
        m,
        objects=tuple(replace(o, lines=()) for o in m.objects),
        buckets=tuple(replace(b, lines=()) for b in m.buckets),
        entries=(),
    )
