"""Following a loader path inside a root, component by component, so no symlink leaves it.

Two file systems are walked this way: a directory on this machine (Host, a sysroot) and an
archive's index (scan.repo.ArchiveHost). The walk is the kernel's (fs/namei.c
link_path_walk): a symbolic link's target is read in place of the link, an absolute target
starts again at the root, `..` never climbs above the root, a non-directory followed by a
further component is ENOTDIR, and more than MAXSYMLINKS links in one lookup is ELOOP. Only
"what is at this path" differs between the two, and is the caller's `entry`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Literal

import msgspec

MAXSYMLINKS = 40  # Linux's limit on symbolic links followed in one lookup


class Entry(msgspec.Struct, frozen=True):
    """What is at one path of a root."""

    kind: Literal["link", "dir", "file"]  # "file": anything that is neither
    target: str = ""  # a symbolic link's target, as stored


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def follow(loader_path: str, entry: Callable[[str], Entry | None]) -> str:
    """`loader_path` with every symbolic link followed, as a loader path of the root ("/a/b").

    `entry(path)` tells what is at a loader path whose parents are all directories; None when
    nothing is (it may raise OSError itself). Raises OSError: ENOENT, ENOTDIR or ELOOP.
    """
    parts = _components(loader_path)
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        path = "/" + "/".join([*resolved, part])
        found = entry(path)
        if found is None:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if found.kind == "link":
            links += 1
            if links > MAXSYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links")
            if found.target.startswith("/"):
                resolved = []
            parts = _components(found.target) + parts
            continue
        if parts and found.kind != "dir":
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        resolved.append(part)
    return "/" + "/".join(resolved)
