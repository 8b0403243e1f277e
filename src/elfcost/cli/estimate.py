"""elfcost estimate, also the command of `elfcost BINARY...`."""

from __future__ import annotations

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    binaries: tuple[str, ...] = common.argument(nargs=-1, required=True),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    instances: int = common.instances(
        "Fleet cost of N instances: N x private + shared pages once."
    ),
    fmt: str = common.format_option(
        ["text", "json", "html"],
        "json: elfcost.estimate/3 (JSON Lines for several); html: one self-contained page "
        "(page maps, charts, sortable tables), best with -o FILE.",
    ),
    output: str | None = common.OUTPUT,
) -> None:
    """Predict the private dirty memory of one instance of each BINARY, per object and cause."""
    from elfcost.report import outputs

    binaries = tuple(common.on_path(b, host) for b in binaries)
    out = outputs.estimates(binaries, host, scenario, fmt=fmt, instances=instances, status=state)
    common.emit(out, output)
