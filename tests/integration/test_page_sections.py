"""Each predicted page names the allocated sections it covers, as Dso.section_names_at says."""

from __future__ import annotations

import pytest

from elfcost.cost.estimate import Options, estimate
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve


@pytest.mark.parametrize("page_size", [4096, 65536])
def test_page_sections_match_the_section_table(page_size: int) -> None:
    graph = resolve("/usr/bin/curl", Host())
    est = estimate(graph, Options(page_size=page_size))
    dsos = {o.dso.path: o.dso for o in graph.objects}
    checked = 0
    for o in est.objects:
        dso = dsos[o.path]
        for p in o.pages:
            if p.vaddr is None or p.phase == "possible":
                continue
            assert p.sections == dso.section_names_at(p.vaddr, p.vaddr + page_size), (
                o.path,
                hex(p.vaddr),
            )
            checked += 1
    assert checked >= len(est.objects) > 30  # curl and its libraries each have relocated pages
