"""elfcost check."""

from __future__ import annotations

from collections.abc import Sequence

import click

from elfcost.cli import common
from elfcost.errors import Exit


@common.command(
    click.argument("paths", nargs=-1, required=True),
    common.option("--budget", type=click.Path(exists=True, dir_okay=False)),
    common.option("--max-private-dirty", type=common.Size(), metavar="SIZE"),
    common.option("--instances", type=click.IntRange(min=1), help="Instances for --max-fleet."),
    common.option("--max-fleet", type=common.Size(), metavar="SIZE"),
    common.option("--max-objects", type=click.IntRange(min=1)),
    # Not given is None, not False: the policy file decides.
    common.option("--no-textrel", is_flag=True, default=None),
    common.option("--strict", is_flag=True, default=None, help="Fail on missing libraries."),
    common.option("--baseline", "baseline_file", type=click.Path(dir_okay=False)),
    common.option("--update-baseline", is_flag=True),
    common.ROOT,
    common.ESTIMATE,
    common.format_option(["text", "json", "junit"], "json: elfcost.check/1; junit: JUnit XML."),
)
def command(
    state: common.State,
    paths: Sequence[str],
    budget: str | None,
    max_private_dirty: int | None,
    instances: int | None,
    max_fleet: int | None,
    max_objects: int | None,
    no_textrel: bool | None,
    strict: bool | None,
    baseline_file: str | None,
    update_baseline: bool,
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    assume: str | None,
    page_size: int | None,
    fmt: str,
) -> None:
    """Gate programs on memory budgets: exit 1 when a limit is exceeded.

    PATHS are programs or directories (every ELF program under them; other files are
    skipped and counted). Flags override the policy file's defaults.
    """
    from elfcost.check import output as checkout
    from elfcost.check import run as checking
    from elfcost.check.gate import PolicyError
    from elfcost.pipeline import programs_in
    from elfcost.report import jsonout

    flags: dict[str, int | bool | None] = {
        "max_private_dirty": max_private_dirty,
        "instances": instances,
        "max_fleet": max_fleet,
        "max_objects": max_objects,
        "no_textrel": no_textrel,
        "no_missing": strict,
    }
    try:
        policy = checking.policy_of(budget, {k: v for k, v in flags.items() if v is not None})
        baseline_file = checking.baseline_path(policy, budget, baseline_file)
        baseline = checking.read_baseline(baseline_file) if baseline_file else None
    except PolicyError as exc:
        raise click.UsageError(str(exc)) from None
    found = programs_in(paths)
    for error in found.errors:
        state.error(error)
    host = common.host_of(root, ld_library_path, env_llp)
    verdicts = checking.check(
        found.programs,
        policy,
        host,
        baseline=baseline,
        page_size=page_size,
        assume=assume,
        each=state.per_input,
    )
    # The verdict and the baseline come before the output, so a closed pipe cannot lose them.
    if any(v.failed for v in verdicts):
        state.fail(Exit.CHECK_FAILED)
    if update_baseline and baseline_file:
        checking.write_baseline(baseline_file, baseline or {}, verdicts)
    counts = {"skipped": found.skipped, "libraries": found.libraries}
    if fmt == "json":
        click.echo(jsonout.dumps(checkout.check_doc(verdicts, **counts)))
    else:
        out = (
            checkout.junit(verdicts) if fmt == "junit" else checkout.check_text(verdicts, **counts)
        )
        click.echo(out, nl=False)
    state.finish()
