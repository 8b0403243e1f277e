#!/usr/bin/env python3
"""Write the hostile-input regression corpus into a directory, with what the CLI must say.

    python3 tests/fuzz/make_corpus.py OUT [--samples build/samples]

Nothing here is a hand-edited binary: every file is a copy of a good one (the built samples,
a library compiled here with gcc, the committed cross-machine fixtures) patched by a rule, or
a file-system object made on the spot (FIFO, symlink loop, directory, sysroot). OUT/cases.json
lists every case: the files, the extra options, and per command (`deps`, `estimate`) the
expected exit code and the text fragments the output must contain. tests/fuzz/test_corpus.py
builds the corpus into a temporary directory and checks it through `python3 -m elfcost`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from elfpatch import (  # noqa: E402
    DT_NEEDED,
    DT_PLTRELSZ,
    DT_RELASZ,
    DT_STRSZ,
    DT_STRTAB,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    ElfMap,
)

ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "data" / "elf"
CHAIN_DEPTH = 10_000
NOT_READ = "NOT-READ"  # marker text of files outside a sysroot that must never be found


@dataclass
class Expect:
    code: int  # exit status of a run with only this input
    fragments: list[str] = field(default_factory=list)  # in the error line, or the JSON document


@dataclass
class Case:
    name: str
    path: str  # the input, relative to the corpus directory unless absolute
    deps: Expect
    estimate: Expect
    options: list[str] = field(default_factory=list)  # e.g. ["--root", "sysroot"]
    note: str = ""


def _ok(*fragments: str) -> Expect:
    return Expect(0, list(fragments))


def _err(*fragments: str) -> Expect:
    return Expect(3, list(fragments))


def both(e: Expect) -> dict[str, Expect]:
    return {"deps": e, "estimate": Expect(e.code, list(e.fragments))}


# -- a tiny library whose DT_SONAME and DT_NEEDED can be rewritten in place ----------------------

LIB_C = "int q(void) { return 0; }\n"
NAME_LEN = len("libq000000.so")


def lib_name(i: int) -> str:
    return f"libq{i:06d}.so"


class Template:
    """libq000000.so (DT_SONAME) needing libq000001.so, RUNPATH $ORIGIN, no libc: 5 KiB."""

    def __init__(self, work: Path) -> None:
        if shutil.which("gcc") is None:
            raise RuntimeError("gcc is needed to build the template library")
        src = work / "q.c"
        src.write_text(LIB_C)
        flags = ["-shared", "-fPIC", "-nostdlib", "-O1", "-s", "-Wl,--no-as-needed"]
        flags += ["-Wl,-z,noseparate-code", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN"]
        stub = work / "stub"
        stub.mkdir(exist_ok=True)
        cc = ["gcc", *flags, str(src)]
        subprocess.run(
            [*cc, f"-Wl,-soname,{lib_name(1)}", "-o", str(stub / lib_name(1))], check=True
        )
        out = work / "template.so"
        subprocess.run(
            [*cc, f"-Wl,-soname,{lib_name(0)}", f"-L{stub}", "-lq000001", "-o", str(out)],
            check=True,
        )
        self.data = out.read_bytes()
        self.map = ElfMap(self.data)
        dynstr = self.map.dynstr()
        assert dynstr is not None
        self.soname_at = self.data.index(lib_name(0).encode() + b"\0", dynstr[0])
        self.needed_at = self.data.index(lib_name(1).encode() + b"\0", dynstr[0])

    def make(self, soname: str, needed: str) -> bytes:
        """A copy with both strings replaced (each exactly NAME_LEN bytes)."""
        assert len(soname) == len(needed) == NAME_LEN
        buf = bytearray(self.data)
        buf[self.soname_at : self.soname_at + NAME_LEN] = soname.encode()
        buf[self.needed_at : self.needed_at + NAME_LEN] = needed.encode()
        return bytes(buf)


def write_chain(t: Template, d: Path, depth: int) -> None:
    """libq000000.so → libq000001.so → … → libq{depth-1}, whose need is missing."""
    d.mkdir(parents=True, exist_ok=True)
    for i in range(depth):
        (d / lib_name(i)).write_bytes(t.make(lib_name(i), lib_name(i + 1)))


# -- patching the good program -------------------------------------------------------------------


class Pie:
    """A good dynamic PIE (trivial.pie) and the facts the expectations are computed from."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.map = m = ElfMap(data)
        self.size = len(data)
        self.loads = m.phdr_indices(PT_LOAD)
        self.rw = next(i for i in self.loads if m.phdr(i, "p_flags") & 2)
        self.dyn = m.phdr_indices(PT_DYNAMIC)[0]
        self.interp = m.phdr_indices(PT_INTERP)[0]
        self.phoff = m.get(m.field("ehdr.e_phoff").offset, 8)
        self.phnum = len(m.phdr_records)
        self.phend = self.phoff + self.phnum * 56
        self.shoff = m.get(m.field("ehdr.e_shoff").offset, 8)

    def patch(self, *edits: tuple[str, int]) -> bytes:
        """Copy with fields set: ("phdr[3].p_filesz", value), ("ehdr.e_type", 1), ..."""
        buf = bytearray(self.data)
        for name, value in edits:
            f = self.map.field(name)
            self.map.put(buf, f.offset, f.size, value)
        return bytes(buf)

    def dyn_field(self, tag: int) -> str:
        i = self.map.dyn_index(tag)
        assert i is not None, tag
        return f"dyn[{i}].d_val"

    def dyn_value(self, tag: int) -> int:
        i = self.map.dyn_index(tag)
        assert i is not None, tag
        return self.map.dyn_records[i][2]

    def truncation_error(self, length: int) -> str | None:
        """What elfcost must say about this file cut at `length` (None: still loadable).

        Follows the order in which the loader reads: e_ident, the ELF header, the program
        header table, then each PT_LOAD's file part (computed here, not asked of elfcost).
        """
        if length < 4:
            return "not an ELF file"
        if length < 16:
            return "file ends inside e_ident"
        if length < 64:
            return "ELF header: bytes 0x0..0x40 lie beyond the end of the file"
        if length < self.phend:
            return (
                f"program header table: bytes 0x{self.phoff:x}..0x{self.phend:x} lie beyond the "
                "end of the file"
            )
        for i in self.loads:
            off, filesz = self.map.phdr(i, "p_offset"), self.map.phdr(i, "p_filesz")
            if filesz and off + filesz > length:
                return f"PT_LOAD #{i}: p_offset 0x{off:x} + p_filesz 0x{filesz:x} lies beyond"
        return None


def truncations(pie: Pie) -> list[int]:
    """Every header boundary, and one byte either side of it."""
    m = pie.map
    points = {0, 1, 3, 4, 5, 15, 16, 17, 24, 63, 64, 65, pie.phend - 1, pie.phend}
    points.update(pie.phoff + 56 * k for k in range(1, pie.phnum))
    for i in pie.loads:
        off, filesz = m.phdr(i, "p_offset"), m.phdr(i, "p_filesz")
        points.update({off, off + 1, off + filesz - 1, off + filesz})
    dyn_off = m.phdr(pie.dyn, "p_offset")
    points.update({dyn_off, dyn_off + 16, pie.shoff, pie.shoff + 1, pie.size - 1})
    return sorted(p for p in points if 0 <= p < pie.size)


def claims(pie: Pie, copy_reloc: bytes | None) -> dict[str, tuple[bytes, Expect, Expect]]:
    """Files claiming huge sizes and counts: {name: (bytes, deps expect, estimate expect)}.

    Also fed to the pipeline under RLIMIT_AS by test_mutation.py: a claim must be refused or
    bounded by the real file, never allocated.
    """
    m, rw = pie.map, pie.rw
    rw_vaddr = m.phdr(rw, "p_vaddr")
    too_big = _err("more than a 48-bit address space: it could not be loaded")
    out: dict[str, tuple[bytes, Expect, Expect]] = {}

    def add(name: str, data: bytes, deps: Expect, est: Expect | None = None) -> None:
        out[name] = (data, deps, est if est is not None else Expect(deps.code, deps.fragments))

    add(
        "claim_load_filesz_2e40",
        pie.patch((f"phdr[{rw}].p_filesz", 2**40), (f"phdr[{rw}].p_memsz", 2**40)),
        _err(f"PT_LOAD #{rw}: p_offset", "p_filesz 0x10000000000 lies beyond the end of the file"),
    )
    # Huge writable segments are counted, not listed: 2**40 bytes are 268,435,456 pages of 4 KiB,
    # 32,768 of them listed (LISTED_POSSIBLE_PAGES), the rest in possible_unlisted.
    add(
        "claim_load_memsz_2e40",
        pie.patch((f"phdr[{rw}].p_memsz", 2**40)),
        _ok(),
        _ok('"possible-write"', '"possible_unlisted": 2684'),
    )
    add(
        "claim_load_memsz_2e46",
        pie.patch((f"phdr[{rw}].p_memsz", 2**46)),
        _ok(),
        _ok('"possible_unlisted": 171798'),
    )
    # Beyond any address space a process gets: refused.
    add("claim_load_memsz_2e50", pie.patch((f"phdr[{rw}].p_memsz", 2**50)), _ok(), too_big)
    add(
        "claim_load_memsz_250MiB",
        pie.patch((f"phdr[{rw}].p_memsz", 250 << 20)),
        _ok(),
        _ok('"possible-write"'),
    )
    ro = pie.loads[0]
    add("claim_readonly_memsz_2e46", pie.patch((f"phdr[{ro}].p_memsz", 2**46)), _ok())
    add(
        "claim_vaddr_wraps",
        pie.patch(
            (f"phdr[{rw}].p_vaddr", 2**64 - 0x10000 + rw_vaddr % 0x1000),
            (f"phdr[{rw}].p_memsz", 0x20000),
        ),
        _err(f"PT_LOAD #{rw}: p_vaddr + p_memsz overflows the address space"),
    )
    # A billion program headers: e_phnum = PN_XNUM, the count in section 0's sh_info.
    add(
        "claim_phnum_billion",
        pie.patch(("ehdr.e_phnum", 0xFFFF), ("shdr[0].sh_info", 10**9)),
        _err("program header table: bytes 0x40..0x", "lie beyond the end of the file"),
    )
    add(
        "claim_phnum_65534",
        pie.patch(("ehdr.e_phnum", 65534)),
        _err("program header table: bytes 0x40..0x", "lie beyond the end of the file"),
    )
    add(
        "claim_phoff_2e60",
        pie.patch(("ehdr.e_phoff", 2**60)),
        _err("program header table: bytes 0x1000000000000000.."),
    )
    add(
        "claim_shoff_2e60",
        pie.patch(("ehdr.e_shoff", 2**60)),
        _ok(),
        _ok("section headers ignored"),
    )
    add(
        "claim_shnum_65535",
        pie.patch(("ehdr.e_shnum", 0xFFFF)),
        _ok(),
        _ok("section headers ignored"),
    )
    shstrndx = m.get(m.field("ehdr.e_shstrndx").offset, 2)
    add(
        "claim_shstrtab_size_2e60",
        pie.patch((f"shdr[{shstrndx}].sh_size", 2**60)),
        _ok(),
        _ok("section headers ignored: section name table"),
    )
    add(
        "claim_relasz_2e60",
        pie.patch((pie.dyn_field(DT_RELASZ), 2**60)),
        _ok(),
        _err("DT_RELA: table 0x", "+0x1000000000000000 is not inside the file part of a PT_LOAD"),
    )
    add(
        "claim_pltrelsz_2e60",
        pie.patch((pie.dyn_field(DT_PLTRELSZ), 2**60)),
        _ok(),
        _err("DT_JMPREL: table 0x", "+0x1000000000000000 is not inside the file part of a PT_LOAD"),
    )
    add("claim_strsz_2e60", pie.patch((pie.dyn_field(DT_STRSZ), 2**60)), _ok())
    add("claim_dynamic_filesz_2e60", pie.patch((f"phdr[{pie.dyn}].p_filesz", 2**60)), _ok())
    add("claim_interp_filesz_2e60", pie.patch((f"phdr[{pie.interp}].p_filesz", 2**60)), _ok())
    note = m.phdr_indices(4)[0]
    add("claim_note_filesz_2e40", pie.patch((f"phdr[{note}].p_filesz", 2**40)), _ok())
    add(
        "claim_strtab_2e60",
        pie.patch((pie.dyn_field(DT_STRTAB), 2**60)),
        _err("DT_STRTAB 0x1000000000000000 is outside every PT_LOAD"),
    )
    needed = m.dyn_index(DT_NEEDED)
    assert needed is not None
    add(
        "claim_needed_past_strsz",
        pie.patch((f"dyn[{needed}].d_val", pie.dyn_value(DT_STRSZ) + 5)),
        _err("DT_NEEDED: string offset 0x", "beyond DT_STRSZ"),
    )
    add(
        "claim_needed_2e60",
        pie.patch((f"dyn[{needed}].d_val", 2**60)),
        _err("DT_NEEDED: string offset 0x1000000000000000 beyond DT_STRSZ"),
    )
    if copy_reloc is not None:
        add("claim_copy_st_size_2e40", _copy_size(copy_reloc, 2**40), _ok(), _ok('"copy-reloc"'))
        # DT_SYMENT of a 32-bit Elf_Sym in a 64-bit file (found by the long fuzz run).
        cm = ElfMap(copy_reloc)
        buf = bytearray(copy_reloc)
        at = cm.dyn_index(11)  # DT_SYMENT
        assert at is not None
        cm.set_dyn(buf, at, None, 16)
        add("copy_syment_16", bytes(buf), _ok(), _err("DT_SYMENT: 16, expected 24"))
    return out


def _copy_size(data: bytes, size: int) -> bytes:
    """The executable's COPY-relocated symbol given st_size = `size`."""
    m = ElfMap(data)
    buf = bytearray(data)
    for kind, off, tsize, ent in m.reloc_tables:
        if kind not in ("rela", "jmprel") or ent != 24:
            continue
        for pos in range(off, off + tsize, ent):
            info = m.get(pos + 8, 8)
            if info & 0xFFFFFFFF == 5:  # R_X86_64_COPY
                f = m.field(f"sym[{info >> 32}].st_size")
                m.put(buf, f.offset, f.size, size)
                return bytes(buf)
    raise ValueError("no R_X86_64_COPY in the file")


def structural(pie: Pie) -> dict[str, tuple[bytes, Expect, Expect]]:
    """Single-field breakages of the program headers and the dynamic section."""
    m, rw = pie.map, pie.rw
    out: dict[str, tuple[bytes, Expect, Expect]] = {}
    loads = pie.loads

    def add(name: str, data: bytes, e: Expect, est: Expect | None = None) -> None:
        out[name] = (data, e, est if est is not None else Expect(e.code, list(e.fragments)))

    # PT_LOADs out of p_vaddr order: loadable by the kernel, worth a warning.
    a, b = loads[1], loads[2]
    (oa, size), (ob, _) = m.phdr_records[a], m.phdr_records[b]
    buf = bytearray(pie.data)
    buf[oa : oa + size], buf[ob : ob + size] = pie.data[ob : ob + size], pie.data[oa : oa + size]
    add("loads_unsorted", bytes(buf), _ok("PT_LOAD entries not sorted by p_vaddr"))
    # Overlapping PT_LOADs: the second grows over the third (the later mapping wins).
    grow = m.phdr(b, "p_vaddr") + m.phdr(b, "p_memsz") - m.phdr(a, "p_vaddr")
    add("loads_overlapping", pie.patch((f"phdr[{a}].p_memsz", grow)), _ok())
    # The writable PT_LOAD twice (over PT_GNU_EH_FRAME, which nothing needs).
    add("loads_duplicated", _copy_record(pie, rw, m.phdr_indices(0x6474E550)[0]), _ok())
    add(
        "load_filesz_gt_memsz",
        pie.patch((f"phdr[{rw}].p_filesz", m.phdr(rw, "p_memsz") + 0x10)),
        _err(f"PT_LOAD #{rw}: p_filesz 0x", "> p_memsz 0x"),
    )
    add(
        "load_offset_past_eof",
        pie.patch(
            (f"phdr[{rw}].p_offset", m.phdr(rw, "p_offset") + 0x100000),
            (f"phdr[{rw}].p_vaddr", m.phdr(rw, "p_vaddr") + 0x100000),
        ),
        _err(f"PT_LOAD #{rw}: p_offset 0x", "lies beyond the end of the file"),
    )
    add(
        "load_misaligned",
        pie.patch((f"phdr[{rw}].p_vaddr", m.phdr(rw, "p_vaddr") + 1)),
        _err(f"PT_LOAD #{rw}: p_vaddr 0x", "differ modulo p_align"),
    )
    add(
        "phoff_past_eof",
        pie.patch(("ehdr.e_phoff", pie.size + 64)),
        _err(f"program header table: bytes 0x{pie.size + 64:x}.."),
    )
    add(
        "shoff_past_eof",
        pie.patch(("ehdr.e_shoff", pie.size * 2)),
        _ok(),
        _ok("section headers ignored: section header table"),
    )
    dyn = pie.dyn
    add(
        "dynamic_past_eof",
        pie.patch(
            (f"phdr[{dyn}].p_offset", pie.size + 0x1000),
            (f"phdr[{dyn}].p_vaddr", 0x7FFF0000),
        ),
        _err(f"PT_DYNAMIC #{dyn}: bytes 0x{pie.size + 0x1000:x}.."),
    )
    add(
        "interp_past_eof",
        pie.patch((f"phdr[{pie.interp}].p_offset", pie.size + 0x100)),
        _err(f"PT_INTERP: bytes 0x{pie.size + 0x100:x}.."),
    )
    add("e_type_rel", pie.patch(("ehdr.e_type", 1)), _err("ET_REL (an object file): not loadable"))
    add("e_type_core", pie.patch(("ehdr.e_type", 4)), _err("ET_CORE (a core dump): not loadable"))
    add("ei_class_3", pie.patch(("ehdr.EI_CLASS", 3)), _err("ELF header: invalid EI_CLASS 3"))
    add("ei_data_0", pie.patch(("ehdr.EI_DATA", 0)), _err("ELF header: invalid EI_DATA 0"))
    add(
        "phentsize_32",
        pie.patch(("ehdr.e_phentsize", 32)),
        _err("ELF header: e_phentsize 32, expected 56"),
    )
    # DT_NEEDED whose string runs to the end of DT_STRSZ without a terminator.
    needed_at, _ = m.dynstr_string(pie.dyn_value(DT_NEEDED))
    table = m.dynstr()
    assert table is not None
    buf = bytearray(pie.data)
    for i in range(needed_at, table[0] + table[1]):
        buf[i] = buf[i] or 0x41
    add("needed_unterminated", bytes(buf), _err("DT_NEEDED: string not terminated"))
    # A name that is not UTF-8: kept byte for byte (the loader would open exactly that file).
    buf = bytearray(pie.data)
    buf[needed_at + 1] = 0xFF
    add("needed_not_utf8", bytes(buf), _ok("l\\udcff"))
    return out


def _copy_record(pie: Pie, src: int, dst: int) -> bytes:
    (os_, size), (od, _) = pie.map.phdr_records[src], pie.map.phdr_records[dst]
    buf = bytearray(pie.data)
    buf[od : od + size] = pie.data[os_ : os_ + size]
    return bytes(buf)


# -- the corpus ---------------------------------------------------------------------------------


def build(out: Path, samples: Path, *, chain_depth: int = CHAIN_DEPTH) -> list[Case]:
    """Write every case under `out` (which must be empty or absent); return them."""
    out.mkdir(parents=True, exist_ok=True)
    files = out / "files"
    files.mkdir(exist_ok=True)
    cases: list[Case] = []

    def single(name: str, data: bytes, deps: Expect, est: Expect, note: str = "") -> None:
        path = files / name
        path.write_bytes(data)
        cases.append(Case(name, str(path), deps, est, note=note))

    pie = Pie((samples / "trivial.pie").read_bytes())
    for length in truncations(pie):
        why = pie.truncation_error(length)
        e = _err(why) if why else _ok()
        est = Expect(e.code, list(e.fragments))
        single(f"truncated_at_{length:05d}", pie.data[:length], e, est, f"cut at byte {length}")
    copy_reloc = samples / "copy_reloc.nopie"
    copy_data = copy_reloc.read_bytes() if copy_reloc.is_file() else None
    for group in (claims(pie, copy_data), structural(pie)):
        for name, (data, deps, est) in group.items():
            single(name, data, deps, est)
    if copy_data is not None and (samples / "libcopydata.so").is_file():
        # The COPY case needs its library beside it to resolve the symbol's definer.
        shutil.copyfile(samples / "libcopydata.so", files / "libcopydata.so")

    single("empty", b"", _err("not an ELF file"), _err("not an ELF file"))
    single("text", b"#!/bin/sh\necho hello\n", _err("not an ELF file"), _err("not an ELF file"))
    single("magic_only", b"\x7fELF", _err("file ends inside e_ident"), _err("e_ident"))
    single(
        "magic_then_zeros",
        b"\x7fELF\x02\x01\x01" + bytes(4096),
        _err("ELF header: e_type ET_NONE: not loadable"),
        _err("ET_NONE"),
    )
    fs = out / "fs"
    fs.mkdir(exist_ok=True)
    (fs / "a_directory").mkdir(exist_ok=True)
    cases.append(
        Case("directory", str(fs / "a_directory"), _err("a directory"), _err("a directory"))
    )
    fifo = fs / "a_fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    cases.append(
        Case(
            "fifo",
            str(fifo),
            _err("not a regular file"),
            _err("not a regular file"),
            note="must not block",
        )
    )
    cases.append(
        Case(
            "dev_zero",
            "/dev/zero",
            _err("/dev/zero: not a regular file"),
            _err("not a regular file"),
        )
    )
    _symlink(fs / "loop_a", "loop_b")
    _symlink(fs / "loop_b", "loop_a")
    loop = _err("too many levels of symbolic links")
    cases.append(Case("symlink_loop", str(fs / "loop_a"), loop, Expect(3, list(loop.fragments))))
    # A file that vanished between listing and reading: its name is still there, its target not.
    _symlink(fs / "vanished", "deleted-target")
    gone = _err("No such file or directory")
    cases.append(Case("vanished", str(fs / "vanished"), gone, Expect(3, list(gone.fragments))))
    cases.append(
        Case("missing", str(fs / "never-existed"), _err("no such file"), _err("no such file"))
    )

    # Machines: an aarch64 program is analysed; an aarch64 library is skipped like ld.so does.
    wm = out / "machines"
    wm.mkdir(exist_ok=True)
    shutil.copyfile(FIXTURES / "aarch64" / "hello", wm / "hello.aarch64")
    cases.append(
        Case("other_machine_program", str(wm / "hello.aarch64"), _ok('"aarch64"'), _ok('"aarch64"'))
    )
    for sub, fixture, outcome in (
        ("wrong_machine", FIXTURES / "aarch64" / "libfix.so.1", "wrong machine (aarch64)"),
        ("wrong_class", FIXTURES / "i386" / "libfix.so.1", "wrong ELF class (32-bit)"),
    ):
        d = out / sub
        d.mkdir(exist_ok=True)
        shutil.copyfile(samples / "ownlib.pie", d / "ownlib.pie")
        shutil.copyfile(fixture, d / "libown.so")
        e = _ok('"needed": "libown.so"', outcome)
        cases.append(Case(f"{sub}_library", str(d / "ownlib.pie"), e, _ok(outcome)))

    # Dependency cycles, made from one library compiled here and patched in place.
    with tempfile.TemporaryDirectory() as w:
        t = Template(Path(w))
    cyc = out / "cycle"
    cyc.mkdir(exist_ok=True)
    (cyc / lib_name(0)).write_bytes(t.make(lib_name(0), lib_name(1)))
    (cyc / lib_name(1)).write_bytes(t.make(lib_name(1), lib_name(0)))
    both_loaded = _ok(f"{cyc / lib_name(1)}", '"missing": []')
    cases.append(Case("cycle", str(cyc / lib_name(0)), both_loaded, _ok(f"{cyc / lib_name(1)}")))
    me = out / "self"
    me.mkdir(exist_ok=True)
    (me / lib_name(0)).write_bytes(t.make(lib_name(0), lib_name(0)))
    cases.append(Case("needs_itself", str(me / lib_name(0)), _ok('"missing": []'), _ok()))
    chain = out / "chain"
    write_chain(t, chain, chain_depth)
    last = lib_name(chain_depth)
    cases.append(
        Case(
            "chain",
            str(chain / lib_name(0)),
            _ok(f'"needed": "{last}"'),
            _ok(f'"needed": "{last}"'),
            note=f"{chain_depth} libraries deep",
        )
    )

    cases.extend(sysroot_cases(out, samples))
    (out / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=1) + "\n")
    return cases


def sysroot_cases(out: Path, samples: Path) -> list[Case]:
    """--root: nothing outside the sysroot is found, whatever its symlinks say."""
    root = out / "sysroot"
    outside = out / f"outside-{NOT_READ}"
    for d in (root / "usr" / "bin", root / "etc", root / "lib64", outside):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(samples / "libown.so", outside / "libown.so")
    shutil.copyfile(samples / "trivial.pie", outside / "trivial.pie")
    bin_ = root / "usr" / "bin"
    cases = []
    opts = ["--root", str(root)]
    # The program finds libown.so through RUNPATH $ORIGIN = /usr/bin.
    for sub, target in (
        ("abs", str(outside / "libown.so")),
        ("rel", "../" * (len(bin_.parts) + 2) + str(outside / "libown.so").lstrip("/")),
    ):
        d = bin_ / sub
        d.mkdir(exist_ok=True)
        shutil.copyfile(samples / "ownlib.pie", d / "ownlib.pie")
        _symlink(d / "libown.so", target)
        e = _ok('"needed": "libown.so"')
        cases.append(Case(f"root_{sub}_symlink_out", f"/usr/bin/{sub}/ownlib.pie", e, _ok(), opts))
    _symlink(bin_ / "escape", str(outside / "trivial.pie"))
    cases.append(
        Case(
            "root_program_symlink_out",
            "/usr/bin/escape",
            _err("no such file"),
            _err("no such file"),
            opts,
        )
    )
    # PT_INTERP reached through an absolute symlink: re-anchored inside the root, not found.
    _symlink(root / "lib64" / "ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    shutil.copyfile(samples / "trivial.pie", bin_ / "trivial.pie")
    interp = "interpreter /lib64/ld-linux-x86-64.so.2: no such file"
    cases.append(
        Case("root_interp_symlink_out", "/usr/bin/trivial.pie", _ok(interp), _ok(interp), opts)
    )
    # Hostile loader configuration: a FIFO as ld.so.cache, an include loop in ld.so.conf.
    cache = root / "etc" / "ld.so.cache"
    if not cache.exists():
        os.mkfifo(cache)
    # ... and an include pattern that a directory of links to "." turns into 8**12 paths.
    (root / "l").mkdir(exist_ok=True)
    for i in range(8):
        _symlink(root / "l" / f"d{i}", ".")
    (root / "etc" / "ld.so.conf").write_text(
        "include /etc/ld.so.conf\n" * 3 + "include /l" + "/*" * 12 + "/none.conf\n/lib\n"
    )
    return cases


def _symlink(path: Path, target: str) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path, help="directory to write (created)")
    ap.add_argument("--samples", type=Path, default=ROOT / "build" / "samples")
    ap.add_argument("--chain-depth", type=int, default=CHAIN_DEPTH)
    args = ap.parse_args()
    cases = build(args.out, args.samples, chain_depth=args.chain_depth)
    print(f"{len(cases)} cases in {args.out} (see cases.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
