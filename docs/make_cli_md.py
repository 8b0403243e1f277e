#!/usr/bin/env python3
"""Write docs/cli.md from `elfcost --help` and every command's --help.

The CLI reference is generated so it cannot drift: tests/integration/test_docs.py regenerates
it and fails when the committed file differs. Run `python3 docs/make_cli_md.py` after changing
an option.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from elfcost.cli import main

WIDTH = 100  # columns, whatever the terminal this runs in


def render() -> str:
    parts = [
        "# Command-line reference\n",
        "Generated from `elfcost --help` by `docs/make_cli_md.py`; a test keeps it in step.\n",
    ]
    settings = {**main.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    top = click.Context(main, info_name="elfcost", **settings)
    commands = [None, *main.list_commands(top)]
    for name in commands:
        command = main if name is None else main.get_command(top, name)
        assert command is not None
        ctx = top if name is None else click.Context(command, info_name=name, parent=top)
        parts.append(f"## elfcost {name or ''}".rstrip() + "\n")
        parts.append("```\n" + command.get_help(ctx).rstrip() + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
