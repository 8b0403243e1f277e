"""Each command's output in the format asked for: the documents (analysis.py, documents.py)
rendered as text, JSON or HTML. The command line only parses, calls these and writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from elfcost.report import jsonout

if TYPE_CHECKING:
    from elfcost.documents import DiffArchivesDoc, DiffDoc, DiffRootsDoc, EstimateDoc
    from elfcost.pipeline import Scenario
    from elfcost.report.status import Status
    from elfcost.resolve.graph import DependencyGraph
    from elfcost.resolve.host import Host
    from elfcost.runtime.records import Measurement
    from elfcost.runtime.validate import Validation


def estimates(
    binaries: Sequence[str],
    host: Host,
    scenario: Scenario,
    *,
    fmt: str,
    instances: int,
    status: Status,
) -> list[str]:
    """Each binary's estimate in turn (a bad one is its error, in its place), or one HTML page
    of them all."""
    from elfcost.pipeline import analyse
    from elfcost.report import text

    docs: list[EstimateDoc] = []
    whatifs: list[EstimateDoc] = []
    out: list[str] = []
    html = fmt == "html"  # its second fleet line is the static what-if
    status.json_errors(fmt == "json")  # a bad input is an elfcost.error/1 line in its place
    for b in binaries:
        with status.per_input():
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
        out.extend(status.take_errors(pretty=len(binaries) == 1))
    if docs:
        from elfcost.report.html import estimate_html

        out.append(estimate_html(docs, static_whatif=whatifs, instances=max(instances, 129)))
    return out


def validation(v: Validation, fmt: str) -> list[str]:
    """The comparisons of one validation: text, one JSON array (json.load reads it), or a
    page of predicted and measured maps side by side."""
    from elfcost.report import text
    from elfcost.runtime.compare import comparison_doc

    docs = [comparison_doc(c) for c in v.comparisons]
    if fmt == "html":
        from elfcost.report.html import estimate_html

        static = [] if v.static_whatif is None else [jsonout.estimate_doc(v.static_whatif)]
        est = [jsonout.estimate_doc(v.estimate)]
        return [estimate_html(est, comparisons=docs, static_whatif=static, instances=129)]
    if fmt == "json":
        body = ",\n".join(jsonout.dumps(d, pretty=False) for d in docs)
        return [f"[\n{body}\n]\n" if docs else "[]\n"]
    notes = [f"{line}\n" for line in v.not_compared]
    return [*(text.comparison_text(c) for c in v.comparisons), *notes]


def deps(graph: DependencyGraph, fmt: str, *, tree: bool, pretty: bool) -> str:
    """The libraries in load order (or the tree), elfcost.deps/1, or Graphviz."""
    from elfcost.report.text import deps_text, deps_tree_text

    if fmt == "json":
        return jsonout.dumps(jsonout.deps_doc(graph), pretty=pretty) + "\n"
    if fmt == "dot":
        return graph.to_dot()
    return (deps_tree_text if tree else deps_text)(graph)


def diff(doc: DiffDoc | DiffRootsDoc | DiffArchivesDoc, fmt: str) -> str:
    from elfcost.documents import DiffArchivesDoc, DiffRootsDoc
    from elfcost.report import diffout

    if fmt == "json":
        return jsonout.dumps(doc) + "\n"
    if isinstance(doc, DiffArchivesDoc):
        return diffout.archives_text(doc)
    if isinstance(doc, DiffRootsDoc):
        return diffout.roots_text(doc)
    return diffout.diff_text(doc)


def causes(fmt: str) -> str:
    """The cause registry: {"causes": [...]} or a table."""
    from elfcost.cost.causes import CAUSES
    from elfcost.report.text import causes_text

    if fmt == "json":
        return (
            msgspec.json.format(msgspec.json.encode({"causes": CAUSES}), indent=2).decode() + "\n"
        )
    return causes_text()


def measurements(
    results: Sequence[Measurement], fmt: str, *, grouped: bool, errors: bool
) -> list[str]:
    """Each measurement (elfcost.measurement/1 or text), then, for several live processes
    (`grouped`), their group; one measurement alone is indented unless error lines precede."""
    from elfcost.report import text
    from elfcost.runtime import measure as rm

    out = []
    for m in results:
        if fmt == "json":
            pretty = len(results) == 1 and not errors
            out.append(jsonout.dumps(rm.to_json(m), pretty=pretty) + "\n")
        else:
            out.append(text.measurement_text(m))
    if grouped and len(results) > 1:
        g = rm.group_of(results)
        if fmt == "json":
            out.append(jsonout.dumps(rm.group_to_json(g), pretty=False) + "\n")
        else:
            out.append(text.group_text(g))
    return out


def machine(fmt: str, assume: str | None) -> str:
    """`measure --all`: every process read, its programs estimated, summed by
    analysis.machine; elfcost.machine/1 or text."""
    from elfcost import analysis
    from elfcost.report import text
    from elfcost.runtime import machine as rmach

    read = rmach.read_machine()
    est = rmach.estimate_programs(read.samples, read.page_size, assume)
    relinked = None
    if assume is not None:
        relinked = {p: jsonout.estimate_doc(e) for p, e in est.relinked.items()}
    doc = analysis.machine(
        read,
        {p: jsonout.estimate_doc(e) for p, e in est.as_built.items()},
        est.not_estimated,
        relinked=relinked,
        assume=assume,
    )
    return jsonout.dumps(doc) + "\n" if fmt == "json" else text.machine_text(doc)
