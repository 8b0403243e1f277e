"""The command line: parse options → call the library → render → exit code. No ELF knowledge.

Each command is a module of this package, imported only when that command is run (or listed);
the exit codes, the same for every command, are common.EXIT_HELP.
"""

from __future__ import annotations

import gc

import elfcost

# Before the command line's libraries are imported (see START_UP_THRESHOLD; the command sets
# COLLECTOR_THRESHOLDS when it starts, common.command).
gc.set_threshold(elfcost.START_UP_THRESHOLD)

import atexit
import contextlib
import importlib
import os
import signal
import sys
from types import FrameType

import click

from elfcost.cli.common import EXIT_HELP, State
from elfcost.errors import Exit, Interrupted, OutputError
from elfcost.report.streams import error_line, install_stdout, quiet_stdout

COMMANDS = ("causes", "check", "debhelper-env", "deps", "diff", "estimate", "explain", "measure",
            "scan", "validate")  # fmt: skip
# elfcost's own options: flags that come before the command, and only they do.
GROUP_OPTIONS = frozenset({"--traceback", "--version", "-h", "--help"})


class Elfcost(click.Group):
    """Commands imported on demand, and `elfcost [OPTIONS] BINARY...` as estimate's."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module("elfcost.cli." + cmd_name.replace("-", "_"))
        command: click.Command = module.command
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The command is the first word after elfcost's own options, unless help or the version
        # was asked for there.
        i = next((k for k, a in enumerate(args) if a not in GROUP_OPTIONS), None)
        if i is not None and not {"-h", "--help", "--version"} & set(args[:i]):
            args = [*args[:i], *self.route(ctx, args[i]), *args[i + 1 :]]
        return super().parse_args(ctx, args)

    def route(self, ctx: click.Context, word: str) -> list[str]:
        """The command words `word` stands for: a command is itself; an option (estimate's),
        `--`, or a file (by path, or found on PATH as a shell would) is estimate's argument;
        anything else is a misspelt command, a usage error naming the closest ones."""
        if word in COMMANDS:
            return [word]
        if word.startswith("-") or "/" in word or os.path.lexists(word):
            return ["estimate", word]
        import shutil  # only for a bare word: its compression imports cost every run

        found = shutil.which(word)
        if found is not None:
            return ["estimate", found]
        if ctx.resilient_parsing:  # completing a word: nothing to report
            return [word]
        raise click.exceptions.NoSuchCommand(word, possibilities=COMMANDS, ctx=ctx)


@click.group(
    cls=Elfcost, epilog=EXIT_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--traceback", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="elfcost")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """Predict the private dirty memory an ELF program costs before it runs.

    `elfcost [OPTIONS] BINARY...` is `elfcost estimate [OPTIONS] BINARY...`; a BINARY without
    a '/' that is not a file here is looked up on PATH.
    """
    ctx.obj = State(traceback=traceback)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT and SIGTERM unwind the command (not click's "Aborted!" and exit 1): what it
    started is ended on the way out, then the exit status is 128 + the signal's number."""
    raise Interrupted(signum)


def run() -> None:
    """The `elfcost` script and `python -m elfcost`: the exit status is the command's, even
    when the reader of its output has gone (`elfcost ... | head`)."""
    elfcost.own_process()
    # Names that are not UTF-8 are kept as surrogate escapes so the files stay openable;
    # write them back out as the bytes they came from.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")
    install_stdout()  # a full disk is one line and exit 4
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup, a shell's background job
                signal.signal(sig, _interrupt)
        # Named explicitly so that usage lines and shell completion are the installed
        # script's, also under `python -m elfcost`.
        main.main(prog_name="elfcost", complete_var="_ELFCOST_COMPLETE")
        status: int | str | None = 0
    except SystemExit as exc:  # main always ends so; the status must survive the flush below
        status = exc.code
    except Interrupted as exc:
        # Unwound: every process started (a measured program, scan's workers) has ended.
        status = 128 + exc.signum
    for sig in (signal.SIGINT, signal.SIGTERM):  # from here on, nothing is left to end
        if signal.getsignal(sig) is _interrupt:
            signal.signal(sig, signal.SIG_DFL)
    try:
        sys.stdout.flush()  # a pipe closed early fails here at the latest, not at exit
    except BrokenPipeError:
        quiet_stdout()
    except OutputError as exc:
        click.echo(error_line(exc), err=True)
        quiet_stdout()
        status = status if isinstance(status, str) else max(status or 0, Exit.OUTPUT_ERROR)
    # The process ends here: what the command made is freed by the interpreter's exit without
    # a last collection scanning it first (~4 ms of a small estimate).
    gc.freeze()
    if (status is None or isinstance(status, int)) and _nothing_waits_for_exit():
        # Nor freed at all: tearing the modules and their objects down one by one is a few
        # milliseconds (most of them cache misses) of work the kernel does at once when the
        # process ends. The report is out (flushed above); stderr may hold a partial line.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(status or 0)
    sys.exit(status)


def _nothing_waits_for_exit() -> bool:
    """Whether the interpreter's exit has nothing to do but free memory: no exit handler
    (atexit: logging, multiprocessing, scan's scratch directories through weakref.finalize),
    no thread but this one, and nothing observing the process (a profiler, a tracer or
    debugger, a callback of the collector), whose report comes after the command's exit."""
    threading = sys.modules.get("threading")
    # CPython's count of atexit handlers; an interpreter without it exits the usual way.
    handlers = getattr(atexit, "_ncallbacks", None)
    return (
        handlers is not None
        and handlers() == 0
        and (threading is None or threading.active_count() == 1)
        and sys.getprofile() is None
        and sys.gettrace() is None
        and not gc.callbacks
    )
