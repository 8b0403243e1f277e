"""elfcost diff."""

from __future__ import annotations

import os

import click

from elfcost.cli import common


@common.command(
    click.argument("old"),
    click.argument("new"),
    common.ROOT,
    common.ESTIMATE,
    common.option("--new-root", type=click.Path(exists=True, file_okay=False)),
    common.option(
        "-n",
        "--instances",
        type=click.IntRange(min=1),
        default=1,
        help="Show the fleet effect for N instances.",
    ),
    common.format_option(
        ["text", "json"], "json: elfcost.diff/1 (elfcost.diff-roots/1 for trees)."
    ),
)
def command(
    state: common.State,
    old: str,
    new: str,
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    assume: str | None,
    page_size: int | None,
    new_root: str | None,
    instances: int,
    fmt: str,
) -> None:
    """Compare two builds: binaries, saved JSON reports, or two directory trees.

    \b
    elfcost diff old/usr/bin/foo new/usr/bin/foo
    elfcost diff before.json after.json -n 129
    elfcost diff --root old --new-root new old/usr/bin new/usr/bin
    """
    from elfcost import diffing
    from elfcost.pipeline import programs_in
    from elfcost.report import diffout, jsonout

    hosts = (
        common.host_of(root, ld_library_path, env_llp),
        common.host_of(new_root or root, ld_library_path, env_llp),
    )
    with state.per_input():
        if os.path.isdir(old) and os.path.isdir(new):
            found = programs_in([old]), programs_in([new])
            for error in (*found[0].errors, *found[1].errors):
                state.error(error)
            pairs = diffing.pair_trees(old, found[0].programs, new, found[1].programs)
            roots = diffing.diff_trees(
                pairs,
                *hosts,
                page_size=page_size,
                assume=assume,
                instances=instances,
                each=state.per_input,
            )
            text = jsonout.dumps(roots) if fmt == "json" else diffout.roots_text(roots)
        else:
            builds = diffing.diff_builds(
                old, new, *hosts, page_size=page_size, assume=assume, instances=instances
            )
            text = jsonout.dumps(builds) if fmt == "json" else diffout.diff_text(builds)
        click.echo(text, nl=fmt == "json")
    state.finish()
