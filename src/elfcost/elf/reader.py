"""ELF file → model.Dso: the ELF header, program headers and the dynamic section.

Read what the loader reads (glibc `elf/dl-load.c open_verify` + `_dl_map_object_from_fd`, the
kernel's `fs/binfmt_elf.c`): the ELF header, the program header table and PT_DYNAMIC, with the
dynamic section's addresses translated to file offsets over PT_LOAD. Section headers are optional
detail (names for reports, the IRELATIVE table of a non-PIE static binary) and are read with
pyelftools; a broken section table is a warning, never an error, because no loader looks at it.

The fixed-layout arrays (program headers, dynamic entries) are decoded with `struct` rather than
pyelftools' per-field parser: scanning a whole /usr/bin is dominated by this step, and it is 5x
faster. Every read is bounded by the real file size, never by a size the file claims.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator

import msgspec

from elfcost.elf.machines import CLASSES, machine_for
from elfcost.errors import InputError, MalformedElfError, NotElfError, UnsupportedElfError
from elfcost.files import open_regular, read_head
from elfcost.model import (
    DF_TEXTREL,
    DT_FLAGS,
    DT_FLAGS_1,
    DT_JMPREL,
    DT_NEEDED,
    DT_NULL,
    DT_PLTGOT,
    DT_PLTREL,
    DT_PLTRELSZ,
    DT_REL,
    DT_RELA,
    DT_RELAENT,
    DT_RELASZ,
    DT_RELENT,
    DT_RELR,
    DT_RELRENT,
    DT_RELRSZ,
    DT_RELSZ,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRSZ,
    DT_STRTAB,
    DT_SYMENT,
    DT_SYMTAB,
    DT_TEXTREL,
    DT_VERDEF,
    DT_VERNEED,
    ET_DYN,
    ET_EXEC,
    PT_DYNAMIC,
    PT_GNU_PROPERTY,
    PT_INTERP,
    PT_LOAD,
    PT_NOTE,
    VER_FLG_WEAK,
    Dso,
    DynamicInfo,
    DynEntry,
    FileId,
    Prot,
    RelocTableRef,
    Section,
    Segment,
    VersionNeed,
)

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
PN_XNUM = 0xFFFF  # e_phnum overflow marker: the real count is in section 0's sh_info
MAX_INTERP = 4096  # PATH_MAX: the kernel rejects a longer PT_INTERP (binfmt_elf.c)
MAX_STRING = 65536  # longest DT_NEEDED/RPATH string we will read
STRTAB_WINDOW = 8192  # the start of .dynstr read at once (_dynamic)


class _Layout(msgspec.Struct, frozen=True):
    """struct formats for one (class, byte order)."""

    ehdr: struct.Struct
    phdr: struct.Struct
    dyn: struct.Struct
    shdr: struct.Struct
    word: int  # pointer size

    @classmethod
    def make(cls, elf_class: int, little: bool) -> _Layout:
        e = "<" if little else ">"
        if elf_class == 64:
            return cls(
                ehdr=struct.Struct(e + "16sHHIQQQIHHHHHH"),
                # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
                phdr=struct.Struct(e + "IIQQQQQQ"),
                dyn=struct.Struct(e + "qQ"),
                shdr=struct.Struct(e + "IIQQQQIIQQ"),
                word=8,
            )
        return cls(
            ehdr=struct.Struct(e + "16sHHIIIIIHHHHHH"),
            # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
            phdr=struct.Struct(e + "IIIIIIII"),
            dyn=struct.Struct(e + "iI"),
            shdr=struct.Struct(e + "IIIIIIIIII"),
            word=4,
        )


_LAYOUTS = {(c, le): _Layout.make(c, le) for c in (32, 64) for le in (True, False)}


class _File:
    """Bounded positional reads from an open file; every read past EOF is an error."""

    def __init__(self, path: str, fd: int, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size

    def read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or length < 0 or offset > self.size or length > self.size - offset:
            raise MalformedElfError(
                self.path,
                what,
                f"bytes 0x{offset:x}..0x{offset + length:x} lie beyond the end of the file "
                f"(0x{self.size:x})",
            )
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise MalformedElfError(self.path, what, "short read")
        return data

    def cstring(self, offset: int, limit: int, what: str) -> str:
        """A NUL-terminated string at `offset`, at most `limit` bytes, never past EOF."""
        if offset < 0 or offset >= self.size:
            raise MalformedElfError(self.path, what, f"string offset 0x{offset:x} outside the file")
        data = os.pread(self.fd, min(limit, self.size - offset), offset)
        end = data.find(b"\0")
        if end < 0:
            raise MalformedElfError(self.path, what, "string not terminated")
        return data[:end].decode("utf-8", "surrogateescape")


@contextlib.contextmanager
def opened(file: str, fd: int | None = None) -> Iterator[tuple[int, int]]:
    """(descriptor, size) of `file`: `fd` when the caller already has it open (and keeps
    it), else one from open_regular, closed on leaving. Lets one pass over an object
    (elf/gather.py) share a single open among the readers of its parts."""
    if fd is not None:
        yield fd, os.fstat(fd).st_size
        return
    fd, st = open_regular(file)
    try:
        yield fd, st.st_size
    finally:
        os.close(fd)


def read_dso(
    file: str, *, path: str | None = None, sections: bool = True, versions: bool = True
) -> Dso:
    """Read the ELF object at `file`.

    `path` is the name the loader would use for it (inside a sysroot, say); it defaults to
    `file`. With `sections=False` the section headers are not read at all (faster scans); with
    `versions=False` neither are DT_VERNEED and DT_VERDEF (DynamicInfo.verneed empty, verdef
    None): for a caller that only classifies the object or asks what it names, as a scan's
    calling process does for every ELF file it finds.
    Raises NotElfError, MalformedElfError, UnsupportedElfError or InputError, each naming the
    file and what was being read.
    """
    fd, st = open_regular(file)
    try:
        return _read(_File(file, fd, st.st_size), st, path or file, sections, versions)
    except (struct.error, OverflowError, ValueError, IndexError) as exc:
        # Defence in depth: every structure is bounds-checked above, but a crafted file must
        # never produce a traceback.
        raise MalformedElfError(file, "reading", str(exc)) from None
    except OSError as exc:  # EIO: a file that is regular but cannot be read (/proc/self/mem)
        raise InputError(file, "reading", exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def is_elf(file: str) -> bool:
    """True if `file` can be read and starts with the ELF magic (files.read_head: a FIFO, a
    directory or a socket is not ELF, and blocks nothing)."""
    return read_head(file, 4) == ELF_MAGIC


def _read(f: _File, st: os.stat_result, path: str, want_sections: bool, want_versions: bool) -> Dso:
    ident = os.pread(f.fd, 16, 0)
    if len(ident) < 4 or ident[:4] != ELF_MAGIC:
        raise NotElfError(f.path, "", "not an ELF file")
    if len(ident) < 16:
        raise MalformedElfError(f.path, "ELF header", "file ends inside e_ident")
    ei_class, ei_data, osabi = ident[4], ident[5], ident[7]
    if ei_class not in (ELFCLASS32, ELFCLASS64):
        raise MalformedElfError(f.path, "ELF header", f"invalid EI_CLASS {ei_class}")
    if ei_data not in (ELFDATA2LSB, ELFDATA2MSB):
        raise MalformedElfError(f.path, "ELF header", f"invalid EI_DATA {ei_data}")
    elf_class = 64 if ei_class == ELFCLASS64 else 32
    little = ei_data == ELFDATA2LSB
    lay = _LAYOUTS[(elf_class, little)]
    (
        _,
        e_type,
        e_machine,
        _version,
        e_entry,
        e_phoff,
        e_shoff,
        _flags,
        _ehsize,
        e_phentsize,
        e_phnum,
        e_shentsize,
        e_shnum,
        e_shstrndx,
    ) = lay.ehdr.unpack(f.read(0, lay.ehdr.size, "ELF header"))
    if e_type not in (ET_EXEC, ET_DYN):
        kind = {0: "ET_NONE", 1: "ET_REL (an object file)", 4: "ET_CORE (a core dump)"}
        raise UnsupportedElfError(
            f.path, "ELF header", f"e_type {kind.get(e_type, e_type)}: not loadable"
        )
    machine = machine_for(e_machine)
    if elf_class not in CLASSES.get(e_machine, (elf_class,)):
        name = machine.name if machine else f"e_machine {e_machine}"
        raise MalformedElfError(
            f.path, "ELF header", f"ELFCLASS{elf_class} with {name}: no such ABI, not loadable"
        )
    # Checked whatever e_phnum says, as glibc's open_verify ("ELF file's phentsize not the
    # expected size") and the kernel's load_elf_phdrs do: a 64-bit header with EI_CLASS
    # flipped to 32 reads as one with a zero e_phnum and this field holding e_shoff's bits.
    if e_phentsize != lay.phdr.size:
        raise MalformedElfError(
            f.path,
            "ELF header",
            f"e_phentsize {e_phentsize}, expected {lay.phdr.size} for ELFCLASS{elf_class}: "
            "the loader refuses it",
        )
    if e_phnum == PN_XNUM:
        e_phnum = _xnum(f, lay, e_shoff, e_shentsize)
    phdrs = _phdrs(f, lay, e_phoff, e_phnum, elf_class)
    warnings: list[str] = []
    _check_loads(f.path, phdrs, warnings, f.size, elf_class)
    interp = None
    for p in phdrs:
        if p.p_type == PT_INTERP:
            raw = f.read(p.offset, min(p.filesz, MAX_INTERP), "PT_INTERP")
            interp = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            break
    dynamic = _dynamic(f, lay, phdrs, warnings, want_versions)
    sections: tuple[Section, ...] = ()
    if want_sections and e_shoff and e_shnum:
        try:
            sections = _sections(f, lay, e_shoff, e_shentsize, e_shnum, e_shstrndx)
        except MalformedElfError as exc:
            warnings.append(f"section headers ignored: {exc.what}: {exc.why}")
    if machine is None:
        warnings.append(f"e_machine {e_machine} is not modelled: relocations counted as words")
    return Dso(
        path=path,
        file=f.path,
        file_id=FileId(dev=st.st_dev, ino=st.st_ino),
        file_size=f.size,
        elf_class=elf_class,
        little_endian=little,
        e_machine=e_machine,
        machine=machine.name if machine else f"em{e_machine}",
        osabi=osabi,
        e_type=e_type,
        entry=e_entry,
        phdrs=phdrs,
        interp=interp,
        dynamic=dynamic,
        sections=sections,
        build_id=_build_id(f, phdrs, little),
        x86_isa_needed=_x86_isa_needed(f, phdrs, lay) if e_machine in (3, 62) else 0,
        warnings=tuple(warnings),
    )


def _xnum(f: _File, lay: _Layout, e_shoff: int, e_shentsize: int) -> int:
    if not e_shoff or e_shentsize != lay.shdr.size:
        raise MalformedElfError(f.path, "ELF header", "e_phnum is PN_XNUM but no section 0")
    sh = lay.shdr.unpack(f.read(e_shoff, lay.shdr.size, "section header 0 (PN_XNUM)"))
    return int(sh[7])  # sh_info


def _phdrs(f: _File, lay: _Layout, phoff: int, phnum: int, elf_class: int) -> tuple[Segment, ...]:
    raw = f.read(phoff, phnum * lay.phdr.size, "program header table")
    out = []
    for i, fields in enumerate(lay.phdr.iter_unpack(raw)):
        if elf_class == 64:
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, p_align = fields
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, p_memsz, p_flags, p_align = fields
        out.append(
            Segment(
                index=i,
                p_type=p_type,
                offset=p_offset,
                vaddr=p_vaddr,
                filesz=p_filesz,
                memsz=p_memsz,
                align=p_align,
                flags=Prot(p_flags & 7),
            )
        )
    return tuple(out)


def _check_loads(
    path: str, phdrs: tuple[Segment, ...], warnings: list[str], file_size: int, elf_class: int
) -> None:
    """Reject what binfmt_elf / ld.so reject; warn on what they accept but is odd."""
    loads = [p for p in phdrs if p.p_type == PT_LOAD]
    prev = None
    for p in loads:
        where = f"PT_LOAD #{p.index}"
        if p.filesz > p.memsz:
            # fs/binfmt_elf.c elf_load / load_elf_interp: "p_filesz > p_memsz" → -EINVAL
            raise MalformedElfError(path, where, f"p_filesz 0x{p.filesz:x} > p_memsz 0x{p.memsz:x}")
        if p.filesz and p.offset + p.filesz > file_size:
            # The loaders map it anyway and the process dies of SIGBUS on the missing pages; a
            # size the file does not have must never drive the model.
            raise MalformedElfError(
                path,
                where,
                f"p_offset 0x{p.offset:x} + p_filesz 0x{p.filesz:x} lies beyond the end of the "
                f"file (0x{file_size:x})",
            )
        if p.align > 1 and (p.align & (p.align - 1)) == 0 and (p.vaddr - p.offset) % p.align:
            # elf/dl-load.c: "ELF load command address/offset not properly aligned"
            raise MalformedElfError(
                path,
                where,
                f"p_vaddr 0x{p.vaddr:x} and p_offset 0x{p.offset:x} differ modulo p_align "
                f"0x{p.align:x}",
            )
        if p.vaddr + p.memsz >= 1 << elf_class:
            raise MalformedElfError(path, where, "p_vaddr + p_memsz overflows the address space")
        if prev is not None and p.vaddr < prev.vaddr:
            warnings.append(f"{where}: PT_LOAD entries not sorted by p_vaddr")
        prev = p


def vaddr_to_offset(phdrs: tuple[Segment, ...], vaddr: int, length: int = 1) -> int | None:
    """File offset of `vaddr`, if [vaddr, vaddr+length) lies in the file part of one PT_LOAD."""
    for p in phdrs:
        if p.p_type == PT_LOAD and p.vaddr <= vaddr and vaddr + length <= p.vaddr + p.filesz:
            return p.offset + (vaddr - p.vaddr)
    return None


_TABLE_TAGS = (
    ("rela", DT_RELA, DT_RELASZ, DT_RELAENT, True),
    ("rel", DT_REL, DT_RELSZ, DT_RELENT, False),
    ("relr", DT_RELR, DT_RELRSZ, DT_RELRENT, False),
)


def _dynamic(
    f: _File, lay: _Layout, phdrs: tuple[Segment, ...], warnings: list[str], want_versions: bool
) -> DynamicInfo | None:
    dyn = next((p for p in phdrs if p.p_type == PT_DYNAMIC), None)
    if dyn is None:
        return None
    where = f"PT_DYNAMIC #{dyn.index}"
    # The loader reads .dynamic in memory at p_vaddr; translate it over PT_LOAD, and fall back
    # to p_offset only for files whose PT_DYNAMIC lies outside every PT_LOAD.
    off = vaddr_to_offset(phdrs, dyn.vaddr, lay.dyn.size)
    if off is None:
        off = dyn.offset
    length = min(dyn.filesz, f.size - off if off <= f.size else 0)
    length -= length % lay.dyn.size
    raw = f.read(off, length, where)
    entries: list[DynEntry] = []
    for i, (tag, val) in enumerate(lay.dyn.iter_unpack(raw)):
        if tag == DT_NULL:
            break
        entries.append(DynEntry(index=i, tag=tag, value=val))
    last = {e.tag: e.value for e in entries}
    # The start of the string table, read once: the names the dynamic section and the version
    # tables point at (a dozen or more per object) are most often in its first STRTAB_WINDOW
    # bytes. A string not wholly inside is read on its own, as before.
    window: list[bytes] = []

    def strtab_string(offset: int, what: str) -> str:
        strtab, strsz = last.get(DT_STRTAB), last.get(DT_STRSZ)
        if strtab is None:
            raise MalformedElfError(f.path, where, f"{what} without DT_STRTAB")
        if strsz is not None and offset >= strsz:
            raise MalformedElfError(
                f.path, what, f"string offset 0x{offset:x} beyond DT_STRSZ 0x{strsz:x}"
            )
        base = vaddr_to_offset(phdrs, strtab)
        if base is None:
            raise MalformedElfError(
                f.path, where, f"DT_STRTAB 0x{strtab:x} is outside every PT_LOAD"
            )
        limit = MAX_STRING if strsz is None else min(MAX_STRING, strsz - offset)
        if not window:
            size = min(STRTAB_WINDOW, strsz if strsz is not None else STRTAB_WINDOW)
            window.append(os.pread(f.fd, max(0, min(size, f.size - base)), base))
        data = window[0]
        end = data.find(b"\0", offset, offset + limit)
        if end >= 0:
            return data[offset:end].decode("utf-8", "surrogateescape")
        return f.cstring(base + offset, limit, what)

    needed = tuple(strtab_string(e.value, "DT_NEEDED") for e in entries if e.tag == DT_NEEDED)
    soname = strtab_string(last[DT_SONAME], "DT_SONAME") if DT_SONAME in last else None
    rpath = _split_path(strtab_string(last[DT_RPATH], "DT_RPATH")) if DT_RPATH in last else ()
    runpath = (
        _split_path(strtab_string(last[DT_RUNPATH], "DT_RUNPATH")) if DT_RUNPATH in last else ()
    )
    tables: list[RelocTableRef] = []
    for kind, t_addr, t_size, t_ent, rela in _TABLE_TAGS:
        if t_addr in last and last.get(t_size, 0):
            default_ent = {"rela": 3, "rel": 2, "relr": 1}[kind] * lay.word
            tables.append(
                RelocTableRef(
                    kind=kind,  # type: ignore[arg-type]
                    vaddr=last[t_addr],
                    size=last[t_size],
                    entsize=last.get(t_ent, default_ent),
                    rela=rela,
                )
            )
    if DT_JMPREL in last and last.get(DT_PLTRELSZ, 0):
        plt_rela = last.get(DT_PLTREL, DT_RELA) == DT_RELA
        tables.append(
            RelocTableRef(
                kind="jmprel",
                vaddr=last[DT_JMPREL],
                size=last[DT_PLTRELSZ],
                entsize=(3 if plt_rela else 2) * lay.word,
                rela=plt_rela,
            )
        )
    flags = last.get(DT_FLAGS, 0)
    verneed: tuple[VersionNeed, ...] = ()
    verdef: tuple[str, ...] | None = None
    try:
        if want_versions:
            verneed, verdef = _versions(f, phdrs, last, strtab_string, lay.dyn.format[0])
    except MalformedElfError as exc:
        # The loader would refuse such tables at start-up ("unsupported version ... of
        # Verneed record"); they are no reason not to model the rest of the object.
        warnings.append(f"symbol version tables ignored: {exc.what}: {exc.why}")
    return DynamicInfo(
        entries=tuple(entries),
        needed=needed,
        soname=soname,
        rpath=rpath,
        runpath=runpath,
        flags=flags,
        flags_1=last.get(DT_FLAGS_1, 0),
        tables=tuple(tables),
        pltgot=last.get(DT_PLTGOT),
        symtab=last.get(DT_SYMTAB),
        syment=last.get(DT_SYMENT, 24 if lay.word == 8 else 16),
        strtab=last.get(DT_STRTAB),
        textrel=DT_TEXTREL in last or bool(flags & DF_TEXTREL),
        verneed=verneed,
        verdef=verdef,
    )


MAX_VERSION_RECORDS = 4096  # Elf_Verneed/Vernaux/Verdef records followed, per table


def _versions(
    f: _File,
    phdrs: tuple[Segment, ...],
    last: dict[int, int],
    strtab_string: Callable[[int, str], str],
    order: str,
) -> tuple[tuple[VersionNeed, ...], tuple[str, ...] | None]:
    """DT_VERNEED and DT_VERDEF, walked as glibc's elf/dl-version.c _dl_check_map_versions
    does: by vn_next/vna_next/vd_next offsets until one is 0 (the DT_*NUM counts are not used).

    Elf_Verneed, Elf_Vernaux, Elf_Verdef and Elf_Verdaux have the same layout in both classes.
    """

    window: list[tuple[int, bytes]] = []  # (vaddr, bytes) read at a table's start: one pread

    def record(vaddr: int, fmt: str, what: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        for start, data in window:
            if start <= vaddr and vaddr + size <= start + len(data):
                return struct.unpack_from(fmt, data, vaddr - start)
        seg = next(
            (
                p
                for p in phdrs
                if p.p_type == PT_LOAD and p.vaddr <= vaddr and vaddr + size <= p.vaddr + p.filesz
            ),
            None,
        )
        if seg is None:
            raise MalformedElfError(f.path, what, f"0x{vaddr:x} is outside every PT_LOAD")
        # The records of a table follow each other: read up to 4 KiB of them at once.
        off = seg.offset + (vaddr - seg.vaddr)
        data = f.read(off, min(4096, seg.offset + seg.filesz - off), what)
        window[:] = [(vaddr, data)]
        return struct.unpack_from(fmt, data, 0)

    needs: list[VersionNeed] = []
    if DT_VERNEED in last:
        addr, budget = last[DT_VERNEED], MAX_VERSION_RECORDS
        while True:
            vn_version, _cnt, vn_file, vn_aux, vn_next = record(addr, order + "HHIII", "Verneed")
            if vn_version != 1:
                raise MalformedElfError(f.path, "DT_VERNEED", f"vn_version {vn_version}")
            names: list[str] = []
            weak: list[str] = []
            aux = addr + vn_aux
            while True:
                budget -= 1
                if budget < 0:
                    raise MalformedElfError(f.path, "DT_VERNEED", "too many records (a loop?)")
                _hash, vna_flags, _other, vna_name, vna_next = record(
                    aux, order + "IHHII", "Vernaux"
                )
                name = strtab_string(vna_name, "vna_name")
                names.append(name)
                if vna_flags & VER_FLG_WEAK:
                    weak.append(name)
                if vna_next == 0:
                    break
                aux += vna_next
            needs.append(
                VersionNeed(
                    file=strtab_string(vn_file, "vn_file"),
                    versions=tuple(names),
                    weak=tuple(weak),
                )
            )
            if vn_next == 0:
                break
            addr += vn_next
    defs: list[str] | None = None
    if DT_VERDEF in last:
        defs = []
        addr, budget = last[DT_VERDEF], MAX_VERSION_RECORDS
        while True:
            budget -= 1
            if budget < 0:
                raise MalformedElfError(f.path, "DT_VERDEF", "too many records (a loop?)")
            vd_version, _flags, _ndx, _cnt, _hash, vd_aux, vd_next = record(
                addr, order + "HHHHIII", "Verdef"
            )
            if vd_version != 1:
                raise MalformedElfError(f.path, "DT_VERDEF", f"vd_version {vd_version}")
            (vda_name, _vda_next) = record(addr + vd_aux, order + "II", "Verdaux")
            defs.append(strtab_string(vda_name, "vda_name"))
            if vd_next == 0:
                break
            addr += vd_next
    return tuple(needs), None if defs is None else tuple(defs)


def _split_path(value: str) -> tuple[str, ...]:
    # glibc fillin_rpath / musl: ':'-separated; an empty element means the current directory
    # in glibc, which we keep as "" so the resolver can treat it as the loader does.
    return tuple(value.split(":")) if value else ()


def _sections(
    f: _File, lay: _Layout, shoff: int, shentsize: int, shnum: int, shstrndx: int
) -> tuple[Section, ...]:
    if shentsize != lay.shdr.size:
        raise MalformedElfError(f.path, "section headers", f"e_shentsize {shentsize}")
    raw = f.read(shoff, shnum * lay.shdr.size, "section header table")
    rows = list(lay.shdr.iter_unpack(raw))
    if not 0 < shstrndx < len(rows):
        raise MalformedElfError(f.path, "section headers", f"e_shstrndx {shstrndx}")
    str_off, str_size = rows[shstrndx][4], rows[shstrndx][5]
    names = f.read(str_off, str_size, "section name table")
    out = []
    for name_off, sh_type, sh_flags, sh_addr, sh_offset, sh_size, _, _, _, sh_entsize in rows[1:]:
        end = names.find(b"\0", name_off)
        name = names[name_off:end].decode("utf-8", "surrogateescape") if end >= 0 else "?"
        out.append(
            Section(
                name=name,
                sh_type=sh_type,
                flags=sh_flags,
                addr=sh_addr,
                offset=sh_offset,
                size=sh_size,
                entsize=sh_entsize,
            )
        )
    return tuple(out)


NT_GNU_BUILD_ID = 3


def _build_id(f: _File, phdrs: tuple[Segment, ...], little: bool) -> str | None:
    """NT_GNU_BUILD_ID from PT_NOTE: the key of calibrated libc profiles."""
    e = "<" if little else ">"
    for p in phdrs:
        if p.p_type != PT_NOTE or p.filesz > 1 << 16 or p.offset + p.filesz > f.size:
            continue
        data = os.pread(f.fd, p.filesz, p.offset)
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, n_type = struct.unpack_from(e + "III", data, pos)
            name_end = pos + 12 + ((namesz + 3) & ~3)
            desc_end = name_end + ((descsz + 3) & ~3)
            if desc_end > len(data):
                break
            if n_type == NT_GNU_BUILD_ID and data[pos + 12 : pos + 12 + namesz] == b"GNU\0":
                return data[name_end : name_end + descsz].hex()
            pos = desc_end
    return None


NT_GNU_PROPERTY_TYPE_0 = 5
GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002


def _x86_isa_needed(f: _File, phdrs: tuple[Segment, ...], lay: _Layout) -> int:
    """GNU_PROPERTY_X86_ISA_1_NEEDED, read as glibc reads it (sysdeps/x86/dl-prop.h
    _dl_process_property_note via elf/dl-load.c _dl_process_pt_gnu_property): the first
    NT_GNU_PROPERTY_TYPE_0 note named "GNU" in PT_GNU_PROPERTY, aligned to the class's word,
    properties sorted by type, each padded to that word. 0 when there is none."""
    seg = next((p for p in phdrs if p.p_type == PT_GNU_PROPERTY), None)
    word = 8 if lay.phdr.size == 56 else 4  # Elf64_Phdr is 56 bytes, Elf32_Phdr 32
    if seg is None or seg.align != word or seg.filesz > 1 << 16 or seg.offset + seg.filesz > f.size:
        return 0
    data = os.pread(f.fd, seg.filesz, seg.offset)
    e = lay.ehdr.format[0]  # the file's byte order
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, n_type = struct.unpack_from(e + "III", data, pos)
        desc = pos + 12 + ((namesz + 3) & ~3)
        end = desc + ((descsz + word - 1) & ~(word - 1))
        if end > len(data):
            return 0
        if n_type == NT_GNU_PROPERTY_TYPE_0 and data[pos + 12 : pos + 12 + namesz] == b"GNU\0":
            at, stop = desc, desc + descsz
            while at + 8 <= stop:
                pr_type, pr_datasz = struct.unpack_from(e + "II", data, at)
                if pr_type == GNU_PROPERTY_X86_ISA_1_NEEDED and pr_datasz == 4:
                    return int(struct.unpack_from(e + "I", data, at + 8)[0])
                if pr_type > GNU_PROPERTY_X86_ISA_1_NEEDED:
                    return 0  # sorted: it is not there
                at += 8 + ((pr_datasz + word - 1) & ~(word - 1))
            return 0  # glibc reads the first such note only
        pos = end
    return 0
