"""The local pool imports what its workers need before it forks the first of them
(scan/engine.py Work.preload, scan/run.py _preload), and only when it starts one."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from elfcost.scan.engine import LocalPool, Work, mp_context


def _square(chunk: Sequence[int]) -> list[int]:
    return [x * x for x in chunk]


def _pool(calls: list[int]) -> LocalPool[int, int, None]:
    work: Work[int, int, None] = Work(
        config=None,
        init=lambda config: None,
        run=_square,
        remote=lambda config, chunk: _square(chunk),
        died=lambda chunk, why: [-1 for _ in chunk],
        advance=lambda n: None,
        # How many workers were running when it was called.
        preload=lambda: calls.append(len(multiprocessing.active_children())),
    )
    return LocalPool(work, jobs=2, size=2, lookahead=64)


def test_preload_runs_once_before_the_first_worker_starts() -> None:
    if mp_context().get_start_method() != "fork":
        pytest.skip("workers are spawned here: they import for themselves")
    calls: list[int] = []
    pool = _pool(calls)
    items = list(range(20))
    try:
        for x in items:
            pool.add(x)
        assert [pool.take(x, block=True) for x in items] == [x * x for x in items]
    finally:
        pool.close()
    assert calls == [0]


def test_a_pool_that_starts_no_worker_imports_nothing_for_them() -> None:
    calls: list[int] = []
    _pool(calls).close()  # a scan whose every file was in the cache
    assert calls == []


def test_the_preload_leaves_the_environment_as_it_was() -> None:
    code = (
        "import os, sys; from elfcost.scan import run; run._preload(); "
        "print('numpy' in sys.modules, 'capstone' in sys.modules, "
        "os.environ.get('OPENBLAS_NUM_THREADS'), len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    # numpy's OpenBLAS loaded with one thread: the process has no other.
    assert out.stdout.split() == ["True", "True", "None", "1"]


# A worker that dies in the middle of writing its result: half a message in the result pipe,
# then nothing (it sleeps until killed). It tells the test when it has written (a file).
_HALF_A_RESULT = """
import os, sys, time
from elfcost.scan.engine import LocalPool, Work

marker = sys.argv[1]

def run(chunk):
    # Forked: this process has the pool's executor, and the write end of its result pipe.
    writer = POOL.lanes[0].executor._result_queue._writer
    writer._send((65536).to_bytes(4, "big") + b"half a result")  # 13 of 65,536 bytes
    open(marker, "w").close()
    time.sleep(300)
    return []

work = Work(
    config=None, init=lambda config: None, run=run, remote=lambda config, chunk: [],
    died=lambda chunk, why: [None for _ in chunk], advance=lambda n: None,
)
POOL = LocalPool(work, jobs=1, size=1, lookahead=8)
POOL.add(1)
deadline = time.monotonic() + 60
while not os.path.exists(marker):  # polled: the worker has written half its result
    assert time.monotonic() < deadline, "the worker never wrote"
    time.sleep(0.01)
POOL.abort()
print("aborted", flush=True)
"""


def test_abort_ends_a_worker_killed_in_the_middle_of_its_result(tmp_path: Path) -> None:
    # The executor's thread waited for the rest of the message for ever (this process holds
    # the pipe's write end too), and abort() waited for the thread: a SIGTERM in the middle of
    # a scan hung it about once in twenty. abort() now closes the write end once every worker
    # is reaped, and returns, and the process exits.
    if mp_context().get_start_method() != "fork":
        pytest.skip("the test's worker writes through a pipe end it inherits by fork")
    script = tmp_path / "half.py"
    script.write_text(_HALF_A_RESULT)
    p = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "written")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail("abort() did not return, or the process did not exit (120 s)")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # the worker, if abort() left it
    assert p.returncode == 0 and out == "aborted\n", err
