"""Where the loader-visible structures of a (valid) ELF file lie, and how to patch them.

Used by the mutation harness and the corpus generator. `ElfMap(data)` parses a good file once
and lists every field a mutation may target: the ELF header, the program headers, the dynamic
entries, the dynamic string table, the dynamic relocation tables, the first dynamic symbols,
the section headers, plus the boundaries between structures (for truncation). It deliberately
shares no code with elfcost's reader: a bug there must not hide itself here.
"""

from __future__ import annotations

from dataclasses import dataclass

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL, DT_NEEDED, DT_PLTRELSZ, DT_STRTAB, DT_SYMTAB = 0, 1, 2, 5, 6
DT_RELA, DT_RELASZ, DT_STRSZ, DT_SONAME, DT_RPATH = 7, 8, 10, 14, 15
DT_REL, DT_RELSZ, DT_PLTREL, DT_JMPREL, DT_RUNPATH = 17, 18, 20, 23, 29
DT_RELRSZ, DT_RELR = 35, 36
SHT_RELA, SHT_REL, SHT_DYNSYM = 4, 9, 11


@dataclass(frozen=True, slots=True)
class Field:
    """One integer field of the file: `group` says what kind of structure it belongs to."""

    name: str  # "phdr[2].p_filesz", "dyn[5].d_val", "rela[3].r_info"
    group: str  # "ehdr", "phdr", "dyn", "reloc", "sym", "shdr", "note"
    offset: int
    size: int  # 1, 2, 4 or 8 bytes


class ElfMap:
    """The structures of one good ELF file, as fields a mutation can target."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF":
            raise ValueError("not ELF")
        self.data = data
        self.elf64 = data[4] == 2
        self.little = data[5] == 1
        self.fields: list[Field] = []
        self.boundaries: set[int] = {0, len(data)}  # structure starts and ends
        self.strings: list[tuple[str, int, int]] = []  # (what, offset, size)
        self.phdr_records: list[tuple[int, int]] = []  # (offset, size)
        self.dyn_records: list[tuple[int, int, int]] = []  # (offset, tag, value)
        self.reloc_tables: list[tuple[str, int, int, int]] = []  # (kind, offset, size, entsize)
        self.loads: list[tuple[int, int, int, int]] = []  # (offset, vaddr, filesz, memsz)
        self._parse()

    # -- primitive access -------------------------------------------------------------------

    @property
    def e(self) -> str:
        return "<" if self.little else ">"

    @property
    def word(self) -> int:
        return 8 if self.elf64 else 4

    def get(self, offset: int, size: int, data: bytes | None = None) -> int:
        buf = self.data if data is None else data
        return int.from_bytes(buf[offset : offset + size], "little" if self.little else "big")

    def put(self, buf: bytearray, offset: int, size: int, value: int) -> None:
        if offset + size > len(buf):
            return
        value &= (1 << (8 * size)) - 1
        buf[offset : offset + size] = value.to_bytes(size, "little" if self.little else "big")

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def _add(self, name: str, group: str, offset: int, size: int) -> None:
        if offset + size <= len(self.data):
            self.fields.append(Field(name, group, offset, size))

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        for off, va, filesz, _ in self.loads:
            if va <= vaddr < va + filesz:
                return off + vaddr - va
        return None

    # -- parsing a good file ------------------------------------------------------------------

    def _parse(self) -> None:
        w = self.word
        # Field layout of Elf{32,64}_Ehdr after e_ident.
        names = ["e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff", "e_flags"]
        names += ["e_ehsize", "e_phentsize", "e_phnum", "e_shentsize", "e_shnum", "e_shstrndx"]
        sizes = [2, 2, 4, w, w, w, 4, 2, 2, 2, 2, 2, 2]
        for i, what in enumerate(("EI_CLASS", "EI_DATA", "EI_VERSION", "EI_OSABI")):
            self._add(f"ehdr.{what}", "ehdr", 4 + i, 1)
        pos = 16
        ehdr: dict[str, int] = {}
        for n, s in zip(names, sizes, strict=True):
            self._add(f"ehdr.{n}", "ehdr", pos, s)
            ehdr[n] = self.get(pos, s)
            self.boundaries.add(pos)
            pos += s
        self.boundaries.update({4, 5, 6, 16, pos})
        phoff, phnum, phent = ehdr["e_phoff"], ehdr["e_phnum"], ehdr["e_phentsize"]
        if self.elf64:
            pnames = ["p_type", "p_flags", "p_offset", "p_vaddr", "p_paddr", "p_filesz"]
            pnames += ["p_memsz", "p_align"]
            psizes = [4, 4, 8, 8, 8, 8, 8, 8]
        else:
            pnames = ["p_type", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz"]
            pnames += ["p_flags", "p_align"]
            psizes = [4] * 8
        phdrs: list[dict[str, int]] = []
        for i in range(phnum):
            base = phoff + i * phent
            self.boundaries.add(base)
            self.phdr_records.append((base, phent))
            rec: dict[str, int] = {}
            pos = base
            for n, s in zip(pnames, psizes, strict=True):
                self._add(f"phdr[{i}].{n}", "phdr", pos, s)
                rec[n] = self.get(pos, s)
                pos += s
            phdrs.append(rec)
        self.boundaries.add(phoff + phnum * phent)
        for p in phdrs:
            self.boundaries.update({p["p_offset"], p["p_offset"] + p["p_filesz"]})
            if p["p_type"] == PT_LOAD:
                self.loads.append((p["p_offset"], p["p_vaddr"], p["p_filesz"], p["p_memsz"]))
            elif p["p_type"] == PT_INTERP:
                self.strings.append(("interp", p["p_offset"], p["p_filesz"]))
            elif p["p_type"] == PT_NOTE:
                self._notes(p["p_offset"], p["p_filesz"])
        dyn = next((p for p in phdrs if p["p_type"] == PT_DYNAMIC), None)
        if dyn is not None:
            self._dynamic(dyn["p_offset"], dyn["p_filesz"])
        shoff, shnum, shent = ehdr["e_shoff"], ehdr["e_shnum"], ehdr["e_shentsize"]
        if shoff and shnum and shoff + shnum * shent <= len(self.data):
            self._sections(shoff, shnum, shent, ehdr["e_shstrndx"])

    def _notes(self, off: int, size: int) -> None:
        pos, i = off, 0
        while pos + 12 <= off + size and i < 8:
            namesz, descsz = self.get(pos, 4), self.get(pos + 4, 4)
            for j, n in enumerate(("n_namesz", "n_descsz", "n_type")):
                self._add(f"note[{i}].{n}", "note", pos + 4 * j, 4)
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
            i += 1

    def _dynamic(self, off: int, size: int) -> None:
        w = self.word
        n = size // (2 * w)
        values: dict[int, int] = {}
        for i in range(n):
            pos = off + i * 2 * w
            tag, val = self.get(pos, w), self.get(pos + w, w)
            self.boundaries.add(pos)
            self._add(f"dyn[{i}].d_tag", "dyn", pos, w)
            self._add(f"dyn[{i}].d_val", "dyn", pos + w, w)
            self.dyn_records.append((pos, tag, val))
            values.setdefault(tag, val)
            if tag == DT_NULL:
                break
        strtab = values.get(DT_STRTAB)
        strsz = values.get(DT_STRSZ, 0)
        if strtab is not None:
            so = self.vaddr_to_offset(strtab)
            if so is not None:
                self.strings.append(("dynstr", so, strsz))
                self.boundaries.update({so, so + strsz})
        for kind, t_addr, t_size, ent in (
            ("rela", DT_RELA, DT_RELASZ, 3 * w),
            ("rel", DT_REL, DT_RELSZ, 2 * w),
            ("relr", DT_RELR, DT_RELRSZ, w),
            ("jmprel", DT_JMPREL, DT_PLTRELSZ, (3 if values.get(DT_PLTREL) == DT_RELA else 2) * w),
        ):
            if t_addr in values and values.get(t_size):
                to = self.vaddr_to_offset(values[t_addr])
                if to is not None:
                    self._relocs(kind, to, values[t_size], ent)
        symtab = values.get(DT_SYMTAB)
        if symtab is not None:
            so = self.vaddr_to_offset(symtab)
            if so is not None:
                self._symbols(so, 24 if self.elf64 else 16, 32)

    def _relocs(self, kind: str, off: int, size: int, ent: int) -> None:
        if off + size > len(self.data):
            return
        self.reloc_tables.append((kind, off, size, ent))
        self.boundaries.update({off, off + size})
        n = size // ent
        # Every entry of a small table, an even sample of a big one.
        step = max(1, n // 64)
        for i in range(0, n, step):
            pos = off + i * ent
            if kind == "relr":
                self._add(f"{kind}[{i}].word", "reloc", pos, ent)
                continue
            self._add(f"{kind}[{i}].r_offset", "reloc", pos, self.word)
            self._add(f"{kind}[{i}].r_info", "reloc", pos + self.word, self.word)

    def _symbols(self, off: int, ent: int, count: int) -> None:
        for i in range(1, count):
            pos = off + i * ent
            if pos + ent > len(self.data):
                break
            if self.elf64:  # st_name, st_info, st_other, st_shndx, st_value, st_size
                layout = (("st_info", 4, 1), ("st_shndx", 6, 2), ("st_value", 8, 8))
                layout += (("st_size", 16, 8),)
            else:  # st_name, st_value, st_size, st_info, st_other, st_shndx
                layout = (("st_value", 4, 4), ("st_size", 8, 4), ("st_info", 12, 1))
                layout += (("st_shndx", 14, 2),)
            for n, o, s in layout:
                self._add(f"sym[{i}].{n}", "sym", pos + o, s)

    def _sections(self, shoff: int, shnum: int, shent: int, shstrndx: int) -> None:
        w = self.word
        names = ["sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size"]
        names += ["sh_link", "sh_info", "sh_addralign", "sh_entsize"]
        sizes = [4, 4, w, w, w, w, 4, 4, w, w]
        for i in range(shnum):
            base = shoff + i * shent
            self.boundaries.add(base)
            pos = base
            rec: dict[str, int] = {}
            for n, s in zip(names, sizes, strict=True):
                self._add(f"shdr[{i}].{n}", "shdr", pos, s)
                rec[n] = self.get(pos, s)
                pos += s
            if i == shstrndx:
                self.strings.append(("shstrtab", rec["sh_offset"], rec["sh_size"]))
            is_reloc = rec["sh_type"] in (SHT_RELA, SHT_REL) and rec["sh_flags"] & 2
            if is_reloc and not self.dyn_records:  # a static binary's IRELATIVE table
                ent = (3 if rec["sh_type"] == SHT_RELA else 2) * w
                self._relocs("iplt", rec["sh_offset"], rec["sh_size"], ent)
        self.boundaries.add(shoff + shnum * shent)

    # -- helpers for targeted patches ---------------------------------------------------------

    def dyn_index(self, tag: int) -> int | None:
        """Index of the first dynamic entry with `tag`."""
        return next((i for i, (_, t, _) in enumerate(self.dyn_records) if t == tag), None)

    def set_dyn(self, buf: bytearray, index: int, tag: int | None, value: int | None) -> None:
        pos = self.dyn_records[index][0]
        if tag is not None:
            self.put(buf, pos, self.word, tag)
        if value is not None:
            self.put(buf, pos + self.word, self.word, value)

    def set_phdr(self, buf: bytearray, index: int, name: str, value: int) -> None:
        f = self.field(f"phdr[{index}].{name}")
        self.put(buf, f.offset, f.size, value)

    def phdr(self, index: int, name: str) -> int:
        f = self.field(f"phdr[{index}].{name}")
        return self.get(f.offset, f.size)

    def phdr_indices(self, p_type: int) -> list[int]:
        n = sum(1 for f in self.fields if f.name.endswith(".p_type"))
        return [i for i in range(n) if self.phdr(i, "p_type") == p_type]

    def dynstr(self) -> tuple[int, int] | None:
        return next(((o, s) for what, o, s in self.strings if what == "dynstr"), None)

    def dynstr_string(self, str_offset: int) -> tuple[int, bytes]:
        """(file offset, bytes without NUL) of the dynamic string at `str_offset`."""
        table = self.dynstr()
        assert table is not None
        start = table[0] + str_offset
        end = self.data.index(b"\0", start)
        return start, self.data[start:end]


def replace_string(buf: bytearray, old: bytes, new: bytes) -> int:
    """Replace every NUL-terminated occurrence of `old` by `new` (same length); count them."""
    if len(old) != len(new):
        raise ValueError("in-place string patches keep the length")
    n, pos = 0, 0
    needle = old + b"\0"
    while (pos := bytes(buf).find(needle, pos)) >= 0:
        if pos == 0 or buf[pos - 1] == 0:
            buf[pos : pos + len(old)] = new
            n += 1
        pos += len(needle)
    return n
