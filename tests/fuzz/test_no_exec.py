"""`deps`, `estimate` and `explain` never execute the program, its libraries or its PT_INTERP.

Built here: a program and a library whose constructors each create a marker file, the program
linked with PT_INTERP naming a fake interpreter (a libc-free static program that creates a
third marker). First a positive control shows each marker does appear when the thing runs;
then every command, in every output format, must leave no marker behind. A second run with a
Python audit hook refuses any attempt to start a process or dlopen() the analysed files.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or platform.machine() != "x86_64",
    reason="needs gcc on x86_64 (the fake interpreter makes raw x86_64 system calls)",
)

CTOR = """
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
}
"""
LIB = CTOR + "int marked(void) { return 1; }\n"
PROG = CTOR + "int marked(void);\nint main(void) { return marked() ? 0 : 1; }\n"
# No libc: the kernel hands control to _start of an interpreter, which only makes syscalls.
FAKE_INTERP = """
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c)
                      : "rcx", "r11", "memory");
    return r;
}
void _start(void) {
    sys3(2, (long)MARKER, 0101, 0644);  /* open(MARKER, O_WRONLY|O_CREAT) */
    sys3(60, 0, 0, 0);                  /* exit(0) */
    for (;;) {}
}
"""


def _cc(*args: str) -> None:
    subprocess.run(["gcc", "-O1", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Trap:
    dir: Path
    prog: Path  # PT_INTERP = interp, DT_NEEDED libmark.so, RUNPATH $ORIGIN
    lib: Path
    interp: Path
    markers: dict[str, Path]  # what each writes when it runs: "prog", "lib", "interp"

    def found(self) -> list[str]:
        return sorted(k for k, m in self.markers.items() if m.exists())

    def clear(self) -> None:
        for m in self.markers.values():
            m.unlink(missing_ok=True)


@pytest.fixture
def trap(tmp_path: Path) -> Trap:
    d = tmp_path
    markers = {k: d / f"marker.{k}" for k in ("prog", "lib", "interp")}
    for name, text in (("lib.c", LIB), ("prog.c", PROG), ("interp.c", FAKE_INTERP)):
        (d / name).write_text(text)
    interp = d / "fake-ld.so"
    static = ["-static", "-nostdlib", "-fno-pie", "-no-pie"]
    _cc(f'-DMARKER="{markers["interp"]}"', *static, str(d / "interp.c"), "-o", str(interp))
    lib = d / "libmark.so"
    _cc(
        f'-DMARKER="{markers["lib"]}"',
        "-shared",
        "-fPIC",
        "-Wl,-soname,libmark.so",
        str(d / "lib.c"),
        "-o",
        str(lib),
    )
    prog = d / "prog"
    _cc(
        f'-DMARKER="{markers["prog"]}"',
        "-Wl,--no-as-needed",
        str(d / "prog.c"),
        f"-L{d}",
        "-lmark",
        "-Wl,-rpath,$ORIGIN",
        f"-Wl,--dynamic-linker={interp}",
        "-o",
        str(prog),
    )
    return Trap(d, prog, lib, interp, markers)


def test_markers_appear_when_run(trap: Trap) -> None:
    """Positive control: executing the program runs the fake interpreter; the real loader
    runs both constructors. So a marker is what an execution would leave."""
    subprocess.run([str(trap.prog)], check=True, timeout=30)
    assert trap.found() == ["interp"]
    trap.clear()
    subprocess.run(["/lib64/ld-linux-x86-64.so.2", str(trap.prog)], check=True, timeout=30)
    assert trap.found() == ["lib", "prog"]
    trap.clear()


COMMANDS = (
    ["deps"],
    ["deps", "--format", "json"],
    ["deps", "--format", "dot"],
    ["estimate"],
    ["estimate", "--format", "json"],
    ["estimate", "--assume", "bind-now"],
    ["explain"],
    ["explain", "--object", "libmark.so"],
)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_commands_never_execute(args: list[str], trap: Trap) -> None:
    """The program, its library and its interpreter each analysed (explain takes one input)."""
    trap.clear()
    targets = [trap.prog] if args[0] == "explain" else [trap.prog, trap.lib, trap.interp]
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", *args, *map(str, targets)],
        capture_output=True,
        text=True,
        errors="backslashreplace",  # names need not be UTF-8
        timeout=120,
        cwd=trap.dir,
    )
    assert trap.found() == [], args
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "libmark.so" in r.stdout  # it did analyse the program
    assert str(trap.interp) in r.stdout or args[0] == "explain"  # and its PT_INTERP


AUDIT = """
import sys
watched = set(sys.argv[1].split(":"))
SPAWN = {"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork",
         "os.forkpty", "pty.spawn", "os.startfile"}

def hook(event, args):
    if event in SPAWN or (event == "ctypes.dlopen" and str(args[0]) in watched):
        sys.stderr.write(f"FORBIDDEN {event} {args!r}\\n")
        sys.stderr.flush()
        import os
        os._exit(99)

sys.addaudithook(hook)
from elfcost.cli import main
for argv in sys.argv[2].split(";"):
    try:
        main(argv.split("\\x1f"))
    except SystemExit:
        pass
print("done")
"""


def test_no_process_is_started(trap: Trap) -> None:
    """In process, with an audit hook: no fork/exec/spawn and no dlopen of what is analysed."""
    argvs = ["\x1f".join([*args, str(trap.prog)]) for args in COMMANDS]
    watched = ":".join(str(p) for p in (trap.prog, trap.lib, trap.interp))
    r = subprocess.run(
        [sys.executable, "-c", AUDIT, watched, ";".join(argvs)],
        capture_output=True,
        text=True,
        errors="backslashreplace",  # names need not be UTF-8
        timeout=300,
        cwd=trap.dir,
    )
    assert "FORBIDDEN" not in r.stderr, r.stderr
    assert r.returncode == 0 and r.stdout.rstrip().endswith("done"), r.stderr[-2000:]
    assert trap.found() == []
