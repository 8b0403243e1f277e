"""What the cost model reads from an object's file beyond its headers, read in one place.

`read_dso` (elf/reader.py) gives the headers, segments, sections and dynamic section. The cost
model also needs the relocation records grouped by page, the sizes of the symbols that COPY
relocations copy, and for a libc whose build no profile was measured on, where some of its
globals are and the size of its thread control block. `read_facts` reads exactly that, so that
the estimate itself (cost/estimate.py) computes from values and never opens a file.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from elfcost.elf.relocs import NO_GROUPS, RelocGroups, copy_symbol_sizes, group_relocs
from elfcost.elf.symbols import find_symbols, glibc_pthread_size
from elfcost.model import Dso


class ObjectFacts(msgspec.Struct, frozen=True, kw_only=True):
    """One object's file contents as the cost model uses them."""

    relocs: RelocGroups = NO_GROUPS
    # DT_SYMTAB index -> st_size
    copy_sizes: Mapping[int, int] = msgspec.field(default_factory=dict)
    # name -> (st_value, st_size)
    symbols: Mapping[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    pthread_size: int | None = None  # glibc's sizeof (struct pthread), when asked for and found


class FactsWanted(msgspec.Struct, frozen=True, kw_only=True):
    """The optional parts of ObjectFacts the model asks for (the relocations always come)."""

    symbols: tuple[str, ...] = ()
    pthread_size: bool = False


NOTHING_MORE = FactsWanted()


def read_facts(dso: Dso, wanted: FactsWanted = NOTHING_MORE) -> ObjectFacts:
    """Read `dso`'s relocation groups, its COPY symbol sizes, and what `wanted` names."""
    relocs = group_relocs(dso)
    return ObjectFacts(
        relocs=relocs,
        copy_sizes=copy_symbol_sizes(dso, {sym for _, _, sym, _ in relocs.copies}),
        symbols=find_symbols(dso, wanted.symbols) if wanted.symbols else {},
        pthread_size=glibc_pthread_size([dso]) if wanted.pthread_size else None,
    )
