"""The hostile-input corpus (make_corpus.py) through the command line, as a user runs it.

Each case names one input and, for `deps` and `estimate`, the exit code and the text the
output must contain. All inputs of a command go through one multi-file run (the good ones must
still be analysed, the bad ones reported in one line each, exit 3); a representative set (every
case with ELFCOST_FUZZ_EXAMPLES set) also runs alone, to check its own exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from make_corpus import CHAIN_DEPTH, NOT_READ, Case, Expect, build, lib_name
from mutate import LONG_EXAMPLES

COMMANDS = ("deps", "estimate")
# Run alone in the bounded run: one of each kind of input (every case with
# ELFCOST_FUZZ_EXAMPLES set).
ALONE = {
    "empty",
    "truncated_at_00063",
    "directory",
    "fifo",
    "dev_zero",
    "symlink_loop",
    "claim_relasz_2e60",
    "loads_unsorted",
    "root_program_symlink_out",
}


def elfcost(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",  # names need not be UTF-8
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def corpus(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    out = tmp_path_factory.mktemp("corpus")
    return {c.name: c for c in build(out, samples)}


def expect(case: Case, command: str) -> Expect:
    e: Expect = getattr(case, command)
    return e


def no_crash(r: subprocess.CompletedProcess[str]) -> None:
    for text in (r.stderr, r.stdout):
        assert "internal error" not in text, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
    lines = r.stderr.splitlines()
    assert all(line.startswith("elfcost: error: ") for line in lines), r.stderr[-3000:]


def _heads(case: Case, lines: list[str]) -> list[str]:
    """The stderr lines about this input (its path as given, or as found in the root)."""
    heads = [f"elfcost: error: {case.path}: "]
    if case.options:
        root = case.options[case.options.index("--root") + 1]
        heads.append(f"elfcost: error: {root.rstrip('/')}{case.path}: ")
    return [line for line in lines if line.startswith(tuple(heads))]


def error_line(r: subprocess.CompletedProcess[str], case: Case) -> str:
    lines = _heads(case, r.stderr.splitlines())
    assert len(lines) == 1, (case.name, r.stderr[-3000:])
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_multi_file_runs(command: str, corpus: dict[str, Case]) -> None:
    """Every case in one run per set of options: one line per bad input, the good analysed."""
    groups: dict[tuple[str, ...], list[Case]] = defaultdict(list)
    for case in corpus.values():
        if case.name != "chain":
            groups[tuple(case.options)].append(case)
    for options, cases in groups.items():
        r = elfcost(command, "--format", "json", *options, *(c.path for c in cases))
        no_crash(r)
        bad = [c for c in cases if expect(c, command).code == 3]
        good = [c for c in cases if expect(c, command).code == 0]
        assert r.returncode == (3 if bad else 0), r.stderr[-3000:]
        refused = {c.name for c in cases if any(_heads(c, r.stderr.splitlines()))}
        assert refused == {c.name for c in bad}, (refused ^ {c.name for c in bad}, r.stderr)
        assert len(r.stderr.splitlines()) == len(bad), r.stderr[-3000:]
        for case in bad:
            line = error_line(r, case)
            for fragment in expect(case, command).fragments:
                assert fragment in line, (case.name, fragment, line)
        # JSON Lines are compact; the fragments are written as one indented document reads.
        parsed = [json.loads(line) for line in r.stdout.splitlines()]
        # Each refused input has its elfcost.error/1 line in its place.
        errors = {d["path"] for d in parsed if d["schema"] == "elfcost.error/1"}
        assert errors == {c.path for c in bad}, (command, options)
        docs = {d["binary"]: json.dumps(d) for d in parsed if d["schema"] != "elfcost.error/1"}
        assert sorted(docs) == sorted(c.path for c in good), (command, options)
        for case in good:
            for fragment in expect(case, command).fragments:
                assert fragment in docs[case.path], (case.name, fragment)
            assert NOT_READ not in docs[case.path], (case.name, "a file outside the root")


@pytest.mark.parametrize("command", COMMANDS)
def test_cases_alone(command: str, corpus: dict[str, Case]) -> None:
    """Each case in a run of its own: its exit code, its line, in text output."""
    names = [n for n in corpus if n != "chain"] if LONG_EXAMPLES else sorted(ALONE)
    failures = []
    for name in names:
        case = corpus[name]
        e = expect(case, command)
        # A FIFO must not block: a short timeout makes a hang a failure, not a stuck run.
        r = elfcost(command, *case.options, case.path, timeout=60)
        no_crash(r)
        if r.returncode != e.code:
            failures.append((name, r.returncode, r.stderr[-500:]))
        elif e.code == 3 and not all(f in error_line(r, case) for f in e.fragments):
            failures.append((name, "fragment", r.stderr[-500:]))
    assert not failures, failures


def test_chain_10000_deep(corpus: dict[str, Case]) -> None:
    """A 10,000-deep DT_NEEDED chain: every object loaded, in a few seconds.

    `deps` walks all of it; `estimate` too in the long run, the last 1,000 in the bounded one.
    """
    case = corpus["chain"]
    start = 0 if LONG_EXAMPLES else CHAIN_DEPTH - 1000
    runs = [("deps", case.path, CHAIN_DEPTH)]
    runs.append(("estimate", str(Path(case.path).with_name(lib_name(start))), CHAIN_DEPTH - start))
    for command, path, depth in runs:
        began = time.monotonic()
        r = elfcost(command, "--format", "json", path, timeout=240)
        took = time.monotonic() - began
        no_crash(r)
        assert r.returncode == 0, r.stderr[-2000:]
        doc = json.loads(r.stdout)
        assert len(doc["objects"]) == depth + 1  # the chain and the interpreter
        assert [m["needed"] for m in doc["missing"]] == [lib_name(CHAIN_DEPTH)]
        assert took < 120, f"{command}: {took:.1f} s"


def test_chain_10000_deep_text(corpus: dict[str, Case]) -> None:
    r = elfcost("deps", corpus["chain"].path, timeout=240)
    no_crash(r)
    assert r.returncode == 0


def test_unreadable_file(samples: Path, tmp_path: Path) -> None:
    """chmod 000: refused with the system's reason. Root reads anything, so the run drops
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (as root without them, mode bits apply)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0:
        wrapper: list[str] = []
    elif setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop privileges")
    else:
        caps = "-dac_override,-dac_read_search"
        wrapper = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]
    exe = tmp_path / "ownlib.pie"
    shutil.copyfile(samples / "ownlib.pie", exe)
    lib = tmp_path / "libown.so"
    shutil.copyfile(samples / "libown.so", lib)
    unreadable = tmp_path / "unreadable.pie"
    shutil.copyfile(samples / "trivial.pie", unreadable)
    unreadable.chmod(0)
    lib.chmod(0)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*wrapper, sys.executable, "-m", "elfcost", *args],
            capture_output=True,
            text=True,
            errors="backslashreplace",  # names need not be UTF-8
            timeout=120,
        )

    probe = run("deps", "--format", "json", str(unreadable))
    if probe.returncode == 0:
        pytest.skip("privileges could not be dropped here: the chmod 000 file was readable")
    assert probe.returncode == 3
    assert probe.stderr == f"elfcost: error: {unreadable}: Permission denied\n"
    for command in COMMANDS:
        r = run(command, "--format", "json", str(exe))
        no_crash(r)
        assert r.returncode == 0, r.stderr
        missing = json.loads(r.stdout)["missing"]
        assert missing[0]["needed"] == "libown.so"
        assert "Permission denied" in [a["outcome"] for a in missing[0]["tried"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_non_utf8_name_in_text_output(command: str, corpus: dict[str, Case]) -> None:
    """As on a machine whose locale makes Python's stdout strict UTF-8 (en_US.UTF-8)."""
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", command, corpus["needed_not_utf8"].path],
        capture_output=True,
        text=True,
        errors="backslashreplace",  # names need not be UTF-8
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )
    no_crash(r)
    assert r.returncode == 0
