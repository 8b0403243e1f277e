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
    is idle (/bin/true) is compared at its entry point only, and says so. With --root the
    program is run inside the root (chroot: root privileges), with its loader and libraries.
    Usage: validate BINARY -- ARGS.
    """
    from elfcost.report import jsonout, text
    from elfcost.runtime.compare import comparison_doc
    from elfcost.runtime.validate import cannot_run_in, validate

    why = cannot_run_in(host)
    if why is not None:
        raise click.UsageError(why)
    v = validate(binary, args, host, start, tolerance=tolerance, whatif=fmt == "html")
    # The status is decided before the output, so a closed pipe cannot lose it.
    if not v.ok:
        state.fail()
    docs = [comparison_doc(c) for c in v.comparisons]
    if fmt == "html":
        from elfcost.report.html import estimate_html

        static = [] if v.static_whatif is None else [jsonout.estimate_doc(v.static_whatif)]
        page = estimate_html(
            [jsonout.estimate_doc(v.estimate)],
            comparisons=docs,
            static_whatif=static,
            instances=129,
        )
        common.emit([page], output)
    elif fmt == "json":
        # One input, one JSON document: the stops' documents in one array (json.load reads it).
        body = ",\n".join(jsonout.dumps(d, pretty=False) for d in docs)
        common.emit([f"[\n{body}\n]\n" if docs else "[]\n"], None)
    else:
        notes = [f"{line}\n" for line in v.not_compared]
        common.emit([*(text.comparison_text(c) for c in v.comparisons), *notes], None)
    if fmt != "text":  # beside a document, which its reader must read whole
        for line in v.not_compared:
            click.echo(f"elfcost: {line}", err=True)
