from __future__ import annotations

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    binary: str = common.argument(),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    object_name: str | None = common.option("--object", metavar="NAME"),
) -> None:
    """One line per predicted page: address, sections, cause, relocations in it; then the
    process items in no file (stack, loader heap, TLS, heap) and how the total adds up.

    --object NAME shows one object (path, soname or file name) or one process item
    ("stack" or "[stack]").
    """
    from elfcost.pipeline import analyse
    from elfcost.report.text import explain_text

    est = analyse(host.loader_path(common.on_path(binary, host)), host, scenario).estimate
    out = explain_text(est, object_name=object_name)
    if out.startswith("no object named"):
        state.fail()
    click.echo(out, nl=False)
