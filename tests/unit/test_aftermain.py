"""The import -> pages rule (cost/aftermain.py) on the shipped profiles' calibration: which
libc functions a process links decides the heap and stack pages libc writes after main."""

from __future__ import annotations

from elfcost.cost.aftermain import Linked, heap_pages, stack_pages, triggers
from elfcost.cost.profiles import all_profiles, select
from elfcost.model import Cause, PageCost

P = 4096


def predict(
    profile: str,
    *objects: tuple[str, tuple[str, ...]],
    static: bool = False,
    formats: dict[str, str] | None = None,
) -> tuple[list[PageCost], list[PageCost]]:
    family, _, link = profile.partition("-")
    am = select(family, link, "x86_64")[0].after_main
    linked = [
        Linked(name=n, functions=f, static=static, float_format=(formats or {}).get(n))
        for n, f in objects
    ]
    found = triggers(am, linked)
    return heap_pages(am, found, P), stack_pages(found)


def idle(pages: list[PageCost]) -> list[PageCost]:
    return [p for p in pages if p.phase == "idle"]


def test_nothing_linked_predicts_nothing() -> None:
    for profile in ("glibc-dynamic", "glibc-static", "musl-dynamic", "musl-static"):
        assert predict(profile, ("prog", ("pause", "read"))) == ([], [])


def test_glibc_opendir_writes_the_first_page_and_the_one_after_its_32k_buffer() -> None:
    """s6-supervise's two [heap] pages: malloc's first page, and the page the next chunk
    header lands in, 0x290 (tcache) + 0x8040 (DIR + 32 KiB) = 0x82d0: page 8."""
    heap, stack = predict(
        "glibc-dynamic", ("s6-supervise", ("opendir",)), ("libskarnet.so.2", ("opendir",))
    )
    assert stack == [] and heap == idle(heap) and len(heap) == 2
    first, buffer = heap
    assert all(p.cause is Cause.LIBC_HEAP and p.vaddr is None and not p.certain for p in heap)
    assert first.detail.startswith("opendir (imported by s6-supervise) calls malloc")
    assert buffer.detail.startswith("opendir (imported by s6-supervise) allocates a DIR")
    assert "heap offset 0x82d0, page 8" in buffer.detail


def test_glibc_chunk_boundaries_add_one_page_per_page_crossed() -> None:
    """opendir then a stream read: boundaries at 0x82d0 (page 8) and 0x92e0 (page 9)."""
    heap, _ = predict("glibc-dynamic", ("prog", ("malloc", "opendir", "fgets")))
    assert len(idle(heap)) == 3
    assert [p.cause for p in heap] == [Cause.LIBC_HEAP, Cause.LIBC_HEAP, Cause.STDIO_BUFFER]
    assert "page 9" in heap[2].detail and "1024 B on a terminal" in heap[2].detail


def test_a_first_malloc_alone_is_one_page() -> None:
    heap, _ = predict("glibc-dynamic", ("sleep", ("setlocale", "malloc")))
    assert len(idle(heap)) == 1
    assert heap[0].detail.startswith("setlocale (imported by sleep) calls malloc")


def test_output_streams_and_nss_are_only_possible() -> None:
    """sleep and cat import printf and write nothing before idle; dash imports getpwnam."""
    heap, stack = predict("glibc-dynamic", ("sleep", ("__printf_chk",)))
    assert idle(heap) == [] and idle(stack) == []
    assert [p.cause for p in heap] == [Cause.LIBC_HEAP, Cause.STDIO_BUFFER]
    assert [p.cause for p in stack] == [Cause.STACK_AFTER_MAIN] * 2
    heap, _ = predict("glibc-dynamic", ("dash", ("getpwnam",)))
    assert idle(heap) == [] and len(heap) == 1 + 2


def test_static_glibc_carries_malloc_and_opendir_whatever_it_calls() -> None:
    """Linked into every static glibc program: only possible. The first brk page is start-up's
    (the TLS block), so a stream read adds its one page, not two."""
    heap, _ = predict("glibc-static", ("prog", ("malloc", "opendir")), static=True)
    assert heap and idle(heap) == []
    assert "linked into prog" in heap[0].detail and "only possible" in heap[0].detail
    heap, _ = predict("glibc-static", ("prog", ("malloc", "fgets")), static=True)
    assert len(idle(heap)) == 1 and idle(heap)[0].cause is Cause.STDIO_BUFFER


def test_musl_counts_pages_without_chunk_arithmetic() -> None:
    heap, _ = predict("musl-dynamic", ("prog", ("opendir",)))
    assert len(idle(heap)) == 1  # a new mallocng group; the first malloc is the loader's page
    heap, _ = predict("musl-static", ("prog", ("opendir",)), static=True)
    assert len(idle(heap)) == 1  # the first malloc's page holds the DIR
    heap, _ = predict("musl-dynamic", ("prog", ("fgets",)))
    assert heap == []  # stdin's buffer is static in libc's .bss


def test_musl_float_formatting_may_deepen_the_stack() -> None:
    """Two pages, only possible: printing integers (stdio, pipe_print) does not reach
    fmt_fp's array, and the import does not say whether a double is formatted."""
    _, stack = predict("musl-static", ("prog", ("snprintf",)), static=True)
    assert [p.phase for p in stack] == ["possible", "possible"]
    assert stack[0].detail.startswith("snprintf (linked into prog)")
    _, stack = predict("glibc-dynamic", ("prog", ("snprintf",)))
    assert stack == []  # glibc's stays within ld.so's start-up depth


def test_a_floating_format_makes_the_first_page_expected() -> None:
    """The importer's own "%.3f" is evidence a double is formatted: fmt_fp's first page is
    expected (printf_format measured +1 to +2), the second stays possible; the object named is
    the one carrying the format, not the first importer."""
    for profile, static in (("musl-static", True), ("musl-dynamic", False)):
        _, stack = predict(
            profile,
            ("prog", ("snprintf",)),
            ("libfmt.so", ("vsnprintf",)),
            static=static,
            formats={"libfmt.so": "%s %.3f"},
        )
        assert [p.phase for p in stack] == ["idle", "possible"], profile
        assert stack[0].detail.startswith("vsnprintf (")
        assert 'libfmt.so carries the format "%s %.3f"' in stack[0].detail
        assert "carries the format" not in stack[1].detail
    # glibc has no such use: a floating format changes nothing there.
    _, stack = predict("glibc-dynamic", ("prog", ("snprintf",)), formats={"prog": "%g"})
    assert stack == []


def test_every_profile_use_names_a_cause_an_item_and_a_phase() -> None:
    for p in all_profiles():
        am = p.after_main
        assert am.uses and am.provenance, p.name
        for u in am.uses:
            assert Cause(u.cause) in (Cause.LIBC_HEAP, Cause.STDIO_BUFFER, Cause.STACK_AFTER_MAIN)
            assert (u.item, u.phase) in {
                (i, ph) for i in ("heap", "stack") for ph in ("idle", "possible")
            }
            assert u.imports and u.why and u.bytes >= 0 and u.pages >= 0
            assert u.item == "heap" or u.bytes == 0  # chunk bytes only on the heap
            # the one kind of evidence elf/ reads; a misspelt one would be ignored silently
            assert u.evidence in ("", "float-format"), (p.name, u.label)
            assert not u.evidence or u.phase == "possible"  # evidence makes possible expected
        assert set(am.uninformative) <= set(am.names), p.name
