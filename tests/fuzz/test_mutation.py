"""Mutated real ELF files through the whole static pipeline, in process.

Every mutant is written to disk and analysed as the CLI would: resolve → estimate → the JSON
documents. It survives when the pipeline returns or raises an ElfcostError, within the per-case
deadline. Anything else (IndexError, OverflowError, MemoryError, RecursionError, a timeout) is
a bug. Memory is bounded separately: the claims of the corpus (p_filesz = 2**40, a billion
program headers, DT_RELASZ = 2**60...) run in a subprocess under RLIMIT_AS.

`make test` runs a fixed set of cases (derandomized, so CI sees the same cases every time);
`make fuzz` sets ELFCOST_FUZZ_EXAMPLES for a long randomized run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from elfpatch import ElfMap
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from make_corpus import Pie, claims
from mutate import (
    GROUPS,
    LONG_EXAMPLES,
    TALLY,
    DataChooser,
    Seed,
    Workdir,
    apply,
    deadline,
    mutation,
    run_pipeline,
    seeds,
)

DEADLINE_S = 5.0  # per case; a typical one takes 10-200 ms, the worst bounded one ~2 s
# Cases per group in the bounded run (2,400 in all, ~45 s on two busy cores).
BOUNDED = {
    "ehdr": 250,
    "phdr": 450,
    "dyn": 400,
    "strings": 250,
    "reloc": 350,
    "shdr": 150,
    "truncate": 200,
    "mixed": 350,
}
WEIGHT = sum(BOUNDED.values())


def examples(group: str) -> int:
    if LONG_EXAMPLES:
        return max(1, LONG_EXAMPLES * BOUNDED[group] // WEIGHT)
    return BOUNDED[group]


class Prepared:
    def __init__(self, seed: Seed, base: Path) -> None:
        self.seed = seed
        self.work = Workdir(base, seed)
        self.map = ElfMap(next(f for f in seed.files if f.name == seed.target).read_bytes())

    def __repr__(self) -> str:
        return self.seed.name


@pytest.fixture(scope="session")
def prepared(
    samples_or_none: Path | None, tmp_path_factory: pytest.TempPathFactory
) -> list[Prepared]:
    base = tmp_path_factory.mktemp("mutants")
    long = bool(LONG_EXAMPLES)
    musl = Path("/lib/ld-musl-x86_64.so.1").exists() and long
    out = [Prepared(s, base) for s in seeds(samples_or_none, musl=musl, slow=long)]
    assert out, "no seed files"
    return out


# Groups whose mutants also go through the text reports (rich tables cost ~15 ms a case).
TEXT_GROUPS = ("strings", "mixed")


def check(p: Prepared, ops: list[tuple[Any, ...]], *, text: bool) -> None:
    p.work.write(apply(p.map, ops))
    start = time.monotonic()
    with deadline(DEADLINE_S):
        outcome = run_pipeline(str(p.work.main), text=text)
    TALLY.record(outcome, time.monotonic() - start, f"{p.seed.name} {ops!r}"[:300])


@pytest.mark.parametrize("group", GROUPS)
def test_mutants_survive(group: str, prepared: list[Prepared]) -> None:
    @settings(
        max_examples=examples(group),
        deadline=None,  # the SIGALRM deadline above is the hard limit
        derandomize=not LONG_EXAMPLES,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        ch = DataChooser(data)
        p = ch.choice(prepared, "seed")
        ops = mutation(ch, p.map, group)
        note(f"seed {p.seed.name}: {ops!r}")
        check(p, ops, text=group in TEXT_GROUPS)

    case()


# -- memory: huge claims under RLIMIT_AS ----------------------------------------------------------

LIMIT_BYTES = 512 << 20  # Python + numpy + the pipeline peak near 220 MB of address space

DRIVER = """
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, sys.argv[2])
from mutate import deadline, run_pipeline
out = {}
for path in sys.argv[3:]:
    try:
        with deadline(20.0):
            out[path] = run_pipeline(path)
    except BaseException as exc:  # reported, not raised: the test names every failure
        out[path] = f"CRASH {type(exc).__name__}: {exc}"[:500]
print(json.dumps(out))
"""


def test_huge_claims_bounded_memory(samples: Path, tmp_path: Path) -> None:
    pie = Pie((samples / "trivial.pie").read_bytes())
    copy_reloc = samples / "copy_reloc.nopie"
    files = []
    for name, (data, _deps, est) in claims(pie, copy_reloc.read_bytes()).items():
        path = tmp_path / name
        path.write_bytes(data)
        files.append((str(path), est))
    if (samples / "libcopydata.so").exists():
        (tmp_path / "libcopydata.so").write_bytes((samples / "libcopydata.so").read_bytes())
    r = subprocess.run(
        [sys.executable, "-c", DRIVER, str(LIMIT_BYTES), str(Path(__file__).parent)]
        + [f for f, _ in files],
        capture_output=True,
        text=True,
        errors="backslashreplace",  # names need not be UTF-8
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    outcomes = json.loads(r.stdout)
    crashes = {p: o for p, o in outcomes.items() if o.startswith("CRASH")}
    assert not crashes, crashes
    for path, expect in files:
        outcome = outcomes[path]
        if expect.code == 0:
            assert outcome == "ok", (path, outcome)
        else:
            assert outcome.startswith("error:"), (path, outcome)
            for fragment in expect.fragments:
                assert fragment in outcome, (path, outcome)


def test_limit_is_enforced_in_driver() -> None:
    """The RLIMIT_AS above is real: under it, a 1 GiB buffer cannot be allocated."""
    code = (
        "import resource, sys\n"
        "limit = int(sys.argv[1])\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "try:\n    b = bytearray(1 << 30)\nexcept MemoryError:\n    print('refused')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(LIMIT_BYTES)], capture_output=True, text=True, timeout=60
    )
    assert r.stdout.strip() == "refused"


def test_bogus_symbol_table_is_not_walked(samples: Path, tmp_path: Path) -> None:
    """.symtab with sh_entsize 1 and sh_size = the file: not a table of a symbol per byte.

    Static programs look their libc's start-up symbols up there (elf/symbols.py); walking it
    took 4 s for a 760 KB file, and grows with the file.
    """
    from elfcost.elf.reader import read_dso
    from elfcost.elf.symbols import find_symbols, linked_functions

    data = (samples / "trivial.static").read_bytes()
    m = ElfMap(data)
    shdrs = sorted({f.name.split(".")[0] for f in m.fields if f.group == "shdr"})
    symtab = next(s for s in shdrs if m.get(m.field(f"{s}.sh_type").offset, 4) == 2)
    buf = bytearray(data)
    for name, value in (("sh_entsize", 1), ("sh_size", len(data))):
        f = m.field(f"{symtab}.{name}")
        m.put(buf, f.offset, f.size, value)
    path = tmp_path / "static"
    path.write_bytes(buf)
    start = time.monotonic()
    assert find_symbols(read_dso(str(path)), ["main", "_IO_2_1_stdout_"]) == {}
    # nor for the libc functions a static program links in (cost/aftermain.py)
    assert linked_functions(read_dso(str(path)), ["malloc", "opendir"], imported=False) == ()
    assert time.monotonic() - start < 1.0
