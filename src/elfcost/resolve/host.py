"""Host: the machine (or sysroot) whose loader configuration resolves libraries.

The only place that reads the host's loader configuration: /etc/ld.so.cache, /etc/ld.so.conf,
/etc/ld-musl-<arch>.path, the CPU's glibc-hwcaps levels, and the files themselves. Every path is
a *loader path* (what ld.so would open, e.g. `/lib/x86_64-linux-gnu/libc.so.6`) and is turned
into a file on this machine by `Host.locate`, which keeps every lookup inside `root`: absolute
symlinks are re-anchored at the root and `..` never climbs above it, so no file outside the
root can ever be opened.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat
from collections.abc import Mapping
from functools import cached_property

import msgspec

from elfcost.elf.reader import read_dso
from elfcost.errors import ElfcostError, InputError
from elfcost.model import Dso
from elfcost.resolve import ldcache

GLOB_BUDGET = 100_000  # directory entries an ld.so.conf `include` pattern may look at


class Host(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    """The file system and loader configuration a program is resolved against (a root)."""

    root: str = "/"
    # None: LD_LIBRARY_PATH is not used (the default: results must not depend on the caller's
    # environment); a tuple: the directories given with --ld-library-path or taken on request.
    ld_library_path: tuple[str, ...] | None = None
    hwcaps: tuple[str, ...] | None = None  # glibc-hwcaps subdirectories supported; None: detect
    # The CPU's level, for a root whose CPU is not this one ("x86-64-v3", "power10", "z15" or
    # "baseline"): the glibc-hwcaps subdirectories up to it are searched, best first. None:
    # this machine's CPU without a root, the baseline (no glibc-hwcaps subdirectory) with one.
    isa_level: str | None = None
    # LD_PRELOAD: the objects to preload, in order (elfcost --preload; never taken from the
    # environment unless asked). /etc/ld.so.preload is read from the root, always.
    preload: tuple[str, ...] = ()
    cwd: str = msgspec.field(default_factory=os.getcwd)
    sections: bool = True  # read section headers (names for reports); deps does not need them

    # Caches, not fields: filled on demand, never compared, hashed or encoded.
    @cached_property
    def _dso_cache(self) -> dict[str, Dso | ElfcostError]:
        return {}

    @cached_property
    def _conf_cache(self) -> dict[str, object]:
        return {}

    @cached_property
    def _search_memo(self) -> dict[tuple[object, ...], object]:
        """What the next program resolved here would search for again, by what it depends
        on (resolve/search.py _glibc_find, check_versions): it holds the objects read."""
        return {}

    # -- paths -----------------------------------------------------------------------------

    @property
    def confined(self) -> bool:
        c = self._conf_cache.get("confined")
        if c is None:
            c = self._conf_cache["confined"] = os.path.realpath(self.root) != "/"
        return bool(c)

    def loader_path(self, path: str) -> str:
        """A path named by the user, as the loader inside the root would name it.

        Without a root it is returned as given. Inside one, a file under the root (reached
        through the root's real path or as spelled) loses the root prefix; anything else is
        taken to be a loader path already, so `usr/bin/foo` is /usr/bin/foo inside the root.
        """
        if not self.confined:
            return path
        absolute = os.path.abspath(path)
        for root in dict.fromkeys((os.path.realpath(self.root), os.path.abspath(self.root))):
            if absolute == root:
                return "/"
            if absolute.startswith(root.rstrip("/") + "/"):
                return "/" + os.path.relpath(absolute, root)
        return path if path.startswith("/") else "/" + path

    def user_file(self, path: str) -> str | None:
        """The file on this machine for a path the user named, or None if there is none.

        Without a root, the path itself. Inside one, either form `loader_path` accepts: the
        path as the program sees it inside the root (/usr/bin/foo), or a path on this machine
        under the root (ROOT/usr/bin/foo); either is looked up inside the root (`locate`).
        """
        return self.locate(self.loader_path(path))

    def locate(self, loader_path: str) -> str | None:
        """The file on this machine for `loader_path`, or None if there is no such file.

        Inside a root, symlinks are resolved by hand so that they stay inside it.
        """
        if not loader_path:
            return None  # as the kernel's open(""): ENOENT, not the current directory
        if not loader_path.startswith("/"):
            loader_path = posixpath.join(self.cwd, loader_path)
        if not self.confined:
            return loader_path if os.path.lexists(loader_path) else None
        try:
            return self._confined_path(loader_path)
        except OSError:
            return None

    def _confined_path(self, loader_path: str) -> str:
        # Imported here: only a --root other than / is walked inside its root.
        from elfcost.resolve.confined import Entry, follow

        root = os.path.realpath(self.root)

        def entry(path: str) -> Entry:
            file = root + path
            st = os.lstat(file)
            if stat.S_ISLNK(st.st_mode):
                return Entry("link", os.readlink(file))
            # `file/..` is ENOTDIR, as the kernel walks it (and as this machine's own root is
            # looked up, by the kernel itself).
            return Entry("dir" if stat.S_ISDIR(st.st_mode) else "file")

        path = follow(loader_path, entry)
        return root + path if path != "/" else root

    def exists(self, loader_path: str) -> bool:
        f = self.locate(loader_path)
        return f is not None and os.path.exists(f)

    def file_size(self, loader_path: str) -> int | None:
        f = self.locate(loader_path)
        try:
            return os.stat(f).st_size if f is not None else None
        except OSError:
            return None

    def read(self, loader_path: str) -> Dso:
        """The Dso at `loader_path` (cached per run, its error too); raises ElfcostError."""
        cached = self._dso_cache.get(loader_path)
        if isinstance(cached, Dso):
            return cached
        if isinstance(cached, ElfcostError):
            raise cached
        try:
            dso = self._read_file(loader_path)
        except ElfcostError as exc:
            self._dso_cache[loader_path] = exc
            raise
        self._dso_cache[loader_path] = dso
        return dso

    def _read_file(self, loader_path: str) -> Dso:
        """The Dso at `loader_path`, read now (read() keeps it)."""
        file = self.locate(loader_path)
        if file is None:
            raise InputError(loader_path, "", "no such file")
        return read_dso(file, path=loader_path, sections=self.sections)

    def adopt(self, loader_path: str, dso: Dso) -> None:
        """Keep `dso` as read() would: the caller read it from locate(loader_path), with this
        host's `sections` (a scan reads each file it is given before it resolves it, and
        resolve() must not read the program a second time)."""
        self._dso_cache.setdefault(loader_path, dso)

    def realpath(self, loader_path: str) -> str:
        """The loader path with every symlink resolved, still expressed inside the root."""
        file = self.locate(loader_path)
        if file is None:
            return posixpath.normpath(loader_path)
        if not self.confined:
            return os.path.realpath(file)
        root = os.path.realpath(self.root)
        rel = os.path.relpath(file, root)
        return "/" + rel if rel != "." else "/"

    # -- configuration ---------------------------------------------------------------------

    def ld_so_cache(self) -> ldcache.LdCache | None:
        """/etc/ld.so.cache of the root, parsed once; None when absent or unreadable."""
        key = "ld.so.cache"
        if key not in self._conf_cache:
            file = self.locate("/etc/ld.so.cache")
            cache = None
            # A FIFO or a device in a sysroot must not block or feed the parser forever.
            data = _read_regular(file, 64 << 20) if file is not None else None
            if data is not None:
                try:
                    cache = ldcache.parse(data)
                except ldcache.CacheFormatError:
                    cache = None
            self._conf_cache[key] = cache
        return self._conf_cache[key]  # type: ignore[return-value]

    def ld_so_conf_dirs(self) -> tuple[str, ...]:
        """Directories of /etc/ld.so.conf with `include` followed (what ldconfig scans)."""
        key = "ld.so.conf"
        if key not in self._conf_cache:
            dirs: list[str] = []
            self._read_conf("/etc/ld.so.conf", dirs, depth=0, seen=set())
            self._conf_cache[key] = tuple(dict.fromkeys(dirs))
        return self._conf_cache[key]  # type: ignore[return-value]

    def ld_so_preload(self) -> tuple[str, ...]:
        """The names in the root's /etc/ld.so.preload, in order (glibc elf/rtld.c dl_main:
        '#' starts a comment to the end of the line; names are separated by white space or
        ':'). Empty when there is no such file."""
        key = "ld.so.preload"
        if key not in self._conf_cache:
            text = self._read_text("/etc/ld.so.preload") or ""
            names: list[str] = []
            for line in text.split("\n"):
                names += [n for n in re.split(r"[: \t]", line.split("#", 1)[0]) if n]
            self._conf_cache[key] = tuple(names)
        return self._conf_cache[key]  # type: ignore[return-value]

    def _read_conf(self, conf: str, dirs: list[str], depth: int, seen: set[str]) -> None:
        # Each file once: `include` loops in a sysroot would otherwise read 3**16 files for
        # three self-includes. A second reading would only repeat directories already listed.
        if depth > 16 or conf in seen:
            return
        seen.add(conf)
        text = self._read_text(conf)
        if text is None:
            return
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include") and line[7:8] in (" ", "\t"):
                for pattern in line[8:].split():
                    if not pattern.startswith("/"):
                        pattern = posixpath.join(posixpath.dirname(conf), pattern)
                    for match in self._glob(pattern):
                        self._read_conf(match, dirs, depth + 1, seen)
            elif line.startswith("hwcap "):
                continue  # obsolete ldconfig directive, ignored by ldconfig since 2.37
            else:
                # ldconfig accepts "dir=type" (old libc5 syntax); the type is ignored.
                dirs.append(line.split("=", 1)[0].rstrip("/") or "/")

    def _glob(self, pattern: str) -> list[str]:
        """Glob a loader path pattern inside the root, returning loader paths.

        Component by component, looking at no more than GLOB_BUDGET directory entries:
        glob.glob follows a sysroot's symlinks, so `include /l/*/*/*/...` over a directory of
        links to "." would walk 8**12 paths. Names starting with "." match only a pattern that
        does (glob's rule).
        """
        root = os.path.realpath(self.root)
        found = [""]  # paths relative to the root
        budget = GLOB_BUDGET
        for part in (p for p in pattern.split("/") if p):
            matches: list[str] = []
            for rel in found:
                if not any(c in part for c in "*?["):
                    matches.append(posixpath.join(rel, part))
                    continue
                try:
                    names = sorted(os.listdir(os.path.join(root, rel)))
                except OSError:
                    continue
                budget -= len(names)
                if budget < 0:
                    return []
                matches.extend(
                    posixpath.join(rel, n)
                    for n in names
                    if fnmatch.fnmatchcase(n, part) and (part[0] == "." or n[0] != ".")
                )
            found = matches
        return sorted("/" + f for f in found if f and os.path.lexists(os.path.join(root, f)))

    def _read_text(self, loader_path: str, limit: int = 1 << 20) -> str | None:
        file = self.locate(loader_path)
        data = _read_regular(file, limit) if file is not None else None
        return data.decode("utf-8", "replace") if data is not None else None

    @staticmethod
    def _musl_path_file_name(interp: str, musl_arch: str) -> str:
        prefix = ""
        if interp.startswith("/"):
            slashes = [i for i, c in enumerate(interp) if c == "/"]
            prefix = interp[: slashes[-2]] if len(slashes) >= 2 else ""
        return f"{prefix}/etc/ld-musl-{musl_arch}.path"

    def musl_path_file(self, interp: str, musl_arch: str) -> tuple[str, ...] | None:
        """musl's system path: <prefix>/etc/ld-musl-<arch>.path (ldso/dynlink.c load_library).

        The prefix is the interpreter's path with its last two components removed, so
        /lib/ld-musl-x86_64.so.1 reads /etc/ld-musl-x86_64.path. Newlines and ':' separate.
        """
        text = self._read_text(self._musl_path_file_name(interp, musl_arch))
        if text is None:
            return None
        return tuple(p for p in text.replace("\n", ":").split(":") if p)

    def musl_path_file_size(self, interp: str, musl_arch: str) -> int | None:
        """The path file's size in bytes, which load_library mallocs plus one; None without
        the file."""
        file = self.locate(self._musl_path_file_name(interp, musl_arch))
        data = _read_regular(file, 1 << 20) if file is not None else None
        return len(data) if data is not None else None

    def glibc_hwcaps(self, machine: str) -> tuple[str, ...]:
        """glibc-hwcaps subdirectories in priority order (sysdeps/x86/dl-hwcaps-subdirs.c)."""
        if self.hwcaps is not None:
            return self.hwcaps
        if self.isa_level is not None:
            return hwcaps_up_to(machine, self.isa_level)
        key = "hwcaps:" + machine
        if key in self._conf_cache:
            return self._conf_cache[key]  # type: ignore[return-value]
        self._conf_cache[key] = self._detect_hwcaps(machine)
        return self._conf_cache[key]  # type: ignore[return-value]

    def _detect_hwcaps(self, machine: str) -> tuple[str, ...]:
        if machine != "x86_64" or os.uname().machine != "x86_64" or self.confined:
            # A sysroot's CPU is not this machine's: search no glibc-hwcaps subdirectory
            # unless told which are supported.
            return ()
        return _x86_64_levels(_cpu_flags())

    def cache_isa_level(self, machine: str) -> int | None:
        """The ISA level ld.so.cache's glibc-hwcaps entries are checked against (x86 only:
        sysdeps/x86/dl-isa-level.h): 0 baseline, 1 x86-64-v2, ... None elsewhere."""
        if machine != "x86_64":
            return None
        key = "isa-level:" + machine  # asked for in every program's ISA check
        level = self._conf_cache.get(key)
        if not isinstance(level, int):
            levels = GLIBC_HWCAPS["x86_64"]
            hwcaps = self.glibc_hwcaps(machine)
            level = max((levels.index(h) + 1 for h in hwcaps if h in levels), default=0)
            self._conf_cache[key] = level
        return level

    def dir_exists(self, loader_dir: str) -> bool:
        """Whether a directory exists, remembered per run: every search asks about the same
        glibc-hwcaps and legacy subdirectories of the same few directories."""
        key = "dir\0" + loader_dir
        known = self._conf_cache.get(key)
        if known is None:
            f = self.locate(loader_dir)
            known = self._conf_cache[key] = f is not None and os.path.isdir(f)
        return bool(known)


def _read_regular(file: str, limit: int) -> bytes | None:
    """At most `limit` bytes of a regular file; None for anything else (never blocks)."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


# The glibc-hwcaps subdirectories of each machine, lowest level first; each level implies the
# ones before it. sysdeps/x86_64/dl-hwcaps-subdirs.c, sysdeps/powerpc/powerpc64/le/
# dl-hwcaps-subdirs.c (little-endian only), sysdeps/s390/s390-64/dl-hwcaps-subdirs.c. Other
# machines have none: only the plain directories are searched.
GLIBC_HWCAPS: Mapping[str, tuple[str, ...]] = {
    "x86_64": ("x86-64-v2", "x86-64-v3", "x86-64-v4"),
    "ppc64": ("power9", "power10"),
    "s390x": ("z13", "z14", "z15", "z16", "z17"),
}
ISA_LEVELS = ("baseline", *(level for levels in GLIBC_HWCAPS.values() for level in levels))


def hwcaps_up_to(machine: str, level: str) -> tuple[str, ...]:
    """The glibc-hwcaps subdirectories a CPU of `level` supports, best first; none for the
    baseline, or for a level of another machine (the program's machine is not that CPU's)."""
    levels = GLIBC_HWCAPS.get(machine, ())
    if level not in levels:
        return ()
    return tuple(reversed(levels[: levels.index(level) + 1]))


# x86-64 psABI micro-architecture levels, as glibc checks them (sysdeps/x86/get-isa-level.h).
_LEVELS: Mapping[str, frozenset[str]] = {
    "x86-64-v2": frozenset({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}),
    "x86-64-v3": frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    "x86-64-v4": frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
}


def _x86_64_levels(flags: frozenset[str]) -> tuple[str, ...]:
    supported: list[str] = []
    need: set[str] = set()
    for level in ("x86-64-v2", "x86-64-v3", "x86-64-v4"):
        need |= _LEVELS[level]
        if need <= flags:
            supported.append(level)
        else:
            break
    return tuple(reversed(supported))  # the most capable level is searched first
