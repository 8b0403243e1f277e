"""The library behind the commands, called directly on the sample binaries: the programs found
under directories, what an analysis assumes, check's policy, facts, verdicts and baseline
ratchet, diff of two builds and of two trees, and how measure plans a program and its
environment. Expected values come from the files themselves (section headers, dynamic tags,
what ldd says the loader maps) wherever they can."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from elftools.elf.elffile import ELFFile

from elfcost import diffing
from elfcost.check import run
from elfcost.check.gate import Limits, Policy, PolicyError
from elfcost.documents import DiffDoc, DiffRootsDoc, encode
from elfcost.errors import ElfcostError, InputError
from elfcost.model import Cause, PageCost
from elfcost.pipeline import Scenario, analyse, make_host, programs_in
from elfcost.report.jsonout import estimate_doc
from elfcost.runtime.launch import CLEAN_PATH
from elfcost.runtime.measure import environment, planned_dsos

if TYPE_CHECKING:
    from conftest import Collect

pytestmark = pytest.mark.integration
PAGE = 4096
SHF_WRITE, SHF_ALLOC = 0x1, 0x2


def loaded(path: Path) -> tuple[list[str], list[str]]:
    """What ldd says the loader maps for `path` (real paths, load order, no vDSO), and the
    libraries it cannot find."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    found = re.findall(r"=> (/\S+) \(0x", out) + re.findall(r"^\s+(/\S+) \(0x", out, re.M)
    return [os.path.realpath(f) for f in found], re.findall(r"(\S+) => not found", out)


def dynamic_tags(path: str) -> dict[str, int]:
    with open(path, "rb") as f:
        dyn = ELFFile(f).get_section_by_name(".dynamic")
        return {t.entry.d_tag: t.entry.d_val for t in dyn.iter_tags()} if dyn else {}


def has_textrel(path: str) -> bool:
    tags = dynamic_tags(path)
    return "DT_TEXTREL" in tags or bool(tags.get("DT_FLAGS", 0) & 0x4)  # DF_TEXTREL


def writable_pages(path: Path) -> int:
    """Pages spanned by the sections the program may write (SHF_ALLOC|SHF_WRITE)."""
    pages: set[int] = set()
    with open(path, "rb") as f:
        for s in ELFFile(f).iter_sections():
            flags, addr, size = s["sh_flags"], s["sh_addr"], s["sh_size"]
            if flags & SHF_WRITE and flags & SHF_ALLOC and size:
                pages.update(range(addr // PAGE, (addr + size - 1) // PAGE + 1))
    return len(pages)


def causes_of(page: PageCost) -> set[str]:
    """A page's cause and the others that also write it ("...; also got-header")."""
    return {page.cause.value, *re.findall(r"; also ([\w-]+)", page.detail)}


# -- pipeline ----------------------------------------------------------------------------------


def test_programs_in_finds_programs_in_name_order_and_counts_the_rest(
    samples: Path, tmp_path: Path, each: Collect
) -> None:
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "b").mkdir()
    shutil.copy(samples / "ownlib.pie", tree / "b" / "prog2")
    shutil.copy(samples / "trivial.pie", tree / "a" / "prog1")
    shutil.copy(samples / "libown.so", tree / "a" / "libown.so")
    (tree / "a" / "notes.txt").write_text("not ELF\n")
    (tree / "a" / "link").symlink_to("prog1")
    (tree / "a" / "broken").write_bytes(b"\x7fELF\x02")  # ELF magic, then nothing
    named = tmp_path / "script.sh"
    named.write_text("#!/bin/sh\n")

    found = programs_in([str(tree), str(named)], each=each)
    assert found.programs == (str(tree / "a" / "prog1"), str(tree / "b" / "prog2"), str(named))
    assert (found.skipped, found.libraries) == (2, 1)  # notes.txt and the link; libown.so
    assert [e.path for e in each.errors] == [str(tree / "a" / "broken")]
    with pytest.raises(ElfcostError):  # without an `each`, the first bad file stops it
        programs_in([str(tree)])


def test_analyse_what_the_scenario_assumes(samples: Path) -> None:
    host = make_host()
    as_built = analyse(str(samples / "trivial.pie"), host).estimate
    assert as_built.page_size == os.sysconf("SC_PAGE_SIZE")

    big = analyse(str(samples / "trivial.pie"), host, Scenario(page_size=16384)).estimate
    assert big.page_size == 16384
    assert [o.path for o in big.objects] == [o.path for o in as_built.objects]
    assert all(p.vaddr % 16384 == 0 for o in big.objects for p in o.pages if p.vaddr is not None)
    assert big.total.expected % 16384 == 0

    # Linked statically, the program is the one object the kernel maps: no libc, no loader.
    static = analyse(str(samples / "trivial.pie"), host, Scenario(assume="static")).estimate
    assert [o.path for o in static.objects] == [str(samples / "trivial.pie")]
    assert static.loader_path is None

    # many_plt.lazy binds lazily, so the loader writes GOT[1] and GOT[2] (the GOT header) of
    # each object with a PLT; bound now, nobody does.
    lazy = samples / "many_plt.lazy"
    tags = dynamic_tags(str(lazy))
    assert "DT_BIND_NOW" not in tags and not tags.get("DT_FLAGS_1", 0) & 0x1  # DF_1_NOW
    header = Cause.GOT_HEADER.value
    built = analyse(str(lazy), host).estimate
    assert header in causes_of(built.objects[0].pages[0])
    now = analyse(str(lazy), host, Scenario(assume="bind-now")).estimate
    assert not any(header in causes_of(p) for o in now.objects for p in o.pages)


# -- check -------------------------------------------------------------------------------------


def test_facts_of_are_what_the_loader_maps(samples: Path, tmp_path: Path) -> None:
    host = make_host()
    program = samples / "textrel.nopie"
    facts = run.facts_of(analyse(str(program), host), "usr/bin/textrel")
    files, missing = loaded(program)
    assert facts.path == "usr/bin/textrel"
    assert facts.objects == 1 + len(files)  # the program, then what ldd lists
    assert missing == [] and facts.missing == ()
    textrel = [os.path.realpath(t) for t in facts.textrel]
    assert textrel == [f for f in files if has_textrel(f)] != []

    # Alone in a directory, ownlib's own library (found through RUNPATH $ORIGIN) is missing.
    alone = tmp_path / "ownlib.pie"
    shutil.copy(samples / "ownlib.pie", alone)
    analysis = analyse(str(alone), host)
    facts = run.facts_of(analysis, "ownlib")
    assert list(facts.missing) == loaded(alone)[1] == ["libown.so"]
    est = analysis.estimate
    assert (facts.private_dirty, facts.private_dirty_high) == (est.total.expected, est.total.high)
    assert facts.shared_clean == est.shared_clean and facts.textrel == ()


def test_policy_of_a_file_with_flags_over_its_defaults(tmp_path: Path) -> None:
    budget = tmp_path / "policy" / "budget.toml"
    budget.parent.mkdir()
    budget.write_text(
        '[defaults]\nmax_private_dirty = "64K"\nno_textrel = true\n'
        '[[rule]]\nmatch = "usr/bin/big"\nmax_private_dirty = "1M"\n'
        '[baseline]\nfile = "base.json"\n'
    )
    policy = run.policy_of(str(budget), max_private_dirty=None, max_objects=4, no_missing=None)
    assert policy.defaults == Limits(max_private_dirty=65536, no_textrel=True, max_objects=4)
    assert policy.limits_for("usr/bin/big").max_private_dirty == 1 << 20
    assert policy.baseline_file == str(tmp_path / "policy" / "base.json")  # beside the policy
    given = run.policy_of(str(budget), str(tmp_path / "b.json"), max_private_dirty=4096)
    assert given.baseline_file == str(tmp_path / "b.json")
    assert given.defaults.max_private_dirty == 4096 and given.defaults.no_textrel
    assert run.policy_of() == Policy()
    assert run.policy_of(None, None, no_missing=True).defaults == Limits(no_missing=True)
    with pytest.raises(InputError, match="No such file"):
        run.policy_of(str(tmp_path / "none.toml"))
    (tmp_path / "bad.toml").write_text("[defaults]\nmax_objects = 0\n")
    with pytest.raises(PolicyError, match="max_objects"):
        run.policy_of(str(tmp_path / "bad.toml"))


def test_check_each_program_against_the_policy(samples: Path, each: Collect) -> None:
    host = make_host()
    small, big = samples / "trivial.pie", samples / "textrel.nopie"
    cost = {p: analyse(str(p), host).estimate.total.expected for p in (small, big)}
    assert cost[small] < cost[big]
    policy = Policy(defaults=Limits(max_private_dirty=cost[small], no_textrel=True))
    seen: list[tuple[int, int]] = []
    programs = [str(small), str(samples / "missing"), str(big)]
    verdicts = run.check(
        programs, policy, host, each=each, progress=lambda done, n: seen.append((done, n))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]  # every program, the one that failed too
    assert [e.path for e in each.errors] == [str(samples / "missing")]
    ok, over = verdicts
    # Paths as given, matched without their leading '/'.
    assert (ok.path, over.path) == (str(small).lstrip("/"), str(big).lstrip("/"))
    assert not ok.failed and ok.checked == ("max_private_dirty", "no_textrel")
    assert over.failed
    limits = {v.limit: (v.allowed, v.actual) for v in over.violations}
    assert limits == {"max_private_dirty": (cost[small], cost[big]), "no_textrel": (0, 1)}


def test_check_inside_a_root_matches_loader_paths(samples: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(samples / "trivial.static", root / "usr/bin/prog")
    host = make_host(str(root))
    policy = Policy(defaults=Limits(max_objects=1))
    for given in (str(root / "usr/bin/prog"), "usr/bin/prog", "/usr/bin/prog"):
        (verdict,) = run.check([given], policy, host)
        assert verdict.path == "usr/bin/prog" and not verdict.failed


def test_the_baseline_ratchet(samples: Path, tmp_path: Path) -> None:
    host = make_host()
    progs = tmp_path / "bin"
    progs.mkdir()
    for name in ("trivial.pie", "ownlib.pie", "libown.so"):
        shutil.copy(samples / name, progs / name)
    base = tmp_path / "base.json"
    policy = Policy(baseline_file=str(base))
    cost = {
        str(progs / n).lstrip("/"): analyse(str(progs / n), host).estimate.total.expected
        for n in ("ownlib.pie", "trivial.pie")
    }
    assert run.read_baseline(str(base)) == {}  # not yet written: empty

    first = run.run([str(progs)], policy, host, update_baseline=True)
    assert (first.skipped.non_elf, first.skipped.shared_libraries, first.failed) == (0, 1, False)
    assert run.read_baseline(str(base)) == cost  # every program recorded, sorted by path

    trivial, ownlib = sorted(cost)[1], sorted(cost)[0]
    base.write_text(encode({ownlib: cost[ownlib] - PAGE, trivial: cost[trivial] + PAGE}))
    second = run.run([str(progs)], policy, host, update_baseline=True)
    (risen,) = [v for v in second.verdicts if v.failed]
    assert risen.path == ownlib and [v.limit for v in risen.violations] == ["baseline"]
    # A rise is not recorded, a fall is: the baseline only goes down.
    assert run.read_baseline(str(base)) == {ownlib: cost[ownlib] - PAGE, trivial: cost[trivial]}

    run.write_baseline(str(base), {"gone": 1}, second.verdicts)
    assert run.read_baseline(str(base)) == {"gone": 1, **cost}

    base.write_text('{"usr/bin/x": "lots"}')
    seen: list[int] = []
    with pytest.raises(InputError, match=r"base\.json"):  # before any program is looked at
        run.run([str(progs)], policy, host, progress=lambda done, n: seen.append(done))
    assert seen == []


# -- diff --------------------------------------------------------------------------------------


def test_pair_trees_by_path_below_the_tops() -> None:
    pairs = diffing.pair_trees(
        "/old", ["/old/bin/a", "/old/bin/b"], "/new", ["/new/bin/c", "/new/bin/a"]
    )
    assert pairs == [
        ("bin/a", "/old/bin/a", "/new/bin/a"),
        ("bin/b", "/old/bin/b", None),
        ("bin/c", None, "/new/bin/c"),
    ]


def test_diff_builds_per_object_and_cause(samples: Path, tmp_path: Path) -> None:
    host = make_host()
    old, new = samples / "relro_ptr_table.pie", samples / "relro_ptr_table.nopie"
    doc = diffing.diff_builds(str(old), str(new), host, host, instances=129)
    exe = doc.objects[0]
    # In the PIE every page its writable sections span is written (its 4000-pointer table by
    # RELATIVE relocations); without PIE the table is read-only data.
    assert exe.old_expected == writable_pages(old) * PAGE
    assert exe.new_expected == writable_pages(new) * PAGE
    assert exe.delta_pages == writable_pages(new) - writable_pages(old) < 0
    assert exe.causes == {Cause.RELOCATION: exe.delta_pages}
    assert all(o.delta == 0 for o in doc.objects[1:])  # the same libc and loader
    shared = {p: analyse(str(p), host).estimate.shared_clean for p in (old, new)}
    assert doc.fleet.old == 129 * doc.total.old.expected + shared[old]
    assert doc.fleet.delta == doc.fleet.new - doc.fleet.old
    assert doc.total.delta_expected == exe.delta

    # A saved report stands for its binary, at the page size it was made with.
    report = tmp_path / "old.json"
    big = analyse(str(old), host, Scenario(page_size=16384)).estimate
    report.write_text(encode(estimate_doc(big)))
    with pytest.raises(ElfcostError, match="page size 4096 differs"):
        diffing.diff_builds(str(report), str(new), host, host)
    same = diffing.diff_builds(str(report), str(new), host, host, Scenario(page_size=16384))
    assert same.page_size == 16384 and same.old == str(old)


def test_diff_trees_and_diff(samples: Path, tmp_path: Path, each: Collect) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for top, files in (
        (old, {"a": "trivial.pie", "b": "ownlib.pie"}),
        (new, {"a": "trivial.nopie", "c": "textrel.nopie"}),
    ):
        (top / "bin").mkdir(parents=True)
        for name, sample in files.items():
            shutil.copy(samples / sample, top / "bin" / name)
    (new / "bin" / "d").write_bytes(b"\x7fELF\x02")
    host = make_host()
    cost = {
        p: analyse(str(p), host).estimate.total.expected
        for p in (old / "bin/a", old / "bin/b", new / "bin/a", new / "bin/c")
    }
    doc = diffing.diff(str(old), str(new), host, instances=3, each=each)
    assert isinstance(doc, DiffRootsDoc)
    assert [e.path for e in each.errors] == [str(new / "bin/d")]
    rows = {r.path: (r.old_expected, r.new_expected, r.delta) for r in doc.programs}
    a = (cost[old / "bin/a"], cost[new / "bin/a"])
    assert rows == {
        "bin/a": (*a, a[1] - a[0]),
        "bin/b": (cost[old / "bin/b"], 0, -cost[old / "bin/b"]),
        "bin/c": (0, cost[new / "bin/c"], cost[new / "bin/c"]),
    }
    assert [abs(r.delta) for r in doc.programs] == sorted(
        (abs(d) for *_, d in rows.values()), reverse=True
    )
    assert doc.total_delta == sum(d for *_, d in rows.values())
    assert (doc.fleet_delta, doc.instances) == (3 * doc.total_delta, 3)

    pairs = diffing.pair_trees(str(old), [str(old / "bin/a")], str(new), [str(new / "bin/a")])
    assert diffing.diff_trees(pairs, host, host, instances=3).programs == (
        doc.programs[[r.path for r in doc.programs].index("bin/a")],
    )
    # Two files are two builds; NEW may be resolved in a root of its own.
    builds = diffing.diff(str(old / "bin/a"), str(new / "bin/a"), host)
    assert isinstance(builds, DiffDoc) and builds.total.delta_expected == a[1] - a[0]
    rooted = diffing.diff(str(old / "bin/a"), str(new / "bin/a"), host, new_root=str(new))
    assert isinstance(rooted, DiffDoc)
    # Inside NEW's root there is no libc and no loader: the new side is the program alone.
    assert [(o.old_path is not None, o.new_path) for o in rooted.objects] == [
        (True, "/bin/a"),
        (True, None),
        (True, None),
    ]


# -- planning a measurement --------------------------------------------------------------------


def test_environment_of_a_started_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELFCOST_TEST", "mine")
    items = ["A=1", "B=x=y", "ELFCOST_TEST="]
    assert environment(items, clean=True) == {
        "PATH": CLEAN_PATH,
        "A": "1",
        "B": "x=y",
        "ELFCOST_TEST": "",
    }
    inherited = environment(items)
    assert inherited == {**os.environ, "A": "1", "B": "x=y", "ELFCOST_TEST": ""}
    assert environment(["PATH=/x"], clean=True) == {"PATH": "/x"}
    assert environment([]) == dict(os.environ) and environment([]) is not os.environ


def test_planned_dsos_are_what_the_loader_maps(samples: Path, tmp_path: Path) -> None:
    for program in (samples / "trivial.pie", samples / "ownlib.pie"):
        dsos = planned_dsos(str(program))
        assert dsos[0].path == str(program)
        assert [os.path.realpath(d.file) for d in dsos[1:]] == loaded(program)[0]
    # Without a '/', the program is looked up on PATH, as execvp does.
    sleep = shutil.which("sleep")
    assert sleep is not None
    assert planned_dsos("sleep")[0].path == sleep
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    assert planned_dsos(str(script)) == []  # not ELF: measure names what the process maps
    assert planned_dsos(str(tmp_path / "none")) == []
