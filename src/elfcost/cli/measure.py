from __future__ import annotations

from typing import cast

import click

from elfcost.cli import common

PID_MAX = 1 << 22  # PID_MAX_LIMIT on 64-bit Linux
RELINKS = ("static", "musl", "glibc", "musl-static", "glibc-static")  # cost/whatif.py RELINKS


@common.command
def command(
    state: common.State,
    command: tuple[str, ...] = common.argument(nargs=-1),
    pids: tuple[int, ...] = common.option(
        "--pid", type=click.IntRange(min=1, max=PID_MAX), multiple=True
    ),
    smaps_file: str | None = common.option("--smaps", metavar="FILE"),
    capture: str | None = common.option("--capture", metavar="PATH"),
    every: bool = common.option(
        "--all",
        is_flag=True,
        help="Every process the caller may read (no ptrace): per program like ps_mem, per "
        "object across processes like librank, and the linkage overhead the model gives them.",
    ),
    assume: str | None = common.option(
        "--assume",
        type=click.Choice(RELINKS),
        help="With --all: what relinking every program this way would save, and spend in text "
        "pages no longer shared (an estimate).",
    ),
    root: str = common.option(
        "--root",
        default="/",
        type=click.Path(exists=True, file_okay=False),
        help="With --capture or --smaps: read the ELF files the capture maps from this copy of "
        "the target's file system.",
    ),
    at: str = common.option("--at", type=click.Choice(["entry", "idle", "exec"]), default="idle"),
    follow: str | None = common.option("--follow", metavar="NAME"),
    start: common.Start = common.START,
    fmt: str = common.format_option(
        ["text", "json"], "json: elfcost.measurement/1; with --all, elfcost.machine/1."
    ),
) -> None:
    """What a running process costs, attributed to the same objects as the estimate.

    \b
    elfcost measure -- /usr/bin/foo --args     start it, measure when idle, kill it
    elfcost measure --at entry -- /bin/sleep 9 stop it at its ELF entry point
    elfcost measure --pid 1234                 a live process
    elfcost measure --capture cap.tgz          files captured on another machine
    elfcost measure --all --assume static      every process, and what a relink would save
    """
    from elfcost.report import outputs
    from elfcost.runtime import measure as rm

    if sum(bool(x) for x in (command, pids, smaps_file, capture, every)) != 1:
        raise click.UsageError("give exactly one of: -- COMMAND, --pid, --smaps, --capture, --all")
    if assume is not None and not every:
        raise click.UsageError("--assume is for --all")
    state.json_errors(fmt == "json")
    if every:
        click.echo(outputs.machine(fmt, assume), nl=False)
        return
    results = rm.measure(
        command,
        pids,
        capture,
        smaps=smaps_file,
        root=root,
        start=start,
        at=cast("common.At", at),
        follow=follow,
        each=state.per_input,
    )
    errors = state.take_errors(pretty=not results)  # elfcost.error/1 documents, first
    out = outputs.measurements(results, fmt, grouped=len(pids) > 1, errors=bool(errors))
    common.emit([*errors, *out], None)
