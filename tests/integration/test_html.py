"""The HTML report: one cell per page, nothing fetched, every document string escaped, and a real
headless browser renders it and runs its script without errors."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from msgspec.structs import replace

from elfcost.analysis import rank, where_it_goes
from elfcost.cost.estimate import Options
from elfcost.cost.whatif import static_whatif
from elfcost.documents import ComparisonDoc, EstimateDoc, PageDoc, ScanDoc, ScanSummary
from elfcost.predict import estimate
from elfcost.report.html import estimate_html, scan_html
from elfcost.report.jsonout import estimate_doc
from elfcost.report.text import estimate_text
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve
from elfcost.runtime.compare import Comparison, ObjectComparison, PageMismatch, comparison_doc

pytestmark = pytest.mark.integration

HOSTILE = '/tmp/<script>alert("x")</script>/lib&"\'evil.so'
CELL = re.compile(r'<span class="pg[^"]*" data-page="1"[^>]*data-vaddr="(\d*)"')


def doc_of(path: str, *, static: bool = False) -> EstimateDoc:
    graph = resolve(path, Host())
    est = estimate(graph)
    if static:
        est = static_whatif(graph, Options(), dynamic=est)
    return estimate_doc(est)


@pytest.fixture(scope="module")
def sleep_doc() -> EstimateDoc:
    return doc_of("/bin/sleep")


@pytest.fixture(scope="module")
def sleep_static() -> EstimateDoc:
    return doc_of("/bin/sleep", static=True)


def fake_comparisons(doc: EstimateDoc) -> list[ComparisonDoc]:
    """Comparison documents for `doc` with one page of each kind of mismatch in libc: what
    `validate` writes, without running anything."""
    out = []
    for stop, phases in (("entry", ("entry",)), ("idle", ("entry", "idle"))):
        objects = []
        for o in doc.objects:
            predicted = [p for p in o.pages if p.vaddr is not None and p.phase in phases]
            possible = [p for p in o.pages if p.phase == "possible"]
            clean, dirty = [], []
            if "libc" in o.path and predicted and possible:
                clean = [predicted[0]]
                dirty = [possible[0]]
            objects.append(
                ObjectComparison(
                    path=o.path,
                    predicted_pages=len(predicted),
                    measured_pages=len(predicted) - len(clean) + len(dirty),
                    predicted_clean=tuple(_mismatch(p) for p in clean),
                    unpredicted_dirty=tuple(_mismatch(p) for p in dirty),
                )
            )
        c = Comparison(
            binary=doc.binary,
            stop=stop,
            page_size=doc.page_size,
            objects=tuple(objects),
            predicted_low=1,
            predicted_expected=2,
            predicted_high=3,
            measured_total=2,
            tolerance_pages=0,
        )
        out.append(comparison_doc(c))
    return out


def _mismatch(p: PageDoc) -> PageMismatch:
    assert p.vaddr is not None
    return PageMismatch(
        vaddr=p.vaddr,
        sections=p.sections,
        cause=p.cause,
        why=f"predicted {p.cause.value}",
        certain=False,
    )


def scan_doc(docs: list[EstimateDoc], *, errors: int = 0) -> ScanDoc:
    """What `scan --format html` renders: every program of `docs` ranked."""
    ranking = rank(((d.binary, d.binary, d) for d in docs), top=None)
    return ScanDoc(summary=ScanSummary(executables=len(docs), errors=errors), ranking=ranking)


# -- the document itself ------------------------------------------------------------------------


def test_one_cell_per_page(sleep_doc: EstimateDoc, sleep_static: EstimateDoc) -> None:
    page = estimate_html([sleep_doc], instances=129)
    pages = [p for o in sleep_doc.objects for p in o.pages]
    cells = CELL.findall(page)
    assert page.count('data-page="1"') == len(cells) == len(pages) > 0
    assert sorted(int(v) for v in cells) == sorted(p.vaddr or 0 for p in pages)
    # The static what-if's pages have no address: each is still one cell, marked as such.
    page = estimate_html([sleep_static], instances=129)
    pages = [p for o in sleep_static.objects for p in o.pages]
    assert any(p.vaddr is None for p in pages)
    assert page.count('data-page="1"') == len(pages)
    assert page.count('data-vaddr=""') == sum(p.vaddr is None for p in pages)
    assert "location unknown" in page


def test_comparison_maps_and_marks_mismatches(
    sleep_doc: EstimateDoc, sleep_static: EstimateDoc
) -> None:
    cmp = fake_comparisons(sleep_doc)
    page = estimate_html([sleep_doc], comparisons=cmp, static_whatif=[sleep_static], instances=129)
    located = sum(p.vaddr is not None for o in sleep_doc.objects for p in o.pages)
    # One measured cell per located page and stop, beside the predicted one.
    assert page.count("data-measured=") == 2 * located
    # The libc page found clean and the possible page found written, at both stops.
    assert page.count('class="mp miss" data-measured') == 2
    assert page.count('class="mp extra" data-measured') == 2
    assert len(re.findall(r'class="pg[^"]* mis"', page)) == 2  # marked on the prediction too
    assert page.count('data-page="1"') == located  # comparisons add no predicted cells
    assert "linked statically" in page and "measured at idle" in page


def test_nothing_is_fetched(sleep_doc: EstimateDoc, sleep_static: EstimateDoc) -> None:
    page = estimate_html(
        [sleep_doc],
        comparisons=fake_comparisons(sleep_doc),
        static_whatif=[sleep_static],
        instances=129,
    )
    scan = scan_html(scan_doc([sleep_doc, sleep_static]))
    for text in (page, scan):
        assert "http://" not in text and "https://" not in text
        assert not re.search(r"<(link|img|iframe|object|embed)\b", text)
        assert " src=" not in text and "@import" not in text
        assert not re.search(r"url\((?!#)", text)  # only references inside the page
        assert text.count("<script>") == 1  # the inline one
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def hostile(doc: EstimateDoc) -> EstimateDoc:
    """`doc` with markup in every string a page shows: paths, sections, details, names."""
    lib = doc.objects[1]
    page = replace(lib.pages[0], sections=("<img onerror=x>",), detail="</span><script>bad()")
    lib = replace(lib, path=HOSTILE, pages=(page, *lib.pages[1:]))
    return replace(
        doc,
        binary=HOSTILE,
        objects=(doc.objects[0], lib, *doc.objects[2:]),
        process={**doc.process, "<b>odd</b>": next(iter(doc.process.values()))},
        warnings=("<i>warn</i>",),
    )


def test_document_strings_are_escaped(sleep_doc: EstimateDoc) -> None:
    doc = hostile(sleep_doc)
    cmp = fake_comparisons(doc)
    for page in (
        estimate_html([doc], comparisons=cmp, instances=129),
        scan_html(scan_doc([doc])),
    ):
        assert page.count("<script") == 1
        assert "<script>alert" not in page and "<script>bad()" not in page
        assert "<img" not in page and "<b>odd" not in page and "<i>warn" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
        assert "lib&amp;&quot;&#x27;evil.so" in page


def test_scan_renders_the_ranking() -> None:
    docs = [doc_of(p) for p in ("/bin/sleep", "/bin/ls", "/bin/true")]
    doc = scan_doc(docs, errors=1)
    page = scan_html(doc)
    r = doc.ranking
    # A row per program and per library, under the two tables' header rows, in ranking order.
    assert page.count("<tr>") == 2 + len(r.programs) + len(r.libraries) > 2 + 3
    rows = re.findall(r'<tr><td class="num" data-v="\d+">\d+</td><td class="path">([^<]*)<', page)
    assert rows == [p.path for p in r.programs] + [lb.path for lb in r.libraries]
    assert "1 input not estimated" in page
    libc = next(lb for lb in r.libraries if lb.path.endswith("/libc.so.6"))
    assert f'data-v="{libc.private_dirty}"' in page and "ls, sleep, true" in page
    assert scan_html(doc) == page  # pure


def test_text_and_html_say_where_it_goes_alike(sleep_doc: EstimateDoc) -> None:
    """One split, analysis.where_it_goes: the text line, the HTML sentence, its bar's legend
    and the ranking bar of a page with two programs show the same four figures."""
    split = where_it_goes(sleep_doc)
    assert split.total == sleep_doc.total.private_dirty.expected
    kib = [split.total // 1024] + [p.expected // 1024 for _, p in split.parts]
    text = " ".join(estimate_text(sleep_doc).split())  # as one line, whatever the terminal
    said = re.search(
        r"where (\d+) KiB goes: the program and its own libraries (\d+) KiB; libc and the "
        r"dynamic loader (\d+) KiB; loader heap and TLS (\d+) KiB; stack and heap (\d+) KiB",
        text,
    )
    assert said is not None and [int(n) for n in said.groups()] == kib
    page = estimate_html([sleep_doc, replace(sleep_doc, binary="/bin/other")], instances=129)
    assert f'<p class="note">{said[0]}</p>' in page
    legend = re.search(r'aria-label="[^"]*: program and linkage">.*?</svg>(.*?)</div>', page)
    assert legend is not None
    in_legend = [int(n) for n in re.findall(r"</b> (\d+) KiB", legend[1])]
    bars = [int(n) for n in re.findall(r"<title>/bin/sleep: [^<]* (\d+) KiB</title></rect>", page)]
    assert in_legend == bars == kib[1:]


# -- a real browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed here when missing and we may (CI installs it beforehand)."""
    exe = shutil.which("chromium")
    if exe:
        return exe
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "chromium is not installed and cannot be installed here (needs root and "
            "apt-get): apt-get install -y chromium"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "chromium"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:  # a stale package list is the usual reason
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail(f"apt-get install -y chromium failed:\n{r.stderr[-2000:]}")
    return exe


def browse(chromium: str, tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",  # containers often give /dev/shm 64 MiB
            f"--user-data-dir={profile}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def png_is_a_picture(path: Path, width: int, height: int) -> bool:
    """The PNG has the window's size and varied pixels (not a blank page), without an imaging
    library: the IHDR gives the size, the inflated IDAT's byte variety tells blank from drawn."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return (w, h) == (width, height) and len(set(raw)) > 64 and len(data) > 20_000


@pytest.fixture(scope="module")
def pages(
    tmp_path_factory: pytest.TempPathFactory,
    sleep_doc: EstimateDoc,
    sleep_static: EstimateDoc,
) -> Iterator[dict[str, Path]]:
    out = tmp_path_factory.mktemp("html")
    report = out / "sleep.html"
    report.write_text(
        estimate_html(
            [sleep_doc],
            comparisons=fake_comparisons(sleep_doc),
            static_whatif=[sleep_static],
            instances=129,
        ),
        encoding="utf-8",
    )
    scan = out / "scan.html"
    scan.write_text(
        scan_html(scan_doc([sleep_doc, hostile(sleep_doc), sleep_static])), encoding="utf-8"
    )
    yield {"report": report, "scan": scan}


@pytest.mark.parametrize("which", ["report", "scan"])
def test_browser_runs_the_script_without_errors(
    chromium: str, pages: dict[str, Path], tmp_path: Path, which: str
) -> None:
    r = browse(chromium, tmp_path, pages[which], "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r'<body[^>]*data-ready="1"', r.stdout), "the page script did not finish"
    assert 'id="tip"' in r.stdout  # the tooltip element the script adds
    # Page errors and console output come as "INFO:CONSOLE:<line>] "Uncaught ...", source: ...".
    errors = [ln for ln in r.stderr.splitlines() if "Uncaught" in ln or ":CONSOLE" in ln]
    assert errors == []
    # The script moved each page cell's title into data-tip; the cells are all still there.
    if which == "report":
        assert r.stdout.count('data-page="1"') == pages[which].read_text().count('data-page="1"')
        assert "data-tip=" in r.stdout


def test_browser_sorts_tables(chromium: str, pages: dict[str, Path], tmp_path: Path) -> None:
    """Clicking "expected" twice puts the most expensive object first."""
    click = (
        "<script>var t=document.querySelector('table.sortable');"
        "var th=Array.prototype.find.call(t.tHead.rows[0].cells,"
        "function(c){return c.textContent==='expected';});th.click();th.click();"
        "document.body.setAttribute('data-first',t.tBodies[0].rows[0].cells[0].textContent);"
        "</script></body>"
    )
    page = tmp_path / "sorted.html"
    page.write_text(pages["report"].read_text().replace("</body>", click), encoding="utf-8")
    r = browse(chromium, tmp_path, page, "--dump-dom")
    assert re.search(r'data-first="[^"]*/libc\.so\.6"', r.stdout)  # unsorted: /bin/sleep


def test_browser_screenshot(chromium: str, pages: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    r = browse(
        chromium, tmp_path, pages["report"], f"--screenshot={shot}", "--window-size=1400,2000"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.exists() and png_is_a_picture(shot, 1400, 2000)
