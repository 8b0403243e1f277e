"""runtime.validate.validate and runtime.measure.measure called directly, on real processes:
each started program is held, measured, compared and killed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from elfcost.errors import MeasurementError
from elfcost.pipeline import analyse, make_host
from elfcost.runtime.measure import Start, measure
from elfcost.runtime.validate import STOPS, validate

if TYPE_CHECKING:
    from conftest import Collect

pytestmark = pytest.mark.runtime


def test_validate_trivial_is_exact_at_entry(samples: Path) -> None:
    program = str(samples / "trivial.pie")
    host = make_host()
    v = validate(program, [], host)
    est = analyse(program, host).estimate
    assert v.ok and v.static_whatif is None
    assert [c.stop for c in v.comparisons] == list(STOPS) == ["entry", "idle"]
    assert (v.estimate.total, [o.path for o in v.estimate.objects]) == (
        est.total,
        [o.path for o in est.objects],
    )
    entry, idle = v.comparisons
    # Only the kernel, the loader and libc start-up write (sample_binaries/src/trivial.c):
    # every predicted page is written by the entry point, and nothing else is.
    assert [o.path for o in entry.objects] == [o.path for o in est.objects]
    for o, predicted in zip(entry.objects, est.objects, strict=True):
        assert o.exact, o
        assert o.predicted_pages == o.measured_pages
        assert o.predicted_pages == sum(1 for p in predicted.pages if p.phase == "entry")
    assert idle.within_bounds and idle.predicted_expected == est.total.expected
    assert validate(program, [], host, whatif=True).static_whatif is not None


def test_validate_names_what_the_program_writes(samples: Path) -> None:
    # main writes one byte in each of 5 .bss pages (sample_binaries/src/bss_touched.c): dirty
    # at idle, not predicted, and not there yet at the entry point.
    v = validate(str(samples / "bss_touched.pie"), [], make_host(), tolerance=0)
    entry, idle = v.comparisons
    assert entry.objects[0].unpredicted_dirty == ()
    written = idle.objects[0].unpredicted_dirty
    assert len(written) == 5 and all("program write" in p.why for p in written)
    assert len({p.vaddr for p in written}) == 5
    assert v.ok  # inside the predicted [low, high]


def test_measure_starts_a_command_with_its_environment() -> None:
    # The shell waits only if it sees the variable and nothing of elfcost's own environment.
    script = 'test "$ELFCOST_T" = 1 && test -z "$HOME" && exec sleep 100'
    start = Start(env=("ELFCOST_T=1",), clean_env=True, settle=0.1)
    (m,) = measure(["/bin/sh", "-c", script], start=start)
    assert m.stop == "idle" and m.total.private_dirty > 0
    # The shell's objects were planned (named as estimate names them) but it became sleep.
    mapped = {o.path.rsplit("/", 1)[-1] for o in m.objects if o.usage.rss}
    assert m.objects[0].path == "/bin/sh" and "sh" not in mapped and "sleep" in mapped
    with pytest.raises(MeasurementError):
        measure(["/bin/sh", "-c", script], start=Start(clean_env=True, settle=0.1))


def test_measure_live_processes_each_on_its_own(each: Collect) -> None:
    live = subprocess.Popen(["/bin/sleep", "100"])
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    try:
        found = measure(pids=[dead.pid, live.pid], each=each)
        assert [m.pid for m in found] == [live.pid]
        assert found[0].objects[0].path == "/usr/bin/sleep"
        assert [e.path for e in each.errors] == [f"/proc/{dead.pid}/smaps"]
    finally:
        live.kill()
        live.wait()
