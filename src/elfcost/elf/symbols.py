"""Symbol lookup by name in .symtab / .dynsym, with pyelftools.

Used to place calibrated start-up writes (libc's own globals) on pages when a build is not in
a profile's list: static binaries usually keep .symtab, shared libcs export some of the names.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

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
