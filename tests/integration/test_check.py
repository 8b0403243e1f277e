"""`elfcost check`: limits, policy files, waivers, expiry, the baseline ratchet, --root,
every output format and exit code."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from elfcost.check import gate
from elfcost.report.jsonout import load_schema

pytestmark = pytest.mark.integration


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def expected(path: str) -> int:
    r = subprocess.run(
        [sys.executable, "-m", "elfcost", "estimate", "--format", "json", path],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(r.stdout)["total"]["private_dirty"]["expected"])


def test_exit_0_within_and_1_over_the_limit() -> None:
    cost = expected("/bin/sleep")
    assert run("--max-private-dirty", str(cost), "/bin/sleep").returncode == 0
    r = run("--max-private-dirty", str(cost - 4096), "/bin/sleep")
    assert r.returncode == 1
    assert "max_private_dirty" in r.stdout and "(+4 KiB)" in r.stdout


def test_exit_2_usage_and_3_input(tmp_path: Path) -> None:
    assert run("--max-private-dirty", "lots", "/bin/sleep").returncode == 2
    bad = tmp_path / "policy.toml"
    bad.write_text("[defaults]\nmax_private_dirty = 'x'\n")
    r = run("--budget", str(bad), "/bin/sleep")
    assert r.returncode == 2 and "max_private_dirty" in r.stderr
    text = tmp_path / "notelf"
    text.write_text("#!/bin/sh\n")
    # A non-ELF file named explicitly is an input error, and 3 wins over 1.
    r = run("--max-private-dirty", "1K", str(text), "/bin/sleep")
    assert r.returncode == 3
    assert "FAIL bin/sleep" in r.stdout


def test_directory_skips_and_counts_non_elf(samples: Path, tmp_path: Path) -> None:
    d = tmp_path / "tree"
    d.mkdir()
    shutil.copy(samples / "trivial.pie", d / "prog")
    shutil.copy("/lib/x86_64-linux-gnu/libz.so.1", d / "libz.so.1")
    # PT_INTERP (it prints its version when run) and DT_SONAME: a library, not a program
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", d / "libc.so.6")
    (d / "README").write_text("not a program\n")
    # An object file (ET_REL), as a staged tree's .o or .ko files are: no loader maps it.
    (tmp_path / "f.c").write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", "-c", str(tmp_path / "f.c"), "-o", str(d / "f.o")], check=True)
    r = run("--format", "json", str(d))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("check-4"))
    assert [b["path"].rsplit("/", 1)[-1] for b in doc["binaries"]] == ["prog"]
    assert doc["skipped"] == {"non_elf": 1, "shared_libraries": 2, "not_loadable": 1}
    text = run(str(d)).stdout
    assert text.endswith(
        "skipped 1 non-ELF files, 2 shared libraries and 1 objects no loader maps\n"
    )
    # Named, it is still an input error (exit 3), as before.
    assert run(str(d / "f.o")).returncode == 3


def test_policy_rules_waivers_and_expiry(tmp_path: Path) -> None:
    cost = expected("/bin/sleep")
    policy = tmp_path / "budget.toml"
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    yesterday = dt.date.today() - dt.timedelta(days=1)
    policy.write_text(f"""
[defaults]
max_private_dirty = "1M"
max_objects = 10

[[rule]]
match = "bin/sl*"
max_private_dirty = {cost - 8192}

[[waiver]]
match = "bin/sleep"
limit = "max_private_dirty"
reason = "known: libc start-up"
expires = {tomorrow.isoformat()}
""")
    r = run("--budget", str(policy), "--format", "json", "/bin/sleep", "/bin/true")
    assert r.returncode == 0, r.stdout
    doc = json.loads(r.stdout)
    sleep = doc["binaries"][0]
    assert sleep["violations"][0]["waiver"]["reason"] == "known: libc start-up"
    # The same waiver, expired, no longer applies.
    policy.write_text(policy.read_text().replace(tomorrow.isoformat(), yesterday.isoformat()))
    assert run("--budget", str(policy), "/bin/sleep").returncode == 1
    # /bin/true does not match the rule: the 1M default applies.
    assert run("--budget", str(policy), "/bin/true").returncode == 0


def test_baseline_ratchet(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    cost = expected("/bin/sleep")
    assert run("--baseline", str(base), "--update-baseline", "/bin/sleep").returncode == 0
    assert json.loads(base.read_text()) == {"bin/sleep": cost}
    base.write_text(json.dumps({"bin/sleep": cost - 4096}))
    r = run("--baseline", str(base), "/bin/sleep")
    assert r.returncode == 1 and "baseline" in r.stdout
    # Updating never raises a value: a rise must be fixed or waived.
    run("--baseline", str(base), "--update-baseline", "/bin/sleep")
    assert json.loads(base.read_text()) == {"bin/sleep": cost - 4096}
    base.write_text(json.dumps({"bin/sleep": cost + 4096}))
    run("--baseline", str(base), "--update-baseline", "/bin/sleep")
    assert json.loads(base.read_text()) == {"bin/sleep": cost}


def test_a_baseline_with_a_byte_order_mark_or_a_text_for_a_number(tmp_path: Path) -> None:
    # An editor's byte order mark is skipped (RFC 8259 lets a reader ignore it), as diff does;
    # a \udcXX escape (a byte that is not UTF-8) where a number belongs is the validation
    # error it is, with its path, not msgspec failing to print it (an internal error before).
    base = tmp_path / "baseline.json"
    cost = expected("/bin/sleep")
    base.write_bytes(b"\xef\xbb\xbf" + json.dumps({"bin/sleep": cost - 4096}).encode())
    r = run("--baseline", str(base), "/bin/sleep")
    assert r.returncode == 1 and "baseline" in r.stdout, r.stderr
    base.write_text('{"bin/sleep": "\\udc80"}')
    r = run("--baseline", str(base), "/bin/sleep")
    assert r.returncode == 3
    assert r.stderr == (
        f"elfcost: error: {base}: not an elfcost baseline document: "
        "Expected `int`, got `str` - at `$[...]`\n"
    )


def test_a_baseline_that_cannot_be_written_is_exit_4(tmp_path: Path) -> None:
    """--update-baseline into a directory that does not exist: one line naming the file,
    exit 4 (output could not be written), no file left behind; into one that does, the
    baseline is written whole (a temporary file renamed over it: nothing else is left)."""
    missing = tmp_path / "missing" / "baseline.json"
    r = run("--baseline", str(missing), "--update-baseline", "/bin/sleep")
    assert r.returncode == 4, r.stderr
    why = "writing the baseline: No such file or directory"
    assert r.stderr == f"elfcost: error: {missing}: {why}\n"
    assert not missing.parent.exists()
    base = tmp_path / "baseline.json"
    assert run("--baseline", str(base), "--update-baseline", "/bin/sleep").returncode == 0
    assert os.listdir(tmp_path) == ["baseline.json"]


def test_junit(samples: Path) -> None:
    r = run(
        "--format",
        "junit",
        "--no-textrel",
        "--max-objects",
        "3",
        str(samples / "textrel.pie"),
        str(samples / "trivial.pie"),
    )
    assert r.returncode == 1
    suite = ET.fromstring(r.stdout)
    cases = {(c.get("classname", "").rsplit("/", 1)[-1], c.get("name")): c for c in suite}
    assert len(cases) == 4
    assert cases[("textrel.pie", "no_textrel")].find("failure") is not None
    assert cases[("textrel.pie", "max_objects")].find("failure") is not None  # 4 objects
    assert cases[("trivial.pie", "no_textrel")].find("failure") is None
    assert suite.get("failures") == "2"


def test_junit_reports_inputs_that_could_not_be_checked(samples: Path, tmp_path: Path) -> None:
    """A CI report must not look green when an input was never checked: each one is a test
    case with an <error>, counted in errors="N", and the XML stays well-formed whatever its
    name holds (a control character is written as a backslash escape, as in error lines)."""
    bad = tmp_path / "two\x01parts"
    bad.write_bytes(b"\x7fELF\x02")  # ELF magic, then nothing
    r = run("--format", "junit", "--max-objects", "9", str(samples / "trivial.pie"), str(bad))
    assert r.returncode == 3, r.stderr
    suite = ET.fromstring(r.stdout)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    (case,) = (c for c in suite if c.find("error") is not None)
    assert case.get("name") == "analysis"
    assert case.get("classname") == str(tmp_path / "two\\x01parts")
    error = case.find("error")
    assert error is not None and error.get("message", "").startswith(str(tmp_path / "two\\x01"))
    # The same line is on stderr.
    assert error.get("message", "") in r.stderr


def test_root_staged_tree(tmp_path: Path) -> None:
    root = tmp_path / "destdir"
    (root / "usr/bin").mkdir(parents=True)
    (root / "lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "lib64").mkdir()
    shutil.copy("/bin/sleep", root / "usr/bin/sleep")
    for lib in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(f"/lib/x86_64-linux-gnu/{lib}", root / "lib/x86_64-linux-gnu" / lib)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    r = run("--root", str(root), "--strict", "--format", "json", str(root / "usr/bin"))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert [b["path"] for b in doc["binaries"]] == ["usr/bin/sleep"]
    (root / "lib/x86_64-linux-gnu/libc.so.6").unlink()
    r = run("--root", str(root), "--strict", str(root / "usr/bin"))
    assert r.returncode == 1 and "libc.so.6" in r.stdout


def test_policy_parser_units() -> None:
    p = gate.load_policy(
        '[defaults]\nmax_private_dirty = "1.5MiB"\n[[rule]]\nmatch = "/a/*"\nmax_objects = 3\n'
    )
    assert p.defaults.max_private_dirty == 1572864
    assert p.limits_for("a/x").max_objects == 3 and p.limits_for("b/x").max_objects is None
    for bad in (
        "[x]\n",
        "[[waiver]]\nmatch='a'\n",
        "[[waiver]]\nmatch='a'\nreason='r'\nlimit='nope'\n",
        "[[rule]]\nmax_objects=1\n",
    ):
        with pytest.raises(gate.PolicyError):
            gate.load_policy(bad)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        # A misspelt key would waive every limit, or keep the waiver for ever.
        ("[[waiver]]\nmatch='*'\nreason='r'\nlimits='max_fleet'\n", "unknown key(s) limits"),
        ("[[waiver]]\nmatch='*'\nreason='r'\nexpire=2020-01-01\n", "unknown key(s) expire"),
        ("[baseline]\nfiles='b.json'\n", "[baseline]: unknown key(s) files"),
        ("[defaults]\ninstances=true\nmax_fleet='1M'\n", "instances: True is not a positive"),
        ("[defaults]\nmax_objects=100000000000000000\n", "is more than 1,000,000"),
    ],
)
def test_a_misspelt_or_mistyped_policy_key_is_a_usage_error(
    tmp_path: Path, text: str, why: str
) -> None:
    policy = tmp_path / "budget.toml"
    policy.write_text(text)
    r = run("--budget", str(policy), "/bin/true")
    assert r.returncode == 2 and f"{policy}: " in r.stderr and why in r.stderr, r.stderr
    assert r.stdout == ""  # nothing checked under a policy that does not say what it means


@pytest.mark.parametrize("text", ['["usr/bin/a"]', '{"usr/bin/a": "big"}', "{oops"])
def test_a_malformed_baseline_is_one_line_and_exit_3(
    samples: Path, tmp_path: Path, text: str
) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(text)
    r = run("--baseline", str(baseline), str(samples / "trivial.pie"))
    assert r.returncode == 3, r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"elfcost: error: {baseline}: ")


def programs_and_a_broken_one(samples: Path, tmp_path: Path) -> tuple[Path, str]:
    d = tmp_path / "tree"
    d.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(samples / "trivial.pie", d / name)
    (d / "broken").write_bytes(b"\x7fELF\x02")
    return d, f"elfcost: error: {d / 'broken'}: ELF header: file ends inside e_ident"


def test_piped_stderr_gets_no_progress(samples: Path, tmp_path: Path) -> None:
    d, error = programs_and_a_broken_one(samples, tmp_path)
    r = run(str(d))  # stderr is a pipe
    assert r.returncode == 3 and r.stdout.count("ok ") == 3
    assert r.stderr == error + "\n"  # the error, and nothing drawn


def test_a_terminal_gets_a_progress_bar_and_whole_error_lines(
    samples: Path, tmp_path: Path
) -> None:
    d, error = programs_and_a_broken_one(samples, tmp_path)
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "elfcost", "check", str(d)],
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(slave)
        chunks = []
        while True:  # until the child has gone (EIO on Linux)
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert p.wait(timeout=120) == 3
        assert p.stdout is not None and p.stdout.read().decode().count("ok ") == 3
    finally:
        os.close(master)
    err = b"".join(chunks).decode()
    assert "checking" in err and "3/3" in err  # the bar, complete at the end
    assert err.count(error) == 1 and (error + "\r\n") in err  # one whole line past it
    assert err.endswith("\x1b[2K") or "\x1b[2K" in err.rsplit(error, 1)[1]  # then erased


@pytest.mark.parametrize("role", ["--budget", "--baseline"])
def test_a_fifo_as_budget_or_baseline_is_refused_without_blocking(
    samples: Path, tmp_path: Path, role: str
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run(role, str(fifo), str(samples / "trivial.pie"))  # a blocking open would hang here
    assert r.returncode == 3, r.stderr
    assert r.stderr == f"elfcost: error: {fifo}: not a regular file\n"


def test_an_exceeded_memory_limit_names_its_biggest_cause(samples: Path) -> None:
    # tls.pie: 120 KB of thread-local data, the largest part by far (a process-wide item).
    r = run("--max-private-dirty", "8K", "--max-objects", "1", str(samples / "tls.pie"))
    assert r.returncode == 1
    memory, objects = (line for line in r.stdout.splitlines() if line.startswith("     "))
    assert "max_private_dirty" in memory and "; biggest cause: [tls], " in memory
    assert "max_objects" in objects and "biggest cause" not in objects
    # trivial.pie: nothing of its own; libc's relocated pages are the largest part.
    r = run("--format", "json", "--max-fleet", "8K", str(samples / "trivial.pie"))
    (violation,) = json.loads(r.stdout)["binaries"][0]["violations"]
    assert violation["limit"] == "max_fleet"
    assert re.search(
        r"; biggest cause: relocation, \d+ KiB \(\d+ pages\) in /\S+/libc\.so\.6: The loader ",
        violation["why"],
    ), violation["why"]


def test_the_biggest_cause_goes_with_memory_limits_only() -> None:
    facts = gate.Facts(
        path="usr/bin/a",
        private_dirty=8192,
        private_dirty_high=8192,
        shared_clean=0,
        objects=9,
        textrel=(),
        missing=(),
        biggest="relocation, 8 KiB (2 pages) in usr/bin/a",
    )
    policy = gate.Policy(defaults=gate.Limits(max_private_dirty=4096, max_objects=1))
    verdict = gate.evaluate(facts, policy, baseline={"usr/bin/a": 0})
    whys = {v.limit: v.why for v in verdict.violations}
    assert whys["max_private_dirty"].endswith(
        "; biggest cause: relocation, 8 KiB (2 pages) in usr/bin/a"
    )
    assert whys["baseline"].endswith("(2 pages) in usr/bin/a")
    assert whys["max_objects"] == "objects the loader maps"
