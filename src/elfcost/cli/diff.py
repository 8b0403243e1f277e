from __future__ import annotations

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    old: str = common.argument(),
    new: str = common.argument(),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    new_root: str | None = common.option(
        "--new-root", type=click.Path(exists=True, file_okay=False)
    ),
    instances: int = common.instances("Show the fleet effect for N instances."),
    archive: bool = common.option(
        "--archive",
        is_flag=True,
        help="OLD and NEW are archives (directories of .deb/.apk/.rpm files or Debian "
        "repositories), each scanned as one system: compared package by package.",
    ),
    fmt: str = common.format_option(
        ["text", "json"],
        "json: elfcost.diff/1 (elfcost.diff-roots/1 for trees, elfcost.diff-archives/1 "
        "with --archive).",
    ),
) -> None:
    """Compare two builds: binaries, saved JSON reports, two directory trees, or two
    archives of packages (two releases).

    \b
    elfcost diff old/usr/bin/foo new/usr/bin/foo
    elfcost diff before.json after.json -n 129
    elfcost diff --root old --new-root new old/usr/bin new/usr/bin
    elfcost diff --archive old-release/ new-release/
    """
    from elfcost.diffing import diff
    from elfcost.documents import DiffArchivesDoc, DiffDoc, DiffRootsDoc
    from elfcost.report import outputs
    from elfcost.scan.diff import diff_archives

    doc: DiffDoc | DiffRootsDoc | DiffArchivesDoc
    if archive:
        if host.confined or new_root is not None:
            raise click.UsageError("--archive: an archive is its own root (no --root)")
        doc = diff_archives(old, new, scenario, instances=instances, each=state.per_input)
    else:
        doc = diff(
            old, new, host, scenario, new_root=new_root, instances=instances, each=state.per_input
        )
    click.echo(outputs.diff(doc, fmt), nl=False)
