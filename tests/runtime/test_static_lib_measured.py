"""--assume static-lib against the kernel: the what-if on skalike with libskalike.so loaded
(sample_binaries/src/skalike.c) against what the linked-in build (libskalike.a) is measured to
write, per object at the entry point and in total when idle."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from elfcost.pipeline import Scenario, analyse, make_host
from elfcost.runtime.validate import validate

if TYPE_CHECKING:
    from conftest import Skalike

pytestmark = pytest.mark.runtime

P = 4096


def test_whatif_matches_the_measured_linked_in_build(skalike: Skalike) -> None:
    host = make_host()
    scenario = Scenario(static_libs=(skalike.lib,))
    whatif = analyse(skalike.shared, host, scenario).estimate
    predicted = {
        "(executable)" if o.role == "executable" else o.path.rsplit("/", 1)[-1]: o
        for o in whatif.objects
    }
    linked = skalike.linked
    entry, idle = validate(linked, [], host).comparisons
    measured = {
        "(executable)" if o.path == linked else o.path.rsplit("/", 1)[-1]: o.measured_pages
        for o in entry.objects
    }
    assert set(measured) == set(predicted)
    for key, pages in measured.items():
        assert abs(predicted[key].private_dirty.at_entry // P - pages) <= 1, (key, pages)
    total = whatif.total
    assert total.low <= idle.measured_total <= total.high
