"""`--assume static` against real static builds of the same samples (their estimates are
themselves checked against the kernel in tests/runtime)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SAMPLES = (
    "trivial",
    "relro_ptr_table",
    "tls",
    "bss_tail",
    "data_untouched_large",
    "stdio",
    "ifunc",
    "opendir_daemon",
    "stdin_read",
)
PAIRS = (
    ("pie", "static"),
    ("nopie", "static"),
    ("musl-dyn", "musl-static"),
    ("i386", "i386-static"),
    ("i386-nopie", "i386-static"),
)


def expected(*args: str) -> dict:  # type: ignore[type-arg]
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "estimate", "--format", "json", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_static_whatif_matches_static_builds(samples: Path) -> None:
    rows = []
    for s in SAMPLES:
        for dyn, static in PAIRS:
            a, b = samples / f"{s}.{dyn}", samples / f"{s}.{static}"
            if not (a.exists() and b.exists()):
                continue
            w = expected("--assume", "static", str(a))
            real = expected(str(b))["total"]["private_dirty"]["expected"]
            guess = w["total"]["private_dirty"]["expected"]
            assert any("what-if" in x for x in w["assumptions"])  # labelled as an estimate
            assert w["loader"]["path"] is None and len(w["objects"]) == 1
            # Linking moves libc's start-up variables across page boundaries: +-2 pages.
            ok = abs(guess - real) <= max(0.15 * real, 2 * 4096)
            rows.append((a.name, guess, real, ok))
    assert len(rows) >= 15
    assert [r for r in rows if not r[3]] == []


def test_static_saves_the_linkage(samples: Path) -> None:
    dyn = expected(str(samples / "trivial.pie"))["total"]["private_dirty"]["expected"]
    w = expected("--assume", "static", str(samples / "trivial.pie"))
    assert w["total"]["private_dirty"]["expected"] < dyn / 1.5
    assert any("ld-linux" in x for x in w["assumptions"])  # says what was removed


LIBC_PAIRS = (("pie", "musl-dyn", "musl"), ("musl-dyn", "pie", "glibc"))
LIBC_SAMPLES = (*SAMPLES, "ownlib", "copy_reloc", "many_plt", "bss_touched")


def test_libc_whatif_matches_builds_against_the_other_libc(samples: Path) -> None:
    """--assume musl on the glibc build, and --assume glibc on the musl build, of the same
    sample against the estimate of the real build with that libc (itself checked against the
    kernel in tests/runtime)."""
    rows = []
    for s in LIBC_SAMPLES:
        for built, other, libc in LIBC_PAIRS:
            a, b = samples / f"{s}.{built}", samples / f"{s}.{other}"
            if not (a.exists() and b.exists()):
                continue
            w = expected("--assume", libc, str(a))
            real = expected(str(b))
            assert w["loader"]["family"] == libc == real["loader"]["family"]
            assert w["loader"]["path"] == real["loader"]["path"]
            assert any(
                x.startswith(f"what-if, an estimate: linked against {libc}")
                for x in w["assumptions"]
            )
            guess = w["total"]["private_dirty"]["expected"]
            want = real["total"]["private_dirty"]["expected"]
            rows.append((a.name, guess // 4096, want // 4096, abs(guess - want) <= 2 * 4096))
    assert len(rows) >= 16
    assert [r for r in rows if not r[3]] == []


def test_libc_whatif_replaces_the_libc_objects_only(samples: Path) -> None:
    w = expected("--assume", "musl", str(samples / "ownlib.pie"))
    names = [Path(o["path"]).name for o in w["objects"]]
    assert names == ["ownlib.pie", "libown.so", "ld-musl-x86_64.so.1"]  # libc.so.6, ld.so gone
    back = expected("--assume", "glibc", str(samples / "ownlib.musl-dyn"))
    names = [Path(o["path"]).name for o in back["objects"]]
    assert names == ["ownlib.musl-dyn", "libown.so", "libc.so.6", "ld-linux-x86-64.so.2"]


@pytest.mark.parametrize(
    "program, libc, said",
    [
        ("trivial.musl-dyn", "musl", "already linked with musl"),
        ("trivial.pie", "glibc", "already linked with glibc"),
        ("trivial.static", "musl", "statically linked"),
    ],
)
def test_libc_whatif_that_changes_nothing_says_so(
    samples: Path, program: str, libc: str, said: str
) -> None:
    as_built = expected(str(samples / program))
    w = expected("--assume", libc, str(samples / program))
    assert w["total"] == as_built["total"] and w["objects"] == as_built["objects"]
    assert any(said in x for x in w["assumptions"])


def test_libc_whatif_without_the_other_libc_is_one_clear_error(
    samples: Path, tmp_path: Path
) -> None:
    """Inside a root that has only musl, --assume glibc cannot find libc.so.6: exit 3, one line."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    prog = tmp_path / "bin" / "trivial"
    prog.write_bytes((samples / "trivial.musl-dyn").read_bytes())
    prog.chmod(0o755)
    musl = Path("/lib/ld-musl-x86_64.so.1")
    (tmp_path / "lib" / musl.name).write_bytes(musl.read_bytes())
    base = [sys.executable, "-m", "elfcost", "estimate", "--root", str(tmp_path)]
    ok = subprocess.run([*base, "--assume", "musl", str(prog)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    r = subprocess.run([*base, "--assume", "glibc", str(prog)], capture_output=True, text=True)
    assert r.returncode == 3
    # Named as the loader inside the root would name it, like every path under --root.
    assert r.stderr.strip().splitlines() == [
        "elfcost: error: /bin/trivial: --assume glibc: glibc's libc.so.6 is not installed here"
    ]


def test_libc_and_static_together_match_the_other_libc_s_static_builds(samples: Path) -> None:
    """--assume musl-static on the glibc PIE build against the real musl static build, and
    --assume glibc-static on the musl build against the glibc static one: the two what-ifs
    one after the other, labelled as both."""
    rows = []
    for s in SAMPLES:
        for built, other, how in (
            ("pie", "musl-static", "musl-static"),
            ("musl-dyn", "static", "glibc-static"),
        ):
            a, b = samples / f"{s}.{built}", samples / f"{s}.{other}"
            if not (a.exists() and b.exists()):
                continue
            w = expected("--assume", how, str(a))
            labels = [x for x in w["assumptions"] if x.startswith("what-if")]
            assert len(labels) == 2 and "linked static" in labels[1], labels
            assert w["loader"]["path"] is None and len(w["objects"]) == 1
            guess = w["total"]["private_dirty"]["expected"]
            real = expected(str(b))["total"]["private_dirty"]["expected"]
            # As for --assume static: libc's start-up variables move across pages, +-2 pages.
            rows.append(
                (
                    a.name,
                    how,
                    guess // 4096,
                    real // 4096,
                    abs(guess - real) <= max(0.15 * real, 2 * 4096),
                )
            )
    assert len(rows) >= 12
    assert [r for r in rows if not r[-1]] == []


def test_the_text_output_says_it_is_a_what_if(samples: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "--assume", "musl", str(samples / "trivial.pie")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "what-if, an estimate: linked against musl instead of glibc" in r.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "elfcost", str(samples / "trivial.pie")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "what-if" not in plain.stdout


def test_static_whatif_keeps_libc_writes_after_main(samples: Path) -> None:
    """The program's imports become functions linked in: stdin_read's stdin buffer page stays
    (glibc static: the first brk page is start-up's, the buffer's page is one more)."""
    w = expected("--assume", "static", str(samples / "stdin_read.pie"))
    pages = w["process"]["heap"]["pages"]
    assert [(p["cause"], p["phase"]) for p in pages] == [("stdio-buffer", "idle")]
    assert pages[0]["detail"].startswith("fgets (linked into stdin_read.pie)")
    assert w["process"]["heap"]["expected"] == 4096
