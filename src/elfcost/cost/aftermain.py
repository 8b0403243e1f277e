"""What libc's own functions write after main, from the functions a process links (R-A1..R-A3).

At the entry point nothing has called malloc: [heap] does not exist yet. By the time a daemon is
idle its first calls into libc have run, and some of them allocate or dig deeper into the stack
than start-up did: malloc's first call creates the heap, opendir allocates a directory buffer,
reading a stream allocates its buffer, musl's float formatting needs 7 KiB of stack. Which of
those a program calls is not in its ELF file, but which it imports (a static program: which it
links in) is; each libc profile lists, per group of functions, what the first call was measured
to write (cost/profiles/*.toml [after_main]). An import is evidence of a call, not proof: a
group whose functions are commonly imported without being called before idle (printf for
--help) is counted only in `high`.

glibc's heap pages follow from its chunk layout (malloc/malloc.c): the first call sbrks 132 KiB
and carves the tcache, then each chunk from the start of the heap; every allocation writes its
own header and the header of the top chunk after it, and the caller writes the start of its
buffer. So the pages written are the first, plus each page a chunk boundary falls in. musl's
mallocng has no such arithmetic: its pages are counted as measured.

Pure: no I/O. Each page is a PageCost with no address (anonymous memory has none at link
time), its cause, and a detail naming the import that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from elfcost.cost.profiles import AfterMain, LibcUse
from elfcost.model import Cause, PageCost, Phase

# Said in every estimate's assumptions, and printed under the text report's table.
OWN_WRITES = (
    "not modelled: the program's own writes after main (a .bss it fills, an interpreter's "
    "heap, threads): counted only in high, where a bound exists (its writable segments, the "
    "first sbrk)"
)


class Linked(msgspec.Struct, frozen=True, kw_only=True):
    """The libc functions one object links, of those the profile asks about."""

    name: str  # the object as a reason names it ("s6-supervise", "libskarnet.so.2.13")
    functions: tuple[str, ...]
    static: bool = False  # linked into a static executable, not imported
    float_format: str | None = None  # a printf format with a floating conversion it carries


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """A use of the profile whose functions the process links, and the first link found."""

    use: LibcUse
    function: str
    linked: Linked
    # Found only among the functions every program of the link mode carries (static glibc's
    # malloc, opendir...): no evidence of a call, so counted as possible whatever the use says.
    weak: bool = False

    @property
    def confirmed(self) -> bool:
        """The importing object carries the evidence the use asks for (a floating format)."""
        return self.use.evidence == "float-format" and self.linked.float_format is not None

    @property
    def phase(self) -> Phase:
        if self.weak:
            return "possible"
        return "idle" if self.confirmed else self.use.phase

    @property
    def source(self) -> str:
        """'opendir (imported by s6-supervise)'"""
        verb = "linked into" if self.linked.static else "imported by"
        return f"{self.function} ({verb} {self.linked.name})"

    @property
    def why(self) -> str:
        """'opendir (imported by s6-supervise) allocates ...'"""
        weak = (
            " (only possible: every program of this link mode carries it, called or not)"
            if self.weak
            else ""
        )
        seen = (
            f'; expected, as {self.linked.name} carries the format "{self.linked.float_format}"'
            if self.confirmed and not self.weak
            else ""
        )
        return f"{self.source} {self.use.why}{weak}{seen}"


def triggers(am: AfterMain, linked: Sequence[Linked]) -> list[Trigger]:
    """The profile's uses the process triggers, in the profile's order, each with the first
    object (in load order) that links one of its functions. A function every program of the
    link mode carries (static glibc's malloc, opendir...) is no evidence of a call: a use found
    only through such functions is weak, counted as possible."""
    out = []
    for use in am.uses:
        wanted = set(use.imports)
        pairs = [(fn, obj) for obj in linked for fn in obj.functions if fn in wanted]
        strong_pairs = [(fn, obj) for fn, obj in pairs if fn not in am.uninformative]
        # An object whose own data confirms the use (a floating format) is the one named.
        strong = next(
            (p for p in strong_pairs if use.evidence and p[1].float_format is not None),
            strong_pairs[0] if strong_pairs else None,
        )
        found = strong or (pairs[0] if pairs else None)
        if found is not None:
            out.append(Trigger(use=use, function=found[0], linked=found[1], weak=strong is None))
    return out


def _page(cause: str, phase: Phase, detail: str) -> PageCost:
    return PageCost(vaddr=None, cause=Cause(cause), certain=False, phase=phase, detail=detail)


def _stdio_kinds(am: AfterMain) -> str:
    """'4096 B on a pipe, a file or /dev/null, 1024 B on a terminal'"""
    sizes = dict(am.stdio)
    if not any(sizes.values()):
        return ""
    by_size: dict[int, list[str]] = {}
    words = {"terminal": "a terminal", "pipe": "a pipe", "file": "a file", "devnull": "/dev/null"}
    for kind, size in am.stdio:
        by_size.setdefault(size, []).append(words.get(kind, kind))
    parts = []
    for size, kinds in sorted(by_size.items(), key=lambda kv: -kv[0]):
        names = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
        parts.append(f"{size} B on {names}")
    return "; the buffer is " + ", ".join(parts) + " (counted here as on a pipe)"


def heap_pages(am: AfterMain, found: Sequence[Trigger], page_size: int) -> list[PageCost]:
    """The heap pages libc's first allocations write: idle ones (expected), then possible
    ones (high), each naming the import behind it."""
    out: list[PageCost] = []
    heap = [t for t in found if t.use.item == "heap"]
    # glibc: heap offsets of the chunk boundaries; the page of offset 0 is the first malloc's.
    written: set[int] = set()
    offset = am.first_chunk_bytes
    phases: tuple[Phase, ...] = ("idle", "possible")
    for phase in phases:
        uses = [t for t in heap if t.phase == phase]
        if not uses:
            continue
        if not written:
            # The first malloc of all, whichever function makes it: page 0 of the chunk
            # arithmetic. A profile with no first-malloc pages has it written by start-up
            # already (static glibc's TLS block is on the first brk page).
            written.add(0)
            first = uses[0]
            out.extend(
                _page(
                    Cause.LIBC_HEAP.value,
                    phase,
                    f"{first.source} calls malloc, whose first call creates [heap] and writes "
                    "its first page (the tcache, the first chunks' headers)",
                )
                for _ in range(am.first_malloc_pages)
            )
        for t in uses:
            extra = _stdio_kinds(am) if t.use.cause == Cause.STDIO_BUFFER.value else ""
            if am.heap_chunks and t.use.bytes:
                offset += t.use.bytes
                pg = offset // page_size
                if pg not in written:
                    written.add(pg)
                    out.append(
                        _page(
                            t.use.cause,
                            phase,
                            f"{t.why}{extra}: {t.use.bytes} B of chunks put the next chunk "
                            f"header at heap offset {offset:#x}, page {pg}",
                        )
                    )
            out.extend(_page(t.use.cause, phase, f"{t.why}{extra}") for _ in range(t.use.pages))
    return out


def stack_pages(found: Sequence[Trigger]) -> list[PageCost]:
    """Stack pages libc functions write below start-up's deepest frame."""
    return [
        _page(t.use.cause, t.phase, t.why)
        for t in found
        if t.use.item == "stack"
        for _ in range(t.use.pages)
    ]
