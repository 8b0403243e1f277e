from __future__ import annotations

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    old: str = common.argument(),
    new: str = common.argument(),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    new_root: str | None = common.option(
        "--new-root", type=click.Path(exists=True, file_okay=False)
    ),
    instances: int = common.instances("Show the fleet effect for N instances."),
    fmt: str = common.format_option(
        ["text", "json"], "json: elfcost.diff/1 (elfcost.diff-roots/1 for trees)."
    ),
) -> None:
    """Compare two builds: binaries, saved JSON reports, or two directory trees.

    \b
    elfcost diff old/usr/bin/foo new/usr/bin/foo
    elfcost diff before.json after.json -n 129
    elfcost diff --root old --new-root new old/usr/bin new/usr/bin
    """
    from elfcost.diffing import diff
    from elfcost.report import outputs

    doc = diff(
        old, new, host, scenario, new_root=new_root, instances=instances, each=state.per_input
    )
    click.echo(outputs.diff(doc, fmt), nl=False)
