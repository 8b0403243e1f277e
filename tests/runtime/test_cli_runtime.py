"""`elfcost measure` and `elfcost validate` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from elfcost.report.jsonout import load_schema

pytestmark = pytest.mark.runtime


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", *args], capture_output=True, text=True, timeout=120
    )


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                out.append(int(entry))
    return out


def test_validate_sleep_json() -> None:
    r = run("validate", "--format", "json", "/bin/sleep", "--", "100")
    assert r.returncode == 0, r.stdout + r.stderr
    docs = json.loads(r.stdout)  # one input, one JSON document: the stops' array
    assert [d["stop"] for d in docs] == ["entry", "idle"]
    for d in docs:
        jsonschema.validate(d, load_schema("comparison-2"))
    entry = docs[0]
    assert entry["ok"] and all(o["exact"] for o in entry["objects"])


def test_a_program_that_exits_at_once_is_compared_at_its_entry_point() -> None:
    text = run("validate", "/bin/true")
    assert text.returncode == 0, text.stderr
    assert "/bin/true: predicted vs measured at entry" in text.stdout
    assert "idle: not compared: /bin/true: running: exited with status 0" in text.stdout
    r = run("validate", "--format", "json", "/bin/true")
    assert r.returncode == 0
    assert [d["stop"] for d in json.loads(r.stdout)] == ["entry"]
    assert "idle: not compared" in r.stderr


def test_validate_reports_program_writes(samples: Path) -> None:
    r = run("validate", "--format", "json", str(samples / "bss_touched.pie"))
    idle = json.loads(r.stdout)[1]
    exe = idle["objects"][0]
    # main writes 5 bss pages: dirty but not predicted, named as program writes.
    assert len(exe["unpredicted_dirty"]) == 5
    assert all("program write" in p["why"] for p in exe["unpredicted_dirty"])
    # cause stays a registry name: the possible-write pages the model had there.
    assert {p["cause"] for p in exe["unpredicted_dirty"]} == {"possible-write"}
    assert r.returncode == 0  # still within [low, high]


def test_validate_exit_1_outside_tolerance() -> None:
    """curl's libcrypto and libgnutls initialisers write .bss pages before the entry point
    that their code does not prove: each is predicted one page at no address. libcrypto
    writes one (matched: exact), libgnutls two (one not predicted), so with the default
    tolerance of 0 validation fails, on libgnutls alone."""
    if not os.path.exists("/usr/bin/curl"):
        pytest.skip("curl not installed")
    r = run("validate", "--format", "json", "/usr/bin/curl", "--", "-K", "-")
    assert r.returncode == 1
    entry = json.loads(r.stdout)[0]
    assert not entry["ok"]
    by_name = {os.path.basename(o["path"]): o for o in entry["objects"]}
    crypto, gnutls = by_name["libcrypto.so.3"], by_name["libgnutls.so.30"]
    assert crypto["exact"] and crypto["predicted_pages"] == crypto["measured_pages"]
    assert len(gnutls["unpredicted_dirty"]) == 1 and not gnutls["predicted_clean"]
    assert [o for o in entry["objects"] if not o["exact"]] == [gnutls]


def test_measure_entry_json_schema_and_paths() -> None:
    r = run("measure", "--format", "json", "--at", "entry", "--", "/bin/cat")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, load_schema("measurement-1"))
    est = json.loads(run("estimate", "--format", "json", "/bin/cat").stdout)
    assert [o["path"] for o in doc["objects"]][:3] == [o["path"] for o in est["objects"]]
    assert doc["total"]["private_dirty"] == doc["rollup"]["Private_Dirty"]  # reconciles


def test_measure_pid_of_a_live_process() -> None:
    p = subprocess.Popen(["/bin/sleep", "30"])
    try:
        r = run("measure", "--format", "json", "--pid", str(p.pid))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["pid"] == p.pid and doc["objects"][0]["path"].endswith("sleep")
    finally:
        p.kill()
        p.wait()


def test_measure_usage_and_bad_pid() -> None:
    assert run("measure").returncode == 2
    assert run("measure", "--pid", "999999999").returncode == 2  # above PID_MAX_LIMIT
    r = run("measure", "--pid", "4194304")  # pids stay below pid_max, at most this
    assert r.returncode == 3 and r.stderr.startswith("elfcost: error: ")


def test_nothing_left_behind() -> None:
    before = set(children_of(os.getpid()))
    run("measure", "--at", "entry", "--", "/bin/sleep", "100")
    run("measure", "--", "/bin/cat")
    run("measure", "--timeout", "0.5", "--delay", "5", "--", "/bin/sleep", "100")
    assert set(children_of(os.getpid())) == before
    procs = subprocess.run(["ps", "-eo", "stat,args"], capture_output=True, text=True).stdout
    assert "/bin/sleep 100" not in procs


def test_measure_several_pids_grouped() -> None:
    procs = [subprocess.Popen(["/bin/sleep", "30"]) for _ in range(2)]
    try:
        args = [a for p in procs for a in ("--pid", str(p.pid))]
        r = run("measure", "--format", "json", *args)
        assert r.returncode == 0, r.stderr
        docs = [json.loads(line) for line in r.stdout.splitlines()]
        assert [d["schema"] for d in docs] == ["elfcost.measurement/1"] * 2 + [
            "elfcost.measurement-group/1"
        ]
        g = docs[-1]
        # Private memory summed over the processes, shared memory (PSS) counted once.
        assert g["total"]["private_dirty"] == sum(d["total"]["private_dirty"] for d in docs[:2])
        assert g["total"]["uss"] <= g["total"]["pss"]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_measure_capture_from_the_documented_script(tmp_path: Path) -> None:
    from elfcost.runtime.measure import CAPTURE_SCRIPT

    p = subprocess.Popen(["/bin/sleep", "30"])
    try:
        d = tmp_path / "cap"
        script = f"P={p.pid} PAGE={os.sysconf('SC_PAGE_SIZE')} D={d}\n{CAPTURE_SCRIPT}"
        subprocess.run(["sh", "-c", script], check=True, capture_output=True)
        r = run("measure", "--format", "json", "--capture", str(d))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["pid"] == p.pid and doc["total"]["private_dirty"] > 0
        r = run("measure", "--format", "json", "--smaps", str(d / "smaps"))
        assert r.returncode == 0, r.stderr
    finally:
        p.kill()
        p.wait()


def test_measure_env_and_clean_env() -> None:
    """--env reaches the program; --clean-env drops the rest of elfcost's environment."""
    script = 'test "$ELFCOST_T" = 1 && test -z "$HOME_SEEN" && exec sleep 100'
    ok = run(
        "measure",
        "--clean-env",
        "--env",
        "ELFCOST_T=1",
        "--format",
        "json",
        "--",
        "/bin/sh",
        "-c",
        script,
    )
    assert ok.returncode == 0, ok.stderr
    # Without the variable the shell exits at once: nothing to measure, an input error.
    r = run("measure", "--clean-env", "--", "/bin/sh", "-c", script)
    assert r.returncode == 3 and r.stderr.startswith("elfcost: error: ")
    env = os.environ | {"HOME_SEEN": "x"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "elfcost",
            "measure",
            "--env",
            "ELFCOST_T=1",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 3  # inherited HOME_SEEN: the environment was passed on
