from __future__ import annotations

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    binaries: tuple[str, ...] = common.argument(nargs=-1, required=True),
    host: common.Host = common.HOST,
    fmt: str = common.format_option(
        ["text", "json", "dot"],
        "json: one elfcost.deps/1 document (JSON Lines for several binaries); dot: Graphviz.",
    ),
    strict: bool = common.option(
        "--strict", is_flag=True, help="Exit 1 when a library is missing."
    ),
    tree: bool = common.option(
        "--tree",
        is_flag=True,
        help="Text: the dependency tree (each library under the first object that needs it) "
        "instead of the load order.",
    ),
) -> None:
    """The libraries BINARY loads, in load order, and how each was found.

    For a missing library, every path the loader would try, in order, and why. --tree shows
    who needs whom instead: depth first, which is not the order the loader maps them in.
    """
    from msgspec.structs import replace

    from elfcost.report import outputs
    from elfcost.resolve.search import resolve

    host = replace(host, sections=False)  # the report names no sections: none are read
    state.json_errors(fmt == "json")  # a bad input is an elfcost.error/1 line in its place
    for b in binaries:
        with state.per_input():
            graph = resolve(host.loader_path(common.on_path(b, host)), host)
            # The status is decided before the output, so a closed pipe cannot lose it.
            if strict and graph.missing:
                state.fail()
            click.echo(outputs.deps(graph, fmt, tree=tree, pretty=len(binaries) == 1), nl=False)
        for line in state.take_errors(pretty=len(binaries) == 1):
            click.echo(line, nl=False)
