#!/usr/bin/env python3
"""Write docs/cli.md from `elfcost --help` and every command's --help.

The CLI reference is generated so it cannot drift: tests/integration/test_docs.py regenerates
it and fails when the committed file differs. Run `python3 docs/make_cli_md.py` after changing
an option.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from elfcost.cli import main

COMMANDS = ("estimate", "explain", "deps", "measure", "validate", "check", "scan", "diff")


def render() -> str:
    runner = CliRunner()
    parts = [
        "# Command-line reference\n",
        "Generated from `elfcost --help` by `docs/make_cli_md.py`; a test keeps it in step.\n",
    ]
    for cmd in ("", *COMMANDS):
        args = [cmd, "--help"] if cmd else ["--help"]
        out = runner.invoke(main, args, prog_name="elfcost", terminal_width=100).output
        parts.append(f"## elfcost {cmd}".rstrip() + "\n")
        parts.append("```\n" + out.rstrip() + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
