from __future__ import annotations

import click
import msgspec

from elfcost.cli import common
from elfcost.cost.causes import CAUSES


@common.command
def command(
    state: common.State,
    fmt: str = common.format_option(["text", "json"], 'json: {"causes": [...]}, one per cause.'),
) -> None:
    """Why a page is private dirty: every cause the reports name, most specific first."""
    if fmt == "json":
        click.echo(msgspec.json.format(msgspec.json.encode({"causes": CAUSES}), indent=2))
    else:
        from elfcost.report.text import causes_text

        click.echo(causes_text(), nl=False)
