"""glibc's initial static TLS on x86 (cost/estimate.py _tcb_at_tp_pages), on the layout
elf/dl-tls.c gives it: the blocks below the TCB at the end of an area that starts on a page
with the static surplus (1664 B) first. One scenario, one expectation each."""

from __future__ import annotations

from elfcost.cost.estimate import _tcb_at_tp_pages
from elfcost.model import Prot, Segment

P = 4096
SURPLUS = 1664


def block(memsz: int, align: int, filesz: int = 0) -> Segment:
    return Segment(
        index=0, p_type=7, offset=0, vaddr=0, filesz=filesz, memsz=memsz, align=align,
        flags=Prot.R,
    )  # fmt: skip


def test_x86_64_libc_tls_and_tcb_end_past_the_first_page() -> None:
    # glibc 2.36's libc.so.6 PT_TLS: 144 B, align 8; sizeof (struct pthread) 2368;
    # offset 144; area align_up(144 + 1664, 64) + 2368 = 1856 + 2368 = 4224 bytes
    pages, start, end = _tcb_at_tp_pages([block(144, 8)], 2368, SURPLUS, P)
    assert (start, end, pages) == (1712, 4224, 2)


def test_i386_tcb_fits_in_the_first_page() -> None:
    # glibc 2.36 i386: libc's PT_TLS 84 B; area align_up(84 + 1664, 64) + 1216 = 3008 bytes
    pages, start, end = _tcb_at_tp_pages([block(84, 4)], 1216, SURPLUS, P)
    assert (start, end, pages) == (1708, 3008, 1)


def test_no_tls_block_the_tcb_alone() -> None:
    pages, start, end = _tcb_at_tp_pages([], 2368, SURPLUS, P)
    assert (start, end, pages) == (1664, 1664 + 2368, 1)  # 4032: just inside the page


def test_blocks_aligned_one_after_another_and_a_large_one() -> None:
    # two blocks: 100 B align 64 -> offset 128; then 5000 B align 16 -> offset 5136
    pages, start, end = _tcb_at_tp_pages([block(100, 64), block(5000, 16)], 2368, SURPLUS, P)
    size = 6848 + 2368  # align_up(5136 + 1664, 64) = 6848
    assert (start, end) == (size - 2368 - 5136, size) and pages == 3
