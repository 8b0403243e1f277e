"""Golden tests of the smaps / smaps_rollup parser on hand-written kernel-format files."""

from __future__ import annotations

import pytest

from elfcost.errors import MeasurementError
from elfcost.runtime.smaps import parse_rollup, parse_smaps

KB = 1024


def test_glibc_pie_file_has_every_line_in_order(smaps_text: dict[str, str]) -> None:
    entries = parse_smaps(smaps_text["glibc-pie-idle.txt"])
    assert len(entries) == 37
    assert [e.start for e in entries] == sorted(e.start for e in entries)
    assert all(e.size == e.end - e.start for e in entries)
    assert all(e.kernel_page_size == 4 * KB for e in entries)


def test_name_with_spaces_is_kept_whole(smaps_text: dict[str, str]) -> None:
    entries = parse_smaps(smaps_text["glibc-pie-idle.txt"])
    exe = entries[0]
    assert exe.pathname == "/usr/local/bin/my daemon"
    assert (exe.start, exe.end, exe.perms, exe.offset) == (
        0x55D0C4A00000,
        0x55D0C4A01000,
        "r--p",
        0,
    )
    assert (exe.dev, exe.dev_major_minor, exe.inode) == ("fe:00", (0xFE, 0), 1001)
    foo = [e for e in entries if e.inode == 2002]
    assert {e.pathname for e in foo} == {"/opt/My App/lib/libfoo.so.1"}


def test_deleted_suffix_is_kept_in_pathname_and_dropped_from_name(
    smaps_text: dict[str, str],
) -> None:
    z = [e for e in parse_smaps(smaps_text["glibc-pie-idle.txt"]) if e.inode == 3003]
    assert len(z) == 5
    assert all(e.pathname.endswith(" (deleted)") and e.deleted for e in z)
    assert {e.name for e in z} == {"/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"}


def test_relro_split_shows_the_same_library_as_r_then_rw(smaps_text: dict[str, str]) -> None:
    libc = [
        e for e in parse_smaps(smaps_text["glibc-pie-idle.txt"]) if e.name.endswith("libc.so.6")
    ]
    assert [(e.perms, e.offset) for e in libc] == [
        ("r--p", 0),
        ("r-xp", 0x26000),
        ("r--p", 0x17C000),
        ("r--p", 0x1CF000),  # RELRO after mprotect: COWed, so anonymous and private dirty
        ("rw-p", 0x1D3000),
    ]
    relro, data = libc[3], libc[4]
    assert relro.private_dirty == relro.anonymous == 16 * KB
    assert data.private_dirty == 8 * KB and data.vm_flags == ("rd", "wr", "mr", "mw", "me", "ac")


def test_special_and_anonymous_names(smaps_text: dict[str, str]) -> None:
    entries = parse_smaps(smaps_text["glibc-pie-idle.txt"])
    names = [e.pathname for e in entries]
    for special in ("[heap]", "[stack]", "[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]"):
        assert special in names
    loader = next(e for e in entries if e.pathname == "[anon: glibc: loader malloc]")
    assert loader.inode == 0 and not loader.is_file and loader.private_dirty == 8 * KB
    anon = [e for e in entries if e.pathname == ""]
    assert len(anon) == 4 and not any(e.is_file for e in anon)
    vsyscall = entries[-1]
    assert vsyscall.start == 0xFFFFFFFFFF600000 and vsyscall.vm_flags == ("ex",)


def test_sizes_are_converted_to_bytes_and_unitless_fields_kept(smaps_text: dict[str, str]) -> None:
    e = parse_smaps(smaps_text["glibc-pie-idle.txt"])[21]  # libc text
    assert (e.rss, e.pss, e.shared_clean, e.private_dirty) == (964 * KB, 160 * KB, 964 * KB, 0)
    assert e.get("Rss") == 964 * KB
    assert e.get("THPeligible") == 0 and e.get("ProtectionKey") == 0
    assert e.get("KSM") == 0 and e.get("NoSuchField") is None


def test_usage_sums_to_the_rollup_in_the_fixture(smaps_text: dict[str, str]) -> None:
    entries = parse_smaps(smaps_text["glibc-pie-idle.txt"])
    rollup = parse_rollup(smaps_text["glibc-pie-idle.rollup.txt"])
    assert sum(e.rss for e in entries) == rollup["Rss"] == 1748 * KB
    assert sum(e.private_dirty for e in entries) == rollup["Private_Dirty"] == 140 * KB
    assert sum(e.private_clean for e in entries) == rollup["Private_Clean"] == 20 * KB
    # Pss is truncated to kB per line but once for the rollup.
    assert 0 <= rollup["Pss"] - sum(e.pss for e in entries) < len(entries) * KB


def test_rollup_parses_every_counter_in_bytes(smaps_text: dict[str, str]) -> None:
    rollup = parse_rollup(smaps_text["glibc-pie-idle.rollup.txt"])
    assert rollup["Pss_Anon"] == 140 * KB and rollup["Pss_File"] == 291 * KB
    assert rollup["Swap"] == 0 and len(rollup) == 22


def test_32_bit_short_addresses_and_an_old_field_set(smaps_text: dict[str, str]) -> None:
    entries = parse_smaps(smaps_text["i386-legacy.txt"])
    assert len(entries) == 15
    hello = entries[0]
    assert (hello.start, hello.end, hello.pathname) == (0x08048000, 0x08049000, "/opt/test/hello")
    assert hello.pss_dirty == 0  # no Pss_Dirty before 5.19: missing counters read as 0
    gap = entries[5]
    assert gap.perms == "---p" and gap.rss == 0 and gap.vm_flags == ("mr", "mw", "me")
    heap = entries[3]
    assert heap.pathname == "[heap]" and heap.swap == heap.swap_pss == 8 * KB
    anon = entries[8]
    assert anon.pathname == "" and anon.end - anon.start == 12 * KB


def test_thp_hugetlb_and_unknown_future_fields_survive(smaps_text: dict[str, str]) -> None:
    thp, huge, big, memfd = parse_smaps(smaps_text["thp-newfields.txt"])
    assert thp.anon_huge_pages == 2048 * KB and thp.vm_flags[-1] == "hg"
    assert thp.get("FutureCounter") == 12 * KB
    assert thp.get("FutureFlag") == "sometimes"
    assert thp.get("THPeligible") == 1
    assert huge.kernel_page_size == huge.mmu_page_size == 2048 * KB
    assert huge.get("Private_Hugetlb") == 2048 * KB
    assert big.get("FilePmdMapped") == 2048 * KB
    assert memfd.perms == "rw-s" and memfd.name == "/memfd:shared state" and memfd.deleted


def test_anonymous_header_without_trailing_space_parses() -> None:
    (e,) = parse_smaps("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nRss: 4 kB\n")
    assert e.pathname == "" and e.rss == 4 * KB and e.size == 4 * KB


def test_empty_text_has_no_entries() -> None:
    assert parse_smaps("") == ()
    assert parse_rollup("") == {}


@pytest.mark.parametrize(
    "text",
    [
        "Rss: 4 kB\n",  # a field before any mapping
        "7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nthis is not a field\n",
        "7f0000002000-7f0000001000 rw-p 00000000 00:00 0\n",  # ends before it starts
    ],
)
def test_malformed_text_raises_measurement_error_with_line(text: str) -> None:
    with pytest.raises(MeasurementError, match=r"sample: line \d+"):
        parse_smaps(text, source="sample")


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.9])
def test_a_file_cut_short_is_refused(smaps_text: dict[str, str], cut: float) -> None:
    """The kernel ends every mapping with VmFlags: a file cut between two lines ends in a
    mapping without it, named in the error (a cut within a line is not a field already)."""
    text = smaps_text["glibc-pie-idle.txt"]
    lines = text.splitlines(keepends=True)
    at = next(i for i in range(int(len(lines) * cut), len(lines)) if "VmFlags" not in lines[i])
    with pytest.raises(MeasurementError, match=r"sample: mapping [0-9a-f]+-[0-9a-f]+: no VmFlags"):
        parse_smaps("".join(lines[:at]), source="sample")
    assert len(parse_smaps(text)) == 37  # whole, every mapping has it
