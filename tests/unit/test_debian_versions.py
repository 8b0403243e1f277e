"""scan/repo.py compare_versions against dpkg's own order (dpkg --compare-versions)."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest

from elfcost.scan.repo import compare_versions

VERSIONS = (
    "1.0",
    "1.0~rc1",
    "1.0~~",
    "1.0+",
    "1.0a",
    "1.00",
    "1:0.1",
    "0:1.0",
    "2.36-9+deb12u7",
    "2.36-9+deb12u14",
    "1.5.4+dfsg2-5",
    "1.5.4+dfsg2-5+deb12u1",
    "156.0.8078.129-1~deb12u1",
    "1:2.66-4+deb12u3+b1",
    "590-2.1~deb12u2",
    "1.2.13.dfsg-1",
    "1.2-3-4",
)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_the_order_is_dpkgs() -> None:
    for a, b in itertools.combinations(VERSIONS, 2):
        ours = compare_versions(a, b)
        lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", a, "eq", b]).returncode == 0
        assert (ours < 0, ours == 0) == (lt, eq), (a, b, ours)
