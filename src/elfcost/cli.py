"""The command line: parse options → call the library → render → exit code. No ELF knowledge.

Exit codes (the same for every command):
  0  success
  1  a check failed (deps --strict with a missing library, validate outside tolerance, ...)
  2  usage error
  3  an input could not be analysed (not ELF, malformed, unreadable); 3 wins over 1
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from elfcost.errors import ElfcostError, Exit

EXIT_HELP = """\b
Exit codes:
  0  success
  1  a check failed (check over budget, validate outside tolerance, deps --strict)
  2  usage error
  3  an input could not be analysed (not ELF, malformed, unreadable); 3 wins over 1
"""


@dataclass
class State:
    """Per run: whether to show tracebacks, and the exit status so far."""

    traceback: bool = False
    status: int = Exit.OK

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
            click.echo(f"elfcost: error: {exc}", err=True)
            self.status = Exit.INPUT_ERROR
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # a bug in elfcost: still one line, still the next input
            if self.traceback:
                raise
            click.echo(
                f"elfcost: internal error: {type(exc).__name__}: {exc} "
                "(run with --traceback and report it)",
                err=True,
            )
            self.status = Exit.INPUT_ERROR


class DefaultGroup(click.Group):
    """`elfcost [OPTIONS] BINARY` means `elfcost estimate [OPTIONS] BINARY`."""

    GROUP_OPTIONS = frozenset({"--traceback", "--version", "-h", "--help"})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The command goes after elfcost's own options, before the first word that is not one
        # of them: `elfcost --format json BIN` is `elfcost estimate --format json BIN`.
        i = next((k for k, a in enumerate(args) if a not in self.GROUP_OPTIONS), None)
        asked = {"-h", "--help", "--version"} & set(args[:i])  # elfcost's own help or version
        if i is not None and args[i] not in self.commands and not asked:
            args = [*args[:i], "estimate", *args[i:]]
        return super().parse_args(ctx, args)


def parse_size(text: str) -> int:
    """`4K`, `64K`, `1M`, `1.5MiB`, `4096` → bytes (powers of 1024)."""
    from elfcost.gate import parse_size as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _page_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    size = parse_size(value)
    if size not in (4096, 16384, 65536):
        raise click.BadParameter("page size must be 4K, 16K or 64K")
    return size


def root_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--root",
        "root",
        default="/",
        show_default=True,
        type=click.Path(file_okay=False, exists=True),
        help="Sysroot: every path, symlink and loader configuration file "
        "(ld.so.cache, ld.so.conf, ld-musl-*.path) is read inside it.",
    )(f)
    f = click.option(
        "--ld-library-path",
        "ld_library_path",
        default=None,
        metavar="DIRS",
        help="Search DIRS (':'-separated) as LD_LIBRARY_PATH would. Not used "
        "unless given here or with --env-ld-library-path.",
    )(f)
    f = click.option(
        "--env-ld-library-path",
        "env_llp",
        is_flag=True,
        help="Take LD_LIBRARY_PATH from elfcost's own environment.",
    )(f)
    return f


def _host(root: str, ld_library_path: str | None, env_llp: bool, *, sections: bool = True) -> Any:
    from elfcost.resolve.host import Host

    llp: tuple[str, ...] | None = None
    if ld_library_path is not None:
        llp = tuple(p for p in ld_library_path.split(":"))
    elif env_llp and "LD_LIBRARY_PATH" in os.environ:
        llp = tuple(os.environ["LD_LIBRARY_PATH"].split(":"))
    return Host(root=root, ld_library_path=llp, sections=sections)


def format_option(choices: list[str], help: str) -> Callable[..., Any]:
    """--format, the same option for every command; text is always the default."""
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default="text", show_default=True, help=help
    )


def output_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-o",
        "--output",
        default=None,
        type=click.Path(dir_okay=False),
        help="Write the report to this file instead of standard output.",
    )(f)


@click.group(
    cls=DefaultGroup, epilog=EXIT_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--traceback", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="elfcost")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """Predict the private dirty memory an ELF program costs before it runs.

    `elfcost [OPTIONS] BINARY...` is `elfcost estimate [OPTIONS] BINARY...`.
    """
    ctx.obj = State(traceback=traceback)


def _finish(state: State) -> None:
    sys.exit(int(state.status))


@main.command(epilog=EXIT_HELP)
@click.argument("binaries", nargs=-1, required=True)
@root_options
@format_option(
    ["text", "json", "dot"],
    "json: one elfcost.deps/1 document (JSON Lines for several binaries); dot: Graphviz.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a library is missing.")
@click.pass_obj
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
            if fmt == "json":
                click.echo(jsonout.dumps(jsonout.deps_doc(graph), pretty=len(binaries) == 1))
            elif fmt == "dot":
                click.echo(graph.to_dot(), nl=False)
            else:
                from elfcost.report.text import deps_text

                click.echo(deps_text(graph), nl=False)
            if strict and graph.missing:
                state.fail(Exit.CHECK_FAILED)
    _finish(state)


def estimate_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--page-size",
        callback=_page_size,
        default=None,
        metavar="4K|16K|64K",
        help="Runtime page size (what-if); default: this machine's.",
    )(f)
    f = click.option(
        "--assume",
        "assume",
        type=click.Choice(
            ["bind-now", "lazy", "static", "musl", "glibc", "musl-static", "glibc-static"]
        ),
        default=None,
        help="What-if: bind every object now, or lazily; link the program statically; "
        "against musl or glibc instead of its libc; or both (musl-static, glibc-static). "
        "Estimates, with their reasoning.",
    )(f)
    return f


def _estimate(
    path: str, host: Any, page_size: int | None, assume: str | None, *, whatif: bool = False
) -> tuple[Any, Any]:
    """(the estimate, its static what-if or None): resolved and estimated once.

    An `assume` that relinks the program (cost/whatif.py RELINKS: static, musl, glibc, ...)
    gives that what-if as the estimate itself; `whatif=True` adds the static one beside the
    as-built estimate (for the HTML report's second fleet line).
    """
    from elfcost.cost.estimate import BIND_NOW, Options, estimate
    from elfcost.cost.whatif import RELINKS, relink_whatif, static_whatif
    from elfcost.resolve.search import resolve

    opts = Options(
        page_size=page_size or os.sysconf("SC_PAGE_SIZE"), bind_now=BIND_NOW.get(assume or "")
    )
    graph = resolve(path, host)
    est = estimate(graph, opts)
    if assume is not None and assume in RELINKS:
        return relink_whatif(graph, assume, host, opts, dynamic=est), None
    if whatif and est.loader_path is not None:
        return est, static_whatif(graph, opts, dynamic=est)
    return est, None


@main.command(epilog=EXIT_HELP)
@click.argument("binaries", nargs=-1, required=True)
@root_options
@estimate_options
@click.option(
    "--instances",
    "-n",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Fleet cost of N instances: N x private + shared pages once.",
)
@format_option(
    ["text", "json", "html"],
    "json: elfcost.estimate/1 (JSON Lines for several); html: one self-contained page "
    "(page maps, charts, sortable tables), best with -o FILE.",
)
@output_option
@click.pass_obj
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
            click.echo(p, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.writelines(parts)
    except OSError as exc:
        raise click.UsageError(f"{output}: {exc.strerror or exc}") from None


@main.command(epilog=EXIT_HELP)
@click.argument("binary")
@root_options
@estimate_options
@click.option(
    "--object",
    "object_name",
    default=None,
    metavar="NAME",
    help="Only this object (path, soname or file name).",
)
@click.pass_obj
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
        click.echo(out, nl=False)
        if out.startswith("no object named"):
            state.fail(Exit.CHECK_FAILED)
    _finish(state)


def _env(env_items: Sequence[str], clean_env: bool) -> dict[str, str]:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin"} if clean_env else dict(os.environ)
    for item in env_items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--env")
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


def launch_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--env",
        "env_items",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a variable in the program's environment (repeatable).",
    )(f)
    f = click.option(
        "--clean-env", is_flag=True, help="Start the program with only PATH set (plus --env)."
    )(f)
    f = click.option(
        "--settle",
        type=float,
        default=0.3,
        show_default=True,
        help="Idle: seconds without CPU time advancing.",
    )(f)
    f = click.option(
        "--delay", type=float, default=None, help="Idle: measure after this many seconds instead."
    )(f)
    f = click.option(
        "--timeout",
        type=float,
        default=10.0,
        show_default=True,
        help="Give up (and kill the program) after this many seconds.",
    )(f)
    return f


@main.command(epilog=EXIT_HELP)
@click.argument("command", nargs=-1)
@click.option("--pid", "pids", multiple=True, type=int, help="Measure a live process (repeatable).")
@click.option(
    "--smaps",
    "smaps_file",
    default=None,
    type=click.Path(exists=True),
    help="A saved /proc/PID/smaps (with smaps_rollup, pagemap/ beside it if captured).",
)
@click.option(
    "--capture",
    "capture",
    default=None,
    type=click.Path(exists=True),
    help="A directory or tar file made by the capture script (docs/validation.md).",
)
@click.option(
    "--at",
    "at",
    type=click.Choice(["entry", "idle", "exec"]),
    default="idle",
    show_default=True,
    help="Where to stop a started program: its ELF entry point "
    "(hardware breakpoint, x86_64), idle after start-up, or right after execve.",
)
@click.option(
    "--follow",
    default=None,
    metavar="NAME",
    help="Measure the started program's descendant with this name (a supervisor's child).",
)
@launch_options
@format_option(
    ["text", "json"],
    "json: elfcost.measurement/1.",
)
@click.pass_obj
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

    \b
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
        raise click.UsageError("give exactly one of: -- COMMAND, --pid, --smaps, --capture")
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
            click.echo(jsonout.dumps(rm.to_json(m), pretty=len(results) == 1))
        else:
            click.echo(text.measurement_text(m), nl=False)
    if len(pids) > 1 and len(results) > 1:
        from elfcost.runtime.attribute import group

        g = group(
            os.path.basename(results[0].objects[0].path) if results[0].objects else "?", results
        )
        if fmt == "json":
            click.echo(jsonout.dumps(rm.group_to_json(g), pretty=False))
        else:
            click.echo(text.group_text(g), nl=False)
    _finish(state)


@main.command(epilog=EXIT_HELP)
@click.argument("binary")
@click.argument("args", nargs=-1)
@root_options
@launch_options
@click.option(
    "--tolerance",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="PAGES",
    help="Pages per object allowed to differ at the entry point.",
)
@format_option(
    ["text", "json", "html"],
    "json: one elfcost.comparison/1 document per stop; html: predicted and measured "
    "page maps side by side (with -o FILE).",
)
@output_option
@click.pass_obj
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
        from elfcost.cost.estimate import Options, estimate
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
                click.echo(jsonout.dumps(comparison_doc(c), pretty=False))
            elif fmt == "text":
                click.echo(text.comparison_text(c), nl=False)
        if not all(c.ok for c in comparisons):
            state.fail(Exit.CHECK_FAILED)
    _finish(state)


def _size_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_size(value)


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
                    click.echo(f"elfcost: error: {exc}", err=True)
                    state.status = Exit.INPUT_ERROR
                    continue
                if dso.is_program:  # libc.so.6 has PT_INTERP but is a library
                    out.append(f)
                else:
                    libs += 1
    return out, skipped, libs


@main.command(epilog=EXIT_HELP)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--budget",
    "budget",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Policy file (TOML): limits by path glob, waivers, baseline.",
)
@click.option(
    "--max-private-dirty",
    callback=_size_option,
    default=None,
    metavar="SIZE",
    help="Limit on the expected private dirty memory of one instance (64K, 1.5MiB).",
)
@click.option(
    "--instances", type=click.IntRange(min=1), default=None, help="Instances for --max-fleet."
)
@click.option(
    "--max-fleet",
    callback=_size_option,
    default=None,
    metavar="SIZE",
    help="Limit on N instances: N x private + shared clean once.",
)
@click.option(
    "--max-objects",
    type=click.IntRange(min=1),
    default=None,
    help="Limit on the number of objects the loader maps.",
)
@click.option("--no-textrel", is_flag=True, default=None, help="Fail on DT_TEXTREL objects.")
@click.option("--strict", is_flag=True, default=None, help="Fail on missing libraries.")
@click.option(
    "--baseline",
    "baseline_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="JSON baseline {path: bytes}: private dirty may only go down.",
)
@click.option(
    "--update-baseline",
    is_flag=True,
    help="Write the baseline: new binaries added, lowered values recorded.",
)
@root_options
@estimate_options
@format_option(
    ["text", "json", "junit"],
    "json: elfcost.check/1; junit: JUnit XML.",
)
@click.pass_obj
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

    from elfcost import gate
    from elfcost.record import replace as _replace
    from elfcost.report import checkout

    policy = gate.Policy()
    if budget:
        try:
            with open(budget, encoding="utf-8") as fh:
                policy = gate.load_policy(fh.read(), source=budget)
        except (OSError, gate.PolicyError) as exc:
            raise click.UsageError(str(exc)) from None
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
            raise click.UsageError(f"{baseline_file}: not a baseline: {exc}") from None
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
    if fmt == "json":
        click.echo(
            _json.dumps(checkout.check_doc(verdicts, skipped=skipped, libraries=libs), indent=2)
        )
    elif fmt == "junit":
        click.echo(checkout.junit(verdicts), nl=False)
    else:
        click.echo(checkout.check_text(verdicts, skipped=skipped, libraries=libs), nl=False)
    if update_baseline and baseline_file:
        with open(baseline_file, "w", encoding="utf-8") as fh:
            _json.dump(gate.updated_baseline(baseline, verdicts), fh, indent=2)
            fh.write("\n")
    if any(v.failed for v in verdicts):
        state.fail(Exit.CHECK_FAILED)
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


@main.command(epilog=EXIT_HELP)
@click.argument("old")
@click.argument("new")
@root_options
@estimate_options
@click.option(
    "--new-root",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="Sysroot for NEW when it differs from --root (OLD's).",
)
@click.option(
    "--instances",
    "-n",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Show the fleet effect for N instances.",
)
@format_option(
    ["text", "json"],
    "json: elfcost.diff/1 (elfcost.diff-roots/1 for trees).",
)
@click.pass_obj
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

    \b
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
                click.echo(jsonout.dumps(d))
            else:
                click.echo(diffout.roots_text(d), nl=False)
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
                click.echo(jsonout.dumps(d))
            else:
                click.echo(diffout.diff_text(d), nl=False)
    _finish(state)


@main.command(epilog=EXIT_HELP)
@click.argument("paths", nargs=-1)
@root_options
@estimate_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: one per core).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the on-disk cache.")
@click.option(
    "--cache-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Cache directory (default: $XDG_CACHE_HOME/elfcost or ~/.cache/elfcost).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Programs and libraries in the ranking.",
)
@format_option(
    ["text", "json", "jsonl", "html"],
    "jsonl: one estimate per program as it is done, then a summary; json: the summary "
    "and ranking; html: the ranking as a page (with -o FILE).",
)
@output_option
@click.pass_obj
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

    from elfcost.record import asdict
    from elfcost.report import jsonout
    from elfcost.scan import Scan, ScanOptions, rank

    if not paths:
        if os.path.realpath(root) == "/":
            raise click.UsageError("give PATHS, or --root DIR to scan a whole root")
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
                    click.echo(msg, err=True)
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
                click.echo(f'{head[:-1]}, "estimate": {r.doc_json or "null"}}}')
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


def run() -> None:
    """Entry point that turns a closed pipe into a quiet exit (`elfcost ... | head`)."""
    # Names that are not UTF-8 are kept as surrogate escapes so the files stay openable;
    # write them back out as the bytes they came from.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")
    try:
        main()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
