"""elfcost measure."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import click

from elfcost.cli import common

if TYPE_CHECKING:
    from elfcost.runtime.launch import At
    from elfcost.runtime.records import Measurement


@common.command(
    click.argument("command", nargs=-1),
    common.option("--pid", "pids", type=int, multiple=True),
    common.option("--smaps", "smaps_file", type=click.Path(exists=True)),
    common.option("--capture", type=click.Path(exists=True)),
    common.option("--at", type=click.Choice(["entry", "idle", "exec"]), default="idle"),
    common.option("--follow", metavar="NAME"),
    common.LAUNCH,
    common.format_option(["text", "json"], "json: elfcost.measurement/1."),
)
def command(
    state: common.State,
    command: Sequence[str],
    pids: Sequence[int],
    smaps_file: str | None,
    capture: str | None,
    at: str,
    follow: str | None,
    timeout: float,
    delay: float | None,
    settle: float,
    clean_env: bool,
    env_items: Sequence[str],
    fmt: str,
) -> None:
    """What a running process costs, attributed to the same objects as the estimate.

    \b
    elfcost measure -- /usr/bin/foo --args     start it, measure when idle, kill it
    elfcost measure --at entry -- /bin/sleep 9 stop it at its ELF entry point
    elfcost measure --pid 1234                 a live process
    elfcost measure --capture cap.tgz          files captured on another machine
    """
    from elfcost.report import jsonout, text
    from elfcost.runtime import measure as rm

    if sum(bool(x) for x in (command, pids, smaps_file, capture)) != 1:
        raise click.UsageError("give exactly one of: -- COMMAND, --pid, --smaps, --capture")
    results: list[Measurement] = []
    if command:
        with state.per_input():
            m = rm.measure_command(
                command,
                at=cast("At", at),  # one of click.Choice's
                env=rm.environment(env_items, clean=clean_env),
                settle=settle,
                delay=delay,
                timeout=timeout,
                follow=follow,
            )
            results.append(m)
    for pid in pids:
        with state.per_input():
            results.append(rm.measure_pid(pid, rm.discover_dsos(pid)))
    for source in (smaps_file and (os.path.dirname(smaps_file) or "."), capture):
        if source:
            with state.per_input():
                results.append(rm.measure_capture(source, ()))
    for m in results:
        if fmt == "json":
            click.echo(jsonout.dumps(rm.to_json(m), pretty=len(results) == 1))
        else:
            click.echo(text.measurement_text(m), nl=False)
    if len(pids) > 1 and len(results) > 1:
        g = rm.group_of(results)
        if fmt == "json":
            click.echo(jsonout.dumps(rm.group_to_json(g), pretty=False))
        else:
            click.echo(text.group_text(g), nl=False)
    state.finish()
