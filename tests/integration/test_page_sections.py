"""Each predicted page names the allocated sections it covers; the index that answers it is
checked against the plain definition (every SHF_ALLOC section of non-zero size overlapping the
range, in address order), on real objects and on random section tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elfcost.cost.estimate import Options
from elfcost.model import SHF_ALLOC, SHT_NOBITS, Dso, Section, SectionIndex
from elfcost.predict import estimate
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve


def overlapping(sections: tuple[Section, ...], start: int, end: int) -> tuple[str, ...]:
    return tuple(
        s.name
        for s in sorted(sections, key=lambda s: s.addr)
        if s.flags & SHF_ALLOC and s.size and s.addr < end and s.addr + s.size > start
    )


@pytest.mark.parametrize("page_size", [4096, 65536])
def test_page_sections_match_the_section_table(page_size: int) -> None:
    graph = resolve("/usr/bin/curl", Host())
    est = estimate(graph, Options(page_size=page_size))
    dsos: dict[str, Dso] = {o.dso.path: o.dso for o in graph.objects}
    checked = 0
    for o in est.objects:
        dso = dsos[o.path]
        for p in o.pages:
            if p.vaddr is None or p.phase == "possible":
                continue
            assert p.sections == overlapping(dso.sections, p.vaddr, p.vaddr + page_size), (
                o.path,
                hex(p.vaddr),
            )
            checked += 1
    assert checked >= len(est.objects) > 30  # curl and its libraries each have relocated pages


@st.composite
def _sections(draw: st.DrawFn) -> tuple[Section, ...]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        out.append(
            Section(
                name=f"s{i}",
                sh_type=SHT_NOBITS,
                flags=draw(st.sampled_from([0, SHF_ALLOC])),
                addr=draw(st.integers(0, 1 << 16)),
                offset=0,
                size=draw(st.sampled_from([0, 1, 16, 4096, 5000, 1 << 15])),
                entsize=0,
            )
        )
    return tuple(out)


@given(_sections(), st.data())
def test_section_index_is_the_plain_definition(
    sections: tuple[Section, ...], data: st.DataObject
) -> None:
    """Overlapping sections, one inside another, zero sizes, equal addresses; ranges that
    start or end exactly where a section starts or ends."""
    edges = sorted({e for s in sections for e in (s.addr, s.addr + s.size)} | {0})
    start = data.draw(st.one_of(st.sampled_from(edges), st.integers(0, 1 << 16)))
    end = data.draw(
        st.one_of(
            st.sampled_from([e for e in edges if e > start] or [start + 1]),
            st.integers(start + 1, start + (1 << 15)),
        )
    )
    index = SectionIndex.of(sections)
    assert index.names_at(start, end) == overlapping(sections, start, end)
