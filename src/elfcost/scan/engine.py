"""Where a scan's files are analysed: worker processes of this machine (LocalPool, `scan -j N`,
the default) or the workers of a Dask cluster (DaskEngine, `scan --scheduler ADDRESS`).

Both take the files the calling process could not answer itself (run.py's _outcomes), in
tasks, and hand back each file's outcome; the caller puts them back in input order. They know
nothing of ELF: Work names the functions that do the analysis and the configuration every
worker needs.

On a cluster, the configuration is sent to every worker once (Client.scatter with broadcast),
each task names it; the results stream back as the tasks finish (distributed.as_completed). A
task whose worker is lost (killed, out of memory, its machine gone) is run again on another
worker by the scheduler: nothing is lost. A task that kills its workers again and again
(distributed.scheduler.allowed-failures, 3 by default) makes its files errors, as a worker
that dies in the local pool does; the scan goes on. A task that fails for another reason
(the workers cannot import elfcost, the scheduler went away) ends the scan with ClusterError.

The workers read the files at the paths this process found them: on a cluster, the inputs,
the root, and the directory archives are unpacked into ($TMPDIR) must be on a file system
every worker mounts at the same path. An archive scanned as one root (`--archive`) is read by
the workers themselves, its packages indexed by tasks of their own (in_order) and its members
read where they are analysed (repo.StoreHost): the archive must be at the same path on every
worker, the temporary directory need not.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import signal
import threading
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import msgspec

import elfcost
from elfcost.errors import ClusterError

if TYPE_CHECKING:
    import distributed

T = TypeVar("T")  # a file to analyse
R = TypeVar("R")  # its outcome
C = TypeVar("C")  # what every worker needs to analyse any file
T_in = TypeVar("T_in", contravariant=True)
R_out = TypeVar("R_out", covariant=True)

# Seconds to reach the scheduler (and to close the connection): an address nothing answers at
# is one line and exit 5 after this long, not distributed's 30 s default.
CONNECT_TIMEOUT = 10.0
# Files per cluster task. A task costs the scheduler and the network ~1-5 ms (bench/archive
# measures it), a program ~10 ms: tasks of ~32 files keep that under 2 % and still give each
# worker several tasks of a few hundred files.
TASK_FILES = 32
# A package is cut into several tasks only when it holds more than this many files to analyse.
PACKAGE_FILES = 4 * TASK_FILES
# Tasks submitted per worker thread ahead of the oldest file still outstanding (see lookahead).
TASKS_AHEAD = 8
# Local pool: chunks a worker process holds at a time (one running, the next ready: a worker
# never waits for this process to send it one); the others wait in its queue here.
IN_FLIGHT = 2
# Seconds a SIGINT or SIGTERM may wait, at most, while the pool waits for its workers (take).
SIGNAL_LATENCY = 0.1
# Local pool: the chunks a worker chooses its next one from (the oldest waiting), and how
# many chunks of age one more library to read (Work.shares) counts as. A library takes ~3 ms
# to read here, as long as a program's estimate; libLLVM ~0.1 s. A chunk is passed over at
# most WINDOW times: while one worker reads libLLVM, the other asks for chunk after chunk,
# passing over every chunk that needs libLLVM, and with a window of 32 took one of them (and
# read libLLVM again) in 3 scans of /usr/bin + /usr/sbin out of 5; with 128, in none of 5.
WINDOW = 128
AFFINITY = WINDOW  # at least WINDOW: choose() relies on it


class Engine(Protocol[T_in, R_out]):
    """Takes files (add) and gives back their outcomes (take), in any order."""

    # How many files the caller may send beyond the oldest one still outstanding: enough to
    # keep every worker busy while that one is analysed.
    lookahead: int
    outstanding: int  # files added and not yet taken

    def add(self, t: T_in) -> None: ...

    def take(self, t: T_in, *, block: bool) -> R_out | None:
        """t's outcome if it has come back (and is taken); with block, wait for it."""
        ...

    def close(self) -> None:
        """Every file was taken: end what was started."""
        ...

    def abort(self) -> None:
        """Interrupted, or the caller stopped early: end what was started now."""
        ...


class Work(msgspec.Struct, Generic[T, R, C], frozen=True, kw_only=True):
    """The analysis, as the engines run it."""

    config: C
    init: Callable[[C], None]  # local pool: the worker process's initializer
    run: Callable[[Sequence[T]], list[R]]  # local pool: a chunk, in an initialized worker
    remote: Callable[[C, Sequence[T]], list[R]]  # cluster: a task, given the config
    died: Callable[[Sequence[T], str], list[R]]  # outcomes of files whose worker died, and why
    advance: Callable[[int], None]  # progress: this many more files answered
    # The package a file belongs to (a cluster task holds whole packages); None: none.
    package: Callable[[T], Hashable | None] = lambda t: None
    # Run on every worker of a cluster once the scan is done (what the workers kept for it,
    # such as an archive's members, removed); None: nothing.
    release: Callable[[], None] | None = None
    # The cluster worker that already holds a file's inputs (the one that indexed its package
    # and kept its members), where its task is best run; None: any.
    place: Callable[[T], str | None] = lambda t: None
    # What a file has in common with others, that a worker reads once and keeps for the next
    # (the libraries a program names): the local pool sends such files to the same worker.
    shares: Callable[[T], frozenset[str]] = lambda t: frozenset()
    # Local pool, when its workers are forked: what this process imports before the first
    # one starts, so that they share it instead of each importing it.
    preload: Callable[[], None] = lambda: None


# -- worker processes of this machine ----------------------------------------------------------


class _Chunk(Generic[T]):
    """Files waiting to be sent to a worker together."""

    def __init__(self, files: list[T], shares: frozenset[str]) -> None:
        self.files, self.shares = files, shares
        self.passed = 0  # times a younger chunk was sent before it


class _Lane(Generic[T, R]):
    """One worker process: the chunks it holds, and what it has read."""

    def __init__(self) -> None:
        self.executor: ProcessPoolExecutor | None = None  # started on first use, and again
        # Sent, not yet finished: the chunk, and the executor it was sent to (one that died
        # and was replaced still fails the chunks it held).
        self.running: dict[Future[list[R]], tuple[list[T], ProcessPoolExecutor]] = {}
        self.known: set[str] = set()  # what the chunks sent to it share (Work.shares)


class LocalPool(Generic[T, R, C]):
    """Worker processes of this machine, each sent chunks of files as it needs them.

    A worker is sent at most IN_FLIGHT chunks at a time; the others wait here, in input
    order. A worker that needs one takes, among the WINDOW oldest, the one that makes it read
    least of what another worker has already read (Work.shares: the libraries its programs
    name, which a worker reads once and keeps): each such thing counts as AFFINITY chunks of
    age; a chunk passed over WINDOW times is taken next. A worker that dies (killed, out of
    memory) loses only the chunks it held, whose files are errors; a new worker takes its
    place and the scan goes on.
    """

    def __init__(self, work: Work[T, R, C], jobs: int, size: int, lookahead: int) -> None:
        self.work, self.size, self.lookahead = work, size, lookahead
        self.lanes: list[_Lane[T, R]] = [_Lane() for _ in range(max(1, jobs))]
        # Chosen once, before any worker starts: each worker's executor runs a thread of its
        # own, which must not make the next worker a spawned one (that thread holds no lock a
        # worker uses: it only waits for the worker's results).
        self.context = mp_context()
        self.batch: list[T] = []
        self.batch_shares: set[str] = set()
        self.waiting: list[_Chunk[T]] = []  # oldest first
        self.done: dict[int, R] = {}  # by id() of the file
        self.completed = 0
        self.outstanding = 0
        self.preloaded = False

    def add(self, t: T) -> None:
        with elfcost.interrupts_deferred():
            self._add(t)

    def _add(self, t: T) -> None:
        self.outstanding += 1
        shares = self.work.shares(t)
        if self.batch and not (shares <= self.batch_shares or self.batch_shares <= shares):
            # Neither needs only what the other does: a chunk of its own, so that a worker
            # that has read one's libraries does not take the other's with them.
            self._close_batch()
        self.batch.append(t)
        self.batch_shares |= shares
        if len(self.batch) >= self.size:
            self._close_batch()
        self._send()

    def take(self, t: T, *, block: bool) -> R | None:
        # concurrent.futures.wait takes each future's lock in turn: SIGINT or SIGTERM
        # unwinding from between two of them would leave a lock held that the executor's
        # thread needs to end (abort() then waited for ever). They are deferred here, and
        # acted on within SIGNAL_LATENCY of their arrival, once out of the pool's calls.
        with elfcost.interrupts_deferred() as interrupted:
            while id(t) not in self.done:
                if interrupted:
                    return None  # (not reached: leaving the block raises)
                if block:
                    self._close_batch()  # t may still be in it
                    self._send()
                    running = [f for w in self.lanes for f in w.running]
                    assert running, "a file was neither sent nor answered"
                    wait(running, timeout=SIGNAL_LATENCY, return_when=FIRST_COMPLETED)
                elif not any(f.done() for w in self.lanes for f in w.running):
                    return None
                self._collect()
            self.outstanding -= 1
            return self.done.pop(id(t))

    def close(self) -> None:
        for w in self.lanes:
            if w.executor is not None:
                w.executor.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Kill the workers and reap them (no chunk is waited for); a SIGINT or SIGTERM
        meanwhile is dropped (elfcost.interrupts_deferred: the scan is being ended already).
        ProcessPoolExecutor has no public way to end a busy worker.

        A worker killed while it writes a result leaves half a message in its executor's
        result pipe, and the executor's thread waits for the rest, for ever: this process
        holds the pipe's write end too (it made the pipe), so no end of file comes, and
        shutdown(wait=True) would wait for that thread. So every worker is killed and reaped
        first (a worker forked later holds the earlier executors' pipes too), then this
        process's write ends are closed: the thread reads the end of the file and stops."""
        with elfcost.interrupts_deferred(reraise=False):
            executors = [w.executor for w in self.lanes if w.executor is not None]
            workers = [
                p for e in executors for p in list((getattr(e, "_processes", None) or {}).values())
            ]
            for p in workers:
                with contextlib.suppress(OSError):
                    p.kill()
            for p in workers:
                p.join()
            for e in executors:
                writer = getattr(getattr(e, "_result_queue", None), "_writer", None)
                if writer is not None:
                    with contextlib.suppress(OSError):
                        writer.close()
            for e in executors:
                e.shutdown(wait=True, cancel_futures=True)
            for w in self.lanes:
                w.executor = None

    def _close_batch(self) -> None:
        if self.batch:
            self.waiting.append(_Chunk(self.batch, frozenset(self.batch_shares)))
            self.batch, self.batch_shares = [], set()

    def _send(self) -> None:
        """Chunks to every worker that holds fewer than IN_FLIGHT (see the class). (Called
        with SIGINT and SIGTERM deferred, by add and take: a submit that forks a worker is
        not left before the pool has recorded it, so abort() knows every worker there is.)"""
        for w in self.lanes:
            while len(w.running) < IN_FLIGHT and self.waiting:
                chunk, shares = self._pick(w)
                w.known |= shares
                executor = self._executor(w)
                try:
                    future = executor.submit(self.work.run, chunk)
                except BrokenProcessPool:  # it died since its last chunk came back
                    self._restart(w, executor)
                    executor = self._executor(w)
                    future = executor.submit(self.work.run, chunk)
                w.running[future] = (chunk, executor)

    def _pick(self, w: _Lane[T, R]) -> tuple[list[T], frozenset[str]]:
        """The chunk worker `w` takes next: the oldest one passed over WINDOW times already,
        else the best of the WINDOW oldest (see the class)."""
        window = self.waiting[:WINDOW]
        # What another worker has read and this one has not: read twice if sent here. (What
        # no worker has read yet, one of them must.)
        elsewhere = set().union(*(o.known for o in self.lanes if o is not w)) - w.known
        best = choose(window, elsewhere)
        for older in window[:best]:
            older.passed += 1
        chosen = self.waiting.pop(best)
        return chosen.files, chosen.shares

    def _executor(self, w: _Lane[T, R]) -> ProcessPoolExecutor:
        if w.executor is None:
            if not self.preloaded and self.context.get_start_method() == "fork":
                self.work.preload()  # before the first worker: not in a scan all cached
                self.preloaded = True
            w.executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=self.context,
                initializer=self.work.init,
                initargs=(self.work.config,),
            )
        return w.executor

    def _restart(self, w: _Lane[T, R], dead: ProcessPoolExecutor) -> None:
        """The worker of `dead` died: the next chunk sent to `w` starts another, unless
        that has happened already, or no worker ever finished a chunk (then they cannot
        start at all, and trying again would not end)."""
        if self.completed == 0:
            raise RuntimeError(_NO_WORKERS)
        dead.shutdown(wait=False, cancel_futures=True)
        if w.executor is dead:
            w.executor = None

    def _collect(self) -> None:
        """Take every finished chunk, and send more."""
        for w in self.lanes:
            for f in [f for f in w.running if f.done()]:
                chunk, executor = w.running.pop(f)
                try:
                    outcomes = f.result()
                    self.completed += 1
                except BrokenProcessPool:
                    outcomes = self.work.died(chunk, "the worker process died")
                    # Its other chunks fail as it did; they are collected as they do.
                    self._restart(w, executor)
                self._finish(chunk, outcomes)
        self._send()

    def _finish(self, chunk: Sequence[T], outcomes: Sequence[R]) -> None:
        self.done.update((id(t), o) for t, o in zip(chunk, outcomes, strict=True))
        self.work.advance(len(chunk))


def choose(window: Sequence[_Chunk[T]], elsewhere: set[str]) -> int:
    """The index in `window` (the oldest waiting chunks, oldest first) of the chunk a worker
    takes next, `elsewhere` being what other workers have read and it has not (LocalPool)."""
    if window[0].passed >= WINDOW:
        return 0
    # A chunk's cost is what it shares with `elsewhere` x AFFINITY, plus its age (its index).
    # The oldest that shares nothing costs its index, less than any other can (AFFINITY is at
    # least the window's length): found without costing the rest, as it mostly is.
    for i, c in enumerate(window):
        if c.shares.isdisjoint(elsewhere):
            return i
    return min(range(len(window)), key=lambda i: len(window[i].shares & elsewhere) * AFFINITY + i)


def mp_context() -> multiprocessing.context.BaseContext:
    """fork while this process runs no other thread: workers start at once, share its pages,
    and nothing outlives the scan. With threads (a progress bar's), spawn: a forked worker would
    inherit any lock they hold, such as stdout's, which it flushes when it exits. (forkserver,
    like spawn's resource tracker, leaves a helper process behind as a child of the caller.)"""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


_NO_WORKERS = (
    "elfcost scan: the worker processes died before finishing any work. A script that runs a "
    "scan must do so under `if __name__ == '__main__':` (workers import the main module)."
)


# -- a Dask cluster ----------------------------------------------------------------------------


def connect(address: str, cleanup: contextlib.ExitStack) -> distributed.Client:
    """A client of the scheduler at `address`, closed by `cleanup`; ClusterError if it cannot
    be reached within CONNECT_TIMEOUT seconds or dask.distributed is not installed."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            address,
            "connecting",
            "dask.distributed is not installed: pip install 'elfcost[distributed]'",
        ) from None
    cleanup.enter_context(_quiet())
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:  # TimeoutError is an OSError
        why = str(exc) or type(exc).__name__
        raise ClusterError(address, "connecting to the Dask scheduler", why) from None
    cleanup.callback(_close, client)
    return client


def _close(client: distributed.Client) -> None:
    with _signals_held():
        client.close(timeout=CONNECT_TIMEOUT)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """distributed's client logs a warning for what the scan reports itself, or expects (a
    worker lost, the connection closed as the scan ends): elfcost's stderr is its own lines."""
    # Each of its modules' loggers, as distributed's logging configuration gives some their
    # own level (distributed.client's would still print "Failed to reconnect").
    names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    loggers = [logging.getLogger(n) for n in ("distributed", *names)]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while the cluster's futures are cancelled and the connection
    closed: a second Ctrl-C must not leave tasks running on the cluster. The first signal
    already decided the exit status. (Masking them would not do: the client's event loop
    thread would take the signal and Python would run the handler anyway.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def in_order(
    client: distributed.Client,
    function: Callable[..., R],
    items: Sequence[tuple[object, ...]],
    died: Callable[[tuple[object, ...], str], R],
    what: str,
) -> Iterator[R]:
    """function(*item) for each of `items`, one task each on the cluster (all submitted at
    once), the results in item order as they come. A task whose workers die again and again
    gives died(item, why); a task that fails otherwise, or a scheduler lost, ClusterError.
    Interrupted, the tasks not yet taken are cancelled."""
    import asyncio

    import distributed

    address: str = client.scheduler.address
    run = uuid.uuid4().hex
    futures = collections.deque(
        client.submit(function, *item, key=f"elfcost-{what}-{run}-{i}", pure=False)
        for i, item in enumerate(items)
    )
    try:
        for item in items:
            future = futures.popleft()
            try:
                exc = future.exception()
                result = future.result() if exc is None else None
            except (Exception, asyncio.CancelledError) as lost:
                why = f"{type(lost).__name__}: {lost} (the scheduler was lost, or restarted)"
                raise ClusterError(address, f"waiting for a {what} task", why) from None
            if exc is None:
                yield result  # type: ignore[misc]  # a finished task's result is an R
            elif isinstance(exc, distributed.KilledWorker):
                yield died(
                    item, f"the workers that ran its task died, {exc.allowed_failures + 1} times"
                )
            else:
                raise ClusterError(
                    address,
                    f"running a {what} task on the cluster",
                    f"{type(exc).__name__}: {exc} "
                    "(can the scheduler and the workers import elfcost?)",
                )
    except BaseException:
        with _signals_held():
            if futures:
                with contextlib.suppress(Exception):  # the scheduler may be gone
                    client.cancel(list(futures), force=True)
        raise


class DaskEngine(Generic[T, R, C]):
    """Tasks of whole packages (or TASK_FILES files) on the cluster `client` is connected to."""

    def __init__(self, client: distributed.Client, work: Work[T, R, C]) -> None:
        import distributed

        self.client, self.work = client, work
        self.address: str = client.scheduler.address
        self.scan_id = uuid.uuid4().hex
        self.shared: distributed.Future | None = None  # the config, on every worker
        # Futures only: their results are gathered here, a batch at a time (as_completed's
        # own gathering, with_results, waits forever for a result whose worker is gone).
        self.completed = distributed.as_completed(loop=client.loop)
        self.batch: list[T] = []
        self.pending: dict[str, tuple[distributed.Future, list[T]]] = {}  # by task key
        self.done: dict[int, R] = {}  # by id() of the file
        self.tasks = 0
        self.outstanding = 0
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        self.lookahead = max(1, threads) * TASKS_AHEAD * TASK_FILES

    def add(self, t: T) -> None:
        with elfcost.interrupts_deferred():
            self._add(t)

    def _add(self, t: T) -> None:
        self.outstanding += 1
        if self.batch:
            package = self.work.package(t)
            last = self.work.package(self.batch[-1])
            if len(self.batch) >= (
                PACKAGE_FILES if package is not None and package == last else TASK_FILES
            ):
                self._flush()
        self.batch.append(t)

    def take(self, t: T, *, block: bool) -> R | None:
        while id(t) not in self.done:
            if block:
                self._flush()  # t may still be in the batch
                assert self.pending, "a file was neither sent nor answered"
            elif not self.completed.has_ready():
                return None
            self._finish(self.completed.next_batch(block=block))
        self.outstanding -= 1
        return self.done.pop(id(t))

    def close(self) -> None:
        # Every task was taken; the connection is closed with the scan (connect).
        if self.work.release is not None and self.shared is not None:
            with contextlib.suppress(Exception):  # best effort: a worker removes it at exit
                self.client.run(self.work.release)

    def abort(self) -> None:
        """Cancel the tasks not yet taken (those running are stopped by the workers)."""
        with _signals_held():
            futures = [f for f, _ in self.pending.values()]
            self.pending.clear()
            if futures:
                with contextlib.suppress(Exception):  # the scheduler may be gone: nothing to do
                    self.client.cancel(futures, force=True)

    def _flush(self) -> None:
        if not self.batch:
            return
        chunk, self.batch = self.batch, []
        if self.shared is None:
            # Sent once to every worker, not with each task; hash=False: a key of its own,
            # so a worker's state from another scan with the same config is not reused.
            self.shared = self.client.scatter(self.work.config, broadcast=True, hash=False)
        key = f"elfcost-scan-{self.scan_id}-{self.tasks}"
        self.tasks += 1
        # Where the package's members already are, if that worker is still there; another
        # worker reads them again from the archive (allow_other_workers: a hint, not a rule).
        where = self.work.place(chunk[0])
        # pure=False with a key of our own: dask would otherwise hash the files to name the task.
        placed = {"workers": [where], "allow_other_workers": True} if where else {}
        future = self.client.submit(
            self.work.remote, self.shared, chunk, key=key, pure=False, **placed
        )
        self.pending[key] = (future, chunk)
        self.completed.add(future)

    def _finish(self, futures: Sequence[distributed.Future]) -> None:
        """Take the outcomes of these finished tasks: their results in one gather."""
        import distributed

        finished: list[tuple[distributed.Future, list[T]]] = []
        for future in futures:
            held = self.pending.pop(future.key, None)
            if held is None:
                continue  # cancelled by abort
            chunk = held[1]
            if future.status == "finished":
                finished.append((future, chunk))
                continue
            exc = future.exception() if future.status == "error" else None
            if isinstance(exc, distributed.KilledWorker):
                why = f"the workers that ran its task died, {exc.allowed_failures + 1} times"
                self._done(chunk, self.work.died(chunk, why))
            elif exc is not None:
                raise ClusterError(
                    self.address,
                    "running a scan task on the cluster",
                    f"{type(exc).__name__}: {exc} "
                    "(can the scheduler and the workers import elfcost?)",
                )
            else:
                raise ClusterError(
                    self.address,
                    "waiting for a scan task",
                    f"the task was {future.status} (the scheduler was lost, or restarted)",
                )
        if not finished:
            return
        try:
            results = self.client.gather([f for f, _ in finished])
        except Exception as exc:  # the cluster went away while the results came back
            why = f"{type(exc).__name__}: {exc}"
            raise ClusterError(self.address, "gathering the results of scan tasks", why) from None
        for (_, chunk), outcomes in zip(finished, results, strict=True):
            self._done(chunk, outcomes)

    def _done(self, chunk: Sequence[T], outcomes: Sequence[R]) -> None:
        self.done.update((id(t), o) for t, o in zip(chunk, outcomes, strict=True))
        self.work.advance(len(chunk))
