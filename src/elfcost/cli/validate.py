from __future__ import annotations

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    binary: str = common.argument(),
    args: tuple[str, ...] = common.argument(nargs=-1),
    host: common.Host = common.HOST,
    start: common.Start = common.START,
    tolerance: int = common.option(
        "--tolerance", type=click.IntRange(min=0), default=0, metavar="PAGES"
    ),
    fmt: str = common.format_option(
        ["text", "json", "html"],
        "json: one JSON array of elfcost.comparison/2 documents, one per stop compared "
        "(entry, idle); html: predicted and measured page maps side by side (with -o FILE).",
    ),
    output: str | None = common.OUTPUT,
) -> None:
    """Estimate BINARY, run it, measure it at its entry point and idle, and compare.

    Exit 0 when every object is within --tolerance pages at the entry point and the idle
    total lies within the predicted [low, high]; 1 otherwise. A program that exits before it
    is idle (/bin/true), or runs another program in its place (sh -c 'exec prog'), is
    compared at its entry point only, and says so. With --root the
    program is run inside the root (chroot: root privileges), with its loader and libraries.
    Usage: validate BINARY -- ARGS.
    """
    from elfcost.report import outputs
    from elfcost.runtime.validate import cannot_run_in, validate

    why = cannot_run_in(host)
    if why is not None:
        raise click.UsageError(why)
    binary = common.on_path(binary, host)
    v = validate(binary, args, host, start, tolerance=tolerance, whatif=fmt == "html")
    # The status is decided before the output, so a closed pipe cannot lose it.
    if not v.ok:
        state.fail()
    common.emit(outputs.validation(v, fmt), output)
    if fmt != "text":  # beside a document, which its reader must read whole
        for line in v.not_compared:
            click.echo(f"elfcost: {line}", err=True)
