"""Which C library a static executable carries (it has no PT_INTERP to say so).

glibc embeds its banner ("GNU C Library ...") and the GLIBC_TUNABLES name; Go binaries carry a
.go.buildinfo section or its magic; anything else static is taken to be musl, which embeds no
banner. The file is searched through mmap, so memory stays at the page cache's.
"""

from __future__ import annotations

import mmap

from elfcost.elf.reader import opened
from elfcost.elf.symbols import has_section
from elfcost.errors import ElfcostError
from elfcost.model import Dso


def static_libc(dso: Dso, fd: int | None = None) -> str:
    """ "glibc", "musl" or "none" (Go, and other programs without a C library). `fd`: the
    file, when the caller has it open (reader.opened)."""
    if has_section(dso, ".go.buildinfo"):
        return "none"
    try:
        with opened(dso.file, fd) as (fd, _), mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as m:
            if m.find(b"GNU C Library") >= 0 or m.find(b"GLIBC_TUNABLES") >= 0:
                return "glibc"
            if m.find(b"Go buildinf:") >= 0:
                return "none"
    except (OSError, ValueError, ElfcostError):
        return "none"
    return "musl"
