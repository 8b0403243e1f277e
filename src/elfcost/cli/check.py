from __future__ import annotations

import click

from elfcost.cli import common

POLICY = common.together(
    common.later("elfcost.check.run", "policy_of"),
    common.option("--budget", type=click.Path(exists=True, dir_okay=False)),
    common.option("--max-private-dirty", type=common.Size(), metavar="SIZE"),
    common.option("--instances", type=common.count(), help="Instances for --max-fleet."),
    common.option("--max-fleet", type=common.Size(), metavar="SIZE"),
    common.option("--max-objects", type=common.count()),
    # Not given is None, not False: the policy file decides.
    common.option("--no-textrel", is_flag=True, default=None),
    common.option(
        "--strict", "no_missing", is_flag=True, default=None, help="Fail on missing libraries."
    ),
    common.option("--baseline", type=click.Path(dir_okay=False)),
)


@common.command
def command(
    state: common.State,
    paths: tuple[str, ...] = common.argument(nargs=-1, required=True),
    policy: common.Policy = POLICY,
    update_baseline: bool = common.option("--update-baseline", is_flag=True),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    fmt: str = common.format_option(
        ["text", "json", "junit"], "json: elfcost.check/4; junit: JUnit XML."
    ),
) -> None:
    """Gate programs on memory budgets: exit 1 when a limit is exceeded.

    PATHS are programs or directories (every ELF program under them; other files are
    skipped and counted). Flags override the policy file's defaults.
    """
    from elfcost.check import output, run
    from elfcost.report import jsonout

    state.json_errors(fmt in ("json", "junit"))
    with state.progress("checking") as bar:
        done = run.run(
            paths,
            policy,
            host,
            scenario,
            update_baseline=update_baseline,
            each=state.per_input,
            progress=bar.update,
        )
    # The verdict and the baseline come before the output, so a closed pipe cannot lose them.
    if done.failed:
        state.fail()
    if fmt == "json":
        # Inputs that could not be checked come first as elfcost.error/1 lines, and the
        # verdict is then a line of the same JSON Lines.
        errors = state.take_errors()
        for line in errors:
            click.echo(line, nl=False)
        click.echo(jsonout.dumps(output.check_doc(done.verdicts, done.skipped), pretty=not errors))
    elif fmt == "junit":
        click.echo(output.junit(done.verdicts, state.take_error_docs()), nl=False)
    else:
        click.echo(output.check_text(done.verdicts, done.skipped), nl=False)
