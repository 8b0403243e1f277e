"""What the commands share: the run's state (exit status, --traceback), output, and options."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from elfcost.check.gate import parse_size
from elfcost.errors import ElfcostError, Exit

if TYPE_CHECKING:
    from elfcost.resolve.host import Host

F = TypeVar("F", bound=Callable[..., Any])
EXIT_HELP = """\b
Exit codes:
  0  success
  1  a check failed (check over budget, validate outside tolerance, deps --strict)
  2  usage error
  3  an input could not be analysed (not ELF, malformed, unreadable); 3 wins over 1
"""
# Option help by option name, for the options whose name means one thing in every command.
HELP = {
    "--env-ld-library-path": "Take LD_LIBRARY_PATH from elfcost's own environment.",
    "--ld-library-path": "Search DIRS (':'-separated) as LD_LIBRARY_PATH would. Not used unless "
    "given here or with --env-ld-library-path.",
    "--root": "Sysroot: every path, symlink and loader configuration file (ld.so.cache, "
    "ld.so.conf, ld.so.preload, ld-musl-*.path) is read inside it.",
    "--preload": "Preload LIBS (separated by spaces or ':') as LD_PRELOAD would. Not used unless "
    "given here or with --env-preload.",
    "--env-preload": "Take LD_PRELOAD from elfcost's own environment.",
    "--isa-level": "The CPU's level, for glibc-hwcaps subdirectories and ld.so.cache entries: "
    "baseline, x86-64-v2..v4, power9, power10, z13..z17 (default: this machine's CPU; the "
    "baseline with --root).",
    "--assume": "What-if: bind every object now, or lazily; link the program statically; against "
    "musl or glibc instead of its libc; or both (musl-static, glibc-static). Estimates, with "
    "their reasoning.",
    "--page-size": "Runtime page size (what-if); default: this machine's.",
    "--output": "Write the report to this file instead of standard output.",
    "--timeout": "Give up (and kill the program) after this many seconds.",
    "--delay": "Idle: measure after this many seconds instead.",
    "--settle": "Idle: seconds without CPU time advancing.",
    "--clean-env": "Start the program with only PATH set (plus --env).",
    "--env": "Set a variable in the program's environment (repeatable).",
    "--pid": "Measure a live process (repeatable).",
    "--smaps": "A saved /proc/PID/smaps (with smaps_rollup, pagemap/ beside it if captured).",
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
    "--jobs": "Worker processes (default: one per core).",
    "--no-cache": "Neither read nor write the on-disk cache.",
    "--cache-dir": "Cache directory (default: $XDG_CACHE_HOME/elfcost or ~/.cache/elfcost).",
    "--top": "Programs and libraries in the ranking.",
}


def option(*decls: str, **attrs: Any) -> Callable[[F], F]:
    """click.option, with its help from HELP unless given, and its default shown if it has
    one (a flag's is not worth showing)."""
    name = next(d for d in decls if d.startswith("--"))
    attrs.setdefault("help", HELP.get(name))
    attrs.setdefault("show_default", attrs.get("default") is not None and "is_flag" not in attrs)
    return click.option(*decls, **attrs)


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several options as one decorator; they appear in --help in the order given."""

    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def command(
    *params: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command taking the run's State and `params` (arguments and options, in --help order),
    its docstring the help and the exit codes after it."""

    def make(f: Callable[..., Any]) -> click.Command:
        return click.command(epilog=EXIT_HELP)(options(*params)(click.pass_obj(f)))

    return make


class State:
    """Per run: whether to show tracebacks, and the exit status so far."""

    def __init__(self, traceback: bool = False) -> None:
        self.traceback = traceback
        self.status = Exit.OK

    def fail(self, code: Exit) -> None:
        # INPUT_ERROR (3) > CHECK_FAILED (1): the larger code is the one that wins.
        self.status = max(self.status, code)

    def error(self, exc: ElfcostError) -> None:
        """An input that could not be analysed: one line, and exit status 3."""
        click.echo(f"elfcost: error: {exc}", err=True)
        self.fail(Exit.INPUT_ERROR)

    @contextmanager
    def per_input(self) -> Iterator[None]:
        """One bad input is reported in one line; the others go on."""
        try:
            yield
        except (BrokenPipeError, click.ClickException):
            raise
        except Exception as exc:
            if self.traceback:
                raise
            if isinstance(exc, ElfcostError):
                self.error(exc)
                return
            # A bug in elfcost: still one line, still the next input.
            click.echo(
                f"elfcost: internal error: {type(exc).__name__}: {exc} "
                "(run with --traceback and report it)",
                err=True,
            )
            self.fail(Exit.INPUT_ERROR)

    def finish(self) -> None:
        """End the command with the exit status."""
        raise click.exceptions.Exit(int(self.status))


def emit(parts: Sequence[str], output: str | None) -> None:
    """Write the rendered output to stdout (flushed as it goes, so that a closed pipe is found
    while the command runs), or to -o FILE."""
    if output is None:
        for p in parts:
            click.echo(p, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.writelines(parts)
    except OSError as exc:
        raise click.UsageError(f"{output}: {exc.strerror or exc}") from None


def host_of(root: str, ld_library_path: str | None, env_llp: bool, sections: bool = True) -> Host:
    """The host of --root, --ld-library-path and --env-ld-library-path (and of --preload,
    --env-preload, --isa-level, which _loader_option keeps in the context)."""
    import msgspec

    from elfcost.pipeline import make_host

    host = make_host(root, ld_library_path, inherit_ld_library_path=env_llp, sections=sections)
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    preload = meta.get("elfcost.preload")
    if preload is None and meta.get("elfcost.env_preload"):
        preload = os.environ.get("LD_PRELOAD")
    levels = {"isa_level": meta["elfcost.isa_level"]} if meta.get("elfcost.isa_level") else {}
    names = tuple(n for n in re.split(r"[\s:]", preload or "") if n)
    return msgspec.structs.replace(host, preload=names, **levels) if names or levels else host


def _loader_option(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep --preload, --env-preload, --isa-level for host_of (not passed to the commands)."""
    if value and ctx.info_name == "scan":
        raise click.UsageError(f"scan does not take --{param.name} yet".replace("_", "-"))
    if param.name == "isa_level" and value is not None:
        from elfcost.resolve.host import ISA_LEVELS

        if value not in ISA_LEVELS:
            raise click.BadParameter(f"{value!r} is not one of {', '.join(ISA_LEVELS)}")
    ctx.meta[f"elfcost.{param.name}"] = value


class Size(click.ParamType[int]):
    """`4K`, `64K`, `1M`, `1.5MiB`, `4096` → bytes (powers of 1024); for page sizes, one of
    those the kernel supports."""

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


def _env_items(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    for item in value:
        key, sep, _ = item.partition("=")
        if not key or not sep:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE")
    return list(value)


def format_option(choices: Sequence[str], help: str) -> Callable[[F], F]:
    """--format, the same option for every command; text is always the default."""
    return option("--format", "fmt", type=click.Choice(choices), default="text", help=help)


ASSUME = ("bind-now", "lazy", "static", "musl", "glibc", "musl-static", "glibc-static")
OUTPUT = option("-o", "--output", type=click.Path(dir_okay=False))
ROOT = options(
    option("--env-ld-library-path", "env_llp", is_flag=True),
    option("--ld-library-path", metavar="DIRS"),
    option("--root", default="/", type=click.Path(exists=True, file_okay=False)),
    option("--preload", metavar="LIBS", expose_value=False, callback=_loader_option),
    option("--env-preload", is_flag=True, expose_value=False, callback=_loader_option),
    option("--isa-level", metavar="LEVEL", expose_value=False, callback=_loader_option),
)
ESTIMATE = options(
    option("--assume", type=click.Choice(ASSUME)),
    option("--page-size", type=Size((4096, 16384, 65536)), metavar="4K|16K|64K"),
)
LAUNCH = options(
    option("--timeout", type=float, default=10.0),
    option("--delay", type=float),
    option("--settle", type=float, default=0.3),
    option("--clean-env", is_flag=True),
    option("--env", "env_items", multiple=True, metavar="NAME=VALUE", callback=_env_items),
)
