"""Parse the ELF auxiliary vector (/proc/PID/auxv; pure: bytes in, dict out).

The kernel writes it in `fs/binfmt_elf.c create_elf_tables` as (a_type, a_val) pairs of native
words, ending with AT_NULL. /proc/PID/auxv is a copy of `mm->saved_auxv`.
"""

from __future__ import annotations

import struct

AT_NULL = 0
AT_PHDR = 3
AT_PHENT = 4
AT_PHNUM = 5
AT_PAGESZ = 6
AT_BASE = 7  # load address of the interpreter (ld.so), 0 for a static program
AT_ENTRY = 9  # the executable's entry point, already relocated for a PIE
AT_SECURE = 23
AT_RANDOM = 25
AT_EXECFN = 31
AT_SYSINFO_EHDR = 33  # the vDSO


def parse_auxv(data: bytes, *, word_bytes: int = 8, little_endian: bool = True) -> dict[int, int]:
    """The auxiliary vector as {a_type: a_val}, up to AT_NULL (a trailing partial pair ignored)."""
    fmt = ("<" if little_endian else ">") + ("QQ" if word_bytes == 8 else "II")
    pair = struct.calcsize(fmt)
    out: dict[int, int] = {}
    for i in range(0, len(data) - len(data) % pair, pair):
        a_type, a_val = struct.unpack_from(fmt, data, i)
        if a_type == AT_NULL:
            break
        out[a_type] = a_val
    return out
