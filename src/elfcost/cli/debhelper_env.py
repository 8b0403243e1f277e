"""elfcost debhelper-env."""

from __future__ import annotations

import click

from elfcost.cli import common


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
    from elfcost.check.debhelper import env_text

    click.echo(env_text(fmt), nl=False)
