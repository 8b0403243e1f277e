"""Symbol lookup by name in .symtab / .dynsym, with pyelftools.

Used to place calibrated start-up writes (libc's own globals) on pages when a build is not in
a profile's list: static binaries usually keep .symtab, shared libcs export some of the names.
Also to read one value glibc records for debuggers: the size of its thread control block.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable

from elfcost.elf.reader import open_regular, vaddr_to_offset
from elfcost.errors import ElfcostError
from elfcost.model import Dso


def find_symbols(dso: Dso, names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """{name: (st_value, st_size)} for the defined symbols among `names` ({} on any failure)."""
    wanted = set(names)
    found: dict[str, tuple[int, int]] = {}
    if not wanted or not dso.sections:
        return found
    # Imported here: pyelftools costs ~0.1 s to import and most estimates never get here.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    failures = (ELFError, OverflowError, ValueError, struct.error, KeyError, IndexError, OSError)
    try:
        with open(dso.file, "rb") as fh:
            elf = ELFFile(fh)
            sym_size = 24 if elf.elfclass == 64 else 16
            for section in elf.iter_sections():
                if not isinstance(section, SymbolTableSection):
                    continue
                if section["sh_entsize"] != sym_size:
                    continue  # garbage: an sh_entsize of 1 would make every byte a symbol
                for sym in section.iter_symbols():
                    if sym.name in wanted and sym["st_shndx"] != "SHN_UNDEF":
                        found.setdefault(sym.name, (int(sym["st_value"]), int(sym["st_size"])))
                if len(found) == len(wanted):
                    break
    except failures:
        return {}
    return found


def has_section(dso: Dso, name: str) -> bool:
    return any(s.name == name for s in dso.sections)


# glibc nptl_db/db_info.c: `DB_STRUCT (pthread)` defines `const uint32_t
# _thread_db_sizeof_pthread = sizeof (struct pthread)` for libthread_db, exported GLIBC_PRIVATE
# from libc.so.6 (libpthread.so.0 before 2.34). On x86 that struct is the TCB of TLS_TCB_AT_TP.
GLIBC_PTHREAD_SIZE_SYMBOL = "_thread_db_sizeof_pthread"


def read_u32_symbol(dso: Dso, name: str) -> int | None:
    """The value stored in a defined 4-byte data symbol `name`, read from the file (None when
    the symbol is missing, of another size, or not in the file part of a PT_LOAD)."""
    found = find_symbols(dso, (name,)).get(name)
    if found is None or found[1] != 4:
        return None
    off = vaddr_to_offset(dso.phdrs, found[0], 4)
    if off is None:
        return None
    try:
        fd, _ = open_regular(dso.file)
    except ElfcostError:
        return None
    try:
        raw = os.pread(fd, 4, off)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) != 4:
        return None
    return int.from_bytes(raw, "little" if dso.little_endian else "big")


def glibc_pthread_size(dsos: Iterable[Dso]) -> int | None:
    """sizeof (struct pthread) as the first of `dsos` that records it says (see above)."""
    for dso in dsos:
        size = read_u32_symbol(dso, GLIBC_PTHREAD_SIZE_SYMBOL)
        if size:
            return size
    return None
