"""What the commands share: the run's state, output, and how a command declares its parameters,
each by its default: an `argument`, an `option`, or options `together` as one typed value."""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

import elfcost
from elfcost.errors import ElfcostError, OutputError, UsageError
from elfcost.report.status import Status
from elfcost.report.streams import emit as emit
from elfcost.report.streams import quiet_stdout
from elfcost.report.units import parse_size

if TYPE_CHECKING:  # the values of option groups, named for the commands' signatures
    from elfcost.check.gate import Policy as Policy
    from elfcost.pipeline import Scenario as Scenario
    from elfcost.resolve.host import Host as Host
    from elfcost.runtime.launch import At as At
    from elfcost.runtime.measure import Start as Start

EXIT_HELP = """\b
Exit codes:
  0  success
  1  a check failed (check over budget, validate outside tolerance, deps --strict)
  2  usage error
  3  an input could not be analysed (not ELF, malformed, unreadable); 3 wins over 1
  4  the output could not be written (stdout, -o FILE, check's baseline: disk full, I/O error)
  5  scan --scheduler: the Dask scheduler could not be reached, or could not run the scan
  130, 143  interrupted by SIGINT, SIGTERM (every process elfcost started has ended)
"""
# Option help by option name.
HELP = {
    "--env-ld-library-path": "Take LD_LIBRARY_PATH from elfcost's own environment.",
    "--ld-library-path": "Search DIRS (':'-separated) as LD_LIBRARY_PATH would. Not used unless "
    "given here or with --env-ld-library-path.",
    "--root": "Sysroot: every path, symlink and loader configuration file (ld.so.cache, "
    "ld.so.conf, ld.so.preload, ld-musl-*.path) is read inside it. Name programs and "
    "directories as they are seen inside the root (/usr/bin/foo) or by their path on this "
    "machine under it (ROOT/usr/bin/foo).",
    "--preload": "Preload LIBS (separated by spaces or ':') as LD_PRELOAD would. Not used unless "
    "given here or with --env-preload.",
    "--env-preload": "Take LD_PRELOAD from elfcost's own environment.",
    "--isa-level": "The CPU's level, for glibc-hwcaps subdirectories and ld.so.cache entries: "
    "baseline, x86-64-v2..v4, power9, power10, z13..z17 (default: this machine's CPU; the "
    "baseline with --root).",
    "--assume": "What-if: bind every object now, or lazily; link the program statically; against "
    "musl or glibc instead of its libc; or both (musl-static, glibc-static); link the library "
    "SONAME in from its static archive (static-lib=SONAME, repeatable; static-lib=all: every "
    "library but libc and the loader; naming one the program does not load is a usage error, "
    "except in scan). Estimates, with their reasoning.",
    "--page-size": "Runtime page size (what-if). Default: this machine's for the programs it "
    "runs; for another machine's, the page size it usually runs (64K on ppc64le and ppc64, else "
    "4K), or the program's PT_LOAD alignment if that is smaller.",
    "--output": "Write the report to this file instead of standard output.",
    "--timeout": "Give up (and kill the program) after this many seconds (at most a day).",
    "--delay": "Idle: measure after this many seconds instead (at most a day).",
    "--settle": "Idle: seconds without CPU time advancing (at most a day).",
    "--clean-env": "Start the program with only PATH set (plus --env).",
    "--env": "Set a variable in the program's environment (repeatable).",
    "--pid": "Measure a live process (repeatable).",
    "--smaps": "A saved /proc/PID/smaps; if it is named smaps, the rest of a capture beside it "
    "(smaps_rollup, auxv, pid, pagemap/) is read too.",
    "--capture": "A directory or tar file made by the capture script (docs/validation.md).",
    "--at": "Where to stop a started program: its ELF entry point (hardware breakpoint, x86_64), "
    "idle after start-up, or right after execve.",
    "--follow": "Measure the started program's descendant with this name (a supervisor's child).",
    "--tolerance": "Pages per object allowed to differ at the entry point.",
    "--budget": "Policy file (TOML): limits by path glob, waivers, baseline.",
    "--max-private-dirty": "Limit on the expected private dirty memory of one instance "
    "(64K, 1.5MiB).",
    "--max-fleet": "Limit on N instances: N x private + shared clean once.",
    "--max-objects": "Limit on the number of objects the loader maps.",
    "--no-textrel": "Fail on DT_TEXTREL objects.",
    "--baseline": "JSON baseline {path: bytes}: private dirty may only go down.",
    "--update-baseline": "Write the baseline: new binaries added, lowered values recorded.",
    "--new-root": "Sysroot for NEW when it differs from --root (OLD's).",
    "--jobs": "Worker processes (default: one per core; more than 4 per core are 4 per core).",
    "--scheduler": "Analyse on the workers of the Dask scheduler at ADDRESS (tcp://HOST:PORT) "
    "instead of local processes (pip install 'elfcost[distributed]'). Every worker must read "
    "the inputs, and import elfcost, at the same paths as here.",
    "--no-cache": "Neither read nor write the on-disk cache.",
    "--cache-dir": "Cache directory (default: $XDG_CACHE_HOME/elfcost or ~/.cache/elfcost).",
    "--top": "Programs and libraries in the ranking.",
    "--object": "Only this object (path, soname or file name).",
}

# A parameter's default declares it: what makes its click parameters, given its name (None for
# a member of options together: its flag names it). Any, as it stands for a value of any type.
Declared = Callable[[str | None], list[click.Parameter]]


def argument(**attrs: Any) -> Any:
    return lambda name: [click.Argument([name], **attrs)]


def option(*decls: str, **attrs: Any) -> Any:
    """An option, its help from HELP unless given, its default shown if it has one (a flag's
    is not worth showing)."""
    attrs.setdefault("help", HELP.get(next(d for d in decls if d.startswith("--"))))
    attrs.setdefault("show_default", attrs.get("default") is not None and "is_flag" not in attrs)
    return lambda name: [click.Option([*decls, *filter(None, [name])], **attrs)]


def together(build: Callable[..., object], *members: Declared) -> Any:
    """Options that reach the command as one value: `build` called with their values by name
    (a ValueError it raises is a usage error). Click processes options in no fixed order, so
    each member's callback keeps its value and the last one to come builds the value."""

    def make(name: str | None) -> list[click.Parameter]:
        def keep(ctx: click.Context, param: click.Parameter, value: object) -> object:
            parts = ctx.params.setdefault(str(name), {})
            parts[param.name] = value
            if len(parts) == len(params):
                try:
                    ctx.params[str(name)] = build(**parts)
                except ElfcostError as exc:  # a file the options name: one line, exit 3
                    state = ctx.find_object(State)
                    if state is None or state.traceback:
                        raise
                    state.error(exc)
                    raise click.exceptions.Exit(int(state.status)) from None
                except ValueError as exc:
                    raise click.UsageError(str(exc)) from None
            return value

        params = [p for m in members for p in m(None)]
        for p in params:
            p.expose_value, p.callback = False, keep
        return params

    return make


def later(module: str, name: str) -> Callable[..., object]:
    """`module.name`, imported when called: --help and completion import every command."""
    return lambda **values: getattr(importlib.import_module(module), name)(**values)


def end_start_up() -> None:
    """What the start-up made (the modules, their classes and functions) lives as long as the
    process: the collector stops scanning it, and runs at COLLECTOR_THRESHOLDS from here on
    (elfcost.START_UP_THRESHOLD). Once per process: a later command (tests run many in one)
    leaves what it made to the collector."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
    gc.set_threshold(*elfcost.COLLECTOR_THRESHOLDS)


def command(f: Callable[..., None]) -> click.Command:
    """The command `f`, its docstring the help, the exit codes after it. Its first parameter is
    the run's State, the others are declared by their defaults, in --help order. What it raises
    is one input's error (State.per_input), and a reader that stopped reading (`elfcost ... |
    head`) no error at all: it ends with the exit status decided."""

    @functools.wraps(f)
    def run(state: State, **values: Any) -> None:
        end_start_up()
        try:
            with state.per_input():
                f(state, **values)
        except BrokenPipeError:
            quiet_stdout()
        except OutputError as exc:
            state.output_failed(exc)
        except UsageError as exc:  # an option that does not fit this program: exit 2
            raise click.UsageError(str(exc)) from None
        raise click.exceptions.Exit(int(state.status))

    declared = list(inspect.signature(f).parameters.values())[1:]
    params = [p for d in declared for p in d.default(d.name)]
    return click.command(params=params, epilog=EXIT_HELP)(click.pass_obj(run))


class State(Status):
    """The run's Status, with click's own exits passing through per_input like a closed pipe."""

    passes = (*Status.passes, click.ClickException, click.exceptions.Exit)


class Size(click.ParamType[int]):
    """`4K`, `64K`, `1.5MiB`, `4096` → bytes (powers of 1024); `allowed`: page sizes."""

    name = "size"

    def __init__(self, allowed: tuple[int, ...] = ()) -> None:
        self.allowed = allowed

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.allowed and size not in self.allowed:
            self.fail("page size must be 4K, 16K or 64K", param, ctx)
        return size


MAX_SECONDS = 86400.0  # --timeout, --delay, --settle: a day
MAX_COUNT = 1_000_000  # --instances, --top, --max-objects: a number, not a digit string


class Seconds(click.FloatRange):
    """Seconds from 0 (excluded when `positive`) to a day: not nan, not inf, not negative."""

    name = "float"

    def __init__(self, *, positive: bool = False) -> None:
        super().__init__(min=0.0, max=MAX_SECONDS, min_open=positive)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds: float = super().convert(value, param, ctx)
        if math.isnan(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


def count(min: int = 1) -> click.IntRange:
    return click.IntRange(min=min, max=MAX_COUNT)


class Assignment(click.ParamType[str]):
    name = "NAME=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not str(value).partition("=")[0] or "=" not in value:
            self.fail(f"{value!r} is not NAME=VALUE", param, ctx)
        return str(value)


def format_option(choices: Sequence[str], help: str) -> Any:
    return option("--format", type=click.Choice(choices), default="text", help=help)


def instances(help: str) -> Any:
    return option("-n", "--instances", type=count(), default=1, help=help)


ASSUME = ("bind-now", "lazy", "static", "musl", "glibc", "musl-static", "glibc-static")


class Assume(click.ParamType[str]):
    """One --assume value: one of ASSUME, or static-lib=SONAME (a library, or all)."""

    name = "assume"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text in ASSUME or (text.startswith("static-lib=") and text != "static-lib="):
            return text
        self.fail(
            f"{text!r} is not one of {', '.join(ASSUME)}, static-lib=SONAME, static-lib=all",
            param,
            ctx,
        )

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(ASSUME) + "|static-lib=SONAME|static-lib=all]"


OUTPUT = option("-o", "--output", type=click.Path(dir_okay=False))


def on_path(name: str, host: Host) -> str:
    """`name` as a shell finds a program: a name without a '/' that is no file here is looked
    up on PATH (this machine's: not inside a --root, whose programs are named by path). Not
    found, it is left as given, and the analysis says there is no such file."""
    if "/" in name or host.confined or os.path.lexists(name):
        return name
    import shutil  # only for a bare word (see Elfcost.route)

    return shutil.which(name) or name


HOST = together(
    later("elfcost.pipeline", "make_host"),
    option("--env-ld-library-path", "inherit_ld_library_path", is_flag=True),
    option("--ld-library-path", metavar="DIRS"),
    option("--root", default="/", type=click.Path(exists=True, file_okay=False)),
    option("--preload", metavar="LIBS"),
    option("--env-preload", "inherit_preload", is_flag=True),
    option("--isa-level", metavar="LEVEL"),
)
SCENARIO = together(
    later("elfcost.pipeline", "make_scenario"),
    option("--assume", type=Assume(), multiple=True),
    option("--page-size", type=Size((4096, 16384, 65536)), metavar="4K|16K|64K"),
)
START = together(
    later("elfcost.runtime.measure", "Start"),
    option("--timeout", type=Seconds(positive=True), default=10.0),
    option("--delay", type=Seconds()),
    option("--settle", type=Seconds(), default=0.3),
    option("--clean-env", is_flag=True),
    option("--env", type=Assignment(), multiple=True, metavar="NAME=VALUE"),
)
