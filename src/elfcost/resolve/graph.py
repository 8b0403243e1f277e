"""DependencyGraph: the loaded objects in load order and the DT_NEEDED edges between them.

networkx lives inside this class only (reverse dependencies, cycles, DOT); no networkx type
appears in a signature, so callers see plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import msgspec

from elfcost.model import LoadedObject, LoaderFamily, Resolution, VersionProblem


class DependencyGraph(msgspec.Struct, frozen=True, eq=False, dict=True):
    """The objects the loader maps, in load order, and every DT_NEEDED edge it followed."""

    objects: tuple[LoadedObject, ...]  # in the loader's load order
    resolutions: tuple[Resolution, ...]  # every DT_NEEDED edge, in the order processed
    family: LoaderFamily
    interp: str | None
    warnings: tuple[str, ...]  # the version problems' messages among them
    # DT_VERNEED versions the loaded objects do not define (glibc elf/dl-version.c).
    versions: tuple[VersionProblem, ...] = ()
    # What stops the real loader before main (a candidate it refuses, a fatal version, the
    # CPU's ISA level): the program as analysed does not start. Each is also among `warnings`.
    stops: tuple[str, ...] = ()
    # musl: the size of <prefix>/etc/ld-musl-ARCH.path when a search reached it, which
    # load_library reads into malloc'd memory (None otherwise, or not known)
    musl_path_bytes: int | None = None

    @cached_property
    def _cache(self) -> dict[str, Any]:
        """Derived views (networkx graph, reverse edges), built once on demand; not a field."""
        return {}

    @classmethod
    def build(
        cls,
        *,
        objects: Sequence[LoadedObject],
        resolutions: Sequence[Resolution],
        family: LoaderFamily,
        interp: str | None,
        warnings: Sequence[str],
        versions: Sequence[VersionProblem] = (),
        stops: Sequence[str] = (),
        musl_path_bytes: int | None = None,
    ) -> DependencyGraph:
        return cls(
            objects=tuple(objects),
            resolutions=tuple(resolutions),
            family=family,
            interp=interp,
            warnings=tuple(warnings),
            versions=tuple(versions),
            stops=tuple(stops),
            musl_path_bytes=musl_path_bytes,
        )

    @property
    def _g(self) -> Any:
        """The networkx graph, built on first use (importing networkx costs ~0.3 s)."""
        if "g" not in self._cache:
            import networkx as nx

            g = nx.DiGraph()
            for o in self.objects:
                g.add_node(o.dso.path)
            for r in self.resolutions:
                if r.found is not None:
                    g.add_edge(r.parent, r.found, needed=r.needed)
            self._cache["g"] = g
        return self._cache["g"]

    @property
    def root(self) -> LoadedObject:
        return self.objects[0]

    @property
    def missing(self) -> tuple[Resolution, ...]:
        return tuple(r for r in self.resolutions if r.found is None)

    def load_order(self) -> tuple[str, ...]:
        return tuple(o.dso.path for o in self.objects)

    def children(self, path: str) -> tuple[Resolution, ...]:
        return tuple(r for r in self.resolutions if r.parent == path)

    def needed_by(self, path: str) -> tuple[str, ...]:
        """Reverse dependencies: the objects whose DT_NEEDED resolved to `path`."""
        if path not in self._g:
            return ()
        return tuple(sorted(self._g.predecessors(path)))

    def cycles(self) -> tuple[tuple[str, ...], ...]:
        import networkx as nx

        return tuple(tuple(c) for c in nx.simple_cycles(self._g))

    def to_dot(self) -> str:
        """Graphviz DOT text: objects as nodes, DT_NEEDED names on the edges."""
        lines = ["digraph elfcost {", "  rankdir=LR;", "  node [shape=box];"]
        roles = {o.dso.path: o.role for o in self.objects}
        for path in self.load_order():
            style = {"executable": "bold", "interpreter": "dashed"}.get(roles[path], "solid")
            lines.append(f"  {_q(path)} [style={style}];")
        for r in self.resolutions:
            if r.found is not None and r.preload:
                label = _q(f"{r.needed} ({r.preload})")
                lines.append(f"  {_q(r.parent)} -> {_q(r.found)} [label={label}, style=dashed];")
            elif r.found is not None:
                lines.append(f"  {_q(r.parent)} -> {_q(r.found)} [label={_q(r.needed)}];")
            else:
                miss = _q(f"missing: {r.needed}")
                lines.append(f"  {miss} [color=red, fontcolor=red];")
                lines.append(f"  {_q(r.parent)} -> {miss} [color=red];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
