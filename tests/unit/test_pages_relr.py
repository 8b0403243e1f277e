"""Page arithmetic and DT_RELR decoding, checked against straightforward reference code."""

from __future__ import annotations

import array

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from elfcost.cost.pages import align_down, align_up, count_pages, pages_of
from elfcost.elf.relocs import _relr_python, decode_relr

PAGES = st.sampled_from([4096, 16384, 65536])


@given(st.integers(0, 2**48), PAGES)
def test_alignment_laws(v: int, page: int) -> None:
    assert align_down(v, page) <= v <= align_up(v, page)
    assert align_down(v, page) % page == 0 and align_up(v, page) % page == 0
    assert align_up(v, page) - align_down(v, page) in (0, page)


@given(st.lists(st.tuples(st.integers(0, 2**48), st.integers(0, 2**20)), max_size=30), PAGES)
def test_count_pages_matches_listing(spans: list[tuple[int, int]], page: int) -> None:
    ranges = [(a, a + n) for a, n in spans]
    listed = {p for a, b in ranges for p in pages_of(a, b, page)}
    assert count_pages(ranges, page) == len(listed)


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


@given(relr_tables())
def test_relr_one_word_at_a_time_matches_reference(table: tuple[list[int], int]) -> None:
    words, word = table
    got = _relr_python(array.array("Q", words), word)  # 64-bit storage; `word` decides
    assert got == _relr_reference(words, word)
