"""From a path to an estimate: the steps the commands share.

A host (the root and loader configuration a program is resolved against), the scenario an
estimate assumes (page size, what-if), one program's analysis (resolved and estimated once,
with the what-ifs asked for), and the programs found under directories. Nothing here prints:
errors are raised; where one bad file must not stop the others, each is raised under the
`each` (errors.Each) the caller gives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import nullcontext

import msgspec

from elfcost.cost.estimate import BIND_NOW, Options
from elfcost.elf.machines import NATIVE, label, target_page_size
from elfcost.errors import Each, UnsupportedElfError
from elfcost.model import Dso, Estimate
from elfcost.predict import estimate
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import ISA_LEVELS, Host
from elfcost.resolve.search import resolve


def make_host(
    root: str = "/",
    ld_library_path: str | None = None,
    *,
    inherit_ld_library_path: bool = False,
    preload: str | None = None,
    inherit_preload: bool = False,
    isa_level: str | None = None,
    sections: bool = True,
) -> Host:
    """The host for `root`. LD_LIBRARY_PATH is `ld_library_path` (':'-separated) if given, else
    elfcost's own environment's when `inherit_ld_library_path`, else not used at all; LD_PRELOAD
    (`preload`, separated by spaces or ':') likewise with `inherit_preload`. `isa_level` names
    the CPU level for glibc-hwcaps (resolve/host.py ISA_LEVELS); a ValueError if it is none."""
    llp: tuple[str, ...] | None = None
    if ld_library_path is not None:
        llp = tuple(ld_library_path.split(":"))
    elif inherit_ld_library_path and "LD_LIBRARY_PATH" in os.environ:
        llp = tuple(os.environ["LD_LIBRARY_PATH"].split(":"))
    if preload is None and inherit_preload:
        preload = os.environ.get("LD_PRELOAD")
    # elf/rtld.c handle_preload_list: LD_PRELOAD is split on spaces and colons (the pattern
    # compiled only when there is one: every estimate makes a host).
    names = tuple(n for n in re.split(r"[\s:]", preload) if n) if preload else ()
    if isa_level is not None and isa_level not in ISA_LEVELS:
        raise ValueError(f"--isa-level {isa_level!r} is not one of {', '.join(ISA_LEVELS)}")
    return Host(
        root=root, ld_library_path=llp, preload=names, isa_level=isa_level, sections=sections
    )


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """What an estimate assumes beyond the files: the runtime page size (None: this machine's),
    an `assume` what-if (cost/estimate.py BIND_NOW, cost/whatif.py RELINKS; None: the
    program as built) and the libraries to link in from their static archives (`--assume
    static-lib=NAME`, cost/whatif.py static_lib_whatif; with `assume` a binding mode only)."""

    page_size: int | None = None
    assume: str | None = None
    static_libs: tuple[str, ...] = ()

    @classmethod
    def of(cls, assume: Sequence[str] = (), page_size: int | None = None) -> Scenario:
        """The scenario of the command line's `--assume` values (repeatable): at most one of
        the binding and relinking what-ifs, and any number of static-lib=NAME, which combine
        with a binding mode only. A ValueError (a usage error) otherwise, or for a static-lib
        naming libc or its loader."""
        from elfcost.cost.profiles import LIBC_SONAMES
        from elfcost.cost.whatif import STATIC_LIB

        libs = tuple(a.removeprefix(STATIC_LIB) for a in assume if a.startswith(STATIC_LIB))
        others = [a for a in assume if not a.startswith(STATIC_LIB)]
        if len(set(others)) > 1:
            raise ValueError(f"--assume {' and '.join(others)}: give one of them")
        how = others[0] if others else None
        if libs and how is not None and how not in BIND_NOW:
            raise ValueError(
                f"--assume static-lib=... and --assume {how}: static-lib combines with "
                "bind-now or lazy only (a static link takes every library in already)"
            )
        for name in libs:
            if not name:
                raise ValueError("--assume static-lib=: name a library (a soname, or all)")
            base = name.rsplit("/", 1)[-1]
            if base in LIBC_SONAMES or base.startswith(("ld-linux", "ld-musl", "ld.so", "ld64")):
                raise ValueError(
                    f"--assume static-lib={name}: libc and the dynamic loader are linked in "
                    "only by a fully static link (--assume static)"
                )
        return cls(page_size=page_size, assume=how, static_libs=tuple(dict.fromkeys(libs)))

    def options(self) -> Options:
        return Options(
            page_size=self.page_size or os.sysconf("SC_PAGE_SIZE"),
            bind_now=BIND_NOW.get(self.assume or ""),
        )


def make_scenario(assume: Sequence[str] = (), page_size: int | None = None) -> Scenario:
    """The command line's Scenario (Scenario.of)."""
    return Scenario.of(assume, page_size)


AS_BUILT = Scenario()  # this machine's page size, the program as it was linked


def page_size_for(dso: Dso, given: int | None = None) -> tuple[int, str | None]:
    """The runtime page size to estimate the program `dso` with, and why when it is not this
    machine's: `given` (--page-size) if given; this machine's for a program this machine runs
    natively (elf/machines.py NATIVE); else the program's machine's (elf/machines.py
    target_page_size: its usual page size, or its PT_LOAD alignment if that is smaller)."""
    if given is not None:
        return given, None
    here = os.sysconf("SC_PAGE_SIZE")
    name = label(dso.machine, dso.little_endian)
    native = NATIVE.get(os.uname().machine, (os.uname().machine,))
    if name in native:
        return here, None
    aligns = [s.align for s in dso.loads if s.align > 1]
    size, why = target_page_size(name, min(aligns) if aligns else None)
    return size, (
        f"page size {size // 1024} KiB for this {name} program: {why} (this machine, "
        f"{os.uname().machine}, has {here // 1024} KiB pages; --page-size to choose)"
    )


def with_page_note(est: Estimate, note: str | None) -> Estimate:
    """`est` saying why its page size is not this machine's (an assumption, and a warning:
    every figure depends on it)."""
    if note is None:
        return est
    return msgspec.structs.replace(
        est,
        assumptions=tuple(dict.fromkeys((*est.assumptions, note))),
        warnings=tuple(dict.fromkeys((*est.warnings, note))),
    )


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """One program: its dependency graph, its estimate and, if asked for, its static what-if."""

    graph: DependencyGraph
    estimate: Estimate
    static_whatif: Estimate | None = None
    as_built: Estimate | None = None  # when `estimate` is a relinking what-if: the program as is
    # With `remedies=True` and no what-if assumed: each remedy's estimate, by --assume value.
    remedies: tuple[tuple[str, Estimate], ...] | None = None


def analyse(
    path: str,
    host: Host,
    scenario: Scenario = AS_BUILT,
    *,
    whatif: bool = False,
    remedies: bool = False,
) -> Analysis:
    """Resolve and estimate the program at `path` (a loader path) once.

    An assumption that relinks the program (cost/whatif.py RELINKS: static, musl, glibc, ...)
    gives that what-if as the estimate itself; `whatif=True` adds the static one beside the
    as-built estimate (for the HTML report's second fleet line). `remedies=True` adds every
    remedy that applies (predict.remedies) when no what-if is assumed: `elfcost estimate` asks
    for them, scan does not (a few more estimates per program).
    """
    opts, assume = scenario.options(), scenario.assume
    graph = resolve(path, host)
    size, note = page_size_for(graph.root.dso, scenario.page_size)
    opts = msgspec.structs.replace(opts, page_size=size)
    found = None
    if remedies and assume is None and not scenario.static_libs:
        from elfcost.predict import ObjectMemo
        from elfcost.predict import remedies as remedies_of

        memo = ObjectMemo(keep_executables=True)  # each object read once for them all
        est = with_page_note(estimate(graph, opts, memo=memo), note)
        found = tuple(
            (name, with_page_note(r, note))
            for name, r in remedies_of(graph, host, opts, dynamic=est, memo=memo)
        )
    else:
        est = with_page_note(estimate(graph, opts), note)
    if scenario.static_libs:
        from elfcost.predict import static_lib

        linked = static_lib(graph, scenario.static_libs, opts, dynamic=est)
        return Analysis(graph=graph, estimate=with_page_note(linked, note), as_built=est)
    if assume is None and not whatif:
        return Analysis(graph=graph, estimate=est, remedies=found)
    from elfcost.cost.whatif import RELINKS, static_whatif
    from elfcost.predict import relink_whatif

    if assume is not None and assume in RELINKS:
        relinked = relink_whatif(graph, assume, host, opts, dynamic=est)
        return Analysis(graph=graph, estimate=with_page_note(relinked, note), as_built=est)
    if whatif and est.loader_path is not None:
        static = dict(found or ()).get("static") or with_page_note(
            static_whatif(graph, opts, dynamic=est), note
        )
        return Analysis(graph=graph, estimate=est, static_whatif=static, remedies=found)
    return Analysis(graph=graph, estimate=est, remedies=found)


class Programs(msgspec.Struct, frozen=True, kw_only=True):
    """What `programs_in` found: the programs to analyse, and what it skipped."""

    programs: tuple[str, ...]
    skipped: int  # files that are not ELF, and symbolic links
    libraries: int  # ELF files that are shared libraries, not programs
    # ELF files no loader maps (ET_REL objects and kernel modules, core dumps), as a scan
    # counts them: a staged tree's .o and .ko files are not programs to check.
    not_loadable: int = 0


def programs_in(
    paths: Sequence[str], *, each: Each = nullcontext, host: Host | None = None
) -> Programs:
    """Files named explicitly, and the ELF programs found under directories (in name order).

    A file named explicitly is always kept (a non-ELF one is the analysis's input error); an
    ELF file under a directory that cannot be read is raised under `each`, as an input of its
    own would be. Inside `host`'s root a directory is named as the programs see it or by its
    path on this machine (Host.user_file), and what is found under it by its path on this
    machine.
    """
    from elfcost.elf.reader import is_elf, read_dso

    out: list[str] = []
    skipped = libs = refused = 0
    for p in paths:
        top = host.user_file(p) if host is not None and host.confined else p
        if top is None or not os.path.isdir(top):
            out.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                f = os.path.join(dirpath, name)
                if os.path.islink(f) or not is_elf(f):
                    skipped += 1
                    continue
                with each():
                    try:
                        dso = read_dso(f, sections=False)
                    except UnsupportedElfError:
                        refused += 1  # named explicitly, the analysis says why
                        continue
                    if dso.is_program:  # libc.so.6 has PT_INTERP but is a library
                        out.append(f)
                    else:
                        libs += 1
    return Programs(programs=tuple(out), skipped=skipped, libraries=libs, not_loadable=refused)
