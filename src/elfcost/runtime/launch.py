"""Start a program, hold it at a chosen point while it is measured, and always reap it.

Stop points (`at=`):

- "exec": right after execve, before a single user instruction (PTRACE_TRACEME makes the kernel
  stop the tracee with SIGTRAP once the new image is in place; ptrace(2) "execve(2) under
  ptrace"). Only the kernel's work is visible: binfmt_elf's mappings, padzero, the stack.
- "entry": at AT_ENTRY, after ld.so (or nothing, for a static program) and before the program's
  own _start. The stop is an x86 hardware execution breakpoint: DR0 = AT_ENTRY, DR7 = 1 (local
  enable, R/W = 00 execute, LEN = 00), written with PTRACE_POKEUSER into struct user's
  u_debugreg (arch/x86/kernel/ptrace.c ptrace_set_debugreg). A software int3 would write the
  text page and COW it, which is exactly what is being measured.
- "idle": untraced until the program's CPU time (utime + stime of /proc/PID/stat, and the
  finer /proc/PID/schedstat) has not advanced for `settle` seconds while it sleeps, or for a
  fixed `delay`; then, with `hold`, PTRACE_SEIZE + PTRACE_INTERRUPT stop its main thread so
  that smaps, smaps_rollup and pagemap agree, and its FS base (the thread pointer: glibc and
  musl put the TCB there) is read for the TLS bucket.

Cleanup is the point of this module: on every way out of the `with` block (normal, exception,
timeout, KeyboardInterrupt, SIGTERM) the process group is sent SIGKILL, a tracee is released
from any ptrace-stop and the child is reaped, so no process or zombie is left. Belt and braces
for a parent that dies without unwinding: the child has PR_SET_PDEATHSIG = SIGKILL, and a tracee
has PTRACE_O_EXITKILL. What the program starts cannot escape either: for the duration this
process is a child subreaper (PR_SET_CHILD_SUBREAPER), so a daemon that leaves the process
group and the session (setsid, a double fork) is reparented here when its parent exits, and
is killed and reaped at close with its process group and session. For the duration, SIGTERM
is turned into SystemExit(143) in the main thread so that the context unwinds (signal
handlers can only be set there; elsewhere it is not).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import FrameType, TracebackType
from typing import Literal

from elfcost.errors import ExitedError, MeasurementError
from elfcost.runtime.auxv import AT_ENTRY, parse_auxv
from elfcost.runtime.procfs import (
    all_stats,
    find_descendant,
    read_bytes,
    read_schedstat,
    read_stat,
)
from elfcost.runtime.records import Stop

At = Literal["exec", "entry", "idle"]

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"

# <sys/ptrace.h>, <linux/ptrace.h>
PTRACE_TRACEME = 0
PTRACE_PEEKUSER = 3
PTRACE_POKEUSER = 6
PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_O_EXITKILL = 0x100000  # the tracee gets SIGKILL if the tracer exits (3.8+)
TRAP_HWBKPT = 4  # si_code of a hardware breakpoint/watchpoint SIGTRAP
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36  # orphaned descendants are reparented to us, not to init (3.4+)
PR_GET_CHILD_SUBREAPER = 37
_WALL = 0x40000000  # waitpid: every kind of child, tracees included (<linux/wait.h>)

# x86_64 struct user (sys/user.h): regs (27 words) ... u_debugreg[8] at offset 848.
X86_64_USER_DEBUGREG = 848
X86_64_NREGS = 27  # struct user_regs_struct
X86_64_RIP = 16
X86_64_FS_BASE = 21  # the thread pointer of an x86_64 process
X86_64_GS_BASE = 22  # of an i386 one: ptrace's getreg reads the base of its %gs TLS descriptor
DR7_L0 = 1  # local enable of DR0; R/W0 = LEN0 = 0: break on execution of the byte at DR0

POLL_FIRST_S = 0.001
POLL_MAX_S = 0.02
STAT_POLL_S = 0.05
IDLE_STATES = ("S", "T")  # interruptible sleep, or stopped by a signal (raise(SIGSTOP) in main)
REAP_GRACE_S = 5.0

_libc: ctypes.CDLL | None = None


def _ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """ptrace(2) through libc; raises OSError(errno) on failure."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        _libc.ptrace.restype = ctypes.c_long
    ctypes.set_errno(0)
    result: int = _libc.ptrace(request, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    err = ctypes.get_errno()
    if result == -1 and err:
        raise OSError(err, os.strerror(err))
    return result


def _prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _get_subreaper() -> bool:
    value = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return bool(value.value)


def _thread_pointer(regs: list[int]) -> int | None:
    """The held thread's TLS_TCB_AT_TP thread pointer: %fs base for x86_64 code, %gs base for
    i386 code (arch/x86/kernel/ptrace.c getreg: x86_fsbase_read_task / x86_gsbase_read_task);
    None before the loader has set one."""
    return regs[X86_64_FS_BASE] or regs[X86_64_GS_BASE] or None


def _getregs(pid: int) -> list[int]:
    regs = (ctypes.c_ulonglong * X86_64_NREGS)()
    _ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    return list(regs)


def _si_code(pid: int) -> int:
    info = (ctypes.c_int * 32)()  # siginfo_t is 128 bytes: si_signo, si_errno, si_code, ...
    _ptrace(PTRACE_GETSIGINFO, pid, 0, ctypes.addressof(info))
    return int(info[2])


def is_x86_64() -> bool:
    return platform.machine() in ("x86_64", "amd64")


def describe_status(status: int) -> str:
    """A waitpid status in words: "exited with status 1", "killed by SIGSEGV"."""
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    if os.WIFSTOPPED(status):
        return f"stopped by {signal.Signals(os.WSTOPSIG(status)).name}"
    return f"wait status {status:#x}"


@contextmanager
def _signals_blocked() -> Iterator[set[int | signal.Signals]]:
    """Hold SIGINT and SIGTERM back during fork and cleanup; they are delivered right after.

    Yields the mask as it was, which a forked child must restore before execve (the mask is
    inherited across both).
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield old
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def resolve_program(name: str, env: Mapping[str, str]) -> str:
    """The file execve would run for argv[0] (searching PATH as execvp does when it has no '/')."""
    if "/" in name:
        found: str | None = name if os.path.isfile(name) else None
    else:
        found = shutil.which(name, path=env.get("PATH", CLEAN_PATH))
    if found is None:
        raise MeasurementError(name, "starting the program", "no such file")
    if not os.access(found, os.X_OK):
        raise MeasurementError(found, "starting the program", "not executable")
    return found


class Launched:
    """A program started for measurement; a context manager that always kills and reaps it.

        with Launched(["/bin/cat"], at="entry") as p:
            m = measure_pid(p.target_pid, dsos, stop=p.stop, thread_pointer=p.thread_pointer)

    `env` replaces the environment (default: only PATH, so no locale files get mapped); stdin
    is a pipe held open (write with `write_stdin`), stdout and stderr go to /dev/null, or
    stdout to `stdout`, a descriptor of the caller's (a pipe, a terminal, a file: libc sizes a
    stream's buffer by what it is).
    `follow` (idle only) measures the nearest descendant whose comm equals it instead of the
    child itself, for launchers and shells. `root`: run it inside that directory (chroot,
    which needs root privileges), `argv[0]` its path there. `timeout` bounds every wait. Raises
    MeasurementError if the program cannot be started, exits too early or never gets there.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        at: At = "idle",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        settle: float = 0.3,
        delay: float | None = None,
        timeout: float = 10.0,
        follow: str | None = None,
        hold: bool = True,
        root: str | None = None,
        stdout: int | None = None,
    ) -> None:
        if not argv:
            raise MeasurementError("", "starting the program", "empty argv")
        if at not in ("exec", "entry", "idle"):
            raise MeasurementError(argv[0], "starting the program", f"unknown stop point {at!r}")
        if follow is not None and at != "idle":
            raise MeasurementError(argv[0], "starting the program", "follow needs at='idle'")
        self.argv = tuple(argv)
        self.at: At = at
        self.env = dict(env) if env is not None else {"PATH": CLEAN_PATH}
        self.cwd = cwd
        self.settle = settle
        self.delay = delay
        self.timeout = timeout
        self.follow = follow
        self.hold = hold
        # Run inside this directory with chroot (root only): argv[0] is then the program's path
        # inside it, and its loader and libraries are the root's.
        self.root = root
        self.stdout = stdout
        self.pid = 0  # the child we forked; 0 until started
        self.target_pid = 0  # the process being measured (the child, or a followed descendant)
        self.entry: int | None = None  # AT_ENTRY
        self.rip: int | None = None  # instruction pointer where the target is held
        self.thread_pointer: int | None = None  # FS base of the held thread
        self.auxv: dict[int, int] = {}
        self.status: int | None = None  # waitpid status once reaped
        self._traced: set[int] = set()
        self._target_start = 0
        self._stdin_w: int | None = None
        self._reaped = False
        self._closing = False
        self._term_pending: int | None = None
        self._old_sigterm: Callable[[int, FrameType | None], object] | int | None = None
        self._sigterm_installed = False
        self._subreaper: bool | None = None  # None: not a subreaper; else whether we were before
        self._children_before: set[int] = set()  # ours before the start: not swept

    @property
    def stop(self) -> Stop:
        return self.at

    # -- context ----------------------------------------------------------------------------

    def __enter__(self) -> Launched:
        self._install_sigterm()
        try:
            self._start()
            if self.at == "idle":
                self._wait_idle()
            else:
                self._wait_exec_stop()
                if self.at == "entry":
                    self._run_to_entry()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write_stdin(self, data: bytes) -> None:
        """Write to the program's stdin pipe (it blocks once the 64 KiB pipe buffer is full)."""
        if self._stdin_w is None:
            raise MeasurementError(self.argv[0], "writing stdin", "stdin is closed")
        try:
            os.write(self._stdin_w, data)
        except OSError as exc:
            raise MeasurementError(
                self.argv[0], "writing stdin", exc.strerror or str(exc)
            ) from None

    def close_stdin(self) -> None:
        if self._stdin_w is not None:
            os.close(self._stdin_w)
            self._stdin_w = None

    # -- SIGTERM ----------------------------------------------------------------------------

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self._closing:
            # Cleanup is under way and must not be cut short; exit once it is done.
            self._term_pending = signum
            return
        raise SystemExit(128 + signum)

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._old_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._sigterm_installed = True

    def _restore_sigterm(self) -> None:
        if self._sigterm_installed:
            old = self._old_sigterm
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)
            self._sigterm_installed = False

    # -- start ------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.root is None:
            program = resolve_program(self.argv[0], self.env)
        elif self.argv[0].startswith("/"):
            program = self.argv[0]  # inside the root: execve finds it, or says why not
        else:
            raise MeasurementError(self.argv[0], "starting the program", "not a path in the root")
        trace = self.at != "idle"
        if self.at == "entry" and not is_x86_64():
            raise MeasurementError(
                program,
                "stopping at AT_ENTRY",
                f"no hardware breakpoint support for {platform.machine()}",
            )
        os.sync()  # a just-written binary's dirty page cache would show as Private_Dirty
        try:
            stdin_r, stdin_w = os.pipe()
            err_r, err_w = os.pipe()  # O_CLOEXEC: EOF here means execve succeeded
        except OSError as exc:
            raise MeasurementError(program, "starting the program", str(exc)) from None
        parent = os.getpid()
        self._become_subreaper()
        with _signals_blocked() as mask:
            try:
                pid = os.fork()
            except OSError as exc:
                for fd in (stdin_r, stdin_w, err_r, err_w):
                    os.close(fd)
                raise MeasurementError(program, "fork", exc.strerror or str(exc)) from None
            if pid == 0:
                self._child(program, parent, mask, stdin_r, err_w, trace)  # never returns
            self.pid = self.target_pid = pid
            if trace:
                self._traced.add(pid)
        os.close(stdin_r)
        os.close(err_w)
        self._stdin_w = stdin_w
        try:
            report = b""
            while chunk := os.read(err_r, 64):
                report += chunk
        finally:
            os.close(err_r)
        if report:
            self._reap()
            code = int(report) if report.isdigit() else errno.EINVAL
            raise MeasurementError(program, "execve", os.strerror(code))

    def _child(
        self,
        program: str,
        parent: int,
        mask: set[int | signal.Signals],
        stdin_r: int,
        err_w: int,
        trace: bool,
    ) -> None:
        """In the forked child: set up and execve, or report errno on err_w. Never returns."""
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            # Python ignores these; an ignored disposition would survive execve.
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.setpgid(0, 0)  # one group: SIGKILL reaches anything it forks
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before PDEATHSIG was armed
                os._exit(126)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(stdin_r, 0)
            os.dup2(devnull if self.stdout is None else self.stdout, 1)
            os.dup2(devnull, 2)
            os.closerange(3, err_w)
            os.closerange(err_w + 1, 1 << 16)
            if self.root is not None:
                os.chroot(self.root)
                os.chdir("/")
            if self.cwd is not None:
                os.chdir(self.cwd)
            if trace:
                _ptrace(PTRACE_TRACEME, 0)
            os.execve(program, list(self.argv), self.env)
        except OSError as exc:
            os.write(err_w, str(exc.errno or errno.EINVAL).encode())
        finally:
            os._exit(127)

    # -- waiting ----------------------------------------------------------------------------

    def _deadline_error(self, what: str) -> MeasurementError:
        return MeasurementError(self.argv[0], what, f"timed out after {self.timeout:g} s")

    def _wait_stop(self, pid: int, what: str) -> int:
        """waitpid for the next stop or exit of a tracee, polling so the timeout holds."""
        deadline = time.monotonic() + self.timeout
        pause = POLL_FIRST_S
        while True:
            try:
                got, status = os.waitpid(pid, os.WNOHANG | _WALL)
            except ChildProcessError:
                raise MeasurementError(self.argv[0], what, "the process is gone") from None
            if got == pid:
                if not os.WIFSTOPPED(status):
                    self._traced.discard(pid)
                    if pid == self.pid:
                        self._reaped, self.status = True, status
                    raise MeasurementError(self.argv[0], what, describe_status(status))
                return status
            if time.monotonic() > deadline:
                raise self._deadline_error(what)
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    def _wait_exec_stop(self) -> None:
        status = self._wait_stop(self.pid, "waiting for the exec stop")
        if os.WSTOPSIG(status) != signal.SIGTRAP:
            raise MeasurementError(self.argv[0], "exec stop", describe_status(status))
        _ptrace(PTRACE_SETOPTIONS, self.pid, 0, PTRACE_O_EXITKILL)
        self.auxv = parse_auxv(read_bytes(self.pid, "auxv"))
        self.entry = self.auxv.get(AT_ENTRY)
        if is_x86_64():
            regs = _getregs(self.pid)
            self.rip, self.thread_pointer = regs[X86_64_RIP], _thread_pointer(regs)

    def _run_to_entry(self) -> None:
        pid, entry = self.pid, self.entry
        if entry is None:
            raise MeasurementError(self.argv[0], "reading auxv", "no AT_ENTRY")
        try:
            _ptrace(PTRACE_POKEUSER, pid, X86_64_USER_DEBUGREG, entry)  # DR0
            _ptrace(PTRACE_POKEUSER, pid, X86_64_USER_DEBUGREG + 7 * 8, DR7_L0)  # DR7
            _ptrace(PTRACE_CONT, pid, 0, 0)
        except OSError as exc:
            raise MeasurementError(
                self.argv[0], "setting DR0/DR7", exc.strerror or str(exc)
            ) from None
        while True:
            status = self._wait_stop(pid, "running to AT_ENTRY")
            sig = os.WSTOPSIG(status)
            if sig == signal.SIGTRAP and _si_code(pid) == TRAP_HWBKPT:
                regs = _getregs(pid)
                if regs[X86_64_RIP] != entry:
                    raise MeasurementError(
                        self.argv[0],
                        "stopping at AT_ENTRY",
                        f"breakpoint stop with RIP {regs[X86_64_RIP]:#x} != AT_ENTRY {entry:#x}",
                    )
                self.rip, self.thread_pointer = regs[X86_64_RIP], _thread_pointer(regs)
                # Disarm: nothing else should trap if the caller resumes it.
                _ptrace(PTRACE_POKEUSER, pid, X86_64_USER_DEBUGREG + 7 * 8, 0)
                return
            # Some other signal reached the tracee first: deliver it and go on.
            _ptrace(PTRACE_CONT, pid, 0, sig)

    def _exited(self, pid: int) -> str | None:
        """If our child has exited, how (without reaping it: the zombie keeps its pgid taken)."""
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return "is gone"
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return f"exited with status {info.si_status}"
        return f"killed by {signal.Signals(info.si_status).name}"

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + self.timeout
        target = self.pid
        if self.follow is not None:
            while (found := find_descendant(self.pid, self.follow)) is None:
                if (how := self._exited(self.pid)) is not None:
                    raise MeasurementError(self.argv[0], f"waiting for {self.follow!r}", how)
                if time.monotonic() > deadline:
                    raise self._deadline_error(f"waiting for a descendant named {self.follow!r}")
                time.sleep(STAT_POLL_S)
            target = found
        first = read_stat(target)
        if first is None:
            raise MeasurementError(self.argv[0], "reading /proc/PID/stat", "the process is gone")
        self.target_pid, self._target_start = target, first.starttime_ticks
        if self.delay is not None:
            end = time.monotonic() + self.delay
            while time.monotonic() < end:
                self._check_alive(target, "before the delay ended")
                time.sleep(min(STAT_POLL_S, max(0.0, end - time.monotonic())))
        else:
            self._wait_settled(target, deadline)
        if self.hold:
            self._seize(target)

    def _wait_settled(self, target: int, deadline: float) -> None:
        """Until the target has used no CPU for `settle` seconds and is asleep or stopped.

        CPU use is the process's utime + stime (clock ticks, every thread) together with its
        main thread's schedstat run time and time-slice count (ns), so that a start-up too
        short to register a tick still counts; a runnable process is never idle, however long
        the scheduler leaves it waiting.
        """
        last: tuple[int, ...] = ()
        since = time.monotonic()
        while True:
            self._check_alive(target, "before it became idle")
            now = time.monotonic()
            st = read_stat(target)
            if st is None or st.starttime_ticks != self._target_start:
                raise MeasurementError(self.argv[0], "waiting for idle", "the process is gone")
            activity = (st.cpu_ticks, *(read_schedstat(target) or ()))
            if activity != last or st.state not in IDLE_STATES:
                last, since = activity, now
            elif now - since >= self.settle:
                return
            if now > deadline:
                raise MeasurementError(
                    self.argv[0], "waiting for idle", f"still using CPU after {self.timeout:g} s"
                )
            time.sleep(STAT_POLL_S)

    def _check_alive(self, target: int, when: str) -> None:
        if (how := self._exited(self.pid)) is not None:
            raise ExitedError(self.argv[0], "running", f"{how} {when}")
        if target != self.pid:
            st = read_stat(target)
            if st is None or st.state in ("Z", "X") or st.starttime_ticks != self._target_start:
                raise ExitedError(self.argv[0], "running", f"{self.follow} exited {when}")

    def _seize(self, pid: int) -> None:
        """Stop an idle process's main thread under ptrace and read its registers."""
        try:
            _ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL)
        except OSError as exc:
            raise MeasurementError(self.argv[0], "PTRACE_SEIZE", exc.strerror or str(exc)) from None
        self._traced.add(pid)
        try:
            _ptrace(PTRACE_INTERRUPT, pid)
        except OSError as exc:
            raise MeasurementError(
                self.argv[0], "PTRACE_INTERRUPT", exc.strerror or str(exc)
            ) from None
        self._wait_stop(pid, "stopping the idle process")  # any ptrace-stop holds it
        if is_x86_64():
            regs = _getregs(pid)
            self.rip, self.thread_pointer = regs[X86_64_RIP], _thread_pointer(regs)

    # -- cleanup ----------------------------------------------------------------------------

    def close(self) -> None:
        """Kill the process group, release any ptrace-stop, reap. Safe to call more than once."""
        self._closing = True
        try:
            with _signals_blocked():
                self._kill_and_reap()
                self.close_stdin()
        finally:
            self._closing = False
            self._restore_sigterm()
        if self._term_pending is not None:
            signum, self._term_pending = self._term_pending, None
            raise SystemExit(128 + signum)

    def _become_subreaper(self) -> None:
        """Whatever the program starts stays ours: a daemon (setsid, a double fork) is
        reparented to this process when its parent exits, not to init, and swept at close."""
        try:
            was = _get_subreaper()
            self._children_before = {s.pid for s in all_stats() if s.ppid == os.getpid()}
            if not was:
                _prctl(PR_SET_CHILD_SUBREAPER, 1)
        except (OSError, MeasurementError):
            return  # no sweep then, only the process group
        self._subreaper = was

    def _sweep(self) -> None:
        """Kill and reap every process the program started that outlived it: those left in its
        process group, and the ones reparented to us (with their process groups and sessions,
        which a daemon makes its own), until none is left."""
        me, deadline = os.getpid(), time.monotonic() + REAP_GRACE_S
        ours = {os.getpgrp(), os.getsid(0), 0}
        while True:
            try:
                stats = all_stats()
            except MeasurementError:
                break
            left = [
                s
                for s in stats
                if s.pid not in self._children_before
                and s.pid != me
                and (s.ppid == me or s.pgrp == self.pid)
            ]
            if not left:
                break
            groups = {s.pgrp for s in left} - ours
            sessions = {s.session for s in left} - ours
            for s in stats:
                if s.pgrp in groups or s.session in sessions:
                    _kill(s.pid, signal.SIGKILL)
            for s in left:
                _kill(s.pid, signal.SIGKILL)
                if s.ppid == me:
                    with suppress(ChildProcessError):
                        os.waitpid(s.pid, os.WNOHANG | _WALL)
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_FIRST_S)

    def _kill_and_reap(self) -> None:
        if self.pid == 0:
            return
        target = self.target_pid
        if target != self.pid and target:
            st = read_stat(target)
            if st is not None and st.starttime_ticks == self._target_start:
                _kill(target, signal.SIGKILL)  # it may have left our process group
            if target in self._traced:
                self._reap_tracee(target)
        if not self._reaped:
            # Our child is a zombie at worst, so its pid (= pgid) cannot have been reused.
            _killpg(self.pid, signal.SIGKILL)
            _kill(self.pid, signal.SIGKILL)
            self._reap()
        if self._subreaper is not None:
            self._sweep()
            if not self._subreaper:
                with suppress(OSError):
                    _prctl(PR_SET_CHILD_SUBREAPER, 0)
            self._subreaper = None

    def _reap_tracee(self, pid: int) -> None:
        """Wait for a killed tracee that is not our child, so its parent can reap it."""
        deadline = time.monotonic() + REAP_GRACE_S
        while pid in self._traced:
            try:
                got, status = os.waitpid(pid, os.WNOHANG | _WALL)
            except ChildProcessError:
                break
            if got == pid and os.WIFSTOPPED(status):
                _cont(pid)
            elif got == pid or time.monotonic() > deadline:
                break
            else:
                time.sleep(POLL_FIRST_S)
        self._traced.discard(pid)

    def _reap(self) -> None:
        """waitpid our child until it is gone; a tracee still in a ptrace-stop is continued."""
        pid = self.pid
        deadline = time.monotonic() + REAP_GRACE_S
        while not self._reaped:
            blocking = time.monotonic() > deadline  # SIGKILL was sent: it cannot take forever
            try:
                got, status = os.waitpid(pid, (0 if blocking else os.WNOHANG) | _WALL)
            except ChildProcessError:
                self._reaped = True
                break
            if got != pid:
                time.sleep(POLL_FIRST_S)
                continue
            if os.WIFSTOPPED(status):
                # A stop reported before SIGKILL landed: the tracee must be let go to die.
                _cont(pid)
                continue
            self._reaped, self.status = True, status
        self._traced.discard(pid)


def _kill(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _killpg(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _cont(pid: int) -> None:
    with suppress(OSError):
        _ptrace(PTRACE_CONT, pid, 0, 0)


def wait_for_descendant(pid: int, comm: str, *, timeout: float = 10.0) -> int:
    """Poll until a descendant of `pid` named `comm` exists; its pid. Raises on timeout."""
    deadline = time.monotonic() + timeout
    while (found := find_descendant(pid, comm)) is None:
        if time.monotonic() > deadline:
            raise MeasurementError(
                f"/proc/{pid}",
                f"waiting for a descendant named {comm!r}",
                f"none after {timeout:g} s",
            )
        time.sleep(STAT_POLL_S)
    return found
