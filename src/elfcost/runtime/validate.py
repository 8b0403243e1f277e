"""`elfcost validate` as a library: estimate a program, run it twice (held at its ELF entry
point, then idle after start-up), measure it each time and compare with the estimate."""

from __future__ import annotations

import os
from collections.abc import Sequence

import msgspec

from elfcost.cost.estimate import Options
from elfcost.errors import ExitedError, MeasurementError
from elfcost.model import Dso, Estimate
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


def cannot_run_in(host: Host) -> str | None:
    """Why a program of `host`'s root cannot be run inside it by this process, or None. Run
    outside, it would get this machine's loader and libraries, not the ones estimated."""
    if not host.confined:
        return None
    if os.geteuid() != 0:
        return (
            f"validate --root runs the program inside {host.root} with chroot, which needs root "
            f"privileges (this is uid {os.geteuid()}): run it as root, or without --root"
        )
    return None


def _replaced_by(pid: int, program: Dso) -> str | None:
    """The program `pid` runs now, if it is not `program` (the process called execve since it
    started: a shell's `-c` with one command, a wrapper); None when it is, or when that cannot
    be told. The file is compared by identity (device, inode), as the kernel's /proc/PID/exe
    link resolves it: a symbolic link the program was started through is the same program."""
    exe = f"/proc/{pid}/exe"
    try:
        st = os.stat(exe)
    except OSError:
        return None
    if (st.st_dev, st.st_ino) == (program.file_id.dev, program.file_id.ino):
        return None
    try:
        return os.readlink(exe)
    except OSError:
        return "another program"


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
    and, idle, a total within the predicted [low, high]. Inside `host`'s root the program is
    run there (chroot), with the root's loader and libraries, as estimated; see
    `cannot_run_in`. Raises ElfcostError (MeasurementError) when it cannot be analysed, started
    or measured; a program that exits before it is idle, or executes another program in its
    place (execve: /proc/PID/exe is no longer the file estimated), is compared at its entry
    point only, the idle stop said in `not_compared`."""
    why = cannot_run_in(host)
    if why is not None:
        raise MeasurementError(binary, "running the program in its root", why)
    loader_path = host.loader_path(binary)
    graph = resolve(loader_path, host)
    est = estimate(graph, Options(page_size=os.sysconf("SC_PAGE_SIZE")))
    dsos = [o.dso for o in graph.objects]
    argv0, root = (loader_path, host.root) if host.confined else (binary, None)
    comparisons = []
    not_compared = []
    for at in STOPS:
        try:
            with start.launch([argv0, *args], at, root=root) as p:
                other = _replaced_by(p.target_pid, graph.root.dso) if at == "idle" else None
                if other is not None:
                    # `sh -c 'exec daemon'`, a wrapper: what is idle is not what was estimated.
                    not_compared.append(
                        f"{at}: not compared: {binary}: running: it executed {other} (execve) "
                        f"before it became idle"
                    )
                    continue
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
