"""Per-e_machine facts: names, relocation types and how many bytes each writes at load time.

The write widths follow what the loaders store, not what the psABI calls the field: glibc's
`elf_machine_rela` / `elf_machine_rel` in `sysdeps/<arch>/dl-machine.h` and musl's
`arch/<arch>/reloc.h` + `ldso/dynlink.c do_relocs`. Rule (loader-model.md §11 rule 2): every
dynamic relocation record except NONE writes; a type missing from a table below is therefore
counted as a pointer-sized write and reported as unknown.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import msgspec


class RelocClass(enum.Enum):
    """What a relocation type does, as far as the cost model cares."""

    NONE = "none"  # writes nothing
    RELATIVE = "relative"  # base + addend; glibc writes it even when l_addr == 0 on RELA targets
    SYMBOLIC = "symbolic"  # needs a symbol lookup (ABS, GLOB_DAT)
    JUMP_SLOT = "jump-slot"  # written at load time even under lazy binding (elf_machine_lazy_rel)
    COPY = "copy"  # copies st_size bytes of the definition into the executable
    TLS = "tls"  # DTPMOD / DTPOFF / TPOFF: glibc skips the store for an undefined weak symbol
    TLSDESC = "tlsdesc"  # a two-word descriptor, resolved eagerly even when lazy
    IRELATIVE = "irelative"  # resolver called at load time, result stored
    PCREL = "pcrel"  # PC-relative into text: in a DSO this means DT_TEXTREL


class RelocType(msgspec.Struct, frozen=True):
    """One relocation type of a machine: its name, the bytes it writes, its class."""

    name: str
    width: int  # bytes written; 0 for NONE, -1 for COPY (the symbol's st_size)
    kind: RelocClass


def _table(*rows: tuple[int, str, int, RelocClass]) -> Mapping[int, RelocType]:
    return MappingProxyType({num: RelocType(name, width, kind) for num, name, width, kind in rows})


N, R, S, J, C, T, D, IREL, P = (  # short names keep the tables below readable
    RelocClass.NONE,
    RelocClass.RELATIVE,
    RelocClass.SYMBOLIC,
    RelocClass.JUMP_SLOT,
    RelocClass.COPY,
    RelocClass.TLS,
    RelocClass.TLSDESC,
    RelocClass.IRELATIVE,
    RelocClass.PCREL,
)

# glibc sysdeps/x86_64/dl-machine.h elf_machine_rela; musl arch/x86_64/reloc.h.
_X86_64 = _table(
    (0, "R_X86_64_NONE", 0, N),
    (1, "R_X86_64_64", 8, S),
    (2, "R_X86_64_PC32", 4, P),
    (5, "R_X86_64_COPY", -1, C),
    (6, "R_X86_64_GLOB_DAT", 8, S),
    (7, "R_X86_64_JUMP_SLOT", 8, J),
    (8, "R_X86_64_RELATIVE", 8, R),
    (10, "R_X86_64_32", 4, S),
    (11, "R_X86_64_32S", 4, S),
    (16, "R_X86_64_DTPMOD64", 8, T),
    (17, "R_X86_64_DTPOFF64", 8, T),
    (18, "R_X86_64_TPOFF64", 8, T),
    (24, "R_X86_64_PC64", 8, P),
    (32, "R_X86_64_SIZE32", 4, S),
    (33, "R_X86_64_SIZE64", 8, S),
    (36, "R_X86_64_TLSDESC", 16, D),
    (37, "R_X86_64_IRELATIVE", 8, IREL),
    (38, "R_X86_64_RELATIVE64", 8, R),
)

# glibc sysdeps/i386/dl-machine.h elf_machine_rel (REL: addend in place).
_I386 = _table(
    (0, "R_386_NONE", 0, N),
    (1, "R_386_32", 4, S),
    (2, "R_386_PC32", 4, P),
    (5, "R_386_COPY", -1, C),
    (6, "R_386_GLOB_DAT", 4, S),
    (7, "R_386_JUMP_SLOT", 4, J),
    (8, "R_386_RELATIVE", 4, R),
    (14, "R_386_TLS_TPOFF", 4, T),
    (35, "R_386_TLS_DTPMOD32", 4, T),
    (36, "R_386_TLS_DTPOFF32", 4, T),
    (37, "R_386_TLS_TPOFF32", 4, T),
    (38, "R_386_SIZE32", 4, S),
    (41, "R_386_TLS_DESC", 8, D),
    (42, "R_386_IRELATIVE", 4, IREL),
)

# glibc sysdeps/aarch64/dl-machine.h: ABS32 stores a full ElfW(Addr) (loader-model.md §4.2).
_AARCH64 = _table(
    (0, "R_AARCH64_NONE", 0, N),
    (257, "R_AARCH64_ABS64", 8, S),
    (258, "R_AARCH64_ABS32", 8, S),
    (1024, "R_AARCH64_COPY", -1, C),
    (1025, "R_AARCH64_GLOB_DAT", 8, S),
    (1026, "R_AARCH64_JUMP_SLOT", 8, J),
    (1027, "R_AARCH64_RELATIVE", 8, R),
    (1028, "R_AARCH64_TLS_DTPMOD64", 8, T),
    (1029, "R_AARCH64_TLS_DTPREL64", 8, T),
    (1030, "R_AARCH64_TLS_TPREL64", 8, T),
    (1031, "R_AARCH64_TLSDESC", 16, D),
    (1032, "R_AARCH64_IRELATIVE", 8, IREL),
)

# glibc sysdeps/arm/dl-machine.h elf_machine_rel.
_ARM = _table(
    (0, "R_ARM_NONE", 0, N),
    (2, "R_ARM_ABS32", 4, S),
    (3, "R_ARM_REL32", 4, P),
    (13, "R_ARM_TLS_DESC", 8, D),
    (17, "R_ARM_TLS_DTPMOD32", 4, T),
    (18, "R_ARM_TLS_DTPOFF32", 4, T),
    (19, "R_ARM_TLS_TPOFF32", 4, T),
    (20, "R_ARM_COPY", -1, C),
    (21, "R_ARM_GLOB_DAT", 4, S),
    (22, "R_ARM_JUMP_SLOT", 4, J),
    (23, "R_ARM_RELATIVE", 4, R),
    (160, "R_ARM_IRELATIVE", 4, IREL),
)

# glibc sysdeps/riscv/dl-machine.h elf_machine_rela (RV64).
_RISCV64 = _table(
    (0, "R_RISCV_NONE", 0, N),
    (1, "R_RISCV_32", 4, S),
    (2, "R_RISCV_64", 8, S),
    (3, "R_RISCV_RELATIVE", 8, R),
    (4, "R_RISCV_COPY", -1, C),
    (5, "R_RISCV_JUMP_SLOT", 8, J),
    (6, "R_RISCV_TLS_DTPMOD32", 4, T),
    (7, "R_RISCV_TLS_DTPMOD64", 8, T),
    (8, "R_RISCV_TLS_DTPREL32", 4, T),
    (9, "R_RISCV_TLS_DTPREL64", 8, T),
    (10, "R_RISCV_TLS_TPREL32", 4, T),
    (11, "R_RISCV_TLS_TPREL64", 8, T),
    (12, "R_RISCV_TLSDESC", 16, D),
    (58, "R_RISCV_IRELATIVE", 8, IREL),
)

# glibc sysdeps/powerpc/powerpc64/dl-machine.h (ELFv2: JMP_SLOT stores one doubleword; ELFv1
# would store a 24-byte function descriptor: counted from the relocation's page either way).
_PPC64 = _table(
    (0, "R_PPC64_NONE", 0, N),
    (1, "R_PPC64_ADDR32", 4, S),
    (19, "R_PPC64_COPY", -1, C),
    (20, "R_PPC64_GLOB_DAT", 8, S),
    (21, "R_PPC64_JMP_SLOT", 8, J),
    (22, "R_PPC64_RELATIVE", 8, R),
    (38, "R_PPC64_ADDR64", 8, S),
    (43, "R_PPC64_UADDR64", 8, S),
    (68, "R_PPC64_DTPMOD64", 8, T),
    (73, "R_PPC64_TPREL64", 8, T),
    (78, "R_PPC64_DTPREL64", 8, T),
    (248, "R_PPC64_IRELATIVE", 8, IREL),
)

# glibc sysdeps/s390/s390-64/dl-machine.h.
_S390X = _table(
    (0, "R_390_NONE", 0, N),
    (4, "R_390_32", 4, S),
    (9, "R_390_COPY", -1, C),
    (10, "R_390_GLOB_DAT", 8, S),
    (11, "R_390_JMP_SLOT", 8, J),
    (12, "R_390_RELATIVE", 8, R),
    (22, "R_390_64", 8, S),
    (54, "R_390_TLS_DTPMOD", 8, T),
    (55, "R_390_TLS_DTPOFF", 8, T),
    (56, "R_390_TLS_TPOFF", 8, T),
    (61, "R_390_IRELATIVE", 8, IREL),
)

# MIPS relocates its GOT from DT_MIPS_* tags rather than relocation records; only the records
# it does carry are listed (glibc sysdeps/mips/dl-machine.h).
_MIPS = _table(
    (0, "R_MIPS_NONE", 0, N),
    (2, "R_MIPS_32", 4, S),
    (3, "R_MIPS_REL32", 4, R),
    (126, "R_MIPS_COPY", -1, C),
    (127, "R_MIPS_JUMP_SLOT", 4, J),
    (38, "R_MIPS_TLS_DTPMOD32", 4, T),
    (39, "R_MIPS_TLS_DTPREL32", 4, T),
    (47, "R_MIPS_TLS_TPREL32", 4, T),
)


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """What elfcost knows of one e_machine: relocation types, library directories, word."""

    name: str  # elfcost's short name
    e_machine: int
    relocs: Mapping[int, RelocType]
    # Debian multiarch triplet: glibc's default directories are /lib/<triplet>, /usr/lib/<triplet>
    # (Debian's slibdir/libdir), then /lib and /usr/lib.
    multiarch: tuple[str, ...]
    # `$LIB` expands to this (glibc DL_DST_LIB: "lib64" on lib64 distributions, "lib" on Debian).
    lib64: bool
    platform: str  # AT_PLATFORM string, for $PLATFORM
    musl_arch: str  # ld-musl-<arch>.so.1, /etc/ld-musl-<arch>.path
    glibc_cache_flags: tuple[int, ...]  # ld.so.cache entry flags this machine accepts
    page_sizes: tuple[int, ...]  # runtime page sizes the kernel may use
    glibc_interp: tuple[str, ...] = msgspec.field(default=())

    def reloc(self, r_type: int, pointer_size: int) -> RelocType:
        """The type's facts; unknown non-zero types are pointer-sized writes (rule 2)."""
        known = self.relocs.get(r_type)
        if known is not None:
            return known
        if r_type == 0:
            return RelocType("R_NONE", 0, RelocClass.NONE)
        return RelocType(f"R_{self.name.upper()}_{r_type}", pointer_size, RelocClass.SYMBOLIC)


# e_machine numbers: ELF gABI / glibc elf/elf.h.
EM_386 = 3
EM_MIPS = 8
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

# ld.so.cache flags: glibc sysdeps/generic/ldconfig.h (FLAG_ELF_LIBC6 = 3, arch bits above).
_FLAG_LIBC6 = 0x0003

_MACHINES: tuple[Machine, ...] = (
    Machine(
        name="x86_64",
        e_machine=EM_X86_64,
        relocs=_X86_64,
        multiarch=("x86_64-linux-gnu",),
        lib64=True,
        platform="x86_64",
        musl_arch="x86_64",
        glibc_cache_flags=(_FLAG_LIBC6 | 0x0300,),
        page_sizes=(4096,),
        glibc_interp=("/lib64/ld-linux-x86-64.so.2",),
    ),
    Machine(
        name="i386",
        e_machine=EM_386,
        relocs=_I386,
        multiarch=("i386-linux-gnu",),
        lib64=False,
        platform="i686",
        musl_arch="i386",
        glibc_cache_flags=(_FLAG_LIBC6,),
        page_sizes=(4096,),
        glibc_interp=("/lib/ld-linux.so.2",),
    ),
    Machine(
        name="aarch64",
        e_machine=EM_AARCH64,
        relocs=_AARCH64,
        multiarch=("aarch64-linux-gnu",),
        lib64=True,
        platform="aarch64",
        musl_arch="aarch64",
        glibc_cache_flags=(_FLAG_LIBC6 | 0x0A00,),
        page_sizes=(4096, 16384, 65536),
        glibc_interp=("/lib/ld-linux-aarch64.so.1",),
    ),
    Machine(
        name="arm",
        e_machine=EM_ARM,
        relocs=_ARM,
        multiarch=("arm-linux-gnueabihf", "arm-linux-gnueabi"),
        lib64=False,
        platform="v7l",
        musl_arch="armhf",
        glibc_cache_flags=(_FLAG_LIBC6 | 0x0900, _FLAG_LIBC6 | 0x0800, _FLAG_LIBC6),
        page_sizes=(4096,),
        glibc_interp=("/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3"),
    ),
    Machine(
        name="riscv64",
        e_machine=EM_RISCV,
        relocs=_RISCV64,
        multiarch=("riscv64-linux-gnu",),
        lib64=True,
        platform="",
        musl_arch="riscv64",
        glibc_cache_flags=(_FLAG_LIBC6 | 0x1000, _FLAG_LIBC6 | 0x1100, _FLAG_LIBC6 | 0x1200),
        page_sizes=(4096,),
        glibc_interp=("/lib/ld-linux-riscv64-lp64d.so.1",),
    ),
    Machine(
        name="ppc64",
        e_machine=EM_PPC64,
        relocs=_PPC64,
        multiarch=("powerpc64le-linux-gnu", "powerpc64-linux-gnu"),
        lib64=True,
        platform="power8",
        musl_arch="powerpc64",
        glibc_cache_flags=(_FLAG_LIBC6 | 0x0500,),
        page_sizes=(65536, 4096),
        glibc_interp=("/lib64/ld64.so.2", "/lib64/ld64.so.1"),
    ),
    Machine(
        name="s390x",
        e_machine=EM_S390,
        relocs=_S390X,
        multiarch=("s390x-linux-gnu",),
        lib64=True,
        platform="z13",
        musl_arch="s390x",
        glibc_cache_flags=(_FLAG_LIBC6 | 0x0400,),
        page_sizes=(4096,),
        glibc_interp=("/lib/ld64.so.1",),
    ),
    Machine(
        name="mips",
        e_machine=EM_MIPS,
        relocs=_MIPS,
        multiarch=("mips-linux-gnu", "mipsel-linux-gnu"),
        lib64=False,
        platform="mips",
        musl_arch="mips",
        glibc_cache_flags=(_FLAG_LIBC6,),
        page_sizes=(4096, 16384),
        glibc_interp=("/lib/ld.so.1",),
    ),
)

BY_E_MACHINE: Mapping[int, Machine] = MappingProxyType({m.e_machine: m for m in _MACHINES})
BY_NAME: Mapping[str, Machine] = MappingProxyType({m.name: m for m in _MACHINES})


# The ELF classes an e_machine has an ABI in; the kernel's elf_check_arch and
# compat_elf_check_arch accept no other pair (EM_X86_64 in ELFCLASS32 is x32). A machine not
# listed here is not checked (EM_RISCV, EM_MIPS, EM_S390 have both).
CLASSES: Mapping[int, tuple[int, ...]] = MappingProxyType(
    {EM_386: (32,), EM_ARM: (32,), EM_AARCH64: (64,), EM_PPC64: (64,), EM_X86_64: (64, 32)}
)


def machine_for(e_machine: int) -> Machine | None:
    return BY_E_MACHINE.get(e_machine)


def reloc_type(machine: Machine | None, r_type: int, pointer_size: int) -> RelocType:
    """`machine.reloc`, and for a machine elfcost has no table for: every non-zero type is a
    pointer-sized symbolic write (loader-model §11 rule 2), named by its number."""
    if machine is not None:
        return machine.reloc(r_type, pointer_size)
    return RelocType(f"type {r_type}", pointer_size if r_type else 0, RelocClass.SYMBOLIC)


def label(name: str, little_endian: bool) -> str:
    """A machine's name with its byte order where it has both (uname -m's spelling): ppc64le
    and ppc64, mipsel and mips, aarch64_be, armeb. `name` is a Machine's name."""
    if name == "ppc64":
        return "ppc64le" if little_endian else "ppc64"
    if name == "mips":
        return "mipsel" if little_endian else "mips"
    if name in ("aarch64", "arm") and not little_endian:
        return {"aarch64": "aarch64_be", "arm": "armeb"}[name]
    return name


# The page size a machine's Linux distributions usually run, by `label`: 64 KiB on 64-bit
# POWER (Debian's ppc64el and ppc64, RHEL, SUSE and Ubuntu configure PPC_64K_PAGES), 4 KiB
# elsewhere, aarch64 included (Debian, Ubuntu, Fedora and RHEL 9 kernels; RHEL 8 and the
# "-64k" flavours run 64 KiB pages: --page-size 64K). An aarch64 program's PT_LOAD alignment
# says nothing here: binutils aligns to 64 KiB by default so that it runs on either kernel.
USUAL_PAGE_SIZE: Mapping[str, int] = MappingProxyType({"ppc64le": 65536, "ppc64": 65536})

# `uname -m` → the labels of the programs that machine runs natively (its own, and the 32-bit
# programs of a 64-bit machine with the same pages).
NATIVE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "x86_64": ("x86_64", "i386"),
        "i686": ("i386",),
        "i586": ("i386",),
        "i386": ("i386",),
        "aarch64": ("aarch64", "arm"),
        "armv7l": ("arm",),
        "armv8l": ("arm",),
        "armv6l": ("arm",),
        "ppc64le": ("ppc64le",),
        "ppc64": ("ppc64",),
        "s390x": ("s390x",),
        "riscv64": ("riscv64",),
        "mips": ("mips",),
        "mipsel": ("mipsel",),
    }
)


def target_page_size(machine: str, load_align: int | None) -> tuple[int, str]:
    """The page size a program for `machine` (a `label`) is estimated with when it is not this
    machine's, and why: the machine's usual page size (USUAL_PAGE_SIZE), unless its smallest
    PT_LOAD alignment `load_align` is smaller: a kernel with pages larger than a program's
    segment alignment cannot map it, so its pages are that alignment (4 KiB at least)."""
    usual = USUAL_PAGE_SIZE.get(machine, 4096)
    why = f"{machine}'s usual page size"
    if load_align is not None and load_align < usual:
        size = max(4096, 1 << (max(load_align, 1).bit_length() - 1))  # a power of two
        return size, (
            f"{machine} usually runs {usual // 1024} KiB pages, but the program's segments are "
            f"aligned to {load_align:#x}: no kernel with larger pages maps it"
        )
    return usual, why
