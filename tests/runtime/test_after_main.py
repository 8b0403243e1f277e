"""libc's writes after main, predicted from the functions a program links, against the kernel.

The daemon-shaped samples (opendir_daemon, pipe_print, stdin_read, printf_format, stdio) in
every link mode, idle: the anonymous pages they have beyond `trivial` of the same mode ([heap]
and the other anonymous mappings, where musl's mallocng puts a new group) must be at least the
heap pages the estimate expects and at most those plus the ones it lists as possible. Heap
pages do not move from run to run (no randomisation inside the heap), so the comparison is
exact, not a percentage; only the stack, which the kernel's random gap moves by a page, is left
to the totals of test_estimate_vs_kernel.
"""

from __future__ import annotations

import contextlib
import os
import pty
from pathlib import Path

import pytest
from msgspec.structs import replace

from elfcost.cost import aftermain
from elfcost.cost.aftermain import Linked, triggers
from elfcost.cost.profiles import select
from elfcost.model import Estimate
from elfcost.predict import estimate
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.runtime.launch import Launched
from elfcost.runtime.measure import measure_pid
from elfcost.runtime.records import Measurement

pytestmark = pytest.mark.runtime

SAMPLES = ("opendir_daemon", "pipe_print", "stdin_read", "printf_format", "stdio")
# Anonymous memory outside the stack and TLS: after the entry point the measurement cannot
# tell the loader's mmaps from malloc's, so they are taken together, against trivial's.
ANON = ("heap", "other_anon", "loader_heap")


def run(program: Path) -> tuple[Estimate, Measurement]:
    g = resolve(str(program), Host())
    est = estimate(g)
    with Launched([str(program)], at="idle", env={"PATH": "/usr/bin:/bin"}) as p:
        m = measure_pid(
            p.target_pid, [o.dso for o in g.objects], stop=p.stop, thread_pointer=p.thread_pointer
        )
    return est, m


def anon_pages(m: Measurement) -> int:
    return sum(m.bucket(b).private_dirty + m.bucket(b).swap for b in ANON) // m.page_size


def heap_pages(est: Estimate) -> tuple[int, int]:
    """(expected, expected + possible) heap pages predicted from the functions linked."""
    (heap,) = (i for i in est.process if i.name == "heap")
    idle = sum(1 for p in heap.pages if p.phase == "idle")
    return idle, len(heap.pages)


def test_daemon_samples_heap_pages_are_the_predicted_ones(
    samples: Path, link_modes: tuple[str, ...]
) -> None:
    rows, checked = [], 0
    for mode in link_modes:
        base = samples / f"trivial.{mode}"
        if not base.exists():
            continue
        _, mb = run(base)
        for s in SAMPLES:
            p = samples / f"{s}.{mode}"
            if not p.exists():
                continue
            est, m = run(p)
            expected, possible = heap_pages(est)
            more = anon_pages(m) - anon_pages(mb)
            checked += 1
            if not expected <= more <= possible:
                rows.append(f"{p.name}: measured +{more} pages, predicted {expected}-{possible}")
    assert checked >= 4 * 7  # every sample in at least glibc's seven modes
    assert rows == [], "\n".join(rows)


@pytest.mark.parametrize(
    ("sample", "mode", "pages"),
    [
        ("opendir_daemon", "pie", 2),  # malloc's first page + the page after the 32 KiB buffer
        ("stdin_read", "pie", 2),  # the first page + the page after the 4 KiB stdin buffer
        ("stdin_read", "static", 1),  # the first brk page is the TLS block's already
        ("opendir_daemon", "musl-dyn", 1),  # a new mallocng group
        ("opendir_daemon", "musl-static", 1),  # the first malloc's page
        ("opendir_daemon", "i386", 2),
    ],
)
def test_the_expected_heap_pages_are_written(
    samples: Path, sample: str, mode: str, pages: int
) -> None:
    """Where the estimate expects pages (not only possible ones), it expects exactly the ones
    written: an estimate that under- or over-counts by a page fails."""
    p = samples / f"{sample}.{mode}"
    if not p.exists():
        pytest.skip(f"{p.name} not built (no musl-gcc or gcc -m32)")
    est, m = run(p)
    _, mb = run(samples / f"trivial.{mode}")
    expected, _ = heap_pages(est)
    assert expected == pages
    assert anon_pages(m) - anon_pages(mb) == pages


@pytest.mark.parametrize("kind", ["terminal", "pipe", "file", "devnull"])
@pytest.mark.parametrize(
    ("mode", "family", "link", "pages"),
    [
        # glibc: 1 page on a terminal (its 1 KiB buffer fits in malloc's first page), 2 on the
        # others (4 KiB puts the next chunk header on the second page).
        ("pie", "glibc", "dynamic", {"terminal": 1, "pipe": 2, "file": 2, "devnull": 2}),
        # musl: stdout's buffer is static in libc's .bss, whatever the stream (nothing on the heap)
        ("musl-dyn", "musl", "dynamic", dict.fromkeys(("terminal", "pipe", "file", "devnull"), 0)),
    ],
)
def test_the_output_buffer_by_kind_of_stream(
    samples: Path,
    tmp_path: Path,
    kind: str,
    mode: str,
    family: str,
    link: str,
    pages: dict[str, int],
) -> None:
    """`stdio` prints one line to stdout, connected to a terminal (a pty), a pipe, a file or
    /dev/null. glibc mallocs the buffer at the stream's st_blksize (libio/filedoalloc.c): the
    anonymous pages it adds over `trivial` are what the profile's [after_main.stdio] size for
    that kind gives through the chunk arithmetic (cost/aftermain.py heap_pages)."""
    program = samples / f"stdio.{mode}"
    if not program.exists():
        pytest.skip(f"{program.name} not built")
    am = select(family, link, "x86_64")[0].after_main
    # The output-stream use, as if it were certain and its buffer this kind's (+ chunk header);
    # a libc whose stream buffers are static (size 0) has no such use.
    use = next((u for u in am.uses if u.label == "output stream"), None)
    if use is None:
        assert dict(am.stdio)[kind] == 0
        predicted = 0
    else:
        sized = replace(am, uses=(replace(use, bytes=dict(am.stdio)[kind] + 16, phase="idle"),))
        found = triggers(sized, [Linked(name="stdio", functions=("printf",))])
        predicted = len(aftermain.heap_pages(sized, found, 4096))
    with contextlib.ExitStack() as stack:
        if kind == "terminal":
            controller, fd = pty.openpty()
            stack.callback(os.close, controller)
        elif kind == "pipe":
            r, fd = os.pipe()
            stack.callback(os.close, r)
        elif kind == "file":
            fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
        else:
            fd = os.open(os.devnull, os.O_WRONLY)
        stack.callback(os.close, fd)
        g = resolve(str(program), Host())
        with Launched([str(program)], at="idle", env={"PATH": "/usr/bin:/bin"}, stdout=fd) as p:
            m = measure_pid(
                p.target_pid,
                [o.dso for o in g.objects],
                stop=p.stop,
                thread_pointer=p.thread_pointer,
            )
    _, mb = run(samples / f"trivial.{mode}")
    assert predicted == pages[kind]
    assert anon_pages(m) - anon_pages(mb) == predicted
