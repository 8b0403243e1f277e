"""Model → JSON documents (the Structs of elfcost.documents, each tagged
"schema": "elfcost.<command>/<version>").

JSON output is an API: sizes are integers in bytes, addresses integers. The schema files in
report/schema/ are generated from the document Structs (`make schemas`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec.structs import replace

from elfcost import documents as d
from elfcost.analysis import fleet, savings
from elfcost.elf.machines import label
from elfcost.model import Estimate, ObjectEstimate, PageCost, Resolution
from elfcost.resolve.graph import DependencyGraph


def dumps(doc: msgspec.Struct | dict[str, Any], *, pretty: bool = True) -> str:
    """A document as JSON text: indented for one document, one line for JSON Lines."""
    return d.encode(doc, pretty=pretty)


def load_schema(name: str) -> dict[str, Any]:
    from importlib import resources

    text = (resources.files("elfcost.report") / "schema" / f"{name}.json").read_text("utf-8")
    data: dict[str, Any] = msgspec.json.decode(text)
    return data


def _missing(r: Resolution) -> d.Missing:
    return d.Missing(needed=r.needed, parent=r.parent, tried=r.tried)


def deps_doc(graph: DependencyGraph) -> d.DepsDoc:
    return d.DepsDoc(
        binary=graph.root.dso.path,
        loader=d.Loader(family=graph.family, path=graph.interp),
        objects=tuple(
            d.DepsObject(
                path=o.dso.path,
                soname=o.dso.soname,
                role=o.role,
                needed=o.dso.needed,
                found_via=o.found_via.value,
                parent=o.parent,
                machine=label(o.dso.machine, o.dso.little_endian),
                elf_class=32 if o.dso.elf_class == 32 else 64,
            )
            for o in graph.objects
        ),
        missing=tuple(_missing(r) for r in graph.missing),
        warnings=graph.warnings,
    )


def estimate_doc(
    est: Estimate,
    *,
    instances: int = 1,
    remedies: Sequence[tuple[str, Estimate]] | None = None,
) -> d.EstimateDoc:
    """The document of `est` for `instances`; with `remedies` (pipeline.Analysis.remedies),
    what each saves, the largest saving first (None: not computed, `savings` null)."""
    doc = _estimate_doc(est, instances)
    if remedies is None:
        return doc
    saved = []
    for how, whatif in remedies:
        s = savings(doc, _estimate_doc(whatif, instances), instances)
        saved.append(
            d.SavingDoc(
                assume=how,
                expected=s.whatif,
                per_instance=s.per_instance,
                fleet=s.fleet,
            )
        )
    saved.sort(key=lambda s: -s.per_instance)  # stable: ties keep predict.remedies' order
    return replace(doc, savings=tuple(saved))


# The documents of the last objects of libraries and loaders converted, by the identity of
# their ObjectEstimate (kept here with it, so that its id is not reused while it is a key). A
# library's ObjectEstimate is one object in every program of a scan that maps it (cost
# EstimateMemo), and libc alone has a few hundred pages: converted once, not once per program.
# Executables, each the root of one process, are not kept.
_OBJECT_DOCS: dict[int, tuple[ObjectEstimate, d.ObjectDoc]] = {}
MAX_OBJECT_DOCS = 256  # then forgotten all at once: a scan maps far fewer libraries


def _object_doc(o: ObjectEstimate) -> d.ObjectDoc:
    found = _OBJECT_DOCS.get(id(o))
    if found is not None and found[0] is o:
        return found[1]
    doc = d.ObjectDoc(
        path=o.path,
        soname=o.soname,
        role=o.role,
        writable_pages=o.writable_pages,
        pages=tuple(_page(p) for p in o.pages),
        private_dirty=o.private_dirty,
        shared_clean=o.shared_clean,
        notes=o.notes,
        possible_unlisted=o.possible_unlisted,
    )
    if o.role != "executable":
        if len(_OBJECT_DOCS) >= MAX_OBJECT_DOCS:
            _OBJECT_DOCS.clear()
        _OBJECT_DOCS[id(o)] = (o, doc)
    return doc


def _estimate_doc(est: Estimate, instances: int) -> d.EstimateDoc:
    objects = tuple(_object_doc(o) for o in est.objects)
    total = est.total
    page_size: Any = est.page_size  # one of PageSize: the options and profiles allow no other
    return d.EstimateDoc(
        binary=est.binary,
        page_size=page_size,
        machine=est.machine,
        loader=d.Loader(family=est.loader_family, path=est.loader_path),
        profile=est.profile,
        objects=objects,
        process={
            p.name: d.ProcessDoc(
                at_entry=p.private_dirty.at_entry,
                low=p.private_dirty.low,
                expected=p.private_dirty.expected,
                high=p.private_dirty.high,
                certain=p.certain,
                detail=p.detail,
                pages=tuple(_page(pc) for pc in p.pages),
            )
            for p in est.process
        },
        total=d.Total(
            private_dirty=total,
            shared_clean=est.shared_clean,
            fleet=fleet(total, est.shared_clean, instances),
        ),
        missing=tuple(_missing(r) for r in est.missing),
        warnings=est.warnings,
        assumptions=est.assumptions,
    )


def _page(p: PageCost) -> d.PageDoc:
    return d.PageDoc(
        vaddr=p.vaddr,
        cause=p.cause,
        certain=p.certain,
        phase=p.phase,
        detail=p.detail,
        sections=p.sections,
        relocations=p.reloc_count,
        relocation_types=p.reloc_types,
    )
