#!/usr/bin/env python3
"""Copy an ELF file, removing its section header table from the ELF header.

Usage: strip_sections.py INPUT OUTPUT

Only the three ELF header fields that locate the section header table are
zeroed: e_shoff, e_shnum and e_shstrndx.  The section headers and section
data stay in the file as unreferenced bytes (nothing is truncated), so the
program headers, the dynamic segment and all loadable bytes are unchanged.
The result looks like a binary whose section headers were stripped, which a
loader accepts but tools that rely on sections cannot use.
"""

import os
import struct
import sys


def strip_sections(data: bytes) -> bytes:
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    ei_class, ei_data = data[4], data[5]
    if ei_data == 1:
        end = "<"
    elif ei_data == 2:
        end = ">"
    else:
        raise ValueError(f"bad EI_DATA {ei_data}")
    if ei_class == 1:  # ELFCLASS32
        shoff_at, shoff_fmt, shnum_at, shstrndx_at = 0x20, "I", 0x30, 0x32
    elif ei_class == 2:  # ELFCLASS64
        shoff_at, shoff_fmt, shnum_at, shstrndx_at = 0x28, "Q", 0x3C, 0x3E
    else:
        raise ValueError(f"bad EI_CLASS {ei_class}")
    out = bytearray(data)
    struct.pack_into(end + shoff_fmt, out, shoff_at, 0)
    struct.pack_into(end + "H", out, shnum_at, 0)
    struct.pack_into(end + "H", out, shstrndx_at, 0)
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(strip_sections(data))
    os.chmod(dst, os.stat(src).st_mode & 0o777)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
