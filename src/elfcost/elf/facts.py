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


# GCC's crti.o/crtn.o _init on x86_64 is 0x17 bytes (0x1b with older toolchains): it only
# calls __gmon_start__ when present. Anything longer has code of its own in .init (OpenSSL puts
# OPENSSL_cpuid_setup there).
PLAIN_INIT_MAX = {"x86_64": 0x1B}


class Constructors(msgspec.Struct, frozen=True, kw_only=True):
    """The initialisers an object runs before main (glibc elf/dl-init.c call_init: DT_INIT,
    then the DT_INIT_ARRAY entries)."""

    init_size: int | None = None  # sh_size of .init (DT_INIT's code); None: no such section
    # DT_INIT_ARRAYSZ (bytes; the last entry wins, as in info[]); a static executable without
    # PT_DYNAMIC: the size of its SHT_INIT_ARRAY section (__init_array_start..end)
    init_array_size: int = 0

    def beyond_crt(self, machine: str, word: int) -> bool:
        """Whether the object has initialisers of its own, beyond what every GCC object has:
        frame_dummy as the only DT_INIT_ARRAY entry, crti/crtn's _init in .init."""
        if self.init_array_size > word:
            return True
        limit = PLAIN_INIT_MAX.get(machine)
        return limit is not None and self.init_size is not None and self.init_size > limit


NO_CONSTRUCTORS = Constructors()


class InitWrite(msgspec.Struct, frozen=True, kw_only=True):
    """Bytes an initialiser certainly writes in the object's own writable segments: on every
    path from its entry to its return (elf/ctors.py)."""

    vaddr: int  # link-time address of the first byte
    size: int  # bytes
    initialiser: str  # the function the loader (or libc) calls: its symbol, else its address
    how: str  # "store at 0x1139", "memset called at 0x111e in clear_tables", ...
    # Run from DT_PREINIT_ARRAY (an executable's; glibc's _dl_init runs it before the entry
    # point even though the executable's own initialisers run after it).
    preinit: bool = False
    # Written through the GOT entry of this symbol, which the object defines: the loader binds
    # it to this object's definition unless an object earlier in the lookup scope defines the
    # name too (an executable's COPY relocation of it, say).
    symbol: str | None = None


class InitWrites(msgspec.Struct, frozen=True, kw_only=True):
    """What disassembling an object's initialisers proved (elf/ctors.py)."""

    # False: not disassembled (a machine elf/ctors.py does not decode, unreadable code)
    analysed: bool
    initialisers: int = 0  # DT_PREINIT_ARRAY, DT_INIT and DT_INIT_ARRAY functions looked at
    writes: tuple[InitWrite, ...] = ()  # proved writes, merged where they touch, by address
    # What could not be proved, one line each (bounded): a store on only some paths, a store
    # through an unknown pointer, an indirect call, a call to a function whose effects are not
    # known, the analysis limits. When empty (and analysed), `writes` is everything the
    # initialisers write into the object's own segments.
    unproven: tuple[str, ...] = ()
    # The other objects' functions they may call (on some path), by name, sorted: what the
    # cost model asks of a library's initialisers beyond its own memory (an exit handler
    # registered with libc before the entry point: cost/estimate.py _early_idle_writers).
    calls: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.analysed and not self.unproven


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
    # The initialisers disassembled (asked for only, and only for an object with initialisers
    # of its own: Constructors.beyond_crt); None: not asked for or nothing to analyse.
    init_writes: InitWrites | None = None
    # Of the libc functions asked about, those the object imports (a static executable: the
    # ones linked into it), in the order asked.
    imports: tuple[str, ...] = ()
    # A printf format with a floating conversion in its read-only data (elf/formats.py), looked
    # for only when it imports one of FactsWanted.formats_for; None: none, or not looked for.
    float_format: str | None = None


class FactsWanted(msgspec.Struct, frozen=True, kw_only=True):
    """The optional parts of ObjectFacts the model asks for (relocations and constructors
    always come)."""

    # Both looked up only in an object with a C library (not in a static Go program).
    symbols: tuple[str, ...] = ()
    pthread_size: bool = False
    static_libc: bool = False
    init_writes: bool = False  # disassemble the object's initialisers (elf/ctors.py)
    # libc functions to look for: imported (undefined in .dynsym), or, with `linked_in` (a
    # static executable), defined in its own symbol table.
    imports: tuple[str, ...] = ()
    linked_in: bool = False
    # Functions (of `imports`) whose importers' read-only data is searched for a printf format
    # with a floating conversion: evidence that one of them formats a double.
    formats_for: tuple[str, ...] = ()


NOTHING_MORE = FactsWanted()


class DynamicSymbols(msgspec.Struct, frozen=True, kw_only=True):
    """An object's .dynsym as the static-lib what-if needs it: the functions and data objects
    it defines, with st_size, and the names it leaves undefined (its imports)."""

    defined: dict[str, int]
    undefined: frozenset[str]


NO_SYMBOLS = DynamicSymbols(defined={}, undefined=frozenset())
