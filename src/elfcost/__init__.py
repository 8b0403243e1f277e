"""elfcost: the private dirty memory of an ELF program, predicted before it runs."""

import importlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# The cyclic collector's thresholds in elfcost's own processes (the command line, a scan's
# workers). By default the youngest generation is scanned every 700 allocations and the
# whole heap whenever a quarter of it is new: at start-up that is hundreds of scans of the
# classes and functions click, rich and msgspec define and keep, and in a scan worker, whose
# memo of libraries holds hundreds of thousands of objects, each full pass takes ~0.1 s (about
# a tenth of a cold scan's CPU). The analysis makes few reference cycles; they are still
# collected, after 20,000 allocations instead of 700.
COLLECTOR_THRESHOLDS = (20_000, 10, 10)
# The command line's start-up (click, rich, msgspec and elfcost's own modules: some 35,000
# objects that live as long as the process) runs under this threshold, so that no collection
# scans them; the first command then moves them to the permanent generation (gc.freeze) and
# sets COLLECTOR_THRESHOLDS. One collection of them costs ~5 ms, a twentieth of an estimate.
START_UP_THRESHOLD = 100_000

# numpy's OpenBLAS starts a thread per CPU when it is loaded, and each spins a while waiting for
# work. elfcost calls no BLAS routine: a cold scan of /usr/bin + /usr/sbin with 2 workers on 2
# cores spent ~6% of its CPU in those threads (blas_thread_server), taken from the workers.
# elfcost's own processes (the command line, a scan's workers) load it with one thread, unless
# the user set the variable; what they add is left out of the environment of a program that
# elfcost starts (runtime/measure.py environment).
OWN_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}
ADDED_ENVIRONMENT: set[str] = set()


def own_process() -> None:
    """Settings of a process that is elfcost's own (see OWN_ENVIRONMENT); before numpy loads."""
    for name, value in OWN_ENVIRONMENT.items():
        if name not in os.environ:
            os.environ[name] = value
            ADDED_ENVIRONMENT.add(name)


def import_numpy() -> None:
    """numpy imported with OWN_ENVIRONMENT's settings in any process (a scan's caller, before
    it forks its workers): what is not set already is set for the import only, and the
    process's environment is left as it was."""
    added = [name for name in OWN_ENVIRONMENT if name not in os.environ]
    os.environ.update({name: OWN_ENVIRONMENT[name] for name in added})
    try:
        importlib.import_module("numpy")
    finally:
        for name in added:
            del os.environ[name]


# The signals that unwind a command (cli: exit 128 + the signal's number).
INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def interrupts_deferred(*, reraise: bool = True) -> Iterator[list[int]]:
    """SIGINT and SIGTERM recorded while inside (the list yielded; poll it to leave early),
    not acted on: library code that takes several locks in turn (concurrent.futures) is
    never left by an exception from between two of them. On leaving, the first one recorded
    is handed to the handler that was in place (the command line's raises Interrupted), unless
    not `reraise` (already unwinding). In a thread other than the main one (where no Python
    signal handler runs) it does nothing."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    old: dict[int, Callable[[int, Any], Any]] = {}
    for sig in INTERRUPTS:
        handler = signal.getsignal(sig)
        if callable(handler):
            old[sig] = handler
            signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield pending
    finally:
        for number, was in old.items():
            signal.signal(number, was)
        if pending and reraise and pending[0] in old:
            old[pending[0]](pending[0], None)
