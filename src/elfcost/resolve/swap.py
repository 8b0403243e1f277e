"""`--assume musl` / `--assume glibc`: the same program's objects under the other libc.

A what-if, not a resolution. The program and its own libraries stay the files they are, as if
rebuilt against the other libc from the same code. What the libc provides is replaced:

- to musl: glibc's ld.so goes, and so does every library musl implements inside its one
  libc.so (musl ldso/dynlink.c load_library answers "libc.so.6", "libm.so.6",
  "libpthread.so.0", "libdl.so.2", "librt.so.1", ... with itself); musl's
  /lib/ld-musl-ARCH.so.1, loader and libc in one, comes last in the load order, as the
  interpreter;
- to glibc: musl's ld-musl goes; libc.so.6 is found as glibc would find it for the program
  (ld.so.cache, the default directories) and ld.so is the machine's standard PT_INTERP, the
  two last in the load order as glibc maps them (libc.so.6 needs ld.so).

Every file is read through the Host, so `--root` confines it like any resolution.
"""

from __future__ import annotations

import msgspec

from elfcost.elf.machines import BY_NAME
from elfcost.errors import InputError
from elfcost.model import FoundVia, LoadedObject, LoaderFamily, musl_reserved
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import Host
from elfcost.resolve.search import find_glibc_library


class LibcSwap(msgspec.Struct, frozen=True, kw_only=True):
    """The program's objects under the other libc, and which objects that changed."""

    graph: DependencyGraph
    removed: tuple[str, ...]  # paths of the objects the other libc replaces
    added: tuple[str, ...]  # paths of the other libc's objects


def swap_libc(graph: DependencyGraph, target: LoaderFamily, host: Host) -> LibcSwap | None:
    """`graph` linked against `target` (GLIBC or MUSL) instead; None when it already is, or
    when it is statically linked (a libc is then inside the program: not modelled)."""
    source = graph.family
    if source is target or source is LoaderFamily.NONE:
        return None
    root = graph.root.dso
    machine = BY_NAME.get(root.machine)
    what = f"--assume {target.value}"
    kept: list[LoadedObject] = []
    removed: list[str] = []
    for o in graph.objects:
        if _provided_by_libc(o, source):
            removed.append(o.dso.path)
        else:
            kept.append(o)
    added: list[LoadedObject] = []
    if target is LoaderFamily.MUSL:
        if machine is None:
            raise InputError(root.path, what, f"no musl loader is known for {root.machine}")
        interp = f"/lib/ld-musl-{machine.musl_arch}.so.1"
        added.append(_interpreter(host, interp, root.path, what, "musl"))
    else:
        libc = find_glibc_library("libc.so.6", root, host)
        if libc is None:
            raise InputError(root.path, what, "glibc's libc.so.6 is not installed here")
        interp = (machine.glibc_interp or ("",))[0] if machine else ""
        if not interp:
            raise InputError(root.path, what, f"no glibc loader is known for {root.machine}")
        added.append(
            LoadedObject(dso=libc, role="library", found_via=FoundVia.DEFAULT, parent=root.path)
        )
        added.append(_interpreter(host, interp, root.path, what, "glibc"))
    paths = {o.dso.path for o in kept} | {o.dso.path for o in added}
    swapped = DependencyGraph.build(
        objects=[*kept, *added],
        # The DT_NEEDED edges between the objects that stay; those to the libc are the new
        # libc's to answer (every kept object finds it), and missing libraries stay missing.
        resolutions=[
            r
            for r in graph.resolutions
            if r.parent in paths and (r.found is None or r.found in paths)
        ],
        family=target,
        interp=interp,
        warnings=graph.warnings,
    )
    return LibcSwap(graph=swapped, removed=tuple(removed), added=tuple(o.dso.path for o in added))


def _provided_by_libc(o: LoadedObject, source: LoaderFamily) -> bool:
    """The source libc's own objects: its loader, and for glibc every library musl would
    answer with its libc (so that the two directions remove the same set)."""
    if o.role == "interpreter":
        return True
    if source is LoaderFamily.GLIBC:
        return o.role == "library" and musl_reserved(o.dso.soname or "")
    return False


def _interpreter(host: Host, path: str, program: str, what: str, libc: str) -> LoadedObject:
    if not host.exists(path):
        raise InputError(program, what, f"{libc}'s loader {path} is not installed here")
    return LoadedObject(
        dso=host.read(path), role="interpreter", found_via=FoundVia.INTERP, parent=None
    )
