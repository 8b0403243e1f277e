"""What ld-musl allocates before the entry point, and the anonymous pages that writes (R-M5).

ldso/dynlink.c __dls3, in order (musl 1.2.3):

1. reclaim_gaps(&app), reclaim_gaps(&ldso): the gaps around each writable PT_LOAD are donated
   to malloc (__malloc_donate, src/malloc/mallocng/donate.c).
2. load_preload, then load_deps(&app), which walks the list of objects as it grows: for each,
   load_direct_deps callocs its deps array (the program's only with two or more DT_NEEDED,
   else builtin_deps), then load_library for each DT_NEEDED. load_library returns ldso itself
   for libc's reserved names, an object already loaded for its shortname or its st_dev/st_ino;
   it mallocs the $ORIGIN expansion of an object's DT_RUNPATH/DT_RPATH the first time a search
   uses it (fixup_rpath) and the contents of /etc/ld-musl-ARCH.path the first time a search
   reaches it; a new library's gaps are donated (reclaim_gaps), then its struct dso and path
   are calloc'd (sizeof(struct dso) + strlen(pathname) + 1).
3. queue_ctors(&app): the constructor queue, calloc'd when the list (with ldso and the vDSO)
   has more than three objects (builtin_ctor_queue holds four slots with the terminator).
4. The initial TLS, calloc'd when it does not fit builtin_tls: the `tls` item counts it.

mallocng (cost/mallocng.py) then says which of these the donated groups hold and which need a
group of their own, mapped by alloc_group: those pages, with the first meta area on brk, are
the loader heap. The cost stage reads no file: the gaps come from the program headers, the
searches from the resolutions' attempts.
"""

from __future__ import annotations

import posixpath

import msgspec

from elfcost.cost.mallocng import SIZE_CLASSES, UNIT, Mallocng
from elfcost.cost.rules import donated_gaps
from elfcost.model import Dso, FoundVia, LoadedObject, Resolution, musl_reserved
from elfcost.resolve.graph import DependencyGraph

# map_library reads the ELF header and program headers into a stack buffer of 960 bytes;
# more than 896 bytes of program headers are malloc'd and freed again, which is not modelled.
PHDR_BUF = 896
# builtin_ctor_queue[4] in ldso/dynlink.c
BUILTIN_CTOR_QUEUE = 4
# The reason text names the first gaps donated (the program's and libc's come first).
LISTED_GAPS = 4


class LoaderHeap(msgspec.Struct, frozen=True):
    pages: int  # anonymous pages written before the entry point
    brk_pages: int
    mapped_pages: int
    detail: str
    requests: tuple[tuple[str, int], ...]  # each allocation, in order, and its size


def _name(dso: Dso) -> str:
    return dso.soname or posixpath.basename(dso.path)


def _origin_length(anc: LoadedObject, rp: tuple[str, ...], res: Resolution) -> int:
    """l of fixup_rpath: the length of the directory $ORIGIN stands for. The program's is
    readlink("/proc/self/exe")'s, the real path, which the expanded directory the resolver
    tried shows; a library's is its pathname up to the last '/'."""
    path = anc.dso.path
    paths = (FoundVia.RPATH, FoundVia.RUNPATH)
    tried = [a for a in res.tried if a.origin == path and a.via in paths]
    for entry, attempt in zip(rp, tried, strict=False):
        braced = entry.count("${ORIGIN}")
        plain = entry.count("$ORIGIN")
        if not braced + plain:
            continue
        expanded = attempt.path[: len(attempt.path) - len(res.needed)]
        if not entry.endswith("/") and expanded.endswith("/"):
            expanded = expanded[:-1]
        literal = len(entry) - 7 * plain - 9 * braced
        return max(0, (len(expanded) - literal) // (plain + braced))
    slash = path.rfind("/")
    return slash if slash >= 0 else 1


def _rpath_bytes(anc: LoadedObject, res: Resolution) -> int | None:
    """fixup_rpath's malloc(strlen(rpath_orig) + n*l + 1), or None when it allocates nothing:
    no '$' (the string is used as it is) or a '$' that is not $ORIGIN (the path is not used)."""
    dyn = anc.dso.dynamic
    if dyn is None:
        return None
    rp = dyn.runpath or dyn.rpath
    raw = ":".join(rp)
    n = raw.count("$")
    if not n or n != raw.count("$ORIGIN") + raw.count("${ORIGIN}"):
        return None
    return len(raw) + n * _origin_length(anc, rp, res) + 1


def loader_heap(graph: DependencyGraph, dso_bytes: int, page: int) -> LoaderHeap:
    """Replay __dls3's donations and allocations (module docstring) on mallocng."""
    objs = graph.objects
    exe = objs[0]
    interp = next((o for o in objs if o.role == "interpreter"), None)
    word = 8 if exe.dso.elf_class == 64 else 4
    heap = Mallocng(page, word)
    by_path = {o.dso.path: o for o in objs}
    for o in (exe, interp):
        if o is not None:
            for start, end in donated_gaps(o.dso, page):
                heap.donate(_name(o.dso), start, end)
    edges: dict[str, list[Resolution]] = {}
    preloads = []
    for r in graph.resolutions:
        if r.preload:
            preloads.append(r)
        else:
            edges.setdefault(r.parent, []).append(r)
    order: list[LoadedObject] = [exe]
    loaded = {exe.dso.path}
    fixed: set[str] = set()
    counts = {"deps": 0, "rpath": 0, "path file": 0, "dso": 0}
    path_file = False

    def load_self() -> None:
        """load_library's answer for libc's names: ldso, added to the list the first time."""
        if interp is not None and interp.dso.path not in loaded:
            loaded.add(interp.dso.path)
            order.append(interp)

    def load(r: Resolution) -> None:
        nonlocal path_file
        if interp is not None and r.found == interp.dso.path:
            load_self()
            return
        for a in r.tried:
            if a.via in (FoundVia.RPATH, FoundVia.RUNPATH) and a.origin and a.origin not in fixed:
                fixed.add(a.origin)
                anc = by_path.get(a.origin)
                size = _rpath_bytes(anc, r) if anc is not None else None
                if anc is not None and size is not None:
                    heap.malloc(size, f"$ORIGIN expansion of {_name(anc.dso)}'s path list")
                    counts["rpath"] += 1
            elif a.via is FoundVia.MUSL_PATH_FILE and not path_file:
                path_file = True
                size = graph.musl_path_bytes
                if size is None:
                    # Not recorded: the directories the searches tried, a line each.
                    dirs = dict.fromkeys(
                        posixpath.dirname(t.path)
                        for q in graph.resolutions
                        for t in q.tried
                        if t.via is FoundVia.MUSL_PATH_FILE
                    )
                    size = sum(len(d) + 1 for d in dirs)
                heap.malloc(size + 1, "the ld-musl path file's contents")
                counts["path file"] += 1
        if r.found is None or r.found in loaded:
            return
        obj = by_path.get(r.found)
        if obj is None:
            return
        loaded.add(r.found)
        order.append(obj)
        for start, end in donated_gaps(obj.dso, page):
            heap.donate(_name(obj.dso), start, end)
        heap.calloc(dso_bytes + len(r.found) + 1, f"struct dso and path of {_name(obj.dso)}")
        counts["dso"] += 1

    for r in preloads:
        load(r)
    i = 0
    while i < len(order):
        p = order[i]
        i += 1
        if p is interp:
            continue  # ldso.deps = no_deps
        rs = edges.get(p.dso.path, [])
        # load_direct_deps counts the DT_NEEDED entries, and the preloads for the program.
        cnt = len(p.dso.needed) + (len(preloads) if p is exe else 0)
        if p is not exe or cnt >= 2:
            heap.calloc((cnt + 1) * word, f"deps array of {_name(p.dso)}")
            counts["deps"] += 1
        for name in p.dso.needed:
            edge = next((q for q in rs if q.needed == name), None)
            if edge is not None:
                rs.remove(edge)
                load(edge)
            elif musl_reserved(name):
                load_self()  # an edge a libc swap left out: musl's libc answers it
    # queue_ctors counts the list, the vDSO (always given on Linux) included, and a terminator.
    queued = len(order) + 1 + 1
    if queued > BUILTIN_CTOR_QUEUE:
        heap.calloc(queued * word, "constructor queue")
    return LoaderHeap(
        pages=heap.brk_pages + heap.mapped_pages,
        brk_pages=heap.brk_pages,
        mapped_pages=heap.mapped_pages,
        detail=_detail(heap, counts, queued > BUILTIN_CTOR_QUEUE, len(objs)),
        requests=tuple(heap.requests),
    )


def _class_bytes(sc: int) -> int:
    return SIZE_CLASSES[sc] * UNIT


def _detail(heap: Mallocng, counts: dict[str, int], queue: bool, n: int) -> str:
    gaps = ", ".join(
        f"{name} {size} B" + (f" (classes {', '.join(map(str, cls))})" if cls else " (too small)")
        for name, size, cls in heap.donated[:LISTED_GAPS]
    )
    rest = heap.donated[LISTED_GAPS:]
    if rest:
        gaps += f" and {len(rest)} more gaps ({sum(size for _, size, _ in rest)} B)"
    allocs = [
        f"{counts['dso']} struct dso" if counts["dso"] else "",
        f"{counts['deps']} deps array(s)" if counts["deps"] else "",
        f"{counts['rpath']} $ORIGIN expansion(s)" if counts["rpath"] else "",
        "the path file" if counts["path file"] else "",
        "the constructor queue" if queue else "",
    ]
    listed = ", ".join(a for a in allocs if a) or "nothing"
    text = (
        f"musl, {n} objects: ldso/dynlink.c reclaim_gaps donates {gaps or 'no gap'} to mallocng "
        f"(donate.c); {heap.metas} group(s) take their struct meta from the first meta area, "
        f"{heap.brk_pages} page(s) on brk (malloc.c alloc_meta); before the entry point "
        f"__dls3 allocates {listed}"
    )
    for m in heap.mappings:
        first, *nested = m.classes
        what = f"; {m.request} ({m.request_bytes} B, size class {first})"
        if first == 63:
            what += " is mmapped alone (malloc.c: at least MMAP_THRESHOLD)"
        elif not nested:
            what += f" finds no free slot: alloc_group maps a class-{first} group"
        else:
            inside = ", in ".join(f"a class-{sc} slot ({_class_bytes(sc)} B)" for sc in nested)
            what += (
                f" finds no free slot: alloc_group nests its group in {inside}, and the "
                f"class-{nested[-1]} group, over half a page, is mapped (malloc.c alloc_group)"
            )
        text += what + f", {len(m.region.written)} page(s) written"
    return text
