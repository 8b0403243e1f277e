"""elfcost debhelper-env."""

from __future__ import annotations

import os
import shlex
import sys

import click
import msgspec

from elfcost.cli import common
from elfcost.errors import ElfcostError


def debhelper_dir() -> str:
    """Where this elfcost keeps dh_elfcost and Debian/Debhelper/Sequence/elfcost.pm."""
    import elfcost

    return os.path.join(os.path.dirname(os.path.abspath(elfcost.__file__)), "debhelper")


@common.command
def command(
    state: common.State,
    fmt: str = common.format_option(
        ["text", "json"], 'json: {"path": DIR, "perl5lib": DIR, "elfcost": ARGV}.'
    ),
) -> None:
    """Print the shell lines that make `dh --with elfcost` run this elfcost.

    eval "$(elfcost debhelper-env)" puts dh_elfcost on PATH, its sequence add-on
    (Debian/Debhelper/Sequence/elfcost.pm) on PERL5LIB, and names this elfcost, run by this
    Python, in ELFCOST, the command dh_elfcost runs. `make install-debhelper` installs both
    where debhelper looks without them.
    """
    here = debhelper_dir()
    tool = os.path.join(here, "dh_elfcost")
    if not os.access(tool, os.X_OK):
        raise ElfcostError(tool, "", "missing or not executable: reinstall elfcost")
    run = [sys.executable, "-m", "elfcost"]
    if fmt == "json":
        doc = {"path": here, "perl5lib": here, "elfcost": run}
        click.echo(msgspec.json.format(msgspec.json.encode(doc), indent=2))
    else:
        q = shlex.quote(here)
        click.echo(f'export PATH={q}:"$PATH"')
        click.echo(f'export PERL5LIB={q}${{PERL5LIB:+:"$PERL5LIB"}}')
        click.echo(f"export ELFCOST={shlex.quote(shlex.join(run))}")
