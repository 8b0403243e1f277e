"""Which C library a static executable carries (it has no PT_INTERP to say so).

glibc embeds its banner ("GNU C Library ...") and the GLIBC_TUNABLES name; Go binaries carry a
.go.buildinfo section or its magic; anything else static is taken to be musl, which embeds no
banner. The file is searched through mmap, so memory stays at the page cache's.
"""

from __future__ import annotations

import mmap

from elfcost.elf.symbols import has_section
from elfcost.model import Dso


def static_libc(dso: Dso) -> str:
    """ "glibc", "musl" or "none" (Go, and other programs without a C library)."""
    if has_section(dso, ".go.buildinfo"):
        return "none"
    try:
        with open(dso.file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m.find(b"GNU C Library") >= 0 or m.find(b"GLIBC_TUNABLES") >= 0:
                return "glibc"
            if m.find(b"Go buildinf:") >= 0:
                return "none"
    except (OSError, ValueError):
        return "none"
    return "musl"
