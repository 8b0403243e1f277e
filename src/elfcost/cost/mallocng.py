"""musl's mallocng, the part ld-musl runs before the program's entry point (R-M5).

Before the entry point nothing is freed: __dls3 donates the gaps of writable segments
(src/malloc/mallocng/donate.c), then mallocs and callocs a few dozen objects. What that writes
outside the objects' own pages is the first meta areas on brk (malloc.c alloc_meta) and the
groups mallocng maps when no donated group can hold a new one (malloc.c alloc_group). Which of
the two happens depends on the size classes the gaps happened to provide, so this follows the
allocation path of musl 1.2.3 step by step: size_to_class, the coarse classes of malloc, the
slot counts of alloc_group, a small group nested in a slot of a larger class, try_avail's
activation of slots, enframe's cycling offset. free and the bounce counters are not modelled;
nothing at start-up frees.

Addresses are a region and an offset: a donated gap lies in an object's page, which the
object's own rules count (R-M4); an mmapped group's written pages are what this adds.
"""

from __future__ import annotations

import msgspec

# src/malloc/mallocng/meta.h and malloc.c
UNIT = 16
IB = 4
MMAP_THRESHOLD = 131052
SIZE_CLASSES = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25, 31,
    36, 42, 50, 63, 72, 84, 102, 127, 146, 170, 204, 255, 292, 340, 409, 511,
    584, 682, 818, 1023, 1169, 1364, 1637, 2047, 2340, 2730, 3276, 4095, 4680, 5460, 6552, 8191,
)  # fmt: skip
SMALL_CNT_TAB = (
    (30, 30, 30), (31, 15, 15), (20, 10, 10), (31, 15, 7), (25, 12, 6),
    (21, 10, 5), (18, 8, 4), (31, 15, 7), (28, 14, 6),
)  # fmt: skip
MED_CNT_TAB = (28, 24, 20, 32)
# A meta area is 4096 bytes whatever the page size (alloc_meta: avail_meta_areas += 4096).
META_AREA = 4096
# calloc.c mal0_clear's page, "arbitrary" there and fixed at 4096.
CLEAR_PAGE = 4096


def size_to_class(n: int) -> int:
    """meta.h size_to_class."""
    n = (n + IB - 1) >> 4
    if n < 10:
        return n
    n += 1
    i = (28 - (32 - n.bit_length())) * 4 + 8
    if n > SIZE_CLASSES[i + 1]:
        i += 2
    if n > SIZE_CLASSES[i]:
        i += 1
    return i


class Region(msgspec.Struct, eq=False):
    """Memory groups live in: a donated gap (an object's page) or an anonymous mmap."""

    name: str
    mapped: bool  # an mmap of alloc_group or of a large malloc
    size: int = 0
    written: set[int] = msgspec.field(default_factory=set)  # page indexes, mapped regions only

    def write(self, off: int, length: int, page: int) -> None:
        if self.mapped and length > 0:
            self.written.update(range(off // page, (off + length - 1) // page + 1))


class Group(msgspec.Struct, eq=False):
    """struct meta and the group header it points at (m->mem)."""

    sizeclass: int
    region: Region
    base: int  # offset of the group (struct group) in its region
    last_idx: int
    freeable: bool
    maplen: int  # pages (of 4096) of an mmapped group, 0 otherwise
    avail_mask: int
    freed_mask: int
    active_idx: int  # m->mem->active_idx
    donated: bool = False
    prev: Group | None = None
    next: Group | None = None


class Mapping(msgspec.Struct, frozen=True):
    """One group mmapped by alloc_group (or one large malloc), and the request that caused it."""

    request: str  # what ld-musl allocated
    request_bytes: int
    classes: tuple[int, ...]  # size classes from the request's to the mapped group's
    region: Region


class Mallocng:
    """The allocator's context (struct malloc_context ctx) and its allocation path."""

    def __init__(self, page: int, word: int) -> None:
        self.page = page
        # sizeof(struct meta): prev, next, mem, two ints, one uintptr_t of bitfields;
        # struct meta_area: uint64_t check, next, int nslots, padded to the slots' alignment.
        meta = 4 * word + 8
        head = -(-(8 + word + 4) // word) * word
        self.metas_per_area = (META_AREA - head) // meta
        self.active: list[Group | None] = [None] * 48
        self.usage_by_class = [0] * 48
        self.mmap_counter = 0
        self.meta_areas = 0  # carved from brk: the first brk page, then one more each
        self.avail_meta_count = 0
        self.metas = 0
        self.mappings: list[Mapping] = []
        self.donated: list[tuple[str, int, tuple[int, ...]]] = []  # gap, bytes, classes
        self.requests: list[tuple[str, int]] = []  # what malloc and calloc were asked for
        self._request = ("", 0)
        self._chain: list[int] = []

    # -- results ------------------------------------------------------------------------------

    @property
    def brk_pages(self) -> int:
        """Pages of [heap] written: the meta areas (the guard page below them is PROT_NONE)."""
        return -(-self.meta_areas * META_AREA // self.page)

    @property
    def mapped_pages(self) -> int:
        return sum(len(m.region.written) for m in self.mappings)

    # -- meta.h list helpers ------------------------------------------------------------------

    @staticmethod
    def _queue(head: Group | None, m: Group) -> Group:
        """Append m to a circular list; returns the (unchanged or new) head."""
        if head is None:
            m.prev = m.next = m
            return m
        assert head.prev is not None
        m.next = head
        m.prev = head.prev
        head.prev.next = m
        head.prev = m
        return head

    def _dequeue(self, sc: int, m: Group) -> None:
        if m.next is not m:
            assert m.prev is not None and m.next is not None
            m.prev.next = m.next
            m.next.prev = m.prev
            if self.active[sc] is m:
                self.active[sc] = m.next
        else:
            self.active[sc] = None
        m.prev = m.next = None

    # -- malloc.c -----------------------------------------------------------------------------

    def _alloc_meta(self) -> None:
        """One struct meta: the first call extends brk by a guard page and a meta area; each
        later area is one more brk page (alloc_meta)."""
        if not self.avail_meta_count:
            self.meta_areas += 1
            self.avail_meta_count = self.metas_per_area
        self.avail_meta_count -= 1
        self.metas += 1

    def _try_avail(self, sc: int) -> int:
        m = self.active[sc]
        if m is None:
            return 0
        mask = m.avail_mask
        if not mask:
            if not m.freed_mask:
                self._dequeue(sc, m)
                m = self.active[sc]
                if m is None:
                    return 0
            else:
                assert m.next is not None
                m = m.next
                self.active[sc] = m
            mask = m.freed_mask
            # skip a fully free group unless it is the only one or not freeable
            if mask == (2 << m.last_idx) - 1 and m.freeable:
                assert m.next is not None
                m = m.next
                self.active[sc] = m
                mask = m.freed_mask
            # activate more slots of a group only as a last resort
            if not mask & ((2 << m.active_idx) - 1):
                if m.next is not m:
                    assert m.next is not None
                    m = m.next
                    self.active[sc] = m
                else:
                    cnt = m.active_idx + 2
                    size = SIZE_CLASSES[m.sizeclass] * UNIT
                    span = UNIT + size * cnt
                    # activate up to the next 4k boundary
                    while (span ^ (span + size - 1)) < 4096:
                        cnt += 1
                        span += size
                    cnt = min(cnt, m.last_idx + 1)
                    m.active_idx = cnt - 1
            act = (2 << m.active_idx) - 1
            mask = m.freed_mask & act
            m.freed_mask &= ~act
            m.avail_mask = mask
            assert mask
        first = mask & -mask
        m.avail_mask = mask - first
        return first

    def _alloc_slot(self, sc: int, req: int) -> int:
        first = self._try_avail(sc)
        if first:
            return first.bit_length() - 1
        g = self._alloc_group(sc, req)
        g.avail_mask -= 1
        self.active[sc] = self._queue(self.active[sc], g)
        return 0

    def _alloc_group(self, sc: int, req: int) -> Group:
        size = UNIT * SIZE_CLASSES[sc]
        P = self.page
        self._chain.append(sc)
        self._alloc_meta()
        usage = self.usage_by_class[sc]
        if sc < 9:
            i = 0
            while i < 2 and 4 * SMALL_CNT_TAB[sc][i] > usage:
                i += 1
            cnt = SMALL_CNT_TAB[sc][i]
        else:
            cnt = MED_CNT_TAB[sc & 3]
            while not cnt & 1 and 4 * cnt > usage:
                cnt >>= 1
            while size * cnt >= 65536 * UNIT:
                cnt >>= 1
        if cnt == 1 and size * cnt + UNIT <= P // 2:
            cnt = 2
        if size * cnt + UNIT > P // 2:
            # Larger than half a page: whole pages of its own. No bounces before anything
            # is freed, so the small-count reductions are always allowed.
            if not sc & 1 and sc < 32:
                usage += self.usage_by_class[sc + 1]
            if 4 * cnt > usage:
                if (sc & 3) == 1 and size * cnt > 8 * P:
                    cnt = 2
                elif ((sc & 3) == 2 and size * cnt > 4 * P) or (
                    (sc & 3) == 0 and size * cnt > 8 * P
                ):
                    cnt = 3
                elif (sc & 3) == 0 and size * cnt > 2 * P:
                    cnt = 5
            needed = size * cnt + UNIT
            needed += -needed & (P - 1)
            if cnt <= 7:
                req += IB + UNIT
                req += -req & (P - 1)
                if req < size + UNIT or (req >= 4 * P and 2 * cnt > usage):
                    cnt = 1
                    needed = req
            region = Region(name=f"mmap {needed} B", mapped=True, size=needed)
            label, nbytes = self._request
            self.mappings.append(Mapping(label, nbytes, tuple(self._chain), region))
            self.mmap_counter += 1
            maplen = needed >> 12
            active_idx = max(0, min((4096 - UNIT) // size - 1, cnt - 1))
            base = 0
        else:
            # A small group is itself a slot of a larger class.
            inner = UNIT + cnt * size - IB
            j = size_to_class(inner)
            idx = self._alloc_slot(j, inner)
            parent = self.active[j]
            assert parent is not None
            region = parent.region
            p = self._enframe(parent, idx, UNIT * SIZE_CLASSES[j] - IB, self.mmap_counter)
            region.write(p - 3, 1, P)
            for i in range(cnt + 1):
                region.write(p + UNIT + i * size - 4, 1, P)
            maplen = 0
            active_idx = cnt - 1
            base = p
        self.usage_by_class[sc] += cnt
        avail = (2 << active_idx) - 1
        region.write(base, UNIT, P)  # m->mem->meta, m->mem->active_idx
        return Group(
            sizeclass=sc,
            region=region,
            base=base,
            last_idx=cnt - 1,
            freeable=True,
            maplen=maplen,
            avail_mask=avail,
            freed_mask=(2 << (cnt - 1)) - 1 - avail,
            active_idx=active_idx,
        )

    @staticmethod
    def _stride(g: Group) -> int:
        if not g.last_idx and g.maplen:
            return g.maplen * 4096 - UNIT
        return UNIT * SIZE_CLASSES[g.sizeclass]

    def _enframe(self, g: Group, idx: int, n: int, ctr: int) -> int:
        """meta.h enframe: the slot's header, its cycling offset and set_size's marks."""
        P = self.page
        stride = self._stride(g)
        slack = (stride - IB - n) // UNIT
        p = g.base + UNIT + stride * idx
        end = p + stride - IB
        # donate marks its one slot's header byte p[-3] = 255, so the offset starts at 1.
        off = (1 if g.donated else ctr) & 255
        if off > slack:
            m = slack
            m |= m >> 1
            m |= m >> 2
            m |= m >> 4
            off &= m
            if off > slack:
                off -= slack + 1
        if off:
            g.region.write(p - 3, 3, P)
            p += UNIT * off
            g.region.write(p - 4, 1, P)
        g.region.write(p - 3, 3, P)
        reserved = end - p - n
        if reserved:
            g.region.write(end - reserved, 1, P)
        if reserved >= 5:
            g.region.write(end - 5, 5, P)
        return p

    # -- entry points -------------------------------------------------------------------------

    def donate(self, name: str, start: int, end: int) -> None:
        """donate.c: the gap's 16-byte-aligned middle, as one single-slot group of each class
        47, 43, ..., 3 that still fits, largest first."""
        a = start + (-start & (UNIT - 1))
        b = end - (end & (UNIT - 1))
        region = Region(name=name, mapped=False)
        classes = []
        sc = 47
        while sc > 0 and b > a:
            if b - a >= (SIZE_CLASSES[sc] + 1) * UNIT:
                self._alloc_meta()
                g = Group(
                    sizeclass=sc,
                    region=region,
                    base=a,
                    last_idx=0,
                    freeable=False,
                    maplen=0,
                    avail_mask=0,
                    freed_mask=1,
                    active_idx=0,
                    donated=True,
                )
                self.active[sc] = self._queue(self.active[sc], g)
                classes.append(sc)
                a += (SIZE_CLASSES[sc] + 1) * UNIT
            sc -= 4
        self.donated.append((name, end - start, tuple(classes)))

    def malloc(self, n: int, request: str = "") -> tuple[Group, int]:
        """malloc.c malloc: the group and the slot's offset in the group's region."""
        self._request = (request, n)
        self.requests.append(self._request)
        self._chain = []
        if n >= MMAP_THRESHOLD:
            needed = n + IB + UNIT
            region = Region(name=f"mmap {needed} B", mapped=True, size=needed)
            self.mappings.append(Mapping(request, n, (63,), region))
            self._alloc_meta()
            big = Group(
                sizeclass=63,
                region=region,
                base=0,
                last_idx=0,
                freeable=True,
                maplen=(needed + 4095) // 4096,
                avail_mask=0,
                freed_mask=0,
                active_idx=0,
            )
            region.write(0, UNIT, self.page)
            self.mmap_counter += 1
            return big, self._enframe(big, 0, n, self.mmap_counter)
        sc = size_to_class(n)
        self._chain.append(sc)
        g = self.active[sc]
        # Coarse classes while a class has no groups yet (counts of 2 or 3 instead of 7 or 5).
        if g is None and 4 <= sc < 32 and sc != 6 and not sc & 1 and not self.usage_by_class[sc]:
            usage = self.usage_by_class[sc | 1]
            odd = self.active[sc | 1]
            if odd is None or (not odd.avail_mask and not odd.freed_mask):
                usage += 3
            if usage <= 12:
                sc |= 1
                self._chain[-1] = sc
                g = self.active[sc]
        if g is not None and g.avail_mask:
            first = g.avail_mask & -g.avail_mask
            g.avail_mask -= first
            idx = first.bit_length() - 1
        else:
            self._chain.pop()  # alloc_group records the classes it creates groups in
            idx = self._alloc_slot(sc, n)
            g = self.active[sc]
        assert g is not None
        return g, self._enframe(g, idx, n, self.mmap_counter)

    def calloc(self, n: int, request: str = "") -> None:
        """calloc.c: malloc, then zero unless the group is known all-zero (is_allzero); from a
        page on, mal0_clear leaves the pages that already read as zero unwritten."""
        g, p = self.malloc(n, request)
        if g.sizeclass >= 48 or self._stride(g) < UNIT * SIZE_CLASSES[g.sizeclass]:
            return
        if n < CLEAR_PAGE:
            g.region.write(p, n, self.page)
            return
        end = p + n
        tail = end - end % CLEAR_PAGE
        g.region.write(tail, end - tail, self.page)
        head = -p % CLEAR_PAGE
        g.region.write(p, head, self.page)
