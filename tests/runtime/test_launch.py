"""Starting, holding and always reaping programs (live: runs /bin/sleep, /bin/cat, busybox)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from elfcost.errors import MeasurementError
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.runtime.auxv import AT_ENTRY, parse_auxv
from elfcost.runtime.launch import Launched, describe_status, wait_for_descendant
from elfcost.runtime.measure import measure_pid
from elfcost.runtime.procfs import find_descendant, read_stat

pytestmark = pytest.mark.runtime

BUSYBOX = "/bin/busybox"
needs_busybox = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox-static")
x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86 debug registers")


def state(pid: int) -> str | None:
    st = read_stat(pid)
    return None if st is None else st.state


def gone_or_dead(pid: int, timeout: float = 3.0) -> bool:
    """The process no longer runs: gone, or a zombie waiting for an init that may be slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state(pid) in (None, "Z", "X"):
            return True
        time.sleep(0.02)
    return False


@x86_64_only
@pytest.mark.parametrize("argv", [["/bin/sleep", "100"], ["/bin/cat"]])
def test_entry_stop_holds_the_process_at_at_entry(argv: list[str]) -> None:
    with Launched(argv, at="entry") as p:
        auxv = parse_auxv(Path(f"/proc/{p.pid}/auxv").read_bytes())
        assert p.entry == auxv[AT_ENTRY] == p.rip
        assert state(p.pid) == "t"  # a ptrace stop
        assert p.thread_pointer is not None  # ld.so has set up TLS before AT_ENTRY
        pid = p.pid
    assert p.status is not None and os.WIFSIGNALED(p.status)
    assert state(pid) is None


@x86_64_only
def test_an_i386_program_is_held_at_its_entry_with_its_gs_thread_pointer(samples: Path) -> None:
    """A 32-bit process has 4-byte auxv pairs and its thread pointer in %gs, not %fs: both are
    read (before, the 8-byte reading found no AT_ENTRY and the run failed)."""
    program = samples / "tls.i386"
    if not program.exists():
        pytest.skip("no i386 samples (gcc-multilib)")
    with Launched([str(program)], at="entry") as p:
        assert p.entry is not None and p.entry < 1 << 32 and p.rip == p.entry
        assert p.thread_pointer is not None and p.thread_pointer < 1 << 32
        dsos = [o.dso for o in resolve(str(program), Host()).objects]
        m = measure_pid(p.pid, dsos, stop=p.stop, thread_pointer=p.thread_pointer)
    assert m.thread_pointer == p.thread_pointer
    assert len(m.bucket("tls").written_pages) >= 1  # TLS_TCB_AT_TP: the block ends at %gs


@x86_64_only
@needs_busybox
def test_entry_stop_of_a_static_program_is_its_first_instruction() -> None:
    with Launched([BUSYBOX, "sleep", "100"], at="entry") as p:
        assert p.rip == p.entry
        assert p.thread_pointer is None  # nothing has run: no TLS yet


def test_exec_stop_is_before_the_program_s_first_instruction() -> None:
    with Launched(["/bin/sleep", "100"], at="exec") as p:
        assert p.entry is not None and p.rip != p.entry  # in ld.so's _start
        assert state(p.pid) == "t" and p.thread_pointer is None


def test_idle_waits_for_cpu_time_to_settle_then_holds() -> None:
    started = time.monotonic()
    with Launched(["/bin/cat"], at="idle", settle=0.2) as p:
        assert time.monotonic() - started >= 0.2
        assert state(p.pid) == "t"
        assert p.thread_pointer is not None
        p.write_stdin(b"data for a held cat\n")  # the pipe is open; cat just cannot read yet


@needs_busybox
def test_a_program_stopped_by_sigstop_is_idle_and_can_be_held() -> None:
    # The harness pattern of loader-model.md: raise(SIGSTOP) once start-up is done.
    with Launched([BUSYBOX, "sh", "-c", "kill -STOP $$"], at="idle", settle=0.1) as p:
        assert state(p.pid) == "t" and p.thread_pointer is not None


def test_idle_with_a_fixed_delay_and_no_hold() -> None:
    with Launched(["/bin/sleep", "100"], at="idle", delay=0.05, hold=False) as p:
        assert state(p.pid) in ("S", "R")
        assert p.thread_pointer is None


@pytest.mark.parametrize(
    "at", ["exec", "idle"] + (["entry"] if os.uname().machine == "x86_64" else [])
)
def test_an_exception_in_the_context_still_kills_and_reaps(at: str) -> None:
    pid = 0
    with pytest.raises(RuntimeError, match="boom"), Launched(["/bin/sleep", "100"], at=at) as p:  # type: ignore[arg-type]
        pid = p.pid
        raise RuntimeError("boom")
    assert pid and state(pid) is None


def test_keyboard_interrupt_in_the_context_kills_and_reaps() -> None:
    with pytest.raises(KeyboardInterrupt), Launched(["/bin/cat"], at="exec") as p:
        pid = p.pid
        raise KeyboardInterrupt
    assert state(pid) is None


def test_sigterm_to_the_parent_exits_the_context_cleanly() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc, Launched(["/bin/cat"], at="idle", settle=0.1) as p:
        pid = p.pid
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises in here
        pytest.fail("SIGTERM did not interrupt the context")
    assert exc.value.code == 128 + signal.SIGTERM
    assert state(pid) is None
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_program_that_exits_early_is_an_error_and_is_reaped() -> None:
    with (
        pytest.raises(MeasurementError, match="exited with status 1 before it became idle"),
        Launched(["/bin/sleep"], at="idle"),
    ):  # missing operand
        pytest.fail("should not get here")


@x86_64_only
def test_a_program_whose_loader_fails_never_reaches_entry(tmp_path: Path) -> None:
    # A PIE that names a library which does not exist: ld.so exits 127 before AT_ENTRY.
    prog = tmp_path / "needs-missing"
    lib = tmp_path / "libelfcostmissing.so"
    cc = ["gcc", "-x", "c", "-", "-o"]
    r1 = subprocess.run(
        [*cc, str(lib), "-shared", "-fPIC"],
        input=b"int f(void){return 1;}",
        capture_output=True,
        check=False,
    )
    r2 = subprocess.run(
        [*cc, str(prog), f"-L{tmp_path}", "-Wl,--no-as-needed", "-lelfcostmissing"],
        input=b"int main(void){return 0;}",
        capture_output=True,
        check=False,
    )
    if r1.returncode or r2.returncode:
        pytest.skip("no working gcc")
    lib.unlink()
    with (
        pytest.raises(MeasurementError, match="running to AT_ENTRY: exited with status 127"),
        Launched([str(prog)], at="entry"),
    ):
        pytest.fail("should not get here")


def test_a_missing_program_is_an_error() -> None:
    with pytest.raises(MeasurementError, match="no such file"):
        Launched(["/nonexistent/program"]).__enter__()


def test_an_exec_failure_is_reported_with_errno(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01 not a program")
    junk.chmod(0o755)
    with (
        pytest.raises(MeasurementError, match="execve: Exec format error"),
        Launched([str(junk)], at="exec"),
    ):
        pytest.fail("should not get here")


@needs_busybox
def test_a_program_that_never_settles_times_out_and_is_killed() -> None:
    with (
        pytest.raises(MeasurementError, match="still using CPU"),
        Launched([BUSYBOX, "sh", "-c", "while :; do :; done"], at="idle", timeout=0.6),
    ):
        pytest.fail("should not get here")


@needs_busybox
def test_follow_measures_a_descendant_by_name_and_kills_it_too() -> None:
    script = "/bin/sleep 100; :"  # the trailing ':' keeps the shell from exec'ing sleep
    with Launched([BUSYBOX, "sh", "-c", script], at="idle", follow="sleep", settle=0.1) as p:
        assert p.target_pid != p.pid
        st = read_stat(p.target_pid)
        assert st is not None and st.comm == "sleep" and st.ppid == p.pid
        assert state(p.target_pid) == "t"
        assert find_descendant(p.pid, "sleep") == p.target_pid
        assert wait_for_descendant(p.pid, "sleep", timeout=1) == p.target_pid
        target = p.target_pid
    assert gone_or_dead(target)


@needs_busybox
def test_a_descendant_that_left_the_process_group_is_killed_too() -> None:
    script = "setsid /bin/sleep 100 & wait"
    with Launched([BUSYBOX, "sh", "-c", script], at="idle", follow="sleep", settle=0.1) as p:
        target = p.target_pid
        assert os.getpgid(target) != p.pid
    assert gone_or_dead(target)


@pytest.mark.parametrize("at", ["idle", "exec"])
def test_a_parent_killed_outright_takes_its_child_along(at: str) -> None:
    code = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {sys.path!r}
        from elfcost.runtime.launch import Launched
        with Launched(["/bin/sleep", "100"], at={at!r}, settle=0.05) as p:
            print(p.pid, flush=True)
            time.sleep(100)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert state(child) == "t"
        parent.kill()  # SIGKILL: no unwinding; PR_SET_PDEATHSIG / PTRACE_O_EXITKILL act
    finally:
        parent.kill()
        parent.wait()
    assert gone_or_dead(child)


def test_describe_status_words() -> None:
    assert describe_status(1 << 8) == "exited with status 1"
    assert describe_status(signal.SIGKILL) == "killed by SIGKILL"
