"""The command line as a user runs it: exit codes, one-line errors, JSON validated by schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from elfcost.report.jsonout import load_schema

pytestmark = pytest.mark.integration


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=120
    )


def test_default_command_is_estimate() -> None:
    a, b = run("/bin/sleep"), run("estimate", "/bin/sleep")
    assert a.returncode == 0 and a.stdout == b.stdout
    assert "libc.so.6" in a.stdout and "total private dirty" in a.stdout
    # estimate's options before the binary, with or without elfcost's own options first
    c = run("--format", "json", "/bin/sleep")
    d = run("--traceback", "--page-size", "16K", "/bin/sleep")
    assert c.returncode == 0 and json.loads(c.stdout)["schema"] == "elfcost.estimate/3"
    assert d.returncode == 0 and "16 KiB pages" in d.stdout
    assert "version" in run("--version").stdout


def test_bad_inputs_are_one_line_each_and_others_go_on(tmp_path: Path) -> None:
    (tmp_path / "text").write_text("hello\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "trunc").write_bytes(Path("/bin/true").read_bytes()[:40])
    args = [str(tmp_path / n) for n in ("text", "empty", "trunc", "missing")]
    r = run("estimate", "--format", "json", args[0], "/bin/true", *args[1:], str(tmp_path))
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("elfcost: error: ") for line in lines)
    assert "Traceback" not in r.stderr
    assert f"{tmp_path}/text: not an ELF file" in r.stderr
    assert f"{tmp_path}: a directory" in r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]  # each input in its place
    assert [d["schema"] for d in docs] == ["elfcost.error/1"] + ["elfcost.estimate/3"] + [
        "elfcost.error/1"
    ] * 4
    assert docs[1]["binary"] == "/bin/true"  # the good input was analysed


def test_usage_error_is_2() -> None:
    assert run("estimate", "--page-size", "3K", "/bin/true").returncode == 2
    assert run("estimate").returncode == 2


def test_estimate_json_validates_against_schema() -> None:
    r = run("estimate", "--format", "json", "--instances", "129", "/bin/sleep")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("estimate-3"))
    total = doc["total"]["private_dirty"]
    objs = sum(o["private_dirty"]["expected"] for o in doc["objects"])
    proc = sum(p["expected"] for p in doc["process"].values())
    assert total["expected"] == objs + proc  # totals add up
    assert doc["total"]["fleet"]["private_dirty"]["expected"] == 129 * total["expected"]
    for o in doc["objects"]:
        located = [p["vaddr"] for p in o["pages"] if p["vaddr"] is not None]
        assert len(located) == len(set(located))  # one cause per page
        entry = sum(1 for p in o["pages"] if p["phase"] == "entry") * doc["page_size"]
        assert entry == o["private_dirty"]["at_entry"]


def test_several_binaries_give_json_lines() -> None:
    r = run("deps", "--format", "json", "/bin/sleep", "/bin/true")
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["binary"] for d in docs] == ["/bin/sleep", "/bin/true"]
    for d in docs:
        jsonschema.validate(d, load_schema("deps-1"))


def test_deps_strict_missing(samples: Path) -> None:
    exe = str(samples / "resolve" / "missing" / "exe")
    assert run("deps", exe).returncode == 0
    r = run("deps", "--strict", exe)
    assert r.returncode == 1
    assert "libdoesnotexist.so not found" in r.stdout
    assert "paths considered in this order" in r.stdout


def test_deps_text_is_the_load_order_and_tree_is_a_view_of_its_own() -> None:
    binary = "/usr/bin/curl" if Path("/usr/bin/curl").exists() else "/bin/sleep"
    objects = json.loads(run("deps", "--format", "json", binary).stdout)["objects"]
    out = run("deps", binary).stdout.splitlines()
    assert out[1] == "load order:"
    rows = [line.split() for line in out[2:] if line.startswith("  ")]
    listed = [w[w.index("=>") + 1] if "=>" in w else w[1] for w in rows]
    assert listed == [o["path"] for o in objects[1:]]  # breadth first, as the loader maps
    libc = next(i for i, line in enumerate(out) if "libc.so.6 =>" in line)
    assert f"(needed by {binary})" in out[libc]
    tree = run("deps", "--tree", binary).stdout
    assert tree.splitlines()[0] == out[0] and "load order" not in tree
    assert "├── " in tree or "└── " in tree


def test_dot_output() -> None:
    r = run("deps", "--format", "dot", "/bin/sleep")
    assert r.stdout.startswith("digraph") and '"/bin/sleep" -> ' in r.stdout


def test_page_size_what_if_changes_pages() -> None:
    a = json.loads(run("estimate", "--format", "json", "/bin/sleep").stdout)
    b = json.loads(run("estimate", "--format", "json", "--page-size", "64K", "/bin/sleep").stdout)
    assert b["page_size"] == 65536
    for o in b["objects"]:
        assert all(p["vaddr"] is None or p["vaddr"] % 65536 == 0 for p in o["pages"])
    # Fewer, larger pages: at least as many bytes per object.
    for oa, ob in zip(a["objects"], b["objects"], strict=True):
        assert ob["private_dirty"]["at_entry"] >= oa["private_dirty"]["at_entry"]


def test_explain_lists_every_predicted_page() -> None:
    r = run("explain", "/bin/sleep", "--object", "libc.so.6")
    assert r.returncode == 0
    doc = json.loads(run("estimate", "--format", "json", "/bin/sleep").stdout)
    libc = next(o for o in doc["objects"] if o["soname"] == "libc.so.6")
    for p in libc["pages"]:
        if p["phase"] != "possible" and p["vaddr"] is not None:
            assert f"0x{p['vaddr']:08x}" in r.stdout
    assert run("explain", "/bin/sleep", "--object", "nosuch.so").returncode == 1


def test_explain_names_the_process_items_too_and_adds_up_to_the_total() -> None:
    doc = json.loads(run("estimate", "--format", "json", "/bin/sleep").stdout)
    out = run("explain", "/bin/sleep").stdout
    for name, item in doc["process"].items():
        pages = item["expected"] // doc["page_size"]
        assert f"  [{name}]  {pages} page" in out
    total = doc["total"]["private_dirty"]["expected"] // 1024
    assert f"total private dirty, expected: {total} KiB = the objects' pages above" in out
    stack = run("explain", "/bin/sleep", "--object", "stack")
    assert stack.returncode == 0 and "[stack]" in stack.stdout
    assert "[tls]" not in stack.stdout and "libc.so.6" not in stack.stdout
    assert run("explain", "/bin/sleep", "--object", "[tls]").stdout.count("[tls]") == 1


def test_threads_and_dlopen_says_the_zero_it_shows() -> None:
    doc = json.loads(run("estimate", "--format", "json", "/bin/sleep").stdout)
    item = doc["process"]["threads_and_dlopen"]
    assert item["at_entry"] == item["low"] == item["expected"] == item["high"] == 0
    assert "counted as 0 KiB in every column" in item["detail"]
    assert "not zero" not in item["detail"]


def test_help_documents_exit_codes() -> None:
    r = run("--help")
    assert "Exit codes" in r.stdout and "3  an input could not be analysed" in r.stdout


# Run as the installed script runs: elfcost.cli imported, then run(); on stderr, the
# collections the collector made during it, how many objects are frozen and how many are
# left for a collection at exit.
COUNT_COLLECTIONS = """
import gc, sys
import elfcost.cli
made = []
gc.callbacks.append(lambda phase, info: phase == "stop" and made.append(info["generation"]))
sys.argv = ["elfcost", *sys.argv[1:]]
try:
    elfcost.cli.run()
except SystemExit as exc:
    print(exc.code, len(made), gc.get_freeze_count(), len(gc.get_objects()), file=sys.stderr)
"""


def test_start_up_is_not_scanned_by_the_collector() -> None:
    """The start-up's modules live as long as the process: a small estimate makes no
    collection at all (elfcost.START_UP_THRESHOLD), and leaves nothing for the collection at
    the interpreter's exit to scan."""
    for args in (["/bin/sleep"], ["--format", "json", "/bin/sleep"]):
        r = subprocess.run(
            [sys.executable, "-c", COUNT_COLLECTIONS, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        status, collections, frozen, tracked = map(int, r.stderr.split())
        assert status == 0 and "libc.so.6" in r.stdout
        assert collections == 0
        assert frozen > 10_000  # click's and elfcost's classes and functions at least
        assert tracked < 1_000  # only what was made after run() froze the rest


def test_html_report_to_file(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    r = run("estimate", "--format", "html", "-o", str(out), "/bin/sleep")
    assert r.returncode == 0 and r.stdout == ""
    page = out.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    doc = json.loads(run("estimate", "--format", "json", "/bin/sleep").stdout)
    # One cell per page of the estimate (the static what-if appears as a line, not a map).
    cells = page.count("data-page=")
    assert cells == sum(len(o["pages"]) for o in doc["objects"])
    assert "linked statically" in page


def _exe_details(*args: str) -> list[str]:
    doc = json.loads(run("estimate", "--format", "json", *args).stdout)
    return [p["detail"] for p in doc["objects"][0]["pages"] if p["phase"] != "possible"]


def test_assume_lazy_and_bind_now(samples: Path) -> None:
    """Lazy binding adds the GOT[1..2] writes (R-G5); binding now does not."""
    exe = str(samples / "trivial.now")  # linked with -z now
    assert not any("got-header" in d for d in _exe_details(exe))
    assert any("got-header" in d for d in _exe_details("--assume", "lazy", exe))
    lazy = str(samples / "trivial.lazy")
    assert any("got-header" in d for d in _exe_details(lazy))
    assert not any("got-header" in d for d in _exe_details("--assume", "bind-now", lazy))


def test_uncalibrated_machine_falls_back_with_a_warning_and_wider_bounds() -> None:
    fixture = Path(__file__).resolve().parents[1] / "data" / "elf" / "aarch64" / "hello"
    doc = json.loads(run("estimate", "--format", "json", str(fixture)).stdout)
    # The x86_64 profile, the reference, not another machine's that sorts first (i386's).
    assert any(
        "no calibrated profile for glibc dynamic on aarch64: using glibc-dynamic (x86_64)" in w
        for w in doc["warnings"]
    )
    native = json.loads(run("estimate", "--format", "json", "/bin/sleep").stdout)
    for name in ("stack", "tls"):
        assert "widened" in doc["process"][name]["detail"]
        assert "widened" not in native["process"][name]["detail"]
        wide, ref = doc["process"][name], native["process"][name]
        assert wide["high"] - wide["low"] > ref["high"] - ref["low"] - 4096


def test_explain_colours_the_page_map_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys as _sys

    from elfcost.predict import estimate
    from elfcost.report.text import explain_text
    from elfcost.resolve.host import Host
    from elfcost.resolve.search import resolve

    est = estimate(resolve("/bin/sleep", Host()))
    plain = explain_text(est, object_name="ld-linux-x86-64.so.2")
    assert "\x1b[" not in plain and "  RRRB" in plain

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(_sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = explain_text(est, object_name="ld-linux-x86-64.so.2")
    assert "\x1b[" in coloured and "RRRB" not in coloured  # every page character painted


@pytest.mark.parametrize("mode", ["pie", "static", "musl-static"])
def test_a_gigabyte_of_bss_is_counted_not_listed(samples: Path, tmp_path: Path, mode: str) -> None:
    exe = samples / f"bss_huge.{mode}"
    if not exe.exists():
        pytest.skip(f"{exe.name} not built")
    r = run("estimate", "--format", "json", str(exe))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("estimate-3"))
    P = doc["page_size"]
    o = doc["objects"][0]
    listed = [p for p in o["pages"] if p["phase"] == "possible"]
    assert 0 < len(listed) < o["writable_pages"] and o["possible_unlisted"] > 0
    # every writable page is in `high`: listed (any cause) or counted
    assert o["private_dirty"]["high"] == (len(o["pages"]) + o["possible_unlisted"]) * P
    assert o["writable_pages"] * P >= 1 << 30 and o["private_dirty"]["high"] >= 1 << 30
    assert o["private_dirty"]["expected"] < 64 * P  # untouched bss costs nothing
    explained = run("explain", str(exe), "--object", exe.name).stdout
    unlisted_line = f"+ {len(listed) + o['possible_unlisted']} more writable pages"
    assert unlisted_line in explained
    html = tmp_path / "report.html"
    assert run("estimate", "--format", "html", "-o", str(html), str(exe)).returncode == 0
    assert f"+ {o['possible_unlisted']:,} more writable pages" in html.read_text()
