"""Measurements of real processes checked against the kernel by independent means (live)."""

from __future__ import annotations

import functools
import json
import os
import re
import struct
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import jsonschema
import pytest

from elfcost.documents import encode
from elfcost.elf.reader import read_dso
from elfcost.errors import InputError
from elfcost.model import ET_EXEC, Dso
from elfcost.runtime import measure as measure_module
from elfcost.runtime.attribute import group
from elfcost.runtime.launch import Launched
from elfcost.runtime.measure import (
    CAPTURE_SCRIPT,
    discover_dsos,
    measure_capture,
    measure_launched,
    measure_pid,
    smaps_ids,
    to_json,
)
from elfcost.runtime.records import ZERO_USAGE, Measurement
from elfcost.runtime.smaps import parse_rollup

pytestmark = pytest.mark.runtime

BUSYBOX = "/bin/busybox"
PROGRAMS = [["/bin/sleep", "100"], ["/bin/cat"]] + (
    [[BUSYBOX, "sleep", "100"]] if os.path.exists(BUSYBOX) else []
)
STOPS = ["entry", "idle"] if os.uname().machine == "x86_64" else ["idle"]
SCHEMA = Path(__file__).resolve().parents[2] / "src/elfcost/report/schema/measurement-1.json"
_LIST_LINE = re.compile(r"\s*\S+ => (/\S+) \(0x[0-9a-f]+\)")


@functools.cache
def dsos_for(program: str) -> tuple[Dso, ...]:
    """The executable, its interpreter and the libraries ld.so --list names (load order)."""
    exe = read_dso(program)
    if exe.interp is None:
        return (exe,)
    listing = subprocess.run(
        [exe.interp, "--list", program], capture_output=True, text=True, check=True
    ).stdout
    libs = [m[1] for line in listing.splitlines() if (m := _LIST_LINE.match(line))]
    return (exe, read_dso(exe.interp), *(read_dso(p) for p in libs))


def maps_lines(pid: int) -> list[tuple[int, int, int, int, int, int]]:
    """(start, end, offset, major, minor, inode) of each line of /proc/PID/maps."""
    out = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        rng, _perms, off, dev, inode = line.split()[:5]
        start, end = (int(x, 16) for x in rng.split("-"))
        major, minor = (int(x, 16) for x in dev.split(":"))
        out.append((start, end, int(off, 16), major, minor, int(inode)))
    return out


def written_in(pid: int, start: int, end: int, page: int) -> list[int]:
    """Pages of [start, end) with pagemap present && !file && exclusive, read here directly."""
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // page * 8)
        data = f.read((end - start) // page * 8)
    out = []
    for i, (v,) in enumerate(struct.iter_unpack("<Q", data)):
        if v >> 63 & 1 and not v >> 61 & 1 and v >> 56 & 1:
            out.append(start + i * page)
    return out


def independent_written_pages(pid: int, dso: Dso, page: int) -> list[int]:
    """Link-time addresses of the written pages in `dso`'s span, without elfcost's attribution.

    The lowest line of the file maps its first PT_LOAD (offset 0) at base + p_vaddr (rounded
    down), or at p_vaddr for ET_EXEC.
    """
    fid = (os.major(dso.file_id.dev), os.minor(dso.file_id.dev), dso.file_id.ino)
    lines = [ln for ln in maps_lines(pid) if (ln[3], ln[4], ln[5]) == fid]
    lo, hi = dso.span
    first = min(dso.loads, key=lambda s: s.vaddr)
    base = 0 if dso.e_type == ET_EXEC else min(ln[0] for ln in lines) - (first.vaddr // page * page)
    start, end = base + lo // page * page, base + -(-hi // page) * page
    return [a - base for a in written_in(pid, start, end, page)]


def _steady(rollup: Mapping[str, int]) -> dict[str, int]:
    """What of smaps_rollup no other process moves (see check)."""
    out = {k: v for k, v in rollup.items() if "Pss" not in k and not k.endswith("_Clean")}
    out["Clean"] = rollup.get("Shared_Clean", 0) + rollup.get("Private_Clean", 0)
    return out


def check(m: Measurement, pid: int, dsos: Sequence[Dso]) -> None:
    """The invariants every live measurement must satisfy."""
    page = m.page_size
    # (b) each object's written pages == an independent count over its address range
    for dso, o in zip(dsos, m.objects, strict=True):
        if o.load_base is None:  # not mapped (yet)
            continue
        assert list(o.written_pages) == independent_written_pages(pid, dso, page), o.path
        # after sync, an object's private dirty memory is exactly the pages it wrote
        assert o.private_dirty == len(o.written_pages) * page, o.path
    # (c) every line attributed once; totals equal smaps_rollup
    total = ZERO_USAGE
    for usage in [o.usage for o in m.objects] + [b.usage for b in m.buckets]:
        total = total + usage
    assert total == m.total
    rollup = parse_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
    # Pss moves with every other process that maps the same files, and so does whether a
    # clean page of a file counts as shared or private (the kernel asks how many processes
    # map it: another program started meanwhile makes it shared); their sum, and the rest,
    # may not move.
    assert _steady(m.rollup) == _steady(rollup)
    rollup = dict(m.rollup)  # read by measure_pid back to back with smaps
    for name, attr in [
        ("Rss", "rss"),
        ("Private_Dirty", "private_dirty"),
        ("Private_Clean", "private_clean"),
        ("Swap", "swap"),
        ("Shared_Clean", "shared_clean"),
        ("Anonymous", "anonymous"),
    ]:
        assert getattr(m.total, attr) == rollup[name], name
    assert 0 <= rollup["Pss"] - m.total.pss < len(m.entries) * 1024
    assert not [w for w in m.warnings if "smaps_rollup" in w or "dirty page cache" in w]
    # vdso/vvar are never dirty
    assert m.bucket("vdso").private_dirty == 0


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("argv", PROGRAMS, ids=lambda a: " ".join(a))
def test_live_measurement_matches_pagemap_and_rollup(argv: list[str], stop: str) -> None:
    dsos = dsos_for(argv[0])
    with Launched(argv, at=stop, settle=0.15) as p:  # type: ignore[arg-type]
        m = measure_launched(p, dsos)
        check(m, p.pid, dsos)
        assert m.stop == stop and m.pid == p.pid
        assert all(o.load_base is not None for o in m.objects)
        if stop == "entry":
            # (a) the hardware breakpoint left every text page clean
            assert p.rip == p.entry
            text = [e for e in m.entries if "x" in e.perms]
            assert text and all(e.private_dirty == 0 for e in text)
        exe = m.objects[0]
        assert exe.written_pages, "the executable's .data/.bss tail is always written"
        jsonschema.validate(json.loads(encode(to_json(m))), json.loads(SCHEMA.read_text()))


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86 debug registers")
def test_at_entry_the_thread_pointer_block_is_the_tls_bucket() -> None:
    dsos = dsos_for("/bin/sleep")
    with Launched(["/bin/sleep", "100"], at="entry") as p:
        m = measure_launched(p, dsos)
    tls = m.bucket("tls")
    assert m.thread_pointer is not None and tls.private_dirty > 0
    assert any(s.start <= m.thread_pointer < s.end for s in tls.lines)
    assert m.bucket("heap").rss == 0  # nobody has called malloc yet
    assert m.bucket("loader_heap").private_dirty > 0  # ld.so's minimal malloc


def test_exec_stop_shows_only_the_kernel_s_work() -> None:
    dsos = dsos_for("/bin/sleep")
    with Launched(["/bin/sleep", "100"], at="exec") as p:
        m = measure_launched(p, dsos)
        check(m, p.pid, dsos)
    exe, ldso, libc = m.objects
    assert libc.load_base is None and "not mapped" in " ".join(m.warnings)
    # binfmt_elf padzero: the partial page after p_filesz of the exe and of ld.so
    assert len(exe.written_pages) == 1 and len(ldso.written_pages) == 1
    assert m.bucket("loader_heap").rss == 0 and m.bucket("heap").rss == 0


def test_discover_dsos_finds_the_executable_first_then_the_libraries() -> None:
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        found = discover_dsos(p.pid)
    real = {os.path.realpath(d.file) for d in dsos_for("/bin/sleep")}
    assert found[0].path == os.path.realpath("/bin/sleep")
    assert {d.path for d in found} == real


def test_discover_dsos_skips_files_by_device_and_inode() -> None:
    libc = next(d for d in dsos_for("/bin/sleep") if "libc.so" in d.path)
    ((major, minor, ino),) = smaps_ids([libc])
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        skipped = {d.path for d in discover_dsos(p.pid, skip=smaps_ids([libc]))}
        # the same inode number on another device is another file: not skipped
        other = {d.path for d in discover_dsos(p.pid, skip=frozenset({(major + 1, minor, ino)}))}
    assert os.path.realpath(libc.file) not in skipped
    assert os.path.realpath(libc.file) in other and len(other) == len(skipped) + 1


def test_measure_pid_of_a_snapshot_without_ptrace() -> None:
    dsos = dsos_for("/bin/cat")
    with Launched(["/bin/cat"], at="idle", settle=0.1, hold=False) as p:
        m = measure_pid(p.pid, dsos)
    assert m.stop == "snapshot" and m.thread_pointer is None
    assert "thread pointer not read" in " ".join(m.warnings)
    assert sum(o.private_dirty for o in m.objects) > 0


@pytest.mark.parametrize("shell", ["/bin/sh", BUSYBOX])
def test_capture_script_round_trip(shell: str, tmp_path: Path) -> None:
    if not os.path.exists(shell):
        pytest.skip(f"no {shell}")
    argv = (
        [shell, "sh", "-c", CAPTURE_SCRIPT] if shell == BUSYBOX else [shell, "-c", CAPTURE_SCRIPT]
    )
    dsos = dsos_for("/bin/sleep")
    cap = tmp_path / "cap"
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        live = measure_launched(p, dsos)
        env = {
            "P": str(p.pid),
            "PAGE": str(os.sysconf("SC_PAGE_SIZE")),
            "D": str(cap),
            "PATH": "/usr/bin:/bin",
        }
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{cap}.tgz"
    with tarfile.open(f"{cap}.tgz") as tar:
        names = set(tar.getnames())
    assert {"./smaps", "./smaps_rollup", "./maps", "./auxv", "./pid"} <= names
    for source in (f"{cap}.tgz", str(cap)):
        m = measure_capture(source, dsos)
        assert m.pid == live.pid and m.page_size == live.page_size and m.has_pagemap
        # Clean file pages turn shared and their Pss moves whenever anything else maps the
        # same file (the capture's own cat and dd map libc); dirty anonymous pages do not.
        for o, lo in zip(m.objects, live.objects, strict=True):
            assert (o.private_dirty, o.rss) == (lo.private_dirty, lo.rss)
            assert o.written_pages == lo.written_pages and o.load_base == lo.load_base
        assert m.total.private_dirty == live.total.private_dirty and m.total.rss == live.total.rss


def test_capture_command_in_the_docstring_is_the_tested_one() -> None:
    doc = measure_module.__doc__ or ""
    for line in CAPTURE_SCRIPT.splitlines():
        assert line in doc


def test_capture_with_only_smaps(tmp_path: Path) -> None:
    dsos = dsos_for("/bin/sleep")
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        (tmp_path / "smaps").write_bytes(Path(f"/proc/{p.pid}/smaps").read_bytes())
        live = measure_launched(p, dsos)
    m = measure_capture(str(tmp_path), dsos)
    assert not m.has_pagemap and m.pid == 0 and m.page_size == live.page_size
    assert [o.private_dirty for o in m.objects] == [o.private_dirty for o in live.objects]
    assert all(o.written_pages == () for o in m.objects)


def test_a_capture_without_a_mapping_is_refused(tmp_path: Path) -> None:
    """An empty smaps (every process maps its stack and the vDSO): one error naming it."""
    (tmp_path / "smaps").write_bytes(b"")
    with pytest.raises(InputError, match="smaps: reading the capture: no mapping in it"):
        measure_capture(str(tmp_path), dsos_for("/bin/sleep"))


def test_several_instances_group_like_ps_mem() -> None:
    dsos = dsos_for("/bin/sleep")
    with (
        Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as a,
        Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as b,
    ):
        ms = [measure_launched(a, dsos, sync=False), measure_launched(b, dsos, sync=False)]
    g = group("sleep", ms)
    assert g.instances == 2
    assert g.total.uss == sum(m.total.uss for m in ms)
    assert g.total.pss == sum(m.total.pss for m in ms)
    # two instances share libc's text: each one's Pss of it is about half its Rss
    libc = next(r for r in g.objects if r.name.endswith("libc.so.6"))
    assert libc.pss < libc.rss


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("sample", ["trivial", "tls", "textrel", "copy_reloc"])
def test_samples_in_every_link_mode_match_pagemap_and_rollup(
    samples: Path, link_modes: tuple[str, ...], sample: str, stop: str
) -> None:
    """The same independent checks on the project's samples, in every link mode built."""
    built = [samples / f"{sample}.{m}" for m in link_modes if (samples / f"{sample}.{m}").exists()]
    assert built
    for exe in built:
        dsos = dsos_for(str(exe))
        with Launched([str(exe)], at=stop, settle=0.15) as p:  # type: ignore[arg-type]
            m = measure_launched(p, dsos)
            check(m, p.pid, dsos)
            if stop == "entry":
                text = [e for e in m.entries if "x" in e.perms and "textrel" not in e.name]
                assert all(e.private_dirty == 0 for e in text), exe.name
