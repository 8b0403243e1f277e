"""Read what the cost model needs of one object (elf/facts.py ObjectFacts), in one pass.

The file is opened once; the relocation tables, the COPY symbols' sizes, the libc banner, the
symbols asked for (one walk of the symbol tables), the libc functions it imports (or, static,
links in) among those asked about, whether an importer of printf carries a floating format
(elf/formats.py) and, when asked for, the initialisers' disassembly (elf/ctors.py) are all
read through that one descriptor (reader.opened).
"""

from __future__ import annotations

from elfcost.elf.facts import (
    GLIBC_PTHREAD_SIZE_SYMBOL,
    NOTHING_MORE,
    Constructors,
    FactsWanted,
    ObjectFacts,
)
from elfcost.elf.reader import opened
from elfcost.elf.relocs import copy_symbol_sizes, group_relocs
from elfcost.elf.symbols import find_symbols, linked_functions, read_u32
from elfcost.model import Dso

DT_INIT_ARRAYSZ = 27
SHT_INIT_ARRAY = 14


def read_facts(dso: Dso, wanted: FactsWanted = NOTHING_MORE) -> ObjectFacts:
    """`dso`'s relocation groups, COPY symbol sizes and constructors, and what `wanted` names."""
    with opened(dso.file) as (fd, _):
        relocs = group_relocs(dso, fd=fd)
        libc = None
        if wanted.static_libc:  # a static program's: imported only for one
            from elfcost.elf.libc import static_libc

            libc = static_libc(dso, fd)
        names = (*wanted.symbols, *((GLIBC_PTHREAD_SIZE_SYMBOL,) if wanted.pthread_size else ()))
        # A program without a C library (Go) has no libc globals: its symbol tables, often
        # large, are not walked.
        found = find_symbols(dso, names, fd) if names and libc != "none" else {}
        pthread = found.get(GLIBC_PTHREAD_SIZE_SYMBOL)
        ctors = constructors(dso)
        # Only an object with initialisers of its own is disassembled: frame_dummy and crti's
        # _init, which every GCC object has, write nothing of it.
        own = wanted.init_writes and ctors.beyond_crt(dso.machine, dso.elf_class // 8)
        init_writes = None
        if own:
            # Imported here: most objects have no initialisers of their own, and an estimate
            # that meets none (/bin/sleep, s6-supervise) does not pay for the module.
            from elfcost.elf.ctors import initialiser_writes

            init_writes = initialiser_writes(dso, fd)
        imports = (
            linked_functions(dso, wanted.imports, imported=not wanted.linked_in, fd=fd)
            if wanted.imports and libc != "none"
            else ()
        )
        formats = None
        if wanted.formats_for and not set(imports).isdisjoint(wanted.formats_for):
            # Imported here, as ctors is: its patterns are compiled at import, and most
            # estimates meet no importer of printf's family.
            from elfcost.elf.formats import float_format

            formats = float_format(dso, fd)
        return ObjectFacts(
            relocs=relocs,
            copy_sizes=copy_symbol_sizes(dso, {sym for _, _, sym, _ in relocs.copies}, fd),
            symbols={n: found[n] for n in wanted.symbols if n in found},
            # a stored 0 is not a size (as in symbols.glibc_pthread_size)
            pthread_size=(read_u32(dso, pthread, fd) or None) if pthread is not None else None,
            static_libc=libc,
            constructors=ctors,
            init_writes=init_writes,
            imports=imports,
            float_format=formats,
        )


def constructors(dso: Dso) -> Constructors:
    """DT_INIT_ARRAYSZ (the last entry, as elf_get_dynamic_info keeps it; without PT_DYNAMIC,
    the SHT_INIT_ARRAY section that static start-up walks) and the size of .init (the code
    DT_INIT runs), from the headers already read."""
    dyn = dso.dynamic
    if dyn is not None:
        sizes = [e.value for e in dyn.entries if e.tag == DT_INIT_ARRAYSZ]
    else:
        sizes = [sum(s.size for s in dso.sections if s.sh_type == SHT_INIT_ARRAY)]
    init = next((s for s in dso.sections if s.name == ".init"), None)
    return Constructors(
        init_size=init.size if init is not None else None,
        init_array_size=sizes[-1] if sizes else 0,
    )
