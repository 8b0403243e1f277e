"""The estimate document reuses a library's converted pages across the programs of one run
(report/jsonout.py _OBJECT_DOCS): the same document as converting afresh, converted once for
every program that maps the same library estimate, never handed to another object."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from elfcost.documents import encode
from elfcost.pipeline import make_host
from elfcost.predict import ObjectMemo, estimate
from elfcost.report import jsonout
from elfcost.resolve.search import resolve

pytestmark = pytest.mark.integration


def test_library_pages_converted_once_per_run(samples: Path) -> None:
    host = make_host()
    memo = ObjectMemo()  # as a scan worker: each library estimated once
    programs = [str(samples / "bss_tail.pie"), str(samples / "bss_huge.pie")]
    estimates = [estimate(resolve(p, host), memo=memo) for p in programs]
    jsonout._OBJECT_DOCS.clear()
    docs = [jsonout.estimate_doc(e) for e in estimates]

    libc = [next(o for o in d.objects if o.path.endswith("/libc.so.6")) for d in docs]
    assert libc[0].pages, "libc has predicted pages"
    # Both programs map the one libc estimate of the memo: its document is made once.
    first, second = (next(o for o in e.objects if o.path == libc[0].path) for e in estimates)
    assert first is second
    assert libc[1] is libc[0]
    # Executables are each one process's own: converted, not kept.
    kept = {doc.path for _, doc in jsonout._OBJECT_DOCS.values()}
    assert libc[0].path in kept
    assert not kept & set(programs)

    # The same documents as converting everything afresh.
    for e, d in zip(estimates, docs, strict=True):
        jsonout._OBJECT_DOCS.clear()
        assert encode(jsonout.estimate_doc(e)) == encode(d)


def test_another_object_never_gets_a_kept_document(samples: Path) -> None:
    est = estimate(resolve(str(samples / "bss_tail.pie"), make_host()))
    jsonout._OBJECT_DOCS.clear()
    doc = jsonout.estimate_doc(est)
    # An equal-looking object that is not the one converted (one page fewer): its own pages.
    libc = next(o for o in est.objects if o.path.endswith("/libc.so.6"))
    fewer = msgspec.structs.replace(libc, pages=libc.pages[1:])
    other = msgspec.structs.replace(
        est, objects=tuple(fewer if o is libc else o for o in est.objects)
    )
    other_doc = jsonout.estimate_doc(other)
    before = next(o for o in doc.objects if o.path == libc.path)
    after = next(o for o in other_doc.objects if o.path == libc.path)
    assert len(after.pages) == len(before.pages) - 1
    assert after.pages == before.pages[1:]


def test_forgotten_when_full(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    est = estimate(resolve(str(samples / "bss_tail.pie"), make_host()))
    jsonout._OBJECT_DOCS.clear()
    fresh = encode(jsonout.estimate_doc(est))
    libraries = [o for o in est.objects if o.role != "executable"]
    assert len(libraries) >= 2  # libc and ld.so
    monkeypatch.setattr(jsonout, "MAX_OBJECT_DOCS", 1)
    jsonout._OBJECT_DOCS.clear()
    for _ in range(3):
        assert encode(jsonout.estimate_doc(est)) == fresh
        assert len(jsonout._OBJECT_DOCS) == 1  # bounded: the older one was forgotten


@pytest.mark.skipif(not Path("/usr/bin/ls").exists(), reason="no /usr/bin/ls")
def test_libc_written_early_is_one_estimate_for_programs_with_the_same_libraries() -> None:
    """libc with its idle page written before the entry point (a library's constructors call
    fopen: libselinux's, under ls, dir and vdir) is one object estimate for every program that
    maps the same libraries, so that its document is made once, as the memo's own."""
    host = make_host()
    memo = ObjectMemo()
    programs = [p for p in ("/usr/bin/ls", "/usr/bin/dir", "/usr/bin/vdir") if Path(p).exists()]
    libcs = [
        next(o for o in estimate(resolve(p, host), memo=memo).objects if "libc.so" in o.path)
        for p in programs
    ]
    early = [p for p in libcs[0].pages if "before the entry point" in p.detail]
    if not early:
        pytest.skip("no library of ls calls such a function from its constructors here")
    assert all(lc is libcs[0] for lc in libcs), "one estimate for the same libraries"
