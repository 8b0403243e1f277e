"""What the cost model knows of an object beyond its headers: values only, no I/O.

`read_dso` (elf/reader.py) gives the headers, segments, sections and dynamic section. The cost
model also needs the relocation records grouped by page, the sizes of the symbols that COPY
relocations copy, which C library a static program carries, constructors, and for a libc whose
build no profile was measured on, where some of its globals are and the size of its thread
control block. elf/gather.py reads all of that in one pass over the file into ObjectFacts; the
cost stage (cost/) computes from these values and never opens a file, so this module imports
nothing that does.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

# Relocation tables, in the order the loaders apply them; "iplt" is a static executable's
# IRELATIVE section (csu/libc-start.c apply_irel).
TABLE_KINDS = ("rela", "rel", "relr", "jmprel", "iplt")
RELR = TABLE_KINDS.index("relr")
IPLT = TABLE_KINDS.index("iplt")
# Records are grouped by 4 KiB page: every runtime page size elfcost models (4, 16, 64 KiB) is
# a multiple, so a group lies in one page at each of them, and only a write that crosses a
# 4 KiB boundary can cross a larger one.
GRAIN = 4096

# (r_offset, r_type, r_sym, table index)
Record = tuple[int, int, int, int]


class RelocGroups(msgspec.Struct, frozen=True):
    """An object's load-time relocation records, as the cost model needs them.

    `groups`: (page, r_type, table, count), sorted: how many records of each type and table
    start in each GRAIN page (page = r_offset rounded down to GRAIN). COPY records are not here.
    `copies`: the COPY records (each writes its symbol's st_size bytes), in application order.
    `straddles`: the other records whose write runs past the end of their GRAIN page (they are
    also counted in `groups`). RELR records have r_type 0 and the table "relr".
    """

    groups: tuple[tuple[int, int, int, int], ...]
    copies: tuple[Record, ...]
    straddles: tuple[Record, ...]
    records: int  # every record of every table

    def __len__(self) -> int:
        return self.records


NO_GROUPS = RelocGroups(groups=(), copies=(), straddles=(), records=0)


class Constructors(msgspec.Struct, frozen=True, kw_only=True):
    """The initialisers an object runs before main (glibc elf/dl-init.c call_init: DT_INIT,
    then the DT_INIT_ARRAY entries)."""

    init_size: int | None = None  # sh_size of .init (DT_INIT's code); None: no such section
    init_array_size: int = 0  # DT_INIT_ARRAYSZ (bytes; the last entry wins, as in info[])


NO_CONSTRUCTORS = Constructors()


# glibc nptl_db/db_info.c: `DB_STRUCT (pthread)` defines `const uint32_t
# _thread_db_sizeof_pthread = sizeof (struct pthread)` for libthread_db, exported GLIBC_PRIVATE
# from libc.so.6 (libpthread.so.0 before 2.34). On x86 that struct is the TCB of TLS_TCB_AT_TP.
GLIBC_PTHREAD_SIZE_SYMBOL = "_thread_db_sizeof_pthread"


class ObjectFacts(msgspec.Struct, frozen=True, kw_only=True):
    """One object's file contents as the cost model uses them."""

    relocs: RelocGroups = NO_GROUPS
    # DT_SYMTAB index -> st_size
    copy_sizes: Mapping[int, int] = msgspec.field(default_factory=dict)
    # name -> (st_value, st_size), for the names asked for
    symbols: Mapping[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    pthread_size: int | None = None  # glibc's sizeof (struct pthread), when asked for and found
    # The C library a static executable carries: "glibc", "musl" or "none" (asked for only).
    static_libc: str | None = None
    constructors: Constructors = NO_CONSTRUCTORS


class FactsWanted(msgspec.Struct, frozen=True, kw_only=True):
    """The optional parts of ObjectFacts the model asks for (relocations and constructors
    always come)."""

    # Both looked up only in an object with a C library (not in a static Go program).
    symbols: tuple[str, ...] = ()
    pthread_size: bool = False
    static_libc: bool = False


NOTHING_MORE = FactsWanted()
