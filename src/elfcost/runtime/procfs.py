"""Small readers for /proc/PID files, with every OSError turned into a MeasurementError.

`parse_stat` is pure; the readers are the only I/O here. The field numbers of /proc/PID/stat are
those of proc(5) (fs/proc/array.c `do_task_stat`).
"""

from __future__ import annotations

import os

import msgspec

from elfcost.errors import MeasurementError


class ProcStat(msgspec.Struct, frozen=True, kw_only=True):
    """The few fields of /proc/PID/stat that elfcost uses."""

    pid: int
    comm: str  # at most 15 bytes (TASK_COMM_LEN - 1); may hold spaces and parentheses
    state: str  # R, S, D, T (stopped), t (ptrace stop), Z (zombie), X, ...
    ppid: int
    utime_ticks: int  # in clock ticks (sysconf(_SC_CLK_TCK))
    stime_ticks: int
    starttime_ticks: int  # since boot: with the pid, identifies a process across pid reuse
    pgrp: int = 0  # process group
    session: int = 0  # session id (setsid(2) makes a new one)

    @property
    def cpu_ticks(self) -> int:
        return self.utime_ticks + self.stime_ticks


def parse_stat(text: str) -> ProcStat:
    """Parse /proc/PID/stat. comm is found by the last ')', since it may itself contain one."""
    open_paren, close_paren = text.find("("), text.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        raise ValueError(f"not a stat line: {text[:80]!r}")
    rest = text[close_paren + 2 :].split()
    # rest[0] is field 3 (state); proc(5) numbers fields from 1.
    return ProcStat(
        pid=int(text[:open_paren]),
        comm=text[open_paren + 1 : close_paren],
        state=rest[0],
        ppid=int(rest[1]),
        pgrp=int(rest[2]),
        session=int(rest[3]),
        utime_ticks=int(rest[11]),
        stime_ticks=int(rest[12]),
        starttime_ticks=int(rest[19]),
    )


def proc_path(pid: int, name: str) -> str:
    return f"/proc/{pid}/{name}"


def read_bytes(pid: int, name: str) -> bytes:
    path = proc_path(pid, name)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise MeasurementError(path, "reading", exc.strerror or str(exc)) from None


def read_text(pid: int, name: str) -> str:
    return read_bytes(pid, name).decode("utf-8", "surrogateescape")


def read_stat(pid: int) -> ProcStat | None:
    """The stat of `pid`, or None if there is no such process (any more)."""
    try:
        with open(proc_path(pid, "stat"), encoding="utf-8", errors="surrogateescape") as f:
            return parse_stat(f.read())
    except (OSError, ValueError, IndexError):
        return None


def read_schedstat(pid: int) -> tuple[int, int] | None:
    """(nanoseconds on a CPU, time slices run) of the main thread, from /proc/PID/schedstat.

    Far finer than stat's clock ticks: a start-up that takes 2 ms can leave utime + stime at
    0 ticks. None without CONFIG_SCHED_INFO or once the process is gone (fs/proc/base.c
    proc_pid_schedstat).
    """
    try:
        with open(proc_path(pid, "schedstat")) as f:
            run_ns, _wait_ns, slices = f.read().split()[:3]
        return int(run_ns), int(slices)
    except (OSError, ValueError):
        return None


def all_stats() -> list[ProcStat]:
    """Every process visible in /proc (threads are not listed at the top level)."""
    out: list[ProcStat] = []
    try:
        names = os.listdir("/proc")
    except OSError as exc:
        raise MeasurementError("/proc", "listing", exc.strerror or str(exc)) from None
    for name in names:
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                out.append(st)
    return out


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (by PPid), sorted."""
    return sorted(st.pid for st in all_stats() if st.ppid == pid)


def descendants(pid: int) -> list[ProcStat]:
    """Every descendant of `pid`, breadth first (children before grandchildren), by pid."""
    by_parent: dict[int, list[ProcStat]] = {}
    for st in all_stats():
        by_parent.setdefault(st.ppid, []).append(st)
    out: list[ProcStat] = []
    frontier = [pid]
    while frontier:
        level = sorted((c for p in frontier for c in by_parent.get(p, [])), key=lambda s: s.pid)
        out.extend(level)
        frontier = [c.pid for c in level]
    return out


def find_descendant(pid: int, comm: str) -> int | None:
    """The nearest descendant of `pid` whose /proc/PID/comm equals `comm`, or None.

    comm is the kernel's 15-byte task name, so a longer program name is compared truncated.
    """
    want = comm[:15]
    return next((st.pid for st in descendants(pid) if st.comm == want), None)
