"""The local pool imports what its workers need before it forks the first of them
(scan/engine.py Work.preload, scan/run.py _preload), and only when it starts one."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Sequence

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
