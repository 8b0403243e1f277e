"""runtime.validate.validate and runtime.measure.measure called directly, on real processes:
each started program is held, measured, compared and killed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from elfcost.elf.reader import read_dso
from elfcost.elf.symbols import linked_functions
from elfcost.errors import MeasurementError
from elfcost.pipeline import analyse, make_host
from elfcost.runtime.measure import Start, measure
from elfcost.runtime.validate import STOPS, validate

if TYPE_CHECKING:
    from conftest import Collect

pytestmark = pytest.mark.runtime


def test_validate_trivial_is_exact_at_entry(samples: Path) -> None:
    program = str(samples / "trivial.pie")
    host = make_host()
    v = validate(program, [], host)
    est = analyse(program, host).estimate
    assert v.ok and v.static_whatif is None
    assert [c.stop for c in v.comparisons] == list(STOPS) == ["entry", "idle"]
    assert (v.estimate.total, [o.path for o in v.estimate.objects]) == (
        est.total,
        [o.path for o in est.objects],
    )
    entry, idle = v.comparisons
    # Only the kernel, the loader and libc start-up write (sample_binaries/src/trivial.c):
    # every predicted page is written by the entry point, and nothing else is.
    assert [o.path for o in entry.objects] == [o.path for o in est.objects]
    for o, predicted in zip(entry.objects, est.objects, strict=True):
        assert o.exact, o
        assert o.predicted_pages == o.measured_pages
        assert o.predicted_pages == sum(1 for p in predicted.pages if p.phase == "entry")
    assert idle.within_bounds and idle.predicted_expected == est.total.expected
    assert validate(program, [], host, whatif=True).static_whatif is not None


def test_validate_names_what_the_program_writes(samples: Path) -> None:
    # main writes one byte in each of 5 .bss pages (sample_binaries/src/bss_touched.c): dirty
    # at idle, not predicted, and not there yet at the entry point.
    v = validate(str(samples / "bss_touched.pie"), [], make_host(), tolerance=0)
    entry, idle = v.comparisons
    assert entry.objects[0].unpredicted_dirty == ()
    written = idle.objects[0].unpredicted_dirty
    assert len(written) == 5 and all("program write" in p.why for p in written)
    assert len({p.vaddr for p in written}) == 5
    assert v.ok  # inside the predicted [low, high]


def test_validate_does_not_compare_a_program_that_became_another() -> None:
    """`sh -c 'exec sleep 100'`: what is idle is sleep, not the shell estimated. Compared at
    its entry point only, and the idle stop says why; without the exec, idle is compared."""
    host = make_host()
    v = validate("/bin/sh", ["-c", "exec sleep 100"], host)
    assert [c.stop for c in v.comparisons] == ["entry"] and v.comparisons[0].ok
    assert len(v.not_compared) == 1
    assert "(execve)" in v.not_compared[0] and "sleep" in v.not_compared[0], v.not_compared
    kept = validate("/bin/sh", ["-c", "sleep 100; exit 0"], host)
    assert [c.stop for c in kept.comparisons] == ["entry", "idle"] and kept.not_compared == ()


CTOR_LIB = r"""
#include <stdlib.h>
static char pages[4 * 4096];
char *lib_pages(void) { return pages; }
__attribute__((constructor)) static void init(void) {
    char *page = getenv("CTORLIB_PAGE");
    if (page)
        pages[atoi(page) * 4096] = 1;
}
"""
CTOR_MAIN = "#include <unistd.h>\nchar *lib_pages(void);\n"
CTOR_MAIN += "int main(void) { lib_pages(); pause(); return 0; }\n"


def library_and_program(
    tmp_path: Path, name: str, lib_src: str, main_src: str, *flags: str, compiler: str = "gcc"
) -> tuple[Path, Path]:
    """lib`name`.so built from `lib_src` (C, or C++ with compiler="g++", with `flags`), and a
    C program from `main_src` that needs it, found beside it ($ORIGIN)."""
    suffix = ".cc" if compiler == "g++" else ".c"
    (tmp_path / f"lib{suffix}").write_text(lib_src)
    (tmp_path / "main.c").write_text(main_src)
    lib, prog = tmp_path / f"lib{name}.so", tmp_path / "prog"
    build = [compiler, "-O2", "-shared", "-fPIC", *flags, "-o", lib, tmp_path / f"lib{suffix}"]
    subprocess.run(build, check=True)
    link = [f"-L{tmp_path}", f"-l{name}", "-Wl,-rpath,$ORIGIN"]
    subprocess.run(["gcc", "-O2", "-o", prog, tmp_path / "main.c", *link], check=True)
    return lib, prog


@pytest.mark.parametrize(
    "page", ["1", "3", None], ids=["unlisted-page", "possible-page", "nothing-written"]
)
def test_validate_places_a_library_initialisers_page_it_could_not_locate(
    tmp_path: Path, page: str | None
) -> None:
    """A library whose constructor writes one .bss page chosen at run time, or none: the
    disassembly proves no write, so the estimate predicts one page at no address, in place of
    its first possible write. Whichever page is written (the one no longer listed, or one
    listed as a possible write), it is the predicted page: the object is exact, 3 pages each
    way. Nothing written: 3 predicted, 2 written, not exact, and still within tolerance (the
    page is not a certain one)."""
    lib, prog = library_and_program(tmp_path, "ctorlib", CTOR_LIB, CTOR_MAIN)
    start = Start(env=(f"CTORLIB_PAGE={page}",) if page else ())
    v = validate(str(prog), [], make_host(), start)
    predicted = next(o for o in v.estimate.objects if o.path == str(lib))
    assert any(p.vaddr is None and p.phase == "entry" for p in predicted.pages)
    for c in v.comparisons:
        o = next(o for o in c.objects if o.path == str(lib))
        assert o.predicted_pages == 3 and o.measured_pages == (3 if page else 2), (c.stop, o)
        assert o.exact == bool(page) and not o.unpredicted_dirty and not o.predicted_clean
    assert v.ok


EARLY_LIB = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static void bye(void) {}
static pthread_key_t key;
char *lib_x(void) { return 0; }
__attribute__((constructor)) static void init(void) {
#if defined(USE_ATEXIT)
    atexit(bye);
#elif defined(USE_KEY)
    pthread_key_create(&key, 0);
#elif defined(USE_FOPEN)
    FILE *f = fopen("/proc/self/maps", "re");
    if (f) fclose(f);
#else
    void *p = malloc(100);
    free(p);
#endif
}
"""
EARLY_MAIN = "#include <unistd.h>\nchar *lib_x(void);\n"
EARLY_MAIN += "int main(void) { lib_x(); pause(); return 0; }\n"


@pytest.mark.parametrize(
    ("variant", "early"),
    [("USE_ATEXIT", True), ("USE_KEY", True), ("USE_FOPEN", True), ("USE_MALLOC", False)],
)
def test_libc_pages_a_library_initialiser_writes_before_the_entry_point(
    tmp_path: Path, variant: str, early: bool
) -> None:
    """__libc_start_main's exit handler list, the thread keys and the FILE list lock share a
    page of libc's .bss that the profile calibrates as written after the entry point. A
    library whose constructor (run by glibc's _dl_init before the entry point) calls atexit,
    pthread_key_create or fopen writes it first: predicted at the entry point, from the calls
    in the constructor's code; malloc does not, and the page stays after the entry point."""
    _, prog = library_and_program(tmp_path, "early", EARLY_LIB, EARLY_MAIN, f"-D{variant}")
    v = validate(str(prog), [], make_host())
    libc = next(o for o in v.estimate.objects if o.path.endswith("/libc.so.6"))
    moved = [
        p for p in libc.pages if "before the entry point: initialisers of libearly" in p.detail
    ]
    assert bool(moved) == early and all(p.phase == "entry" for p in moved), libc.pages
    entry = v.comparisons[0]
    measured = next(o for o in entry.objects if o.path == libc.path)
    assert measured.exact, measured
    assert v.ok


GUARD_LIB = r"""
__attribute__((aligned(4096))) char guard_page[4096]; /* exported: reached through the GOT */
int lib_x(void) { return 0; }
__attribute__((constructor)) static void init(void) {
    if (!guard_page[0])
        guard_page[0] = 1;
}
"""
GUARD_MAIN = "#include <unistd.h>\nint lib_x(void);\n"
GUARD_MAIN += "int main(void) { lib_x(); pause(); return 0; }\n"


def test_a_guard_set_when_clear_is_a_page_written_at_the_entry_point(tmp_path: Path) -> None:
    """A constructor that sets a variable only when it is clear (a C++ static's guard): the
    store is on one path, but the variable is zero when mapped, so the other path finds it
    written before. Its page is predicted at the entry point, and the kernel agrees."""
    lib, prog = library_and_program(tmp_path, "guard", GUARD_LIB, GUARD_MAIN)
    v = validate(str(prog), [], make_host())
    estimate = next(o for o in v.estimate.objects if o.path == str(lib))
    guarded = [p for p in estimate.pages if "if not set before" in p.detail]
    assert len(guarded) == 1 and guarded[0].phase == "entry", guarded
    for c in v.comparisons:
        o = next(o for o in c.objects if o.path == str(lib))
        assert o.exact and not o.unpredicted_dirty, (c.stop, o)
    assert v.ok


IOS_LIB = '#include <iostream>\nextern "C" int lib_x(void) { return 0; }\n'
IOS_MAIN = "#include <unistd.h>\nint lib_x(void);\nint main(void) { lib_x(); pause(); return 0; }\n"
IOS_PROGRAM = "#include <iostream>\n#include <unistd.h>\nint main() { pause(); return 0; }\n"


@pytest.mark.parametrize("caller", ["library", "program"])
def test_the_standard_streams_are_written_by_the_first_initialiser_that_calls_for_them(
    tmp_path: Path, caller: str
) -> None:
    """A C++ unit that includes <iostream> constructs a static ios_base::Init, whose
    constructor builds cout, cin, cerr, clog and the wide streams in libstdc++ the first time
    it runs. From a library's initialiser, glibc runs it before the entry point; from the
    program's own, after it. libstdc++ is exact either way, at the entry point and idle."""
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler")
    prog = tmp_path / "prog"
    if caller == "library":
        library_and_program(tmp_path, "ios", IOS_LIB, IOS_MAIN, compiler="g++")
    else:
        (tmp_path / "main.cc").write_text(IOS_PROGRAM)
        subprocess.run(["g++", "-O2", "-o", prog, tmp_path / "main.cc"], check=True)
    unit = tmp_path / "libios.so" if caller == "library" else prog
    init = "_ZNSt8ios_base4InitC1Ev"
    if linked_functions(read_dso(str(unit)), (init,), imported=True) != (init,):
        pytest.skip("this compiler's <iostream> does not call ios_base::Init from each unit")
    v = validate(str(prog), [], make_host())
    stdcxx = next(o for o in v.estimate.objects if "/libstdc++.so" in o.path)
    streams = [p for p in stdcxx.pages if "constructed by std::ios_base::Init::Init" in p.detail]
    name = "libios.so" if caller == "library" else "prog"
    assert all(f"the initialisers of {name} call" in p.detail for p in streams), streams
    phase = "entry" if caller == "library" else "idle"
    assert any(p.phase == phase and "cout" in p.detail for p in streams), streams
    for c in v.comparisons:
        o = next(o for o in c.objects if o.path == stdcxx.path)
        assert o.exact, (c.stop, o)
    assert len(v.comparisons) == 2 and v.ok


def test_measure_starts_a_command_with_its_environment() -> None:
    # The shell waits only if it sees the variable and nothing of elfcost's own environment.
    script = 'test "$ELFCOST_T" = 1 && test -z "$HOME" && exec sleep 100'
    start = Start(env=("ELFCOST_T=1",), clean_env=True, settle=0.1)
    (m,) = measure(["/bin/sh", "-c", script], start=start)
    assert m.stop == "idle" and m.total.private_dirty > 0
    # The shell's objects were planned (named as estimate names them) but it became sleep.
    mapped = {o.path.rsplit("/", 1)[-1] for o in m.objects if o.usage.rss}
    assert m.objects[0].path == "/bin/sh" and "sh" not in mapped and "sleep" in mapped
    with pytest.raises(MeasurementError):
        measure(["/bin/sh", "-c", script], start=Start(clean_env=True, settle=0.1))


def test_measure_live_processes_each_on_its_own(each: Collect) -> None:
    live = subprocess.Popen(["/bin/sleep", "100"])
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    try:
        found = measure(pids=[dead.pid, live.pid], each=each)
        assert [m.pid for m in found] == [live.pid]
        assert found[0].objects[0].path == "/usr/bin/sleep"
        assert [e.path for e in each.errors] == [f"/proc/{dead.pid}/smaps"]
    finally:
        live.kill()
        live.wait()
