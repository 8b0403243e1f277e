"""Parse the ELF auxiliary vector (/proc/PID/auxv; pure: bytes in, dict out).

The kernel writes it in `fs/binfmt_elf.c create_elf_tables` as (a_type, a_val) pairs of the
process's words (`elf_addr_t`), ending with AT_NULL. /proc/PID/auxv is a copy of
`mm->saved_auxv`, so a 32-bit process on a 64-bit kernel (i386 on x86_64, compat_binfmt_elf.c)
has 4-byte pairs there, a 64-bit one 8-byte pairs; neither file says which.
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
# Every a_type Linux defines is below this (include/uapi/linux/auxvec.h and the arch headers
# stop in the 50s); a pair read with the wrong word size puts an address or a value's high half
# in the type slot, which is far above it.
AT_TYPE_LIMIT = 1 << 12


def parse_auxv(
    data: bytes, *, word_bytes: int | None = None, little_endian: bool = True
) -> dict[int, int]:
    """The auxiliary vector as {a_type: a_val}, up to AT_NULL (a trailing partial pair ignored).

    `word_bytes` None: the word size whose reading is a well-formed vector (see auxv_word_bytes).
    """
    if word_bytes is None:
        word_bytes = auxv_word_bytes(data, little_endian=little_endian)
    return _pairs(data, word_bytes, little_endian)[0]


def auxv_word_bytes(data: bytes, *, little_endian: bool = True) -> int:
    """8 or 4: the word size at which `data` reads as a vector that reaches AT_NULL with every
    a_type a small number and has AT_PAGESZ (the kernel always gives it). 8 when both or
    neither do."""
    for size in (8, 4):
        vector, terminated = _pairs(data, size, little_endian)
        if terminated and AT_PAGESZ in vector and all(t < AT_TYPE_LIMIT for t in vector):
            return size
    return 8


def _pairs(data: bytes, word_bytes: int, little_endian: bool) -> tuple[dict[int, int], bool]:
    """The pairs before AT_NULL, and whether AT_NULL was found."""
    fmt = ("<" if little_endian else ">") + ("QQ" if word_bytes == 8 else "II")
    pair = struct.calcsize(fmt)
    out: dict[int, int] = {}
    for i in range(0, len(data) - len(data) % pair, pair):
        a_type, a_val = struct.unpack_from(fmt, data, i)
        if a_type == AT_NULL:
            return out, True
        out[a_type] = a_val
    return out, False
