"""elfcost explain."""

from __future__ import annotations

import click

from elfcost.cli import common
from elfcost.errors import Exit


@common.command(
    click.argument("binary"),
    common.ROOT,
    common.ESTIMATE,
    common.option(
        "--object",
        "object_name",
        metavar="NAME",
        help="Only this object (path, soname or file name).",
    ),
)
def command(
    state: common.State,
    binary: str,
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    assume: str | None,
    page_size: int | None,
    object_name: str | None,
) -> None:
    """One line per predicted page: address, sections, cause, relocations in it."""
    from elfcost.pipeline import analyse
    from elfcost.report.text import explain_text

    host = common.host_of(root, ld_library_path, env_llp)
    with state.per_input():
        est = analyse(host.loader_path(binary), host, page_size=page_size, assume=assume).estimate
        out = explain_text(est, object_name=object_name)
        if out.startswith("no object named"):
            state.fail(Exit.CHECK_FAILED)
        click.echo(out, nl=False)
    state.finish()
