from __future__ import annotations

import textwrap

import click
import msgspec

from elfcost.cli import common
from elfcost.cost.causes import CAUSES


def causes_text() -> str:
    """One line per cause (name, page-map letter, label, rule codes), then its explanation and
    the source it follows, indented."""
    name, label = max(len(c.name) for c in CAUSES), max(len(c.label) for c in CAUSES)
    lines = []
    for c in CAUSES:
        lines.append(f"{c.name:<{name}}  {c.letter}  {c.label:<{label}}  {', '.join(c.rules)}")
        body = f"{c.explanation} Source: {c.source}."
        lines.extend(textwrap.wrap(body, 96, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines) + "\n"


@common.command
def command(
    state: common.State,
    fmt: str = common.format_option(["text", "json"], 'json: {"causes": [...]}, one per cause.'),
) -> None:
    """Why a page is private dirty: every cause the reports name, most specific first."""
    if fmt == "json":
        click.echo(msgspec.json.format(msgspec.json.encode({"causes": CAUSES}), indent=2))
    else:
        click.echo(causes_text(), nl=False)
