"""elfcost estimate, also the command of `elfcost BINARY...`."""

from __future__ import annotations

from collections.abc import Sequence

import click

from elfcost.cli import common


@common.command(
    click.argument("binaries", nargs=-1, required=True),
    common.ROOT,
    common.ESTIMATE,
    common.option(
        "-n",
        "--instances",
        type=click.IntRange(min=1),
        default=1,
        help="Fleet cost of N instances: N x private + shared pages once.",
    ),
    common.format_option(
        ["text", "json", "html"],
        "json: elfcost.estimate/1 (JSON Lines for several); html: one self-contained page "
        "(page maps, charts, sortable tables), best with -o FILE.",
    ),
    common.OUTPUT,
)
def command(
    state: common.State,
    binaries: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    assume: str | None,
    page_size: int | None,
    instances: int,
    fmt: str,
    output: str | None,
) -> None:
    """Predict the private dirty memory of one instance of each BINARY, per object and cause."""
    from elfcost.documents import EstimateDoc
    from elfcost.pipeline import analyse
    from elfcost.report import jsonout, text

    host = common.host_of(root, ld_library_path, env_llp)
    docs: list[EstimateDoc] = []
    whatifs: list[EstimateDoc] = []
    out: list[str] = []
    for b in binaries:
        with state.per_input():
            html = fmt == "html"  # its second fleet line is the static what-if
            whatif = html and assume is None
            a = analyse(
                host.loader_path(b), host, page_size=page_size, assume=assume, whatif=whatif
            )
            if html:
                docs.append(jsonout.estimate_doc(a.estimate, instances=instances))
                if a.static_whatif is not None:
                    whatifs.append(jsonout.estimate_doc(a.static_whatif, instances=instances))
            elif fmt == "json":
                doc = jsonout.estimate_doc(a.estimate, instances=instances)
                out.append(jsonout.dumps(doc, pretty=len(binaries) == 1) + "\n")
            else:
                doc = jsonout.estimate_doc(a.estimate, instances=instances)
                base = None if a.as_built is None else jsonout.estimate_doc(a.as_built)
                out.append(text.estimate_text(doc, as_built=base))
    if docs:
        from elfcost.report.html import estimate_html

        out.append(estimate_html(docs, static_whatif=whatifs, instances=max(instances, 129)))
    common.emit(out, output)
    state.finish()
