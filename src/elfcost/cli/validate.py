"""elfcost validate."""

from __future__ import annotations

from collections.abc import Sequence

import click

from elfcost.cli import common
from elfcost.errors import Exit


@common.command(
    click.argument("binary"),
    click.argument("args", nargs=-1),
    common.ROOT,
    common.LAUNCH,
    common.option("--tolerance", type=click.IntRange(min=0), default=0, metavar="PAGES"),
    common.format_option(
        ["text", "json", "html"],
        "json: one elfcost.comparison/1 document per stop; html: predicted and measured "
        "page maps side by side (with -o FILE).",
    ),
    common.OUTPUT,
)
def command(
    state: common.State,
    binary: str,
    args: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    timeout: float,
    delay: float | None,
    settle: float,
    clean_env: bool,
    env_items: Sequence[str],
    tolerance: int,
    fmt: str,
    output: str | None,
) -> None:
    """Estimate BINARY, run it, measure it at its entry point and idle, and compare.

    Exit 0 when every object is within --tolerance pages at the entry point and the idle
    total lies within the predicted [low, high]; 1 otherwise. Usage: validate BINARY -- ARGS.
    """
    from elfcost.report import jsonout, text
    from elfcost.runtime.compare import comparison_doc
    from elfcost.runtime.measure import environment
    from elfcost.runtime.validate import validate

    host = common.host_of(root, ld_library_path, env_llp)
    with state.per_input():
        v = validate(
            binary,
            args,
            host,
            env=environment(env_items, clean=clean_env),
            settle=settle,
            delay=delay,
            timeout=timeout,
            tolerance=tolerance,
            whatif=fmt == "html",
        )
        # The status is decided before the output, so a closed pipe cannot lose it.
        if not v.ok:
            state.fail(Exit.CHECK_FAILED)
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
            common.emit([jsonout.dumps(d, pretty=False) + "\n" for d in docs], None)
        else:
            common.emit([text.comparison_text(c) for c in v.comparisons], None)
    state.finish()
