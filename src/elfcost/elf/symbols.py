"""Symbol lookup by name in .symtab / .dynsym, read with struct (only the entries asked for
are decoded).

Used to place calibrated start-up writes (libc's own globals) on pages when a build is not in
a profile's list: static binaries usually keep .symtab, shared libcs export some of the names.
Also to read one value glibc records for debuggers: the size of its thread control block;
which libc functions an object imports or links in (linked_functions); and every name of a
.dynsym with its size (dynamic_symbols, for the static-library what-if). One reader of a
table (_read_table) serves them all.
"""

from __future__ import annotations

import operator
import os
import struct
import sys
from collections.abc import Iterable
from itertools import compress

from elfcost.elf.facts import GLIBC_PTHREAD_SIZE_SYMBOL, NO_SYMBOLS, DynamicSymbols
from elfcost.elf.reader import opened, vaddr_to_offset
from elfcost.errors import ElfcostError
from elfcost.model import Dso, Section

# Elf64_Sym: st_name st_info st_other st_shndx st_value st_size; Elf32_Sym: st_name st_value
# st_size st_info st_other st_shndx (gABI). By the entry's size: its struct format and where
# st_name, st_info, st_shndx, st_value and st_size are in it.
_SYM_FIELDS = {24: ("IBBHQQ", (0, 1, 3, 4, 5)), 16: ("IIIBBH", (0, 3, 5, 1, 2))}
_STT_OBJECT, _STT_FUNC, _SHN_UNDEF = 1, 2, 0


def dynamic_symbols(dso: Dso, fd: int | None = None, *, defined: bool = True) -> DynamicSymbols:
    """The defined STT_FUNC/STT_OBJECT symbols of `dso`'s .dynsym with their sizes (a name
    defined twice, as versioned symbols are, keeps its last entry's), and its undefined names;
    NO_SYMBOLS when it has no .dynsym, or it cannot be read (_read_table). defined=False: the
    undefined names only (`defined` left empty), for an object whose own symbols nothing asks
    about: libc's ~3,000 names are then not decoded."""
    table = _symbol_table(dso, (SHT_DYNSYM,), fd)
    if table is None:
        return NO_SYMBOLS
    strings, symbols, entsize = table
    fmt, (i_name, i_info, i_shndx, _, i_size) = _SYM_FIELDS[entsize]
    sizes: dict[str, int] = {}
    undefined: set[str] = set()
    order = "<" if dso.little_endian else ">"
    for entry in struct.iter_unpack(order + fmt, symbols):
        start = entry[i_name]
        if entry[i_shndx] != _SHN_UNDEF and not defined:
            continue
        end = strings.find(b"\0", start)
        if not start or end < 0:
            continue
        name = strings[start:end].decode("utf-8", "surrogateescape")
        if entry[i_shndx] == _SHN_UNDEF:
            undefined.add(name)
        elif entry[i_info] & 0xF in (_STT_OBJECT, _STT_FUNC):
            sizes[name] = entry[i_size]
    return DynamicSymbols(defined=sizes, undefined=frozenset(undefined))


def has_section(dso: Dso, name: str) -> bool:
    return any(s.name == name for s in dso.sections)


def read_u32_symbol(dso: Dso, name: str) -> int | None:
    """The value stored in a defined 4-byte data symbol `name`, read from the file (None when
    the symbol is missing, of another size, or not in the file part of a PT_LOAD)."""
    found = find_symbols(dso, (name,)).get(name)
    return read_u32(dso, found) if found is not None else None


def read_u32(dso: Dso, symbol: tuple[int, int], fd: int | None = None) -> int | None:
    """The value stored in the 4-byte data symbol (st_value, st_size) `symbol` (None when it
    has another size or is not in the file part of a PT_LOAD). `fd`: the file, when the caller
    has it open (reader.opened)."""
    value, size = symbol
    if size != 4:
        return None
    off = vaddr_to_offset(dso.phdrs, value, 4)
    if off is None:
        return None
    try:
        with opened(dso.file, fd) as (fd, _):
            raw = os.pread(fd, 4, off)
    except (ElfcostError, OSError):
        return None
    if len(raw) != 4:
        return None
    return int.from_bytes(raw, "little" if dso.little_endian else "big")


def glibc_pthread_size(dsos: Iterable[Dso]) -> int | None:
    """sizeof (struct pthread) as the first of `dsos` that records it says (elf/facts.py
    GLIBC_PTHREAD_SIZE_SYMBOL); a stored 0 is not a size."""
    for dso in dsos:
        size = read_u32_symbol(dso, GLIBC_PTHREAD_SIZE_SYMBOL)
        if size:
            return size
    return None


SHT_SYMTAB = 2
SHT_DYNSYM = 11
# Bounds on a symbol table and its strings read: the largest .dynsym on a Debian 12 machine
# (libLLVM-15) is 2.2 MiB and its .dynstr 5.3 MiB; a claim beyond these is not read.
MAX_SYMBOL_TABLE_BYTES = 64 << 20


def linked_functions(
    dso: Dso, names: Iterable[str], *, imported: bool, fd: int | None = None
) -> tuple[str, ...]:
    """Which of `names` the object takes from another object (`imported`: undefined,
    SHN_UNDEF, in .dynsym) or carries itself (defined in .symtab, else .dynsym: the libc
    functions a static executable was linked with). In the order of `names`; () when the
    table is absent (a stripped static executable) or unreadable: nothing is claimed.

    Only two fields of each entry are decoded, and only the names of the entries of the kind
    asked for are compared: libLLVM-15 has 46,000 dynamic symbols and imports 600.
    """
    wanted = tuple(dict.fromkeys(names))
    if not wanted:
        return ()
    table = _symbol_table(dso, (SHT_DYNSYM,) if imported else (SHT_SYMTAB, SHT_DYNSYM), fd)
    if table is None:
        return ()
    strings, symbols, entsize = table
    word = dso.elf_class // 8
    # st_shndx: Elf64_Sym name(4) info(1) other(1) shndx(2) ...; Elf32_Sym name value size
    # info other shndx.
    at = 6 if word == 8 else 14
    e = "<" if dso.little_endian else ">"
    if (e == "<") == (sys.byteorder == "little"):
        # st_name (the first word) and st_shndx of every entry as two columns, without
        # decoding the rest: a large library has 100,000 symbols, and few are asked about.
        view = memoryview(symbols)
        st_name = view.cast("I")[:: entsize // 4].tolist()
        st_shndx = view.cast("H")[at // 2 :: entsize // 2].tolist()
    else:
        fmt = f"{e}I{at - 4}xH{entsize - at - 2}x"
        st_name, st_shndx = (list(c) for c in zip(*struct.iter_unpack(fmt, symbols), strict=True))
    # The st_name of every entry of the kind asked for (entry 0 is the null symbol), picked
    # by C loops (map, compress): a large library has 100,000 symbols and imports a few
    # hundred, and a Python step per entry cost more than the rest of the object's reading.
    kept = set(compress(st_name[1:], map(operator.not_ if imported else bool, st_shndx[1:])))
    want = {n.encode(): n for n in wanted}
    hits: set[str] = set()
    for start in kept:
        end = strings.find(b"\0", start)
        name = want.get(strings[start:end]) if start > 0 and end > 0 else None
        if name is not None:
            hits.add(name)
    return tuple(n for n in wanted if n in hits)


def _symbol_table(
    dso: Dso, order: tuple[int, ...], fd: int | None
) -> tuple[bytes, bytes, int] | None:
    """The first of the symbol tables `order` names (SHT_SYMTAB, SHT_DYNSYM) that `dso` has,
    read (_read_table)."""
    by_type = {s.sh_type: s for s in dso.sections if s.sh_type in (SHT_SYMTAB, SHT_DYNSYM)}
    table = next((by_type[t] for t in order if t in by_type), None)
    return _read_table(dso, table, fd) if table is not None else None


def _read_table(
    dso: Dso, table: Section, fd: int | None, *, needs: bytes = b""
) -> tuple[bytes, bytes, int] | None:
    """The symbol table `table` read: its string table, its entries (whole ones) and their
    size; None when it cannot be read, it holds only the null symbol, or its string table holds
    none of the NUL-separated `needs` (then its entries are not read)."""
    # A symbol table's sh_link names its string table; Section does not keep sh_link, so the
    # table is found by its conventional name (.dynsym's .dynstr, .symtab's .strtab).
    strname = ".dynstr" if table.sh_type == SHT_DYNSYM else ".strtab"
    strtab = next((s for s in dso.sections if s.name == strname), None)
    entsize = 24 if dso.elf_class == 64 else 16  # sizeof (ElfW(Sym))
    if (
        strtab is None
        or table.size > MAX_SYMBOL_TABLE_BYTES
        or strtab.size > MAX_SYMBOL_TABLE_BYTES
    ):
        return None
    try:
        with opened(dso.file, fd) as (fd, size):
            if table.offset + table.size > size or strtab.offset + strtab.size > size:
                return None
            strings = os.pread(fd, strtab.size, strtab.offset)
            if needs and not any(n in strings for n in needs.split(b"\0")):
                return None
            symbols = os.pread(fd, table.size, table.offset)
    except (ElfcostError, OSError):
        return None
    count = len(symbols) // entsize
    if count < 2 or table.entsize not in (0, entsize):
        return None  # only the null symbol, or an sh_entsize that would misread every entry
    return strings, symbols[: count * entsize], entsize


def find_symbols(
    dso: Dso, names: Iterable[str], fd: int | None = None, *, dynamic_only: bool = False
) -> dict[str, tuple[int, int]]:
    """{name: (st_value, st_size)} for those of `names` that `dso` defines, from its symbol
    tables in section order (.symtab and .dynsym; with `dynamic_only`, .dynsym alone: what
    another object's reference to them binds to), the first definition kept; {} when it has
    none, or they cannot be read. As linked_functions, with struct: each name's places in a
    string table are found first (a name may be the tail of a longer one: linkers merge string
    suffixes), then the entries that point there, by a search of their st_name column, and no
    other is decoded. `fd`: the file, when the caller has it open (reader.opened)."""
    wanted = tuple(dict.fromkeys(names))
    kinds = (SHT_DYNSYM,) if dynamic_only else (SHT_SYMTAB, SHT_DYNSYM)
    tables = [s for s in dso.sections if s.sh_type in kinds] if wanted else []
    needs = b"\0".join(n.encode() + b"\0" for n in wanted)
    found: dict[str, tuple[int, int]] = {}
    for table in tables:
        read = _read_table(dso, table, fd, needs=needs)
        if read is not None:
            _define(dso, *read, [n for n in wanted if n not in found], found)
        if len(found) == len(wanted):
            break
    return found


def _define(
    dso: Dso,
    strings: bytes,
    symbols: bytes,
    entsize: int,
    wanted: list[str],
    found: dict[str, tuple[int, int]],
) -> None:
    """Add to `found` the first definition of each of `wanted` in one symbol table read."""
    places: dict[int, str] = {}
    for name in wanted:
        key = name.encode() + b"\0"
        at = strings.find(key, 1)
        while at > 0:
            places[at] = name
            at = strings.find(key, at + 1)
    if not places:
        return
    e = "<" if dso.little_endian else ">"
    if (e == "<") == (sys.byteorder == "little"):
        st_name = memoryview(symbols).cast("I")[:: entsize // 4].tolist()
    else:
        st_name = [n for (n,) in struct.iter_unpack(f"{e}I{entsize - 4}x", symbols)]
    fmt, (_, _, i_shndx, i_value, i_size) = _SYM_FIELDS[entsize]
    first: dict[str, tuple[int, int, int]] = {}  # name -> (entry index, value, size)
    for place, name in places.items():
        i = 0
        while True:
            try:
                i = st_name.index(place, i + 1)  # entry 0 is the null symbol
            except ValueError:
                break
            fields = struct.unpack_from(e + fmt, symbols, i * entsize)
            shndx, value, size = fields[i_shndx], fields[i_value], fields[i_size]
            if shndx != _SHN_UNDEF:
                if name not in first or i < first[name][0]:
                    first[name] = (i, value, size)
                break
    for name, (_, value, size) in first.items():
        found[name] = (value, size)
