"""elfcost deps."""

from __future__ import annotations

from collections.abc import Sequence

import click

from elfcost.cli import common
from elfcost.errors import Exit


@common.command(
    click.argument("binaries", nargs=-1, required=True),
    common.ROOT,
    common.format_option(
        ["text", "json", "dot"],
        "json: one elfcost.deps/1 document (JSON Lines for several binaries); dot: Graphviz.",
    ),
    common.option("--strict", is_flag=True, help="Exit 1 when a library is missing."),
)
def command(
    state: common.State,
    binaries: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    fmt: str,
    strict: bool,
) -> None:
    """The libraries BINARY loads, in load order, and how each was found.

    For a missing library, every path the loader would try, in order, and why.
    """
    from elfcost.report import jsonout
    from elfcost.report.text import deps_text
    from elfcost.resolve.search import resolve

    host = common.host_of(root, ld_library_path, env_llp, sections=False)
    for b in binaries:
        with state.per_input():
            graph = resolve(host.loader_path(b), host)
            # The status is decided before the output, so a closed pipe cannot lose it.
            if strict and graph.missing:
                state.fail(Exit.CHECK_FAILED)
            if fmt == "json":
                click.echo(jsonout.dumps(jsonout.deps_doc(graph), pretty=len(binaries) == 1))
            else:
                click.echo(graph.to_dot() if fmt == "dot" else deps_text(graph), nl=False)
    state.finish()
