#!/usr/bin/env python3
"""Write docs/cli.md from `elfcost --help` and every command's --help.

The CLI reference is generated so it cannot drift: tests/integration/test_docs.py regenerates
it and fails when the committed file differs. Run `python3 docs/make_cli_md.py` after changing
an option.
"""

from __future__ import annotations

import sys
from pathlib import Path

from elfcost import cli

COMMANDS = ("estimate", "explain", "deps", "measure", "validate", "check", "scan", "diff")
WIDTH = 100  # columns, whatever the terminal this runs in


def render() -> str:
    missing = set(cli.COMMANDS) - set(COMMANDS)
    assert not missing, f"add {sorted(missing)} to COMMANDS in docs/make_cli_md.py"
    parts = [
        "# Command-line reference\n",
        "Generated from `elfcost --help` by `docs/make_cli_md.py`; a test keeps it in step.\n",
    ]
    for cmd in ("", *COMMANDS):
        out = cli.build_parser(cmd or None, prog="elfcost", width=WIDTH).format_help()
        parts.append(f"## elfcost {cmd}".rstrip() + "\n")
        parts.append("```\n" + out.rstrip() + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
