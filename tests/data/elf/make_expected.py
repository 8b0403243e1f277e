#!/usr/bin/env python3
"""Regenerate expected.json from binutils readelf's view of the fixtures.

Usage: make_expected.py [--readelf PATH] [--check]

readelf is the independent oracle: every fact in expected.json is parsed
from the text that `readelf -hlW`, `readelf -dW`, `readelf -rW` and
`readelf -rWD` print.  The only facts not printed by readelf are each file's
size and sha256 (so a test can tell that a fixture still matches this file)
and the numeric e_machine, which readelf prints by name; the name is mapped
through the EM_* constants of the ELF specification and cross-checked
against the raw header bytes.

With --check nothing is written; the exit status is 1 if expected.json is
out of date.

Keys of each file's entry:
  size, sha256            file size in bytes and its SHA-256
  class                   32 or 64
  endian                  "little" or "big"
  e_machine               integer (EM_*)
  e_type                  2 (EXEC) or 3 (DYN)
  entry                   e_entry
  has_section_headers     false when readelf finds no section headers
  interp                  PT_INTERP path, or null
  needed                  DT_NEEDED names, in order
  soname                  DT_SONAME or null
  runpath, rpath          DT_RUNPATH / DT_RPATH split on ':' ([] if absent)
  load_count              number of PT_LOAD
  loads                   [p_offset, p_vaddr, p_filesz, p_memsz, p_flags,
                           p_align] per PT_LOAD, in program header order;
                           p_flags is PF_R=4 | PF_W=2 | PF_X=1
  tls                     {"filesz": n, "memsz": n} of PT_TLS, or null
  relro                   [p_vaddr, p_memsz] of PT_GNU_RELRO, or null
  relocs_by_type          {type name as readelf prints it: count}, taken
                          from the dynamic-tag view (readelf -rWD), which
                          also works without section headers; when section
                          headers exist it is checked to be identical to
                          the section view (readelf -rW)
  relocs_by_table         {section name: count} from readelf -rW, e.g.
                          ".rela.dyn", ".rela.plt", ".relr.dyn"; null when
                          the file has no section headers
  relocs_by_dynamic_table {readelf's label: count} from readelf -rWD:
                          "REL"/"RELA" (DT_REL/DT_RELA), "PLT" (DT_JMPREL),
                          "RELR" (DT_RELR), counted as readelf lists them
  dynamic_table_overlap   how many relocations readelf -rWD lists twice
                          because DT_RELA's (or DT_REL's) range includes
                          DT_JMPREL's (riscv64); relocs_by_type counts them
                          once, as the dynamic loader applies them
For a RELR table the count is the number of addresses it relocates (the
"N offsets" that readelf prints), and those relative relocations have no
type name, so they are not part of relocs_by_type.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ("libfix.so.1", "hello", "hello.nosections")

# readelf's name for e_machine -> EM_* value (ELF gABI / <elf.h>).
MACHINES = {
    "Intel 80386": 3,
    "MIPS R3000": 8,
    "PowerPC": 20,
    "PowerPC64": 21,
    "IBM S/390": 22,
    "ARM": 40,
    "Advanced Micro Devices X86-64": 62,
    "AArch64": 183,
    "RISC-V": 243,
    "LoongArch": 258,
}

HEX = r"0x[0-9a-fA-F]+"


def readelf(readelf_path: str, args: list[str], path: str | None) -> str:
    env = dict(os.environ, LC_ALL="C")
    out = subprocess.run(
        [readelf_path, *args] + ([path] if path is not None else []),
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return out.stdout


def header_field(text: str, name: str) -> str:
    m = re.search(r"^\s*" + re.escape(name) + r":\s*(.*?)\s*$", text, re.M)
    if not m:
        raise ValueError(f"readelf -h: no '{name}' line")
    return m.group(1)


def parse_header(text: str, raw: bytes) -> dict:
    cls = header_field(text, "Class")
    data = header_field(text, "Data")
    typ = header_field(text, "Type")
    machine = header_field(text, "Machine")
    entry = header_field(text, "Entry point address")
    if machine not in MACHINES:
        raise ValueError(f"unknown readelf machine name {machine!r}")
    endian = {"little": "little", "big": "big"}[re.search(r"(little|big) endian", data).group(1)]
    e_machine = MACHINES[machine]
    raw_machine = int.from_bytes(raw[18:20], endian)
    if raw_machine != e_machine:
        raise ValueError(f"e_machine {raw_machine} != {e_machine} ({machine})")
    return {
        "class": {"ELF32": 32, "ELF64": 64}[cls],
        "endian": endian,
        "e_machine": e_machine,
        "e_type": {"EXEC": 2, "DYN": 3}[typ.split()[0]],
        "entry": int(entry, 16),
    }


PHDR_RE = re.compile(r"^\s*([A-Za-z_0-9+]+)\s+" + rf"({HEX})\s+" * 5 + rf"([RWE ]*?)\s*({HEX})\s*$")


def parse_segments(text: str) -> dict:
    loads, tls, relro, interp = [], None, None, None
    m = re.search(r"\[Requesting program interpreter: (.*)\]", text)
    if m:
        interp = m.group(1)
    in_phdrs = False
    for line in text.splitlines():
        if line.startswith("Program Headers:"):
            in_phdrs = True
            continue
        if not in_phdrs:
            continue
        if line.startswith(" Section to Segment mapping") or not line.strip():
            if loads:
                break
            continue
        pm = PHDR_RE.match(line)
        if not pm:
            continue
        ptype = pm.group(1)
        offset, vaddr, _paddr, filesz, memsz = (int(pm.group(i), 16) for i in range(2, 7))
        letters, align = pm.group(7), int(pm.group(8), 16)
        flags = (
            (4 if "R" in letters else 0)
            | (2 if "W" in letters else 0)
            | (1 if "E" in letters else 0)
        )
        if ptype == "LOAD":
            loads.append([offset, vaddr, filesz, memsz, flags, align])
        elif ptype == "TLS":
            tls = {"filesz": filesz, "memsz": memsz}
        elif ptype == "GNU_RELRO":
            relro = [vaddr, memsz]
    if not loads:
        raise ValueError("readelf -l: no PT_LOAD found")
    return {
        "interp": interp,
        "load_count": len(loads),
        "loads": loads,
        "tls": tls,
        "relro": relro,
    }


def parse_dynamic(text: str) -> dict:
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", text)
    soname = re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", text)
    runpath = re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", text)
    rpath = re.findall(r"\(RPATH\)\s+Library rpath: \[(.*)\]", text)
    return {
        "needed": needed,
        "soname": soname[0] if soname else None,
        "runpath": runpath[0].split(":") if runpath else [],
        "rpath": rpath[0].split(":") if rpath else [],
    }


TABLE_RE = re.compile(
    r"^(?:Relocation section '(?P<sec>[^']+)'|'(?P<dyn>[^']+)' relocation section)"
    rf" at offset (?P<off>{HEX}) contains (?P<n>\d+) (?P<unit>entries|entry|bytes)"
)


def parse_relocs(text: str) -> list[dict]:
    """Split readelf -r output into tables.

    Each table is {"name", "offset", "types"}: "types" lists the type name
    of each row in order (for RELR, one None per relocated address).
    """
    tables: list[dict] = []
    table = None
    relr = False
    for line in text.splitlines():
        m = TABLE_RE.match(line)
        if m:
            name = m.group("sec") or m.group("dyn")
            if any(t["name"] == name for t in tables):
                raise ValueError(f"relocation table {name} listed twice")
            table = {"name": name, "offset": int(m.group("off"), 16), "types": []}
            if m.group("unit") == "bytes":
                table["bytes"] = int(m.group("n"))
            tables.append(table)
            relr = name == "RELR" or "relr" in name
            continue
        if table is None:
            continue
        if not line.strip():
            table = None
            continue
        if relr:
            om = re.match(r"^\s*(\d+) offsets?\s*$", line)
            if om:
                table["types"] = [None] * int(om.group(1))
            continue
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("R_"):
            table["types"].append(fields[2])
    return tables


def drop_overlap(tables: list[dict]) -> int:
    """Remove rows of one dynamic table that lie inside another one.

    The linker may make DT_RELA/DT_REL's range include DT_JMPREL's (riscv64
    does), so readelf -D lists those relocations twice; the dynamic loader
    applies them once.  Returns how many rows were dropped.
    """
    dropped = 0
    for t in tables:
        if t["name"] not in ("REL", "RELA") or not t["types"]:
            continue
        entsize = t["bytes"] // len(t["types"])
        keep = []
        for i, typ in enumerate(t["types"]):
            at = t["offset"] + i * entsize
            inside = any(
                o is not t and o["name"] == "PLT" and o["offset"] <= at < o["offset"] + o["bytes"]
                for o in tables
            )
            if inside:
                dropped += 1
            else:
                keep.append(typ)
        t["types"] = keep
    return dropped


def count_types(tables: list[dict]) -> Counter:
    return Counter(typ for t in tables for typ in t["types"] if typ is not None)


def describe(path: str, readelf_path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    facts = {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    facts.update(parse_header(readelf(readelf_path, ["-hW"], path), raw))
    sections = readelf(readelf_path, ["-SW"], path)
    has_sections = "There are no sections in this file" not in sections
    facts["has_section_headers"] = has_sections
    facts.update(parse_segments(readelf(readelf_path, ["-lW"], path)))
    facts.update(parse_dynamic(readelf(readelf_path, ["-dW"], path)))

    dyn = parse_relocs(readelf(readelf_path, ["-rWD"], path))
    dyn_tables = {t["name"]: len(t["types"]) for t in dyn}
    overlap = drop_overlap(dyn)
    dyn_types = count_types(dyn)
    if has_sections:
        sec = parse_relocs(readelf(readelf_path, ["-rW"], path))
        sec_types = count_types(sec)
        if sec_types != dyn_types:
            raise ValueError(
                f"{path}: section and dynamic relocation views differ: "
                f"{dict(sec_types)} vs {dict(dyn_types)}"
            )
        sec_tables = {t["name"]: len(t["types"]) for t in sec}
    else:
        sec_tables = None
    facts["relocs_by_type"] = dict(sorted(dyn_types.items()))
    facts["relocs_by_table"] = sec_tables
    facts["relocs_by_dynamic_table"] = dyn_tables
    facts["dynamic_table_overlap"] = overlap
    return facts


def build(readelf_path: str) -> dict:
    version = readelf(readelf_path, ["--version"], None).splitlines()[0]
    files = {}
    for machine in sorted(os.listdir(HERE)):
        mdir = os.path.join(HERE, machine)
        if machine == "src" or not os.path.isdir(mdir):
            continue
        for name in FILES:
            path = os.path.join(mdir, name)
            if os.path.exists(path):
                files[f"{machine}/{name}"] = describe(path, readelf_path)
    return {
        "about": (
            "Facts about the fixtures as reported by binutils readelf; "
            "regenerate with make_expected.py (see its docstring for keys)."
        ),
        "readelf": version,
        "files": files,
    }


def dumps(obj: dict) -> str:
    """JSON with one key per line but each flat list kept on one line."""
    text = json.dumps(obj, indent=1)
    return (
        re.sub(
            r"\[([^\[\]{}]*)\]",
            lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)).strip() + "]",
            text,
        )
        + "\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readelf", default=os.environ.get("READELF", "readelf"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    text = dumps(build(args.readelf))
    out = os.path.join(HERE, "expected.json")
    if args.check:
        try:
            with open(out) as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print("expected.json is out of date", file=sys.stderr)
            return 1
        return 0
    with open(out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
