"""Page arithmetic and DT_RELR decoding, checked against straightforward reference code."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from elfcost.cost.pages import align_down, align_up, distinct, pages_of, span_pages, tally
from elfcost.elf.relocs import decode_relr

PAGES = st.sampled_from([4096, 16384, 65536])


@given(st.integers(0, 2**48), PAGES)
def test_alignment_laws(v: int, page: int) -> None:
    assert align_down(v, page) <= v <= align_up(v, page)
    assert align_down(v, page) % page == 0 and align_up(v, page) % page == 0
    assert align_up(v, page) - align_down(v, page) in (0, page)


@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(1, 40000)), max_size=50), PAGES)
def test_span_pages_matches_reference(writes: list[tuple[int, int]], page: int) -> None:
    ref = sorted({p for off, w in writes for p in pages_of(off, off + w, page)})
    got = span_pages(
        np.array([o for o, _ in writes], np.uint64),
        np.array([w for _, w in writes], np.int64),
        page,
    )
    assert got.tolist() == ref


@given(st.lists(st.integers(0, 2**64 - 1), max_size=60) | st.lists(st.integers(0, 300)))
def test_distinct_is_sorted_unique(values: list[int]) -> None:
    a = np.array(values, np.uint64)
    for arr in (a, np.sort(a)):  # the unsorted and the already-sorted paths
        got = distinct(arr)
        assert got.dtype == np.uint64 and got.tolist() == sorted(set(values))


@given(st.lists(st.integers(0, 2000), max_size=200) | st.lists(st.integers(0, 2**40)))
def test_tally_counts_each_value(values: list[int]) -> None:
    keys, counts = tally(np.array(values, np.intp))
    ref = sorted({v: values.count(v) for v in values}.items())
    assert list(zip(keys.tolist(), counts.tolist(), strict=True)) == ref


def _relr_reference(words: list[int], word: int) -> list[int]:
    """glibc elf/dynamic-link.h ELF_DYNAMIC_DO_RELR, one entry at a time."""
    out, where = [], 0
    bits = word * 8
    for w in words:
        if w & 1 == 0:
            out.append(w)
            where = w + word
        else:
            for i in range(bits - 1):
                if (w >> (i + 1)) & 1:
                    out.append(where + i * word)
            where += (bits - 1) * word
    return sorted(out)


@st.composite
def relr_tables(draw: st.DrawFn) -> tuple[list[int], int]:
    word = draw(st.sampled_from([4, 8]))
    words: list[int] = []
    for _ in range(draw(st.integers(0, 12))):
        words.append(draw(st.integers(0, 2**30)) * word)  # an address (even, aligned)
        for _ in range(draw(st.integers(0, 3))):
            words.append(draw(st.integers(0, 2 ** (word * 8 - 1) - 1)) << 1 | 1)
    return words, word


@given(relr_tables())
def test_relr_matches_reference(table: tuple[list[int], int]) -> None:
    words, word = table
    got = decode_relr(np.array(words, np.uint64), word).tolist()
    assert got == _relr_reference(words, word)
