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
    from elfcost.documents import EstimateDoc
    from elfcost.pipeline import analyse
    from elfcost.report import jsonout, text

    docs: list[EstimateDoc] = []
    whatifs: list[EstimateDoc] = []
    out: list[str] = []
    state.json_errors(fmt == "json")  # a bad input is an elfcost.error/1 line in its place
    for b in binaries:
        with state.per_input():
            html = fmt == "html"  # its second fleet line is the static what-if
            whatif = html and scenario.assume is None
            a = analyse(host.loader_path(b), host, scenario, whatif=whatif, remedies=True)
            doc = jsonout.estimate_doc(a.estimate, instances=instances, remedies=a.remedies)
            if html:
                docs.append(doc)
                if a.static_whatif is not None:
                    whatifs.append(jsonout.estimate_doc(a.static_whatif, instances=instances))
            elif fmt == "json":
                out.append(jsonout.dumps(doc, pretty=len(binaries) == 1) + "\n")
            else:
                base = None if a.as_built is None else jsonout.estimate_doc(a.as_built)
                out.append(text.estimate_text(doc, as_built=base))
        out.extend(state.take_errors(pretty=len(binaries) == 1))
    if docs:
        from elfcost.report.html import estimate_html

        out.append(estimate_html(docs, static_whatif=whatifs, instances=max(instances, 129)))
    common.emit(out, output)
