from __future__ import annotations

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    fmt: str = common.format_option(["text", "json"], 'json: {"causes": [...]}, one per cause.'),
) -> None:
    """Why a page is private dirty: every cause the reports name, most specific first."""
    from elfcost.report.outputs import causes

    click.echo(causes(fmt), nl=False)
