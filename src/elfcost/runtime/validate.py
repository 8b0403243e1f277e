"""`elfcost validate` as a library: estimate a program, run it twice (held at its ELF entry
point, then idle after start-up), measure it each time and compare with the estimate."""

from __future__ import annotations

import os
from collections.abc import Sequence

import msgspec

from elfcost.cost.estimate import Options
from elfcost.errors import ExitedError
from elfcost.model import Estimate
from elfcost.predict import estimate
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.runtime.compare import Comparison, compare
from elfcost.runtime.launch import At
from elfcost.runtime.measure import DEFAULT_START, Start, measure_launched

STOPS: tuple[At, ...] = ("entry", "idle")


class Validation(msgspec.Struct, frozen=True, kw_only=True):
    """The estimate, the comparison at each stop (STOPS order), and the static what-if when
    asked for (for the HTML report)."""

    estimate: Estimate
    comparisons: tuple[Comparison, ...]
    static_whatif: Estimate | None = None
    # The stops not compared, each in a sentence: a program that exits at once (`/bin/true`)
    # is compared at its entry point only.
    not_compared: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)


def validate(
    binary: str,
    args: Sequence[str],
    host: Host,
    start: Start = DEFAULT_START,
    *,
    tolerance: int = 0,
    whatif: bool = False,
) -> Validation:
    """Validate `binary` run with `args`: within `tolerance` pages per object at the entry point
    and, idle, a total within the predicted [low, high]. Raises ElfcostError (MeasurementError)
    when it cannot be analysed, started or measured; a program that exits before it is idle
    is compared at its entry point only, the idle stop said in `not_compared`."""
    graph = resolve(host.loader_path(binary), host)
    est = estimate(graph, Options(page_size=os.sysconf("SC_PAGE_SIZE")))
    dsos = [o.dso for o in graph.objects]
    comparisons = []
    not_compared = []
    for at in STOPS:
        try:
            with start.launch([binary, *args], at) as p:
                m = measure_launched(p, dsos)
        except ExitedError as exc:
            if at == STOPS[0]:
                raise
            not_compared.append(f"{at}: not compared: {exc}")
            continue
        comparisons.append(compare(est, m, stop=at, tolerance_pages=tolerance))
    static = None
    if whatif and est.loader_path:
        from elfcost.cost.whatif import static_whatif

        static = static_whatif(graph, Options(page_size=est.page_size), dynamic=est)
    return Validation(
        estimate=est,
        comparisons=tuple(comparisons),
        static_whatif=static,
        not_compared=tuple(not_compared),
    )
