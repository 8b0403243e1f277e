"""Find the libraries the loader would map, in the order it maps them.

glibc: `elf/dl-load.c _dl_map_object` (search order), `_dl_map_object_deps` (breadth-first
order), `open_verify` (which candidates are skipped, which stop the search), `elf/dl-cache.c`
(ld.so.cache), `elf/get-dynamic-info.h` (DT_RPATH is dropped when DT_RUNPATH is present).
musl: `ldso/dynlink.c load_library`, `load_deps`, `fixup_rpath`, `path_open`.
All file access goes through Host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator

import msgspec

from elfcost.elf.machines import BY_NAME, Machine
from elfcost.errors import ElfcostError, InputError, NotElfError
from elfcost.model import (
    DF_1_PIE,
    ET_EXEC,
    Attempt,
    Dso,
    FileId,
    FoundVia,
    LoadedObject,
    LoaderFamily,
    Resolution,
    Role,
    VersionProblem,
    musl_reserved,
)
from elfcost.resolve.graph import DependencyGraph
from elfcost.resolve.host import Host

MUSL_DEFAULT_PATH = ("/lib", "/usr/local/lib", "/usr/lib")  # ldso/dynlink.c load_library


def loader_family(interp: str | None) -> LoaderFamily:
    """Which loader a PT_INTERP names."""
    if interp is None:
        return LoaderFamily.NONE
    base = posixpath.basename(interp)
    if base.startswith("ld-musl-") or "musl" in interp:
        return LoaderFamily.MUSL
    return LoaderFamily.GLIBC


class _Loaded(msgspec.Struct, eq=False):  # identity: one per object in the list
    """One object in the loader's list, with the names it answers to (glibc l_libname)."""

    dso: Dso
    role: Role
    via: FoundVia
    parent: str | None
    names: set[str] = msgspec.field(default_factory=set)
    up: _Loaded | None = None  # the object whose DT_NEEDED loaded it (glibc l_loader)
    in_order: bool = True  # False while ld.so waits for its first DT_NEEDED reference
    position: int = -1  # index in the load order, once there
    # Whether an object of chain() has a DT_RPATH that counts (glibc ignores it when there is
    # a DT_RUNPATH: elf/get-dynamic-info.h); from `up`, which is fixed when it is made.
    rpath_up: bool = False

    def __post_init__(self) -> None:
        dyn = self.dso.dynamic
        own = dyn is not None and bool(dyn.rpath) and not dyn.runpath
        self.rpath_up = own or (self.up is not None and self.up.rpath_up)

    def chain(self) -> Iterator[Dso]:
        """The objects that caused it to be loaded, itself first.

        A link to the requester, not a copied tuple: a 10,000-deep chain must not cost
        10,000² steps and references.
        """
        o: _Loaded | None = self
        while o is not None:
            yield o.dso
            o = o.up


class _Known:
    """The objects the loader has, by every name they answer to and by file identity.

    glibc _dl_name_match_p (l_name, l_libname, DT_SONAME) and _dl_file_id_match_p; musl
    matches names and st_dev/st_ino only. When several objects answer, the first in the load
    order wins and ld.so, while not yet placed, comes last: as a scan of the list would.
    Dictionary lookups, so that resolving N objects costs N lookups, not N² comparisons.
    """

    def __init__(self, family: LoaderFamily) -> None:
        self.by_soname = family is LoaderFamily.GLIBC
        self.names: dict[str, list[_Loaded]] = {}
        self.files: dict[FileId, list[_Loaded]] = {}

    def add(self, o: _Loaded) -> None:
        for name in sorted(o.names):
            self.alias(o, name)
        if self.by_soname and o.dso.soname:
            self.alias(o, o.dso.soname)
        self.files.setdefault(o.dso.file_id, []).append(o)

    def alias(self, o: _Loaded, name: str) -> None:
        o.names.add(name)
        objs = self.names.setdefault(name, [])
        if o not in objs:  # eq=False: by identity
            objs.append(o)

    @staticmethod
    def _first(objs: list[_Loaded] | None) -> _Loaded | None:
        if not objs:
            return None
        if len(objs) == 1:
            return objs[0]
        return min(objs, key=lambda o: o.position if o.in_order else 1 << 62)

    def named(self, name: str) -> _Loaded | None:
        return self._first(self.names.get(name))

    def same_file(self, file_id: FileId) -> _Loaded | None:
        return self._first(self.files.get(file_id))


class _Found(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one search for a DT_NEEDED name: the file, how, and what was tried."""

    dso: Dso | None
    via: FoundVia | None
    via_object: str | None
    tried: tuple[Attempt, ...]
    error: str | None = None  # a candidate that stops the loader ("invalid ELF header")


# Legacy hwcaps subdirectories glibc <= 2.36 still searches (removed in 2.37), x86_64 order.
_LEGACY_HWCAPS = {
    "x86_64": ("tls/x86_64/x86_64", "tls/x86_64", "tls", "x86_64/x86_64", "x86_64"),
}


# EI_OSABI values glibc's open_verify accepts (sysdeps/gnu/ldsodefs.h VALID_ELF_OSABI:
# ELFOSABI_SYSV, ELFOSABI_GNU; sysdeps/unix/sysv/linux/arm/ldsodefs.h adds ELFOSABI_ARM_AEABI).
_GLIBC_OSABI = (0, 3)
_GLIBC_OSABI_EXTRA = {"arm": (64,)}


class _Searcher:
    def __init__(
        self,
        host: Host,
        main: _Loaded,
        machine: Machine | None,
        family: LoaderFamily = LoaderFamily.GLIBC,
    ) -> None:
        self.host = host
        self.main = main
        self.machine = machine
        self.family = family
        self.tried: list[Attempt] = []

    # -- candidate checks (open_verify) ------------------------------------------------------

    def try_file(self, path: str, via: FoundVia, origin: str | None) -> Dso | str | None:
        """Dso if usable; None to keep searching; a string: an error that stops the loader.

        glibc's elf/dl-load.c open_verify: a file that cannot be opened, or is of the other
        ELF class or another machine, is skipped; any other file it cannot use stops the
        loader. A directory opens, and its read fails: "cannot read file data" (EISDIR).
        """
        glibc = self.family is LoaderFamily.GLIBC

        def tried(outcome: str) -> None:
            self.tried.append(Attempt(path=path, via=via, outcome=outcome, origin=origin))

        try:
            dso = self.host.read(path)
        except InputError as exc:
            tried(exc.why)
            if glibc and exc.why == "a directory":
                return "cannot read file data: Is a directory"
            if glibc and exc.why == "not a regular file":
                # A FIFO blocks the loader's open; a device reads short.
                return "not a regular file: the loader would read it as a library"
            return None
        except NotElfError:
            size = self.host.file_size(path)
            short = size is not None and size < (64 if self.main.dso.elf_class == 64 else 52)
            tried("not ELF")
            if not glibc:
                return "Exec format error"  # musl map_library: ENOEXEC
            return "file too short" if short else "invalid ELF header"
        except ElfcostError as exc:
            tried(exc.why)
            return f"{exc.what}: {exc.why}"
        main = self.main.dso
        if dso.elf_class != main.elf_class:
            tried(f"wrong ELF class ({dso.elf_class}-bit)")
            return None
        if dso.little_endian != main.little_endian:
            tried("wrong byte order")
            return "ELF file data encoding does not match"
        if glibc and dso.osabi not in (
            *_GLIBC_OSABI,
            *_GLIBC_OSABI_EXTRA.get(self.machine.name if self.machine else "", ()),
        ):
            tried(f"EI_OSABI {dso.osabi}")
            return "ELF file OS ABI invalid"
        if dso.e_machine != main.e_machine:
            tried(f"wrong machine ({dso.machine})")
            return None
        tried("found")
        return dso

    def search_dirs(
        self,
        name: str,
        dirs: Iterable[str],
        via: FoundVia,
        origin: str | None,
        hwcaps: tuple[str, ...],
    ) -> Dso | str | None:
        legacy = _LEGACY_HWCAPS.get(self.machine.name if self.machine else "", ("tls",))
        for d in dirs:
            # glibc tries each glibc-hwcaps subdirectory, then (up to 2.36) the legacy
            # platform/tls subdirectories, before the directory itself (elf/dl-load.c
            # open_path over _dl_important_hwcaps' capstr; seen with LD_DEBUG=libs).
            subs = (*(f"glibc-hwcaps/{h}" for h in hwcaps), *(legacy if hwcaps else ()), "")
            for sub in subs:
                path = (
                    posixpath.join(d or ".", sub, name) if sub else posixpath.join(d or ".", name)
                )
                if sub and not self.host.dir_exists(posixpath.join(d or ".", sub)):
                    continue
                got = self.try_file(path, via, origin)
                if got is not None:
                    return got
        return None


# -- dynamic string tokens ---------------------------------------------------------------------


def origin_of(obj: _Loaded, host: Host) -> str:
    """$ORIGIN: the directory of the path the object was found by.

    For the main program the kernel-exec'd loaders use /proc/self/exe (glibc _dl_get_origin,
    musl fixup_rpath), which is the real path; for libraries the directory of the name they
    were opened by, symlinks left as they are (glibc _dl_new_object realname).
    """
    if obj.role == "executable":
        return posixpath.dirname(host.realpath(obj.dso.path))
    path = obj.dso.path
    if not path.startswith("/"):
        path = posixpath.join(host.cwd, path)
    # No lexical normalisation: "alias/lib/../deps" is resolved by the kernel through the
    # symlink "alias", which may point anywhere.
    return posixpath.dirname(path)


def expand_tokens(value: str, origin: str, machine: Machine | None, family: LoaderFamily) -> str:
    """Expand $ORIGIN (both loaders), $LIB and $PLATFORM (glibc only).

    glibc elf/dl-load.c _dl_dst_substitute; musl ldso/dynlink.c fixup_rpath knows $ORIGIN only.
    """
    tokens = {"ORIGIN": origin}
    if family is LoaderFamily.GLIBC and machine is not None:
        # Debian builds glibc with slibdir=/lib/<triplet>, so DL_DST_LIB is "lib/<triplet>".
        tokens["LIB"] = f"lib/{machine.multiarch[0]}"
        tokens["PLATFORM"] = machine.platform
    out = value
    for tok, rep in tokens.items():
        out = out.replace("${" + tok + "}", rep).replace("$" + tok, rep)
    return out


# -- glibc --------------------------------------------------------------------------------------


def glibc_default_dirs(host: Host, machine: Machine | None, elf_class: int) -> tuple[str, ...]:
    """glibc's compiled-in system directories (elf/dl-load.c system_dirs).

    Debian (multiarch): /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib. Distributions
    without multiarch directories: /lib64, /usr/lib64 for 64-bit objects, else /lib, /usr/lib.
    """
    if machine is not None:
        for triplet in machine.multiarch:
            if host.dir_exists(f"/lib/{triplet}") or host.dir_exists(f"/usr/lib/{triplet}"):
                return (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
    if elf_class == 64:
        return ("/lib64", "/usr/lib64")
    return ("/lib", "/usr/lib")


def _glibc_find(name: str, req: _Loaded, s: _Searcher, family: LoaderFamily) -> _Found:
    """The glibc search, remembered per run where its answer does not depend on the program.

    Without LD_LIBRARY_PATH (which glibc expands with the program's $ORIGIN) and without a
    '/' in the name, the answer depends on the name, the program's ELF identity (open_verify
    skips the other class and machine) and:
    - with no DT_RPATH up the chain, no DT_RUNPATH and no DF_1_NODEFLIB: nothing else
      (ld.so.cache, then the default directories): a scan of /usr/bin finds libc.so.6 once;
    - with a DT_RUNPATH: the requester only, as elf/dl-load.c _dl_map_object searches no
      DT_RPATH then ("When the object has the RUNPATH information we don't use any RPATHs"):
      libLLVM's $ORIGIN/../lib is searched once, not once per program that loads it.
    """
    dyn = req.dso.dynamic
    if "/" in name or s.host.ld_library_path is not None:
        return _glibc_search(name, req, s, family)
    main = s.main.dso
    identity = (main.elf_class, main.e_machine, main.little_endian)
    key: tuple[object, ...]
    if dyn is not None and dyn.runpath:
        if req is s.main:  # the program's own: never asked again
            return _glibc_search(name, req, s, family)
        key = ("glibc-find-runpath", name, req.dso.path, req.dso.file_id, *identity)
    elif not (dyn is not None and dyn.nodeflib) and not req.rpath_up:
        key = ("glibc-find", name, *identity)
    else:
        return _glibc_search(name, req, s, family)
    memo = s.host._search_memo
    found = memo.get(key)
    if not isinstance(found, _Found):
        found = _glibc_search(name, req, s, family)
        memo[key] = found
    return found


def _glibc_search(name: str, req: _Loaded, s: _Searcher, family: LoaderFamily) -> _Found:
    host, machine = s.host, s.machine
    hwcaps = host.glibc_hwcaps(machine.name) if machine else ()
    dyn = req.dso.dynamic
    if "/" in name:
        path = expand_tokens(name, origin_of(req, host), machine, family)
        got = s.try_file(path, FoundVia.SLASH, None)
        return _result(got, FoundVia.SLASH, None, s)
    runpath = dyn.runpath if dyn else ()
    if not runpath:
        # DT_RPATH of the requester, then of each object up the chain that loaded it; an
        # object with DT_RUNPATH has no DT_RPATH (get-dynamic-info.h drops it).
        for anc in req.chain():
            anc_dyn = anc.dynamic
            if anc_dyn is None or not anc_dyn.rpath or anc_dyn.runpath:
                continue
            anc_loaded = _Loaded(dso=anc, role=_role_of(anc, s), via=FoundVia.MAIN, parent=None)
            dirs = [
                expand_tokens(d, origin_of(anc_loaded, host), machine, family)
                for d in anc_dyn.rpath
            ]
            got = s.search_dirs(name, dirs, FoundVia.RPATH, anc.path, hwcaps)
            if got is not None:
                return _result(got, FoundVia.RPATH, anc.path, s)
    if host.ld_library_path is not None:
        dirs = [
            expand_tokens(d, origin_of(s.main, host), machine, family) for d in host.ld_library_path
        ]
        got = s.search_dirs(name, dirs, FoundVia.LD_LIBRARY_PATH, None, hwcaps)
        if got is not None:
            return _result(got, FoundVia.LD_LIBRARY_PATH, None, s)
    if runpath:
        dirs = [expand_tokens(d, origin_of(req, host), machine, family) for d in runpath]
        got = s.search_dirs(name, dirs, FoundVia.RUNPATH, req.dso.path, hwcaps)
        if got is not None:
            return _result(got, FoundVia.RUNPATH, req.dso.path, s)
    nodeflib = bool(dyn and dyn.nodeflib)
    system = glibc_default_dirs(host, machine, req.dso.elf_class)
    cache = host.ld_so_cache()
    if cache is not None:
        entry = cache.lookup(
            name,
            machine.glibc_cache_flags if machine else (),
            hwcaps,
            host.cache_isa_level(machine.name) if machine else None,
        )
        if entry is None:
            s.tried.append(
                Attempt(
                    path="/etc/ld.so.cache",
                    via=FoundVia.LD_SO_CACHE,
                    outcome=f"no entry for {name}",
                )
            )
        else:
            in_system = posixpath.dirname(entry.path.replace(f"/glibc-hwcaps/{entry.hwcaps}", ""))
            if nodeflib and in_system in system:
                # elf/dl-load.c: with DF_1_NODEFLIB a cache entry from a system directory
                # must not be used.
                s.tried.append(
                    Attempt(
                        path=entry.path,
                        via=FoundVia.LD_SO_CACHE,
                        outcome="skipped: system directory and DF_1_NODEFLIB",
                    )
                )
            else:
                got = s.try_file(entry.path, FoundVia.LD_SO_CACHE, None)
                if got is not None:
                    return _result(got, FoundVia.LD_SO_CACHE, None, s)
    else:
        # glibc opens ld.so.cache and nothing else of ldconfig's: without it, the directories
        # of ld.so.conf are never searched (elf/dl-cache.c _dl_load_cache_lookup).
        there = host.exists("/etc/ld.so.cache")
        s.tried.append(
            Attempt(
                path="/etc/ld.so.cache",
                via=FoundVia.LD_SO_CACHE,
                outcome="not a valid cache: ignored" if there else "no such file",
            )
        )
    if not nodeflib:
        got = s.search_dirs(name, system, FoundVia.DEFAULT, None, hwcaps)
        if got is not None:
            return _result(got, FoundVia.DEFAULT, None, s)
    else:
        s.tried.append(
            Attempt(path=":".join(system), via=FoundVia.DEFAULT, outcome="skipped: DF_1_NODEFLIB")
        )
    _conf_only(name, s, system, cache is not None)
    return _Found(dso=None, via=None, via_object=None, tried=tuple(s.tried))


CONF_ONLY = "in a directory of ld.so.conf only"


def _conf_only(name: str, s: _Searcher, searched: tuple[str, ...], cached: bool) -> None:
    """Not found, but in a directory of ld.so.conf: the loader never reads that file, only the
    cache ldconfig makes from it. Say so, as a candidate the loader did not consider."""
    host = s.host
    for d in host.ld_so_conf_dirs():
        path = posixpath.join(d, name)
        if d in searched or not host.exists(path):
            continue
        why = (
            "ld.so.cache has no entry for it: ldconfig has not been run since it was installed"
            if cached
            else "there is no ld.so.cache: ldconfig has not been run"
        )
        s.tried.append(
            Attempt(
                path=path,
                via=FoundVia.LD_SO_CACHE,
                outcome=f"not searched: {CONF_ONLY}, which glibc never reads; {why}",
            )
        )


# -- musl ---------------------------------------------------------------------------------------


def _musl_find(name: str, req: _Loaded | None, s: _Searcher, interp: str) -> _Found:
    """musl's load_library; `req` None for a preloaded object (load_preload passes no
    needed_by: no DT_RUNPATH/DT_RPATH applies)."""
    host = s.host
    if "/" in name:
        got = s.try_file(name, FoundVia.SLASH, None)
        return _result(got, FoundVia.SLASH, None, s)
    if host.ld_library_path is not None:
        got = s.search_dirs(name, host.ld_library_path, FoundVia.LD_LIBRARY_PATH, None, ())
        if got is not None:
            return _result(got, FoundVia.LD_LIBRARY_PATH, None, s)
    # fixup_rpath: DT_RUNPATH if present, else DT_RPATH, of the requester and of every object
    # up its needed_by chain; only $ORIGIN is expanded.
    for anc in req.chain() if req is not None else ():
        d = anc.dynamic
        if d is None:
            continue
        rp = d.runpath or d.rpath
        if not rp:
            continue
        via = FoundVia.RUNPATH if d.runpath else FoundVia.RPATH
        anc_loaded = _Loaded(dso=anc, role=_role_of(anc, s), via=FoundVia.MAIN, parent=None)
        dirs = [expand_tokens(x, origin_of(anc_loaded, host), None, LoaderFamily.MUSL) for x in rp]
        got = _musl_dirs(name, dirs, via, anc.path, s)
        if got is not None:
            return _result(got, via, anc.path, s)
    machine = s.machine
    sys_path = host.musl_path_file(interp, machine.musl_arch) if machine else None
    via = FoundVia.MUSL_PATH_FILE if sys_path is not None else FoundVia.DEFAULT
    got = _musl_dirs(name, sys_path if sys_path is not None else MUSL_DEFAULT_PATH, via, None, s)
    if got is not None:
        return _result(got, via, None, s)
    return _Found(dso=None, via=None, via_object=None, tried=tuple(s.tried))


# open(2) failures path_open passes over (ENOENT, ENOTDIR, EACCES, ENAMETOOLONG); any other
# error ends the search and the load.
_MUSL_SKIPS = (
    "No such file or directory",
    "Not a directory",
    "Permission denied",
    "File name too long",
)


def _musl_dirs(
    name: str, dirs: Iterable[str], via: FoundVia, origin: str | None, s: _Searcher
) -> Dso | str | None:
    """musl's path_open takes the first file that opens; map_library then accepts or fails."""
    for d in dirs:
        path = posixpath.join(d, name)
        if not s.host.exists(path):
            s.tried.append(Attempt(path=path, via=via, outcome="no such file", origin=origin))
            continue
        # path_open stops at the first file that opens; map_library reads it, and anything it
        # cannot map fails the load (errno as musl prints it).
        got = s.try_file(path, via, origin)
        if isinstance(got, Dso):
            return got
        if isinstance(got, str):
            return got
        outcome = s.tried[-1].outcome
        if outcome in _MUSL_SKIPS:
            continue
        if outcome == "a directory":
            return "Is a directory"
        return f"{outcome}: musl does not skip it"
    return None


def find_glibc_library(name: str, requester: Dso, host: Host) -> Dso | None:
    """The file glibc's loader would map for DT_NEEDED `name` of `requester` as the main
    program (its RPATH/RUNPATH, LD_LIBRARY_PATH if given, ld.so.cache, the default
    directories): where `--assume glibc` finds libc.so.6 for a musl program."""
    main = _Loaded(dso=requester, role="executable", via=FoundVia.MAIN, parent=None)
    s = _Searcher(host, main, BY_NAME.get(requester.machine))
    return _glibc_find(name, main, s, LoaderFamily.GLIBC).dso


# -- the breadth-first walk ---------------------------------------------------------------------


def _result(got: Dso | str | None, via: FoundVia, via_object: str | None, s: _Searcher) -> _Found:
    if isinstance(got, Dso):
        return _Found(dso=got, via=via, via_object=via_object, tried=tuple(s.tried))
    return _Found(dso=None, via=None, via_object=None, tried=tuple(s.tried), error=got)


def _role_of(dso: Dso, s: _Searcher) -> Role:
    return "executable" if dso is s.main.dso else "library"


def resolve(path: str, host: Host, *, interp: str | None = None) -> DependencyGraph:
    """Resolve `path` (a loader path) and everything the loader would map with it.

    `interp` overrides PT_INTERP (needed when the root object is a shared library: the
    interpreter is then the one a program loading it would use).
    """
    main_dso = host.read(path)
    machine = BY_NAME.get(main_dso.machine)
    # A shared library named as the root is analysed in a process that loads it.
    role: Role = "executable" if main_dso.is_program else "library"
    if role == "library" and interp is None and machine is not None:
        interp = _default_interp(main_dso, machine, host)
    interp = interp or main_dso.interp
    family = loader_family(interp)
    main = _Loaded(
        dso=main_dso,
        role=role,
        via=FoundVia.MAIN,
        parent=None,
        names={main_dso.path},
        position=0,
    )
    loaded: list[_Loaded] = [main]
    known = _Known(family)
    known.add(main)
    resolutions: list[Resolution] = []
    warnings: list[str] = list(main_dso.warnings)
    if family is LoaderFamily.NONE:
        return DependencyGraph.build(
            objects=[LoadedObject(dso=main_dso, role=role, found_via=FoundVia.MAIN, parent=None)],
            resolutions=[],
            family=family,
            interp=None,
            warnings=warnings,
        )
    assert interp is not None
    rtld: _Loaded | None = None
    try:
        rtld_dso = host.read(interp)
        rtld = _Loaded(
            dso=rtld_dso,
            role="interpreter",
            via=FoundVia.INTERP,
            parent=None,
            names={interp, rtld_dso.path, *([rtld_dso.soname] if rtld_dso.soname else [])},
            in_order=False,
        )
        if family is LoaderFamily.MUSL:
            rtld.names.add("libc.so")
        known.add(rtld)
    except ElfcostError as exc:
        warnings.append(f"interpreter {interp}: {exc.why}")

    # Preloaded objects come right after the program, before its DT_NEEDED (glibc elf/rtld.c
    # dl_main: LD_PRELOAD, then /etc/ld.so.preload; musl __dls3: LD_PRELOAD only), and are
    # then walked breadth first with it (_dl_map_object_deps' list, musl load_deps).
    preloads = [(n, "LD_PRELOAD") for n in host.preload]
    if family is LoaderFamily.GLIBC:
        preloads += [(n, "/etc/ld.so.preload") for n in host.ld_so_preload()]
    for name, where in preloads:
        res, new = _resolve_one(
            name, main, known, rtld, host, machine, family, interp, main, preload=True
        )
        if res.found is None:
            # glibc elf/rtld.c do_preload: an error is printed and the object ignored; musl's
            # load_preload ignores it silently.
            last = res.tried[-1].outcome if res.tried else ""
            error = (
                last[len(STOPS) :] if last.startswith(STOPS) else "cannot open shared object file"
            )
            warnings.append(f"object '{name}' from {where} cannot be preloaded ({error}): ignored")
            continue
        resolutions.append(msgspec.structs.replace(res, preload=where))
        if new is not None:
            new.position = len(loaded)
            loaded.append(new)
            if new is not rtld:
                known.add(new)

    queue_index = 0
    while queue_index < len(loaded):
        req = loaded[queue_index]
        queue_index += 1
        for name in req.dso.needed:
            res, new = _resolve_one(name, req, known, rtld, host, machine, family, interp, main)
            resolutions.append(res)
            if new is not None:
                new.position = len(loaded)
                loaded.append(new)
                if new is not rtld:
                    known.add(new)
    stops: list[str] = []  # what stops the real loader: the program does not start
    for r in resolutions:
        if r.found is None and r.tried and r.tried[-1].outcome.startswith(STOPS):
            error = r.tried[-1].outcome.removeprefix(STOPS)
            where = r.tried[-2].path if len(r.tried) > 1 else r.needed
            stops.append(f"{r.needed} (needed by {r.parent}): {where}: {error}")
            warnings.append(f"{stops[-1]}; the loader stops there, the program does not start")
        hint = next((a for a in r.tried if CONF_ONLY in a.outcome), None)
        if r.found is None and hint is not None:
            warnings.append(
                f"{r.needed} (needed by {r.parent}) is in {posixpath.dirname(hint.path)}, "
                f"a directory of ld.so.conf, but not in ld.so.cache: glibc does not find it "
                f"until ldconfig is run"
            )
    if rtld is not None and not rtld.in_order:
        loaded.append(rtld)  # nothing named it: it is still mapped, last
    versions = check_versions(loaded, known, host) if family is LoaderFamily.GLIBC else []
    for v in versions:
        warnings.append(v.message + ("; the program does not start" if v.fatal else ""))
        stops.extend([v.message] if v.fatal else [])
    if family is LoaderFamily.GLIBC and main_dso.machine in ("x86_64", "i386"):
        for message in check_isa_levels(loaded, rtld, host):
            warnings.append(f"{message}; the program does not start")
            stops.append(message)
    objects = [
        LoadedObject(dso=o.dso, role=o.role, found_via=o.via, parent=o.parent) for o in loaded
    ]
    # musl mallocs the path file's contents when a search first reaches it (load_library):
    # its size is one of the loader heap's requests (cost/muslheap.py).
    path_bytes = None
    if machine is not None and any(
        a.via is FoundVia.MUSL_PATH_FILE for r in resolutions for a in r.tried
    ):
        path_bytes = host.musl_path_file_size(interp, machine.musl_arch)
    return DependencyGraph.build(
        objects=objects,
        resolutions=resolutions,
        family=family,
        interp=interp,
        warnings=warnings,
        versions=versions,
        stops=stops,
        musl_path_bytes=path_bytes,
    )


def check_isa_levels(loaded: list[_Loaded], rtld: _Loaded | None, host: Host) -> list[str]:
    """glibc's start-up ISA check on x86 (sysdeps/x86/dl-prop.h dl_isa_level_check, called by
    elf/rtld.c _rtld_main_check): every object but ld.so whose GNU_PROPERTY_X86_ISA_1_NEEDED
    asks for a level the CPU lacks stops the program with "CPU ISA level is lower than
    required". The CPU is this machine's, or --isa-level's (the baseline for a --root)."""
    level = host.cache_isa_level("x86_64") or 0  # 0 baseline .. 3 x86-64-v4
    cpu = (1 << (level + 1)) - 1  # GNU_PROPERTY_X86_ISA_1_BASELINE | _V2 | ... up to it
    return [
        f"{o.dso.path}: CPU ISA level is lower than required "
        f"(needs {_isa_names(o.dso.x86_isa_needed)}; the CPU has {_isa_names(cpu)})"
        for o in loaded
        if o is not rtld and o.dso.x86_isa_needed & cpu != o.dso.x86_isa_needed
    ]


def _isa_names(bits: int) -> str:
    names = ("baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")
    named = [n for i, n in enumerate(names) if bits >> i & 1]
    unknown = bits & ~0xF
    return ", ".join(named + ([f"unknown levels {unknown:#x}"] if unknown else []))


def check_versions(loaded: list[_Loaded], known: _Known, host: Host) -> list[VersionProblem]:
    """glibc's start-up version check (elf/dl-version.c _dl_check_all_versions, verbose as
    rtld.c version_check_doit calls it): for each object's DT_VERNEED entry, the loaded object
    of that name (find_needed: the first in load order that answers to it) must define each
    version in its DT_VERDEF (match_symbol). A missing version is fatal unless VER_FLG_WEAK;
    an object without DT_VERDEF is only a message. musl does not check versions.

    An object's problems depend on it and on the objects its DT_VERNEED entries find, all
    named by their paths in one Host (which reads each once): kept there for the next program.
    """
    problems: list[VersionProblem] = []
    memo = host._search_memo
    for o in loaded:
        dyn = o.dso.dynamic
        if dyn is None or not dyn.verneed:
            continue
        targets = {need.file: known.named(need.file) for need in dyn.verneed}
        key = ("versions", o.dso.path, *(t.dso.path if t else None for t in targets.values()))
        found = memo.get(key)
        if not isinstance(found, tuple):
            found = memo[key] = tuple(_version_problems(o.dso, targets))
        problems += found
    return problems


def _version_problems(dso: Dso, targets: dict[str, _Loaded | None]) -> list[VersionProblem]:
    """check_versions for one object, `targets` the object each DT_VERNEED entry finds."""
    dyn = dso.dynamic
    assert dyn is not None
    problems: list[VersionProblem] = []
    for need in dyn.verneed:
        target = targets[need.file]
        if target is None:
            continue  # a missing library: reported as such
        defined = target.dso.dynamic.verdef if target.dso.dynamic else None
        # No DT_VERDEF: one problem, version None (a message, not fatal).
        lacking = [None] if defined is None else [v for v in need.versions if v not in defined]
        problems.extend(
            VersionProblem(
                parent=dso.path,
                file=need.file,
                found=target.dso.path,
                version=v,
                fatal=v is not None and v not in need.weak,
            )
            for v in lacking
        )
    return problems


def _resolve_one(
    name: str,
    req: _Loaded,
    known: _Known,
    rtld: _Loaded | None,
    host: Host,
    machine: Machine | None,
    family: LoaderFamily,
    interp: str,
    main: _Loaded,
    *,
    preload: bool = False,
) -> tuple[Resolution, _Loaded | None]:
    """One DT_NEEDED entry of `req` (or, `preload`, one preloaded name for the program)."""

    def done(
        target: _Loaded, via: FoundVia, via_object: str | None, tried: tuple[Attempt, ...]
    ) -> tuple[Resolution, _Loaded | None]:
        known.alias(target, name)
        new = None
        if target is rtld and not rtld.in_order:
            # ld.so takes its place in the list where it is first needed (elf/rtld.c dl_main).
            rtld.in_order = True
            rtld.parent = req.dso.path
            new = rtld
        res = Resolution(
            needed=name,
            parent=req.dso.path,
            found=target.dso.path,
            via=via,
            via_object=via_object,
            tried=tried,
        )
        return res, new

    # Already loaded under this name (glibc _dl_name_match_p + DT_SONAME; musl shortname).
    o = known.named(name)
    if o is not None:
        return done(o, FoundVia.LOADED, None, ())
    if family is LoaderFamily.MUSL and rtld is not None and musl_reserved(name):
        return done(rtld, FoundVia.LOADED, None, ())
    s = _Searcher(host, main, machine, family)
    found = (
        _musl_find(name, None if preload else req, s, interp)
        if family is LoaderFamily.MUSL
        else _glibc_find(name, req, s, family)
    )

    def fails(tried: tuple[Attempt, ...], error: str | None) -> tuple[Resolution, None]:
        if error:
            tried = (*tried, Attempt(path="", via=FoundVia.DEFAULT, outcome=f"{STOPS}{error}"))
        res = Resolution(
            needed=name, parent=req.dso.path, found=None, via=None, via_object=None, tried=tried
        )
        return res, None

    if found.dso is None:
        return fails(found.tried, found.error)
    # The same file under another name: loaded once (glibc _dl_file_id_match_p, musl's
    # st_dev/st_ino test; both before the file is mapped).
    o = known.same_file(found.dso.file_id)
    if o is not None:
        return done(o, found.via or FoundVia.LOADED, found.via_object, found.tried)
    refused = _cannot_map(found.dso, family, main.dso)
    if refused is not None:
        what, error = refused
        last = found.tried[-1]
        tried = (*found.tried[:-1], msgspec.structs.replace(last, outcome=what))
        return fails(tried, error)
    new = _Loaded(
        dso=found.dso,
        role="library",
        via=found.via or FoundVia.DEFAULT,
        parent=req.dso.path,
        names={name},
        # Whose DT_RPATH its own DT_NEEDED inherit: glibc's l_loader (the program, for a
        # preloaded object); musl's needed_by, which a preloaded object has not.
        up=None if preload and family is LoaderFamily.MUSL else req,
    )
    res = Resolution(
        needed=name,
        parent=req.dso.path,
        found=found.dso.path,
        via=found.via,
        via_object=found.via_object,
        tried=found.tried,
    )
    return res, new


STOPS = "the loader stops: "  # the outcome that ends a failed search, and the program


def _cannot_map(dso: Dso, family: LoaderFamily, main: Dso) -> tuple[str, str] | None:
    """(what the candidate is, the loader's error) when the loader refuses to map a library
    it has opened and verified; None when it maps it.

    glibc elf/dl-load.c _dl_map_object_from_fd: an ET_EXEC object, an ET_DYN one without
    PT_DYNAMIC and a PIE (DF_1_PIE) are errors, not skipped candidates. musl ldso/dynlink.c
    map_library maps ET_EXEC and PIEs alike, at their link address for ET_EXEC (EBUSY when it
    is taken: modelled for the main program's range only); no PT_DYNAMIC is ENOEXEC.
    """
    dyn = dso.dynamic
    if family is LoaderFamily.MUSL:
        if dso.dynamic_phdr is None:
            return "no PT_DYNAMIC", "Exec format error"
        if dso.e_type == ET_EXEC and main.e_type == ET_EXEC:
            lo, hi = dso.span
            main_lo, main_hi = main.span
            if lo < main_hi and main_lo < hi:
                return "ET_EXEC over the program's addresses", "Device or resource busy"
        return None
    if dso.e_type == ET_EXEC:
        return "ET_EXEC (a program)", "cannot dynamically load executable"
    if dso.dynamic_phdr is None:
        return "no PT_DYNAMIC", "object file has no dynamic section"
    if dyn is not None and dyn.flags_1 & DF_1_PIE:
        return "PIE (DF_1_PIE)", "cannot dynamically load position-independent executable"
    return None


def _default_interp(dso: Dso, machine: Machine, host: Host) -> str | None:
    """The interpreter a program loading this library would have: the libc it names, else
    the loader the root has (glibc's first; musl's in a musl-only root, such as Alpine's)."""
    musl = f"/lib/ld-musl-{machine.musl_arch}.so.1"
    if any(musl_reserved(n) for n in dso.needed) and "libc.so.6" not in dso.needed:
        return musl
    if not dso.needed and dso.dynamic is None:
        return None
    glibc = next((p for p in machine.glibc_interp if host.exists(p)), None)
    if glibc is None and "libc.so.6" not in dso.needed and host.exists(musl):
        return musl
    return glibc or (machine.glibc_interp[0] if machine.glibc_interp else None)
