"""Settings of elfcost's own processes: numpy's OpenBLAS with one thread (elfcost.own_process),
and none of it passed on to a program elfcost starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import elfcost
from elfcost.runtime.measure import environment

THREADS = "import os, numpy; print(len(os.listdir('/proc/self/task')))"


def _threads(code: str, **env: str) -> int:
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_numpy_loads_with_one_thread_in_elfcost_s_own_processes() -> None:
    spinning = _threads(THREADS)
    if spinning == 1:
        pytest.skip("numpy starts no BLAS threads here (one CPU, or a BLAS without them)")
    assert _threads(f"import elfcost; elfcost.own_process(); {THREADS}") == 1


def test_the_user_s_own_setting_is_kept() -> None:
    code = (
        "import os, elfcost; elfcost.own_process(); "
        "print(os.environ['OPENBLAS_NUM_THREADS'], sorted(elfcost.ADDED_ENVIRONMENT), 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "OPENBLAS_NUM_THREADS": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["3", "[]", "0"]


def test_a_started_program_gets_the_environment_elfcost_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setattr(elfcost, "ADDED_ENVIRONMENT", set())
    elfcost.own_process()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert "OPENBLAS_NUM_THREADS" not in environment([])
    assert environment(["OPENBLAS_NUM_THREADS=4"])["OPENBLAS_NUM_THREADS"] == "4"
    # The user's own value is the program's too.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setattr(elfcost, "ADDED_ENVIRONMENT", set())
    elfcost.own_process()
    assert environment([])["OPENBLAS_NUM_THREADS"] == "2"
