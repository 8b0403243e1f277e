"""elfcost.analysis on small estimate documents built by hand: where the memory goes, the fleet,
what a what-if saves and the scan ranking, to the byte; and the text and HTML reports saying
the same figures, from the same functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from msgspec.structs import replace

from elfcost.analysis import (
    ObjectSaving,
    diff,
    fleet,
    linkage_of,
    machine,
    rank,
    read_weights,
    savings,
    where_it_goes,
)
from elfcost.documents import (
    DiffFleet,
    EstimateDoc,
    Fleet,
    LibraryCost,
    MachineSkipped,
    PageDoc,
    ProgramCost,
    ScanDoc,
    ScanSummary,
    Split,
    SplitPart,
)
from elfcost.errors import InputError
from elfcost.model import Cause, Phase, Range
from elfcost.report.html import estimate_html, scan_html
from elfcost.report.text import estimate_text
from elfcost.runtime.machine import MachineRead, ProcessSample
from elfcost.runtime.records import Usage, sum_usage

Make = Callable[..., EstimateDoc]

LD = ("/lib64/ld-linux-x86-64.so.2", "ld-linux-x86-64.so.2", "interpreter", 16384)
LIBC = ("/lib/libc.so.6", "libc.so.6", "library", 45056)
PROCESS = {"stack": 12288, "loader_heap": 4096, "tls": 8192, "heap": 0, "threads_and_dlopen": 0}
WHATIF = "what-if, an estimate: linked static with glibc"


@pytest.fixture
def built(make_estimate: Make) -> EstimateDoc:
    """A dynamic program with a library of its own: 104 KiB expected, 16 KiB shared clean."""
    return make_estimate(
        [
            ("/bin/x", None, "executable", 8192),
            ("/lib/libown.so.1", "libown.so.1", "library", 12288),
            LIBC,
            LD,
        ],
        PROCESS,
        shared_clean=4096,
    )


@pytest.fixture
def static(make_estimate: Make) -> EstimateDoc:
    """Its static what-if: one object, no loader heap; 48 KiB expected, 4 KiB shared clean."""
    return make_estimate(
        [("/bin/x", None, "executable", 28672)],
        {"stack": 12288, "tls": 8192, "heap": 0, "threads_and_dlopen": 0},
        shared_clean=4096,
        assumptions=(WHATIF,),
    )


def with_fleet(doc: EstimateDoc, instances: int) -> EstimateDoc:
    """`doc` as `estimate -n instances` writes it."""
    t = doc.total
    return replace(doc, total=replace(t, fleet=fleet(t.private_dirty, t.shared_clean, instances)))


def one_line(text: str) -> str:
    """Report text with its line breaks, wherever the terminal put them, as single spaces."""
    return " ".join(text.split())


# -- where it goes -----------------------------------------------------------------------------


def test_where_it_goes_splits_the_program_from_its_linkage(built: EstimateDoc) -> None:
    assert where_it_goes(built) == Split(
        program=SplitPart(expected=20480, of=("x", "libown.so.1")),
        libc=SplitPart(expected=61440, of=("libc.so.6", "ld-linux-x86-64.so.2")),
        loader=SplitPart(expected=12288, of=("[loader_heap]", "[tls]")),
        process=SplitPart(expected=12288, of=("[stack]", "[heap]", "[threads_and_dlopen]")),
    )
    assert where_it_goes(built).total == built.total.private_dirty.expected == 106496


def test_an_executable_is_the_program_whatever_its_soname(make_estimate: Make) -> None:
    """Running libc.so.6 itself, or a static program: every byte in exactly one part."""
    libc_run = make_estimate([("/lib/libc.so.6", "libc.so.6", "executable", 16384), LD], {})
    split = where_it_goes(libc_run)
    assert (split.program.expected, split.libc.expected) == (16384, 16384)
    assert split.total == libc_run.total.private_dirty.expected
    alone = where_it_goes(make_estimate([("/bin/s", None, "executable", 4096)], {"tls": 4096}))
    assert alone.libc == SplitPart(expected=0, of=())
    assert alone.total == 8192


# -- the fleet ---------------------------------------------------------------------------------


def test_fleet_pays_private_per_instance_and_shared_once() -> None:
    per = Range(at_entry=4096, low=8192, expected=12288, high=40960)
    assert fleet(per, 1000, 3) == Fleet(
        instances=3,
        shared_clean=1000,
        private_dirty=Range(at_entry=12288, low=24576, expected=36864, high=122880),
        total_expected=37864,
    )


def test_diff_counts_the_fleet_the_same_way(built: EstimateDoc, static: EstimateDoc) -> None:
    # 129 × 104 KiB + 16 KiB against 129 × 48 KiB + 4 KiB.
    assert diff(built, static, instances=129).fleet == DiffFleet(
        instances=129, old=13754368, new=6344704, delta=-7409664
    )


def test_text_prints_the_documents_fleet(built: EstimateDoc) -> None:
    text = one_line(estimate_text(with_fleet(built, 3)))
    assert (
        "3 instances: 312 KiB private dirty expected (range 156 KiB .. 624 KiB) + 16 KiB shared "
        "clean once (file-backed text/rodata of every object, if fully resident) = 328 KiB"
    ) in text
    assert "instances:" not in one_line(estimate_text(built))  # one instance: no fleet line


def test_diff_fleet_line_reads_in_mib_past_10_mib(built: EstimateDoc, static: EstimateDoc) -> None:
    from elfcost.report.diffout import diff_text

    text = one_line(diff_text(diff(built, static, instances=129)))
    assert "129 instances: 13.1 MiB -> 6,196 KiB (-7,236 KiB, shared clean counted once)" in text


def test_the_fleet_line_reads_in_mib_past_10_mib(built: EstimateDoc) -> None:
    # 129 × 104 KiB = 13,416 KiB: MiB in the fleet line, KiB in the per-object table.
    text = one_line(estimate_text(with_fleet(built, 129)))
    assert "129 instances: 13.1 MiB private dirty expected (range 6,708 KiB .. 26.2 MiB)" in text
    assert "= 13.1 MiB" in text and "13,416 KiB" not in text
    assert "104 KiB" in text  # the table's total keeps KiB


# -- what-if savings ---------------------------------------------------------------------------


def test_savings_per_instance_for_the_fleet_and_per_object(
    built: EstimateDoc, static: EstimateDoc
) -> None:
    s = savings(built, static, 129)
    assert (s.instances, s.as_built, s.whatif, s.per_instance) == (129, 106496, 49152, 57344)
    assert s.fleet == 13754368 - 6344704 == 7409664
    # Only the executable is in both: the static program's pages include libc's start-up.
    assert s.objects == (
        ObjectSaving(object="(executable)", as_built=8192, whatif=28672, saved=-20480),
    )


def test_savings_pair_objects_as_diff_does(built: EstimateDoc, make_estimate: Make) -> None:
    """The other libc: the program and its library stay, the two loaders pair up, and glibc's
    libc.so.6 has no counterpart (musl's loader is its libc)."""
    musl = make_estimate(
        [
            ("/bin/x", None, "executable", 8192),
            ("/lib/libown.so.1", "libown.so.1", "library", 12288),
            ("/lib/ld-musl-x86_64.so.1", "libc.so", "interpreter", 12288),
        ],
        {"stack": 8192, "tls": 4096},
    )
    s = savings(built, musl, 1)
    assert s.per_instance == s.fleet - 16384 == 106496 - 45056
    assert [(o.object, o.saved) for o in s.objects] == [
        ("(executable)", 0),
        ("libown.so.1", 0),
        ("(interpreter)", 4096),
    ]


SAVINGS = (
    "against the program as built: 104 KiB -> 48 KiB expected, saves 56 KiB per instance; "
    "129 instances: saves 7,236 KiB (shared clean counted once); per object: (executable) "
    "8 KiB -> 28 KiB"
)


def test_text_and_html_say_what_the_whatif_saves(built: EstimateDoc, static: EstimateDoc) -> None:
    text = one_line(estimate_text(with_fleet(static, 129), as_built=built))
    assert SAVINGS in text
    page = estimate_html([built], static_whatif=[static], instances=129)
    assert f"<li>{SAVINGS.replace('->', '-&gt;')}</li>" in page
    assert "saves 56 KiB per instance" in page  # the what-if card
    # Without the program as built, or for an estimate that is no what-if: no such line.
    assert "against the program" not in estimate_text(with_fleet(static, 129))
    assert "against the program" not in estimate_text(built, as_built=built)


def test_text_and_html_say_where_it_goes_alike(built: EstimateDoc) -> None:
    line = (
        "where 104 KiB goes: the program and its own libraries 20 KiB; libc and the dynamic "
        "loader 60 KiB; loader heap and TLS 12 KiB; stack and heap 12 KiB"
    )
    assert line in one_line(estimate_text(built))
    page = estimate_html([built], instances=129)
    assert f'<p class="note">{line}</p>' in page
    assert "<b>libc and the dynamic loader</b> 60 KiB" in page  # the split bar's legend


# -- the scan ranking --------------------------------------------------------------------------


def test_rank_carries_the_split_and_each_librarys_cost(
    built: EstimateDoc, make_estimate: Make
) -> None:
    other = make_estimate(
        [("/bin/y", None, "executable", 4096), (*LIBC[:3], 40960), LD], {"stack": 8192}
    )
    r = rank([("/root/bin/x", "/bin/x", built), ("/root/bin/y", "/bin/y", other)], top=None)
    assert r.programs[0] == ProgramCost(
        path="/root/bin/x",
        private_dirty=106496,
        high=212992,
        objects=4,
        at_entry=53248,
        low=53248,
        shared_clean=16384,
        split=where_it_goes(built),
    )
    assert r.programs[1].split.libc.expected == 40960 + 16384
    libs = {lib.path: lib for lib in r.libraries}
    assert libs["/root/lib/libc.so.6"] == LibraryCost(
        path="/root/lib/libc.so.6",
        soname="libc.so.6",
        private_dirty=86016,
        programs=("/root/bin/x", "/root/bin/y"),
        role="library",
        per_process=45056,  # the most one program pays
    )
    ld = libs["/root/lib64/ld-linux-x86-64.so.2"]
    assert (ld.role, ld.private_dirty, ld.per_process) == ("interpreter", 32768, 16384)
    # The scan page draws that ranking: each program's bar by its split, each library's by
    # the part it belongs to, the per-process figure in its table.
    page = scan_html(ScanDoc(summary=ScanSummary(), ranking=r))
    assert "<title>/root/bin/x: the program and its own libraries 20 KiB</title>" in page
    assert "<title>/root/lib/libc.so.6: libc and the dynamic loader 84 KiB</title>" in page
    assert "<title>/root/lib/libown.so.1: the program and its own libraries 12 KiB" in page
    assert 'data-v="45056"' in page


# -- the machine -------------------------------------------------------------------------------


def _usage(**kw: int) -> Usage:
    return Usage(**kw)


def _page(cause: Cause, phase: Phase = "idle") -> PageDoc:
    return PageDoc(vaddr=None, cause=cause, certain=True, phase=phase, detail="")


def test_machine_groups_programs_objects_and_linkage(make_estimate: Make) -> None:
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    ld = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"

    def sample(pid: int, program: str, libc_use: Usage, own: Usage) -> ProcessSample:
        # ld.so: a page it wrote, and a text page it shares with three other processes
        ld_use = _usage(rss=8192, pss=5120, pss_dirty=4096, shared_clean=4096, private_dirty=4096)
        objects = ((program, own), (ld, ld_use))
        objects += ((libc, libc_use),)
        lines = sum_usage(u for _, u in objects)
        # smaps_rollup's Pss is not truncated per line: a little more than the lines' sum
        return ProcessSample(
            pid=pid,
            program=program,
            exe_id=(8, 1, pid),
            usage=replace(lines, pss=lines.pss + 512),
            lines_usage=lines,
            objects=objects,
            buckets=(),
        )

    lib_a = _usage(rss=40960, pss=12288, pss_dirty=4096, shared_clean=36864, private_dirty=4096)
    lib_b = _usage(rss=61440, pss=20480, pss_dirty=8192, shared_clean=53248, private_dirty=8192)
    own = _usage(rss=16384, pss=16384, private_clean=8192, private_dirty=8192)
    read = MachineRead(
        page_size=4096,
        samples=(
            sample(10, "/bin/a", lib_a, own),
            sample(11, "/bin/a", lib_a, own),
            sample(20, "/bin/b", lib_b, own),
            sample(30, "[kworker]", lib_b, own),
        ),
        vanished=2,
        unreadable=1,
        without_memory=5,
    )
    a = make_estimate(
        [
            ("/bin/a", None, "executable", 8192),
            ("/lib64/ld-linux-x86-64.so.2", "ld-linux-x86-64.so.2", "interpreter", 16384),
            ("/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6", "library", 40960),
        ],
        {"tls": 4096, "loader_heap": 8192, "stack": 8192},
    )
    a = replace(
        a,
        objects=(
            replace(
                a.objects[0],
                pages=(
                    _page(Cause.RELOCATION),
                    _page(Cause.BSS_TAIL),  # the program's own data: not linkage
                    _page(Cause.POSSIBLE_WRITE, "possible"),  # not expected
                ),
            ),
            replace(a.objects[1], pages=(_page(Cause.LOADER_DATA), _page(Cause.RELOCATION))),
            replace(a.objects[2], pages=(_page(Cause.LIBC_STARTUP, "entry"),)),
        ),
    )
    static_a = make_estimate([("/bin/a", None, "executable", 20480)], {"tls": 4096})
    doc = machine(
        read,
        {"/bin/a": a, "/bin/b": static_a},
        {"[kworker]": "no executable file mapped"},
        relinked={"/bin/a": static_a, "/bin/b": static_a},
        assume="static",
    )
    total = sum_usage(s.usage for s in read.samples)
    assert (doc.total.processes, doc.total.pss, doc.total.uss) == (4, total.pss, total.uss)
    assert doc.total.shared == total.pss - total.uss
    assert doc.skipped == MachineSkipped(vanished=2, unreadable=1, without_memory=5)
    rows = {p.program: p for p in doc.programs}
    assert doc.programs[0].program == "/bin/a"  # the largest Pss first
    assert rows["/bin/a"].pids == (10, 11)
    assert rows["/bin/a"].pss == 2 * read.samples[0].usage.pss
    assert rows["/bin/a"].uss == 2 * (own.uss + 4096 + lib_a.uss)
    # 3 linkage pages (2 relocations, loader data) + 1 libc start-up, TLS, loader heap; twice
    assert linkage_of(a) == {
        "relocation": 8192,
        "loader-data": 4096,
        "libc-startup": 4096,
        "loader_heap": 8192,
        "tls": 4096,
    }
    assert rows["/bin/a"].linkage == 2 * 28672
    assert rows["[kworker]"].linkage is None
    assert doc.linkage.not_estimated == {"[kworker]": "no executable file mapped"}
    assert doc.linkage.processes == 3 and doc.linkage.programs == 2
    assert doc.linkage.expected == 2 * 28672 + rows["/bin/b"].linkage
    assert doc.linkage.measured == 2 * (4096 + lib_a.private_dirty)  # /bin/b has no libc
    libs = {lib.path: lib for lib in doc.libraries}
    assert (libs[libc].processes, libs[libc].programs) == (4, 3)
    assert libs[libc].pss == 2 * lib_a.pss + 2 * lib_b.pss
    relink = doc.relink
    assert relink is not None
    ra = {r.program: r for r in relink.programs}["/bin/a"]
    assert ra.saved == 2 * (a.total.private_dirty.expected - 20480 - 4096)
    # its own copy of libc's and ld.so's resident text (the most of one process: 36 + 4 KiB
    # clean), less the Pss of the clean pages its two processes hold now (2 x (8 + 1) KiB)
    assert ra.text == (36864 + 4096) - 2 * (8192 + 1024)
    assert relink.net == relink.saved - relink.text


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("100", "expected INSTANCES PATH"),
        ("² /bin/true", "expected INSTANCES PATH"),  # a digit to str.isdigit, not to int()
        ("-3 /bin/true", "expected INSTANCES PATH"),
        ("99999999999999999999999999 /bin/true", "more than the 1,000,000,000 allowed"),
    ],
)
def test_a_weights_line_that_is_wrong_is_named(tmp_path: Path, line: str, why: str) -> None:
    w = tmp_path / "weights"
    w.write_text(f"# instances program\n7 /bin/sh\n{line}\n")
    with pytest.raises(InputError) as exc:
        read_weights(str(w))
    assert str(exc.value).startswith(f"{w}: line 3: ") and why in str(exc.value)
    w.write_text("# instances program\n7 /bin/sh\n1000000000 /bin/true\n")
    assert read_weights(str(w)) == {"/bin/sh": 7, "/bin/true": 10**9}
