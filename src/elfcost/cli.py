"""The command line: parse options → call the library → render → exit code. No ELF knowledge.

Exit codes (the same for every command):
  0  success
  1  a check failed (deps --strict with a missing library, validate outside tolerance, ...)
  2  usage error
  3  an input could not be analysed (not ELF, malformed, unreadable); 3 wins over 1

The parser is the standard library's argparse, built for the one command being run; the
library modules are imported inside each command, so `elfcost --help` reads no ELF code.
"""

from __future__ import annotations

import argparse
import os
import re  # argparse's own import: free
import sys
from contextlib import contextmanager

from elfcost.errors import ElfcostError, Exit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    # A positional argument: (parameter name, nargs, metavar); nargs None is exactly one word.
    Positional = tuple[str, str | None, str]

EXIT_HELP = """\
Exit codes:
  0  success
  1  a check failed (check over budget, validate outside tolerance, deps --strict)
  2  usage error
  3  an input could not be analysed (not ELF, malformed, unreadable); 3 wins over 1
"""

# elfcost's own options: they come before the command, and only they do.
GROUP_OPTIONS = frozenset({"--traceback", "--version", "-h", "--help"})
HELP_OPTIONS = frozenset({"-h", "--help"})


class UsageError(Exception):
    """A usage error found after parsing (a report that cannot be written, a policy file that
    cannot be read): reported like the parser's own, exit 2."""


class State:
    """Per run: whether to show tracebacks, and the exit status so far."""

    __slots__ = ("status", "traceback")

    def __init__(self, traceback: bool = False, status: int = Exit.OK) -> None:
        self.traceback = traceback
        self.status = status

    def fail(self, code: Exit) -> None:
        # INPUT_ERROR (3) > CHECK_FAILED (1): the larger code is the one that wins.
        self.status = max(self.status, code)

    @contextmanager
    def per_input(self) -> Iterator[None]:
        """One bad input is reported in one line; the others go on."""
        try:
            yield
        except ElfcostError as exc:
            if self.traceback:
                raise
            _echo(f"elfcost: error: {exc}", err=True)
            self.status = Exit.INPUT_ERROR
        except (KeyboardInterrupt, BrokenPipeError, UsageError):
            raise
        except Exception as exc:  # a bug in elfcost: still one line, still the next input
            if self.traceback:
                raise
            _echo(
                f"elfcost: internal error: {type(exc).__name__}: {exc} "
                "(run with --traceback and report it)",
                err=True,
            )
            self.status = Exit.INPUT_ERROR


def _echo(text: str = "", *, nl: bool = True, err: bool = False) -> None:
    """Write one piece of output and flush it, so stdout and stderr stay in order."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if nl else text)
    stream.flush()


# -- argument types: each returns the value or raises ArgumentTypeError (a usage error) --------


def parse_size(text: str) -> int:
    """`4K`, `64K`, `1M`, `1.5MiB`, `4096` → bytes (powers of 1024)."""
    from elfcost.gate import parse_size as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _page_size(text: str) -> int:
    size = parse_size(text)
    if size not in (4096, 16384, 65536):
        raise argparse.ArgumentTypeError("page size must be 4K, 16K or 64K")
    return size


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid integer.") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid float.") from None


def _at_least(minimum: int) -> Callable[[str], int]:
    """An integer >= minimum."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid integer range.") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not in the range x>={minimum}.")
        return value

    return convert


def _path(
    *, exists: bool = False, file_okay: bool = True, dir_okay: bool = True
) -> Callable[[str], str]:
    """A path, checked as given (not resolved): it must exist if `exists`, and an existing one
    must be of an allowed kind and readable."""
    if file_okay and not dir_okay:
        kind = "File"
    elif dir_okay and not file_okay:
        kind = "Directory"
    else:
        kind = "Path"

    def check(text: str) -> str:
        import stat

        try:
            st = os.stat(text)
        except OSError:
            if not exists:
                return text
            raise argparse.ArgumentTypeError(f"{kind} {text!r} does not exist.") from None
        if not file_okay and stat.S_ISREG(st.st_mode):
            raise argparse.ArgumentTypeError(f"{kind} {text!r} is a file.")
        if not dir_okay and stat.S_ISDIR(st.st_mode):
            raise argparse.ArgumentTypeError(f"{kind} {text!r} is a directory.")
        if not os.access(text, os.R_OK):
            raise argparse.ArgumentTypeError(f"{kind} {text!r} is not readable.")
        return text

    return check


def _env_item(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return text


# -- the options several commands share ------------------------------------------------------


def _choices(choices: Sequence[str]) -> str:
    return "[" + "|".join(choices) + "]"


def root_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--env-ld-library-path",
        dest="env_llp",
        action="store_true",
        help="Take LD_LIBRARY_PATH from elfcost's own environment.",
    )
    p.add_argument(
        "--ld-library-path",
        dest="ld_library_path",
        default=None,
        metavar="DIRS",
        help="Search DIRS (':'-separated) as LD_LIBRARY_PATH would. Not used "
        "unless given here or with --env-ld-library-path.",
    )
    p.add_argument(
        "--root",
        dest="root",
        default="/",
        type=_path(exists=True, file_okay=False),
        metavar="DIRECTORY",
        help="Sysroot: every path, symlink and loader configuration file "
        "(ld.so.cache, ld.so.conf, ld-musl-*.path) is read inside it.  [default: /]",
    )


def _host(root: str, ld_library_path: str | None, env_llp: bool, *, sections: bool = True) -> Any:
    from elfcost.resolve.host import Host

    llp: tuple[str, ...] | None = None
    if ld_library_path is not None:
        llp = tuple(p for p in ld_library_path.split(":"))
    elif env_llp and "LD_LIBRARY_PATH" in os.environ:
        llp = tuple(os.environ["LD_LIBRARY_PATH"].split(":"))
    return Host(root=root, ld_library_path=llp, sections=sections)


def format_option(p: argparse.ArgumentParser, choices: list[str], help: str) -> None:
    """--format, the same option for every command; text is always the default."""
    p.add_argument(
        "--format",
        dest="fmt",
        choices=choices,
        default="text",
        metavar=_choices(choices),
        help=f"{help}  [default: text]",
    )


def output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        dest="output",
        default=None,
        type=_path(dir_okay=False),
        metavar="FILE",
        help="Write the report to this file instead of standard output.",
    )


def estimate_options(p: argparse.ArgumentParser) -> None:
    assume = ["bind-now", "lazy", "static", "musl", "glibc", "musl-static", "glibc-static"]
    p.add_argument(
        "--assume",
        dest="assume",
        choices=assume,
        default=None,
        metavar=_choices(assume),
        help="What-if: bind every object now, or lazily; link the program statically; "
        "against musl or glibc instead of its libc; or both (musl-static, glibc-static). "
        "Estimates, with their reasoning.",
    )
    p.add_argument(
        "--page-size",
        dest="page_size",
        type=_page_size,
        default=None,
        metavar="4K|16K|64K",
        help="Runtime page size (what-if); default: this machine's.",
    )


def launch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        dest="timeout",
        type=_float,
        default=10.0,
        metavar="FLOAT",
        help="Give up (and kill the program) after this many seconds.  [default: 10.0]",
    )
    p.add_argument(
        "--delay",
        dest="delay",
        type=_float,
        default=None,
        metavar="FLOAT",
        help="Idle: measure after this many seconds instead.",
    )
    p.add_argument(
        "--settle",
        dest="settle",
        type=_float,
        default=0.3,
        metavar="FLOAT",
        help="Idle: seconds without CPU time advancing.  [default: 0.3]",
    )
    p.add_argument(
        "--clean-env",
        dest="clean_env",
        action="store_true",
        help="Start the program with only PATH set (plus --env).",
    )
    p.add_argument(
        "--env",
        dest="env_items",
        action="append",
        type=_env_item,
        default=[],
        metavar="NAME=VALUE",
        help="Set a variable in the program's environment (repeatable).",
    )


# -- the commands ---------------------------------------------------------------------------


class Command:
    """One command: its function, its usage line, its positional arguments and its options."""

    __slots__ = ("func", "options", "positionals", "usage")

    def __init__(
        self,
        func: Callable[..., None],
        usage: str,
        positionals: Sequence[Positional],
        options: Callable[[argparse.ArgumentParser], None],
    ) -> None:
        self.func = func
        self.usage = usage
        self.positionals = tuple(positionals)
        self.options = options

    @property
    def summary(self) -> str:
        """The first line of the command's help."""
        return (self.func.__doc__ or "").strip().split("\n", 1)[0]


COMMANDS: dict[str, Command] = {}


def command(
    usage: str,
    positionals: Sequence[Positional],
    options: Callable[[argparse.ArgumentParser], None],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command: `usage` follows `elfcost NAME [OPTIONS]` in its usage line."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        COMMANDS[func.__name__] = Command(func, usage, positionals, options)
        return func

    return register


def _finish(state: State) -> None:
    sys.exit(int(state.status))


def _deps_options(p: argparse.ArgumentParser) -> None:
    root_options(p)
    format_option(
        p,
        ["text", "json", "dot"],
        "json: one elfcost.deps/1 document (JSON Lines for several binaries); dot: Graphviz.",
    )
    p.add_argument(
        "--strict", dest="strict", action="store_true", help="Exit 1 when a library is missing."
    )


@command("BINARIES...", [("binaries", "+", "BINARIES")], _deps_options)
def deps(
    state: State,
    binaries: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    fmt: str,
    strict: bool,
) -> None:
    """The libraries BINARY loads, in load order, and how each was found.

    For a missing library, every path the loader would try, in order, and why.
    """
    from elfcost.report import jsonout
    from elfcost.resolve.search import resolve

    host = _host(root, ld_library_path, env_llp, sections=False)
    for b in binaries:
        with state.per_input():
            graph = resolve(host.loader_path(b), host)
            # The status is decided before the output, so a closed pipe cannot lose it.
            if strict and graph.missing:
                state.fail(Exit.CHECK_FAILED)
            if fmt == "json":
                _echo(jsonout.dumps(jsonout.deps_doc(graph), pretty=len(binaries) == 1))
            elif fmt == "dot":
                _echo(graph.to_dot(), nl=False)
            else:
                from elfcost.report.text import deps_text

                _echo(deps_text(graph), nl=False)
    _finish(state)


def _estimate(
    path: str, host: Any, page_size: int | None, assume: str | None, *, whatif: bool = False
) -> tuple[Any, Any]:
    """(the estimate, its static what-if or None): resolved and estimated once.

    An `assume` that relinks the program (cost/whatif.py RELINKS: static, musl, glibc, ...)
    gives that what-if as the estimate itself; `whatif=True` adds the static one beside the
    as-built estimate (for the HTML report's second fleet line).
    """
    from elfcost.cost.estimate import BIND_NOW, Options
    from elfcost.predict import estimate
    from elfcost.resolve.search import resolve

    opts = Options(
        page_size=page_size or os.sysconf("SC_PAGE_SIZE"), bind_now=BIND_NOW.get(assume or "")
    )
    graph = resolve(path, host)
    est = estimate(graph, opts)
    if assume is None and not whatif:
        return est, None
    from elfcost.cost.whatif import RELINKS, static_whatif
    from elfcost.predict import relink_whatif

    if assume is not None and assume in RELINKS:
        return relink_whatif(graph, assume, host, opts, dynamic=est), None
    if whatif and est.loader_path is not None:
        return est, static_whatif(graph, opts, dynamic=est)
    return est, None


def _estimate_options(p: argparse.ArgumentParser) -> None:
    root_options(p)
    estimate_options(p)
    p.add_argument(
        "-n",
        "--instances",
        dest="instances",
        type=_at_least(1),
        default=1,
        metavar="INTEGER RANGE",
        help="Fleet cost of N instances: N x private + shared pages once.  [default: 1; x>=1]",
    )
    format_option(
        p,
        ["text", "json", "html"],
        "json: elfcost.estimate/1 (JSON Lines for several); html: one self-contained page "
        "(page maps, charts, sortable tables), best with -o FILE.",
    )
    output_option(p)


@command("BINARIES...", [("binaries", "+", "BINARIES")], _estimate_options)
def estimate(
    state: State,
    binaries: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    page_size: int | None,
    assume: str | None,
    instances: int,
    fmt: str,
    output: str | None,
) -> None:
    """Predict the private dirty memory of one instance of each BINARY, per object and cause."""
    from elfcost.report import text

    if fmt != "text":
        from elfcost.report import jsonout  # json is not imported for the plain table

    host = _host(root, ld_library_path, env_llp)
    docs, whatifs = [], []
    out: list[str] = []
    for b in binaries:
        with state.per_input():
            est, whatif = _estimate(
                host.loader_path(b),
                host,
                page_size,
                assume,
                whatif=fmt == "html" and assume is None,
            )
            if fmt == "html":
                docs.append(jsonout.estimate_doc(est, instances=instances))
                if whatif is not None:
                    whatifs.append(jsonout.estimate_doc(whatif, instances=instances))
            elif fmt == "json":
                doc = jsonout.estimate_doc(est, instances=instances)
                out.append(jsonout.dumps(doc, pretty=len(binaries) == 1) + "\n")
            else:
                out.append(text.estimate_text(est, instances=instances))
    if fmt == "html" and docs:
        from elfcost.report.html import estimate_html

        out.append(estimate_html(docs, static_whatif=whatifs, instances=max(instances, 129)))
    _emit(out, output)
    _finish(state)


def _emit(parts: Sequence[str], output: str | None) -> None:
    """Write the rendered output to stdout, or to -o FILE."""
    if output is None:
        for p in parts:
            _echo(p, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.writelines(parts)
    except OSError as exc:
        raise UsageError(f"{output}: {exc.strerror or exc}") from None


def _explain_options(p: argparse.ArgumentParser) -> None:
    root_options(p)
    estimate_options(p)
    p.add_argument(
        "--object",
        dest="object_name",
        default=None,
        metavar="NAME",
        help="Only this object (path, soname or file name).",
    )


@command("BINARY", [("binary", None, "BINARY")], _explain_options)
def explain(
    state: State,
    binary: str,
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    page_size: int | None,
    assume: str | None,
    object_name: str | None,
) -> None:
    """One line per predicted page: address, sections, cause, relocations in it."""
    from elfcost.report import text

    host = _host(root, ld_library_path, env_llp)
    with state.per_input():
        est, _ = _estimate(host.loader_path(binary), host, page_size, assume)
        out = text.explain_text(est, object_name=object_name)
        if out.startswith("no object named"):
            state.fail(Exit.CHECK_FAILED)
        _echo(out, nl=False)
    _finish(state)


def _env(env_items: Sequence[str], clean_env: bool) -> dict[str, str]:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin"} if clean_env else dict(os.environ)
    for item in env_items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"argument --env: {item!r} is not NAME=VALUE")
        base[key] = value
    return base


def _planned_dsos(program: str) -> list[Any]:
    """The objects elfcost's resolver expects, so measure names them as estimate does."""
    import shutil

    from elfcost.resolve.host import Host
    from elfcost.resolve.search import resolve

    path = program if "/" in program else (shutil.which(program) or program)
    try:
        return [o.dso for o in resolve(path, Host()).objects]
    except ElfcostError:
        return []  # not an ELF file (a script): measure what the process maps


def _with_discovered(planned: list[Any], discovered: Sequence[Any]) -> list[Any]:
    """Planned objects first (their path strings), then anything else mapped (dlopen)."""
    ids = {d.file_id for d in planned}
    return [*planned, *(d for d in discovered if d.file_id not in ids)]


def _measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pid",
        dest="pids",
        action="append",
        type=_integer,
        default=[],
        metavar="INTEGER",
        help="Measure a live process (repeatable).",
    )
    p.add_argument(
        "--smaps",
        dest="smaps_file",
        default=None,
        type=_path(exists=True),
        metavar="PATH",
        help="A saved /proc/PID/smaps (with smaps_rollup, pagemap/ beside it if captured).",
    )
    p.add_argument(
        "--capture",
        dest="capture",
        default=None,
        type=_path(exists=True),
        metavar="PATH",
        help="A directory or tar file made by the capture script (docs/validation.md).",
    )
    p.add_argument(
        "--at",
        dest="at",
        choices=["entry", "idle", "exec"],
        default="idle",
        metavar=_choices(["entry", "idle", "exec"]),
        help="Where to stop a started program: its ELF entry point "
        "(hardware breakpoint, x86_64), idle after start-up, or right after execve."
        "  [default: idle]",
    )
    p.add_argument(
        "--follow",
        dest="follow",
        default=None,
        metavar="NAME",
        help="Measure the started program's descendant with this name (a supervisor's child).",
    )
    launch_options(p)
    format_option(p, ["text", "json"], "json: elfcost.measurement/1.")


@command("[COMMAND]...", [("command", "*", "COMMAND")], _measure_options)
def measure(
    state: State,
    command: Sequence[str],
    pids: Sequence[int],
    smaps_file: str | None,
    capture: str | None,
    at: str,
    follow: str | None,
    env_items: Sequence[str],
    clean_env: bool,
    settle: float,
    delay: float | None,
    timeout: float,
    fmt: str,
) -> None:
    """What a running process costs, attributed to the same objects as the estimate.

    elfcost measure -- /usr/bin/foo --args     start it, measure when idle, kill it
    elfcost measure --at entry -- /bin/sleep 9 stop it at its ELF entry point
    elfcost measure --pid 1234                 a live process
    elfcost measure --capture cap.tgz          files captured on another machine
    """
    from elfcost.report import jsonout, text
    from elfcost.runtime import measure as rm
    from elfcost.runtime.launch import Launched

    sources = sum(bool(x) for x in (command, pids, smaps_file, capture))
    if sources != 1:
        raise UsageError("give exactly one of: -- COMMAND, --pid, --smaps, --capture")
    results = []
    if command:
        with state.per_input():
            env = _env(env_items, clean_env)
            planned = _planned_dsos(command[0]) if follow is None else []
            with Launched(
                list(command),
                at=at,  # type: ignore[arg-type]
                env=env,
                settle=settle,
                delay=delay,
                timeout=timeout,
                follow=follow,
            ) as p:
                dsos = _with_discovered(
                    planned,
                    rm.discover_dsos(p.target_pid, skip=rm.smaps_ids(planned)),
                )
                results.append(
                    rm.measure_pid(p.target_pid, dsos, stop=p.stop, thread_pointer=p.thread_pointer)
                )
    for pid in pids:
        with state.per_input():
            results.append(rm.measure_pid(pid, rm.discover_dsos(pid)))
    for source in (smaps_file, capture):
        if source:
            with state.per_input():
                src = os.path.dirname(source) if source == smaps_file else source
                results.append(rm.measure_capture(src or ".", ()))
    for m in results:
        if fmt == "json":
            _echo(jsonout.dumps(rm.to_json(m), pretty=len(results) == 1))
        else:
            _echo(text.measurement_text(m), nl=False)
    if len(pids) > 1 and len(results) > 1:
        from elfcost.runtime.attribute import group

        g = group(
            os.path.basename(results[0].objects[0].path) if results[0].objects else "?", results
        )
        if fmt == "json":
            _echo(jsonout.dumps(rm.group_to_json(g), pretty=False))
        else:
            _echo(text.group_text(g), nl=False)
    _finish(state)


def _validate_options(p: argparse.ArgumentParser) -> None:
    root_options(p)
    launch_options(p)
    p.add_argument(
        "--tolerance",
        dest="tolerance",
        type=_at_least(0),
        default=0,
        metavar="PAGES",
        help="Pages per object allowed to differ at the entry point.  [default: 0; x>=0]",
    )
    format_option(
        p,
        ["text", "json", "html"],
        "json: one elfcost.comparison/1 document per stop; html: predicted and measured "
        "page maps side by side (with -o FILE).",
    )
    output_option(p)


@command("BINARY [ARGS]...", [("binary", None, "BINARY"), ("args", "*", "ARGS")], _validate_options)
def validate(
    state: State,
    binary: str,
    args: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    env_items: Sequence[str],
    clean_env: bool,
    settle: float,
    delay: float | None,
    timeout: float,
    tolerance: int,
    fmt: str,
    output: str | None,
) -> None:
    """Estimate BINARY, run it, measure it at its entry point and idle, and compare.

    Exit 0 when every object is within --tolerance pages at the entry point and the idle
    total lies within the predicted [low, high]; 1 otherwise. Usage: validate BINARY -- ARGS.
    """
    from elfcost.report import jsonout, text
    from elfcost.runtime.compare import compare, comparison_doc
    from elfcost.runtime.launch import Launched
    from elfcost.runtime.measure import measure_pid

    host = _host(root, ld_library_path, env_llp)
    with state.per_input():
        from elfcost.cost.estimate import Options
        from elfcost.predict import estimate
        from elfcost.resolve.search import resolve

        graph = resolve(host.loader_path(binary), host)
        est = estimate(graph, Options(page_size=os.sysconf("SC_PAGE_SIZE")))
        dsos = [o.dso for o in graph.objects]
        env = _env(env_items, clean_env)
        comparisons = []
        for at in ("entry", "idle"):
            with Launched(
                [binary, *args], at=at, env=env, settle=settle, delay=delay, timeout=timeout
            ) as p:
                m = measure_pid(p.target_pid, dsos, stop=p.stop, thread_pointer=p.thread_pointer)
            comparisons.append(compare(est, m, stop=at, tolerance_pages=tolerance))
        # The status is decided before the output, so a closed pipe cannot lose it.
        if not all(c.ok for c in comparisons):
            state.fail(Exit.CHECK_FAILED)
        if fmt == "html":
            from elfcost.cost.whatif import static_whatif
            from elfcost.report.html import estimate_html

            whatif = static_whatif(graph, Options(page_size=est.page_size), dynamic=est)
            page = estimate_html(
                [jsonout.estimate_doc(est)],
                comparisons=[comparison_doc(c) for c in comparisons],
                static_whatif=[jsonout.estimate_doc(whatif)] if est.loader_path else [],
            )
            _emit([page], output)
        for c in comparisons:
            if fmt == "json":
                _echo(jsonout.dumps(comparison_doc(c), pretty=False))
            elif fmt == "text":
                _echo(text.comparison_text(c), nl=False)
    _finish(state)


def _programs_in(paths: Sequence[str], state: State) -> tuple[list[str], int, int]:
    """Files named explicitly, and the ELF programs found under directories.

    Returns (programs, non-ELF files skipped, shared libraries skipped). A file named
    explicitly is always analysed (a non-ELF one is an input error).
    """
    from elfcost.elf.reader import is_elf, read_dso

    out: list[str] = []
    skipped = libs = 0
    for p in paths:
        if not os.path.isdir(p):
            out.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for name in sorted(filenames):
                f = os.path.join(dirpath, name)
                if os.path.islink(f) or not is_elf(f):
                    skipped += 1
                    continue
                try:
                    dso = read_dso(f, sections=False)
                except ElfcostError as exc:
                    _echo(f"elfcost: error: {exc}", err=True)
                    state.status = Exit.INPUT_ERROR
                    continue
                if dso.is_program:  # libc.so.6 has PT_INTERP but is a library
                    out.append(f)
                else:
                    libs += 1
    return out, skipped, libs


def _check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget",
        dest="budget",
        type=_path(exists=True, dir_okay=False),
        default=None,
        metavar="FILE",
        help="Policy file (TOML): limits by path glob, waivers, baseline.",
    )
    p.add_argument(
        "--max-private-dirty",
        dest="max_private_dirty",
        type=parse_size,
        default=None,
        metavar="SIZE",
        help="Limit on the expected private dirty memory of one instance (64K, 1.5MiB).",
    )
    p.add_argument(
        "--instances",
        dest="instances",
        type=_at_least(1),
        default=None,
        metavar="INTEGER RANGE",
        help="Instances for --max-fleet.  [x>=1]",
    )
    p.add_argument(
        "--max-fleet",
        dest="max_fleet",
        type=parse_size,
        default=None,
        metavar="SIZE",
        help="Limit on N instances: N x private + shared clean once.",
    )
    p.add_argument(
        "--max-objects",
        dest="max_objects",
        type=_at_least(1),
        default=None,
        metavar="INTEGER RANGE",
        help="Limit on the number of objects the loader maps.  [x>=1]",
    )
    # No flag is None, not False: the policy file decides.
    p.add_argument(
        "--no-textrel",
        dest="no_textrel",
        action="store_true",
        default=None,
        help="Fail on DT_TEXTREL objects.",
    )
    p.add_argument(
        "--strict",
        dest="strict",
        action="store_true",
        default=None,
        help="Fail on missing libraries.",
    )
    p.add_argument(
        "--baseline",
        dest="baseline_file",
        default=None,
        type=_path(dir_okay=False),
        metavar="FILE",
        help="JSON baseline {path: bytes}: private dirty may only go down.",
    )
    p.add_argument(
        "--update-baseline",
        dest="update_baseline",
        action="store_true",
        help="Write the baseline: new binaries added, lowered values recorded.",
    )
    root_options(p)
    estimate_options(p)
    format_option(p, ["text", "json", "junit"], "json: elfcost.check/1; junit: JUnit XML.")


@command("PATHS...", [("paths", "+", "PATHS")], _check_options)
def check(
    state: State,
    paths: Sequence[str],
    budget: str | None,
    max_private_dirty: int | None,
    instances: int | None,
    max_fleet: int | None,
    max_objects: int | None,
    no_textrel: bool | None,
    strict: bool | None,
    baseline_file: str | None,
    update_baseline: bool,
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    page_size: int | None,
    assume: str | None,
    fmt: str,
) -> None:
    """Gate programs on memory budgets: exit 1 when a limit is exceeded.

    PATHS are programs or directories (every ELF program under them; other files are
    skipped and counted). Flags override the policy file's defaults.
    """
    import json as _json

    from msgspec.structs import replace as _replace

    from elfcost import gate
    from elfcost.report import checkout

    policy = gate.Policy()
    if budget:
        try:
            with open(budget, encoding="utf-8") as fh:
                policy = gate.load_policy(fh.read(), source=budget)
        except (OSError, gate.PolicyError) as exc:
            raise UsageError(str(exc)) from None
        if policy.baseline_file and baseline_file is None:
            baseline_file = os.path.join(os.path.dirname(budget), policy.baseline_file)
    flags: dict[str, Any] = {
        k: v
        for k, v in (
            ("max_private_dirty", max_private_dirty),
            ("instances", instances),
            ("max_fleet", max_fleet),
            ("max_objects", max_objects),
            ("no_textrel", no_textrel),
            ("no_missing", strict),
        )
        if v is not None
    }
    policy = _replace(policy, defaults=_replace(policy.defaults, **flags))
    baseline: dict[str, int] = {}
    if baseline_file and os.path.exists(baseline_file):
        try:
            with open(baseline_file, encoding="utf-8") as fh:
                raw = _json.load(fh)
            baseline = {str(k): int(v) for k, v in raw.items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise UsageError(f"{baseline_file}: not a baseline: {exc}") from None
    host = _host(root, ld_library_path, env_llp)
    programs, skipped, libs = _programs_in(paths, state)
    verdicts = []
    for prog in programs:
        with state.per_input():
            loader_path = host.loader_path(prog)
            est, _ = _estimate(loader_path, host, page_size, assume)
            facts = gate.Facts(
                path=loader_path.lstrip("/") if os.path.realpath(root) != "/" else prog.lstrip("/"),
                private_dirty=est.total.expected,
                private_dirty_high=est.total.high,
                shared_clean=est.shared_clean,
                objects=len(est.objects),
                textrel=tuple(
                    o.path for o in est.objects if any("DT_TEXTREL" in n for n in o.notes)
                ),
                missing=tuple(m.needed for m in est.missing),
            )
            verdicts.append(
                gate.evaluate(facts, policy, baseline=baseline if baseline_file else None)
            )
    # The verdict and the baseline come before the output, so a closed pipe cannot lose them.
    if any(v.failed for v in verdicts):
        state.fail(Exit.CHECK_FAILED)
    if update_baseline and baseline_file:
        with open(baseline_file, "w", encoding="utf-8") as fh:
            _json.dump(gate.updated_baseline(baseline, verdicts), fh, indent=2)
            fh.write("\n")
    if fmt == "json":
        _echo(_json.dumps(checkout.check_doc(verdicts, skipped=skipped, libraries=libs), indent=2))
    elif fmt == "junit":
        _echo(checkout.junit(verdicts), nl=False)
    else:
        _echo(checkout.check_text(verdicts, skipped=skipped, libraries=libs), nl=False)
    _finish(state)


def _estimate_doc_of(
    side: str, host: Any, page_size: int | None, assume: str | None
) -> dict[str, Any]:
    """A saved estimate JSON report, or a fresh analysis of a binary."""
    import json as _json

    from elfcost.elf.reader import ELF_MAGIC
    from elfcost.report import jsonout

    try:
        with open(side, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ElfcostError(side, "", exc.strerror or str(exc)) from None
    if head != ELF_MAGIC and head.lstrip()[:1] == b"{":
        try:
            with open(side, encoding="utf-8") as fh:
                doc: dict[str, Any] = _json.load(fh)
        except ValueError as exc:
            raise ElfcostError(side, "JSON report", str(exc)) from None
        if doc.get("schema") != "elfcost.estimate/1":
            raise ElfcostError(side, "JSON report", "not an elfcost.estimate/1 document")
        return doc
    est, _ = _estimate(host.loader_path(side), host, page_size, assume)
    return jsonout.estimate_doc(est)


def _diff_options(p: argparse.ArgumentParser) -> None:
    root_options(p)
    estimate_options(p)
    p.add_argument(
        "--new-root",
        dest="new_root",
        default=None,
        type=_path(exists=True, file_okay=False),
        metavar="DIRECTORY",
        help="Sysroot for NEW when it differs from --root (OLD's).",
    )
    p.add_argument(
        "-n",
        "--instances",
        dest="instances",
        type=_at_least(1),
        default=1,
        metavar="INTEGER RANGE",
        help="Show the fleet effect for N instances.  [default: 1; x>=1]",
    )
    format_option(p, ["text", "json"], "json: elfcost.diff/1 (elfcost.diff-roots/1 for trees).")


@command("OLD NEW", [("old", None, "OLD"), ("new", None, "NEW")], _diff_options)
def diff(
    state: State,
    old: str,
    new: str,
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    page_size: int | None,
    assume: str | None,
    new_root: str | None,
    instances: int,
    fmt: str,
) -> None:
    """Compare two builds: binaries, saved JSON reports, or two directory trees.

    elfcost diff old/usr/bin/foo new/usr/bin/foo
    elfcost diff before.json after.json -n 129
    elfcost diff --root old --new-root new old/usr/bin new/usr/bin
    """
    from elfcost.report import diffout, jsonout

    old_host = _host(root, ld_library_path, env_llp)
    new_root = new_root or root
    new_host = _host(new_root, ld_library_path, env_llp)
    with state.per_input():
        if os.path.isdir(old) and os.path.isdir(new):
            old_progs, _, _ = _programs_in([old], state)
            new_progs, _, _ = _programs_in([new], state)
            rel_old = {os.path.relpath(p, old): p for p in old_progs}
            rel_new = {os.path.relpath(p, new): p for p in new_progs}
            pairs = []
            for rel in sorted(set(rel_old) | set(rel_new)):
                docs = []
                for table, host in ((rel_old, old_host), (rel_new, new_host)):
                    doc = None
                    if rel in table:
                        with state.per_input():
                            doc = _estimate_doc_of(table[rel], host, page_size, assume)
                    docs.append(doc)
                pairs.append((rel, docs[0], docs[1]))
            d = diffout.roots_doc(pairs, instances=instances)
            if fmt == "json":
                _echo(jsonout.dumps(d))
            else:
                _echo(diffout.roots_text(d), nl=False)
        else:
            a = _estimate_doc_of(old, old_host, page_size, assume)
            b = _estimate_doc_of(new, new_host, page_size, assume)
            if a["page_size"] != b["page_size"]:
                raise ElfcostError(
                    new,
                    "",
                    f"page size {b['page_size']} differs from "
                    f"{old}'s {a['page_size']}: compare like with like",
                )
            d = diffout.diff_doc(a, b, instances=instances)
            if fmt == "json":
                _echo(jsonout.dumps(d))
            else:
                _echo(diffout.diff_text(d), nl=False)
    _finish(state)


def _scan_options(p: argparse.ArgumentParser) -> None:
    root_options(p)
    estimate_options(p)
    p.add_argument(
        "-j",
        "--jobs",
        dest="jobs",
        type=_at_least(1),
        default=None,
        metavar="INTEGER RANGE",
        help="Worker processes (default: one per core).  [x>=1]",
    )
    p.add_argument(
        "--no-cache",
        dest="no_cache",
        action="store_true",
        help="Neither read nor write the on-disk cache.",
    )
    p.add_argument(
        "--cache-dir",
        dest="cache_dir",
        default=None,
        type=_path(file_okay=False),
        metavar="DIRECTORY",
        help="Cache directory (default: $XDG_CACHE_HOME/elfcost or ~/.cache/elfcost).",
    )
    p.add_argument(
        "--top",
        dest="top",
        type=_at_least(1),
        default=10,
        metavar="INTEGER RANGE",
        help="Programs and libraries in the ranking.  [default: 10; x>=1]",
    )
    format_option(
        p,
        ["text", "json", "jsonl", "html"],
        "jsonl: one estimate per program as it is done, then a summary; json: the summary "
        "and ranking; html: the ranking as a page (with -o FILE).",
    )
    output_option(p)


@command("[PATHS]...", [("paths", "*", "PATHS")], _scan_options)
def scan(
    state: State,
    paths: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    page_size: int | None,
    assume: str | None,
    jobs: int | None,
    no_cache: bool,
    cache_dir: str | None,
    top: int,
    fmt: str,
    output: str | None,
) -> None:
    """Rank every ELF program under PATHS, and the libraries they load, by cost.

    PATHS are directories, root file systems, or .deb/.apk/.tar.*/.rpm packages. Prints the
    most expensive programs and the libraries that cost most summed over the programs that
    load them ("who needs libX"). Results are cached across runs.
    """
    import json as _json

    from msgspec.structs import asdict

    from elfcost.report import jsonout
    from elfcost.scan import Scan, ScanOptions, rank

    if not paths:
        if os.path.realpath(root) == "/":
            raise UsageError("give PATHS, or --root DIR to scan a whole root")
        paths = (root,)
    host = _host(root, ld_library_path, env_llp)
    opts = ScanOptions(
        root=root,
        ld_library_path=host.ld_library_path,
        page_size=page_size,
        assume=assume,  # type: ignore[arg-type]
        jobs=jobs,
        cache_dir=cache_dir,
        no_cache=no_cache,
    )
    progress: Any = None
    if sys.stderr.isatty() and fmt != "jsonl":
        from elfcost.report.progress import Progress

        progress = Progress(sys.stderr, "scanning")
    lines: list[str] = []
    docs: list[dict[str, Any]] = []

    def on_progress(done: int, total: int) -> None:
        if progress is not None:
            progress.update(done, total)

    def emit(results: Any) -> Any:
        for r in results:
            if r.error:
                msg = f"elfcost: error: {r.error}"
                if progress is not None:
                    progress.message(msg)
                else:
                    _echo(msg, err=True)
                state.status = Exit.INPUT_ERROR
            elif fmt == "jsonl":
                # The estimate is already JSON text: written as is, never decoded.
                head = _json.dumps(
                    {
                        "schema": "elfcost.scan-result/1",
                        "path": r.path,
                        "loader_path": r.loader_path,
                        "cached": r.cached,
                        "error": None,
                    }
                )
                _echo(f'{head[:-1]}, "estimate": {r.doc_json or "null"}}}')
            elif fmt == "html" and r.doc is not None:
                docs.append(r.doc)
            yield r

    sc = Scan(list(paths), opts, on_progress=on_progress)
    try:
        ranking = rank(emit(sc.results()), top)
    finally:
        if progress is not None:
            progress.close()
    summary = asdict(sc.summary)
    ranked = {
        "programs": [asdict(p) for p in ranking.programs],
        "libraries": [asdict(lib) for lib in ranking.libraries],
    }
    if fmt in ("json", "jsonl"):
        doc = {"schema": "elfcost.scan/1", "summary": summary, "ranking": ranked}
        lines.append(jsonout.dumps(doc, pretty=fmt == "json") + "\n")
    elif fmt == "html":
        from elfcost.report.html import scan_html

        lines.append(scan_html(docs, top=max(top, 20)))
    else:
        from elfcost.report.text import scan_text

        lines.append(scan_text(summary, ranking))
    _emit(lines, output)
    _finish(state)


# -- the parser -----------------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs keep their lines; option help is wrapped to the width;
    `-n, --instances N` names the value once."""

    def __init__(self, prog: str, width: int) -> None:
        super().__init__(prog, max_help_position=34, width=width)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


def _help_width() -> int:
    """The terminal's width ($COLUMNS first) less 2, at most 100: shutil's rule, without
    importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return min((columns if columns > 0 else 80) - 2, 100)


class _Version(argparse.Action):
    """--version: `elfcost, version X`, the installed package's version, looked up only now."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("elfcost")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        _echo(f"{parser.prog}, version {number}")
        parser.exit()


def _help_text(doc: str | None) -> str:
    """A docstring as help: its first line, then the rest with the common indent removed."""
    lines = (doc or "").expandtabs().strip().split("\n")
    indents = [len(s) - len(s.lstrip()) for s in lines[1:] if s.strip()]
    cut = min(indents, default=0)
    return "\n".join([lines[0].strip(), *(s[cut:].rstrip() for s in lines[1:])])


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _commands_text(width: int) -> str:
    """The list of commands in elfcost's own help, one summary each, wrapped to the width."""
    names = sorted(COMMANDS)
    column = max(map(len, names)) + 4
    lines = ["commands:"]
    for name in names:
        summary = _wrap(COMMANDS[name].summary, max(width - column, 20)) or [""]
        lines.append(f"  {name:<{column - 2}}{summary[0]}".rstrip())
        lines.extend(" " * column + s for s in summary[1:])
    return "\n".join(lines) + "\n"


def build_parser(
    name: str | None = None, prog: str = "elfcost", width: int | None = None
) -> argparse.ArgumentParser:
    """The parser of command `name`, or of elfcost's own options when `name` is None.

    `width` fixes the help's width (docs/make_cli_md.py); by default it follows the terminal.
    """
    help_width = _help_width() if width is None else width

    def formatter(prog: str) -> HelpFormatter:
        return HelpFormatter(prog, width=help_width)

    if name is None:
        p = argparse.ArgumentParser(
            prog=prog,
            usage="%(prog)s [OPTIONS] COMMAND [ARGS]...",
            description=_help_text(main.__doc__),
            epilog=_commands_text(help_width) + "\n" + EXIT_HELP,
            formatter_class=formatter,
            add_help=False,
            allow_abbrev=False,
        )
        p.add_argument(
            "--traceback", action="store_true", help="Show Python tracebacks for errors."
        )
        p.add_argument("--version", action=_Version, nargs=0, help="Show the version and exit.")
    else:
        cmd = COMMANDS[name]
        p = argparse.ArgumentParser(
            prog=f"{prog} {name}",
            usage=f"%(prog)s [OPTIONS] {cmd.usage}",
            description=_help_text(cmd.func.__doc__),
            epilog=EXIT_HELP,
            formatter_class=formatter,
            add_help=False,
            allow_abbrev=False,
        )
        cmd.options(p)
    p.add_argument("-h", "--help", action="help", help="Show this message and exit.")
    return p


def _is_option(word: str) -> bool:
    """Whether argparse takes `word` for an option (`-` alone and `-1` are values)."""
    if not word.startswith("-") or word == "-" or " " in word:
        return False
    return re.fullmatch(r"-\d+|-\d*\.\d+", word) is None


def _attach_values(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """`--follow -bash` as `--follow=-bash`: a value that looks like an option is still the
    value of the option before it (argparse would call the option's value missing)."""
    takes_value = {
        option
        for action in parser._actions  # argparse keeps no public list of them
        if action.nargs is None and action.option_strings
        for option in action.option_strings
    }
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in takes_value and i + 1 < len(words) and words[i + 1].startswith("-"):
            value = words[i + 1]
            out.append(f"{word}={value}" if word.startswith("--") else f"{word}{value}")
            i += 2
        else:
            out.append(word)
            i += 1
    return out


def parse_command(
    parser: argparse.ArgumentParser, cmd: Command, argv: Sequence[str]
) -> dict[str, Any]:
    """The command's parameters from its arguments (what follows its name).

    Options and positional words may be mixed; everything after the first `--` is positional
    (`measure -- prog --its-option`, `validate BINARY -- ARGS`). Usage errors exit 2.
    """
    words = list(argv)
    cut = words.index("--") if "--" in words else len(words)
    head, tail = _attach_values(parser, words[:cut]), words[cut + 1 :]
    if HELP_OPTIONS.intersection(head):  # help first, whatever else is wrong
        parser.print_help()
        parser.exit()
    namespace, rest = parser.parse_known_args(head)
    unknown = [w for w in rest if _is_option(w)]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    positional = [*rest, *tail]
    values = vars(namespace)
    missing = []
    for dest, nargs, metavar in cmd.positionals:
        if nargs is None:
            if positional:
                values[dest] = positional.pop(0)
            else:
                missing.append(metavar)
        else:
            if nargs == "+" and not positional:
                missing.append(metavar)
            values[dest], positional = positional, []
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    if positional:
        parser.error(f"unrecognized arguments: {' '.join(positional)}")
    return values


def with_default_command(args: Sequence[str]) -> list[str]:
    """`elfcost [OPTIONS] BINARY...` means `elfcost estimate [OPTIONS] BINARY...`.

    The command goes after elfcost's own options, before the first word that is not one of
    them: `elfcost --format json BIN` is `elfcost estimate --format json BIN`; unless that word
    is a command, or elfcost's own help or version was asked for.
    """
    args = list(args)
    i = next((k for k, a in enumerate(args) if a not in GROUP_OPTIONS), None)
    asked = {"-h", "--help", "--version"} & set(args[:i])
    if i is not None and args[i] not in COMMANDS and not asked:
        args = [*args[:i], "estimate", *args[i:]]
    return args


def _program_name() -> str:
    """The name elfcost was run by, for usage lines: `elfcost`, or `python -m elfcost`."""
    path = sys.argv[0] if sys.argv and sys.argv[0] else "elfcost"
    package = getattr(sys.modules.get("__main__"), "__package__", None)
    if not package:
        return os.path.basename(path)
    name = os.path.splitext(os.path.basename(path))[0]
    module = package if name == "__main__" else f"{package}.{name}"
    return f"python -m {module.lstrip('.')}"


def main(argv: Sequence[str] | None = None, *, prog_name: str | None = None) -> None:
    """Predict the private dirty memory an ELF program costs before it runs.

    `elfcost [OPTIONS] BINARY...` is `elfcost estimate [OPTIONS] BINARY...`.
    """
    # The docstring above is elfcost's own --help. argv defaults to sys.argv[1:]; main always
    # ends in SystemExit with the exit status.
    prog = prog_name or _program_name()
    args = with_default_command(sys.argv[1:] if argv is None else argv)
    i = next((k for k, a in enumerate(args) if a not in GROUP_OPTIONS), len(args))
    traceback = False
    if i > 0 or not args:  # elfcost's own options, or no command: its own parser is needed
        top = build_parser(None, prog)
        traceback = top.parse_args(args[:i]).traceback  # -h and --version exit here
        if i == len(args):
            if not args:
                top.print_help(sys.stderr)
                top.exit(Exit.USAGE)
            top.error("the following arguments are required: COMMAND")
    name = args[i]
    cmd = COMMANDS[name]
    parser = build_parser(name, prog)
    values = parse_command(parser, cmd, args[i + 1 :])
    state = State(traceback=traceback)
    try:
        cmd.func(state, **values)
    except BrokenPipeError:
        # The reader stopped reading (`elfcost ... | head`): no error of its own, but what was
        # decided before it (a failed check, an input error) is still the exit status.
        _quiet_stdout()
        sys.exit(int(state.status))
    except UsageError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        _echo(err=True)
        _echo("Aborted!", err=True)
        sys.exit(1)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run() -> None:
    """Entry point that turns a closed pipe into a quiet exit (`elfcost ... | head`) with the
    command's own exit status."""
    # Names that are not UTF-8 are kept as surrogate escapes so the files stay openable;
    # write them back out as the bytes they came from.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")
    try:
        main()
        status: int | str | None = 0
    except SystemExit as exc:  # main always ends so; the status must survive the flush below
        status = exc.code
    try:
        sys.stdout.flush()  # a pipe closed early fails here at the latest, not at exit
    except BrokenPipeError:
        _quiet_stdout()
    sys.exit(status)
