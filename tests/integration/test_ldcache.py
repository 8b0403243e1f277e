"""/etc/ld.so.cache as parsed by elfcost, against `ldconfig -p` on the same file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from elfcost.resolve import ldcache

pytestmark = pytest.mark.integration


def test_host_cache_matches_ldconfig() -> None:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not Path("/etc/ld.so.cache").exists() or not Path(ldconfig).exists():
        pytest.skip("no ld.so.cache or ldconfig on this machine")
    out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=True).stdout
    expected = set()
    for line in out.splitlines()[1:]:
        m = re.match(r"\s+(\S+) \(([^)]*)\) => (\S+)", line)
        if m:
            expected.add((m.group(1), m.group(3)))
    cache = ldcache.parse(Path("/etc/ld.so.cache").read_bytes())
    got = {(e.soname, e.path) for name in cache.raw for e in cache.entries(name)}
    assert got == expected


def test_rejects_garbage() -> None:
    with pytest.raises(ldcache.CacheFormatError):
        ldcache.parse(b"not a cache at all")
    with pytest.raises(ldcache.CacheFormatError):
        ldcache.parse(ldcache.NEW_MAGIC + b"\0" * 4)
