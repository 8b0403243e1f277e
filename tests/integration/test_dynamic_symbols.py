"""dynamic_symbols with defined=False: the undefined names only, the same as a full read's, and
no defined symbol decoded; what the static-lib what-ifs read of libc and the loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from elfcost.elf.symbols import dynamic_symbols
from elfcost.pipeline import make_host
from elfcost.resolve.search import resolve

pytestmark = pytest.mark.integration


def test_undefined_only(samples: Path) -> None:
    graph = resolve(str(samples / "bss_tail.pie"), make_host())
    for o in graph.objects:
        full = dynamic_symbols(o.dso)
        part = dynamic_symbols(o.dso, defined=False)
        assert part.undefined == full.undefined
        assert part.defined == {}
    libc = next(o.dso for o in graph.objects if o.dso.soname == "libc.so.6")
    full = dynamic_symbols(libc)
    assert len(full.defined) > 1000 and "malloc" in full.defined  # a full read decodes them
