"""The errors elfcost raises on purpose; each names the file and what was being read."""

from __future__ import annotations

import enum
from collections.abc import Callable
from contextlib import AbstractContextManager

# Runs one input of many (the library's loops take one as `each`). The command line's reports
# an error in one line and goes on with the next input; the default, a null context, lets the
# first error stop the run.
Each = Callable[[], AbstractContextManager[object]]


class Exit(enum.IntEnum):
    """Exit codes, the same for every command (documented in `--help` and the README)."""

    OK = 0
    CHECK_FAILED = 1  # a gate, --strict or a validation failed
    USAGE = 2  # argparse's own code for bad arguments
    INPUT_ERROR = 3  # an input could not be analysed (not ELF, malformed, unreadable)
    OUTPUT_ERROR = 4  # the report could not be written (stdout or -o FILE: disk full, I/O)
    CLUSTER_ERROR = 5  # scan --scheduler: the Dask scheduler unreachable, or its tasks failing
    INTERRUPTED = 130  # SIGINT (128 + 2), after every process elfcost started has ended
    TERMINATED = 143  # SIGTERM (128 + 15), the same


class ElfcostError(Exception):
    """Base class: everything the library raises on purpose derives from it."""

    def __init__(self, path: str, what: str, why: str) -> None:
        self.path = path
        self.what = what
        self.why = why
        super().__init__(f"{path}: {what}: {why}" if what else f"{path}: {why}")


class NotElfError(ElfcostError):
    """The file is not an ELF file at all (or not a regular file)."""


class MalformedElfError(ElfcostError):
    """An ELF file the loader would reject, or one whose structures contradict each other."""


class UnsupportedElfError(ElfcostError):
    """A valid ELF file outside elfcost's model (ET_REL, ET_CORE, an unknown machine)."""


class InputError(ElfcostError):
    """The path cannot be read: missing, a directory, a FIFO, unreadable, outside the root."""


class OutputError(ElfcostError):
    """The report could not be written: stdout or the -o file (disk full, I/O error). Not an
    input's error: it ends the command, with Exit.OUTPUT_ERROR."""


class ClusterError(ElfcostError):
    """`scan --scheduler`: the Dask cluster could not be reached, or could not run the scan's
    tasks (path: the scheduler's address). Not an input's error: it ends the scan, with
    Exit.CLUSTER_ERROR."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached elfcost: unwind (ending what it started), exit 128 + signum.

    A BaseException, so that no `except Exception` takes it for one input's error."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


class MeasurementError(ElfcostError):
    """A process could not be started, stopped or read under /proc."""


class ExitedError(MeasurementError):
    """The process exited before the point it was to be measured at (`/bin/true` is never
    idle)."""


class UsageError(Exception):
    """An option that does not fit the program it is used on (`--assume static-lib=X` of a
    program that does not load X, or that names its libc): a usage error, exit 2, not an
    input's error. Not an ElfcostError: no file is at fault."""
