"""One walk inside a root for a sysroot on disk (Host) and an archive's index (ArchiveHost):
links followed in place, absolute ones re-anchored at the root, `..` stopped at it, ELOOP after
40 links, ENOTDIR below a file; the same answers from a real directory and from a table."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from elfcost.resolve.confined import MAXSYMLINKS, Entry, follow
from elfcost.resolve.host import Host

# loader path -> symlink target ("" for a directory, None for a regular file)
TREE: dict[str, str | None] = {
    "/lib": "",
    "/lib/libc.so.6": None,
    "/lib/abs": "/lib/libc.so.6",
    "/lib/rel": "libc.so.6",
    "/lib/up": "../../../../lib/libc.so.6",
    "/lib/out": "/../../etc",
    "/lib/dir": "/lib",
    "/lib/loop_a": "loop_b",
    "/lib/loop_b": "loop_a",
    "/etc": "",
}
CHAIN = MAXSYMLINKS  # /c0 -> /c1 -> ... -> /c40 -> /lib: 41 links, one too many
TREE |= {f"/c{i}": f"/c{i + 1}" for i in range(CHAIN)} | {f"/c{CHAIN}": "/lib"}

CASES: list[tuple[str, str | int]] = [
    ("/lib/abs", "/lib/libc.so.6"),
    ("/lib/rel", "/lib/libc.so.6"),
    ("/lib/up", "/lib/libc.so.6"),
    ("/lib/out", "/etc"),
    ("/lib/dir/./dir/libc.so.6", "/lib/libc.so.6"),
    ("/../..", "/"),
    ("/c1/libc.so.6", "/lib/libc.so.6"),  # 40 links: the most the kernel follows
    ("/c0/libc.so.6", errno.ELOOP),
    ("/lib/loop_a", errno.ELOOP),
    ("/lib/libc.so.6/x", errno.ENOTDIR),
    ("/lib/none", errno.ENOENT),
]


def table_entry(path: str) -> Entry | None:
    if path not in TREE:
        return None
    target = TREE[path]
    if target is None:
        return Entry("file")
    return Entry("link", target) if target else Entry("dir")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("root")
    for path, target in TREE.items():
        here = r / path.lstrip("/")
        if target is None:
            here.write_bytes(b"\x7fELF")
        elif target:
            here.symlink_to(target)
        else:
            here.mkdir()
    return r


@pytest.mark.parametrize(("path", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_table_and_a_directory_walk_alike(root: Path, path: str, expected: str | int) -> None:
    if isinstance(expected, int):
        with pytest.raises(OSError) as exc:
            follow(path, table_entry)
        assert exc.value.errno == expected
        assert Host(root=str(root)).locate(path) is None
    else:
        assert follow(path, table_entry) == expected
        host = Host(root=str(root))
        assert host.locate(path) is not None
        assert host.realpath(path) == expected


def test_a_file_has_no_parent_through_it(root: Path) -> None:
    # The kernel's rule (fs/namei.c link_path_walk: ENOTDIR before `..` too), in an archive's
    # index, in a root directory, and on this machine, where the kernel itself looks it up.
    with pytest.raises(OSError) as exc:
        follow("/lib/libc.so.6/..", table_entry)
    assert exc.value.errno == errno.ENOTDIR
    assert Host(root=str(root)).locate("/lib/libc.so.6/../libc.so.6") is None
    assert Host(root=str(root)).locate("/lib/libc.so.6") is not None
    assert Host().locate(str(root / "lib" / "libc.so.6" / ".." / "libc.so.6")) is None
