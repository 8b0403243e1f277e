"""Initialisers, disassembled: the bytes an object's constructors certainly write into its own
writable segments (loader-model.md §4.9 R-G12, and §9: disassemble the init_array targets and
their direct callees with capstone).

Which functions run: an executable's DT_PREINIT_ARRAY, then DT_INIT, then the DT_INIT_ARRAY
entries (glibc elf/dl-init.c call_init and csu/libc-start.c call_init; musl ldso/dynlink.c
do_init_fini). A static executable without PT_DYNAMIC has them as sections: .preinit_array,
.init (_init) and .init_array, which glibc's static __libc_start_main and musl's
__libc_start_init walk. An array entry is the word the loader leaves there: a RELATIVE record's
addend (RELA) or the word in place (REL, RELR: link-time addresses), a symbolic record's symbol
when this object defines it, the word itself where no record applies (ET_EXEC).

Each function is decoded from its entry along every branch (x86_64 and i386, capstone) into
basic blocks and run abstractly: a register or a stack slot holds a number, an address in this
object, a stack address, or the word a GOT slot receives from the loader (a symbol's address);
anything else is unknown. A write is proved when it is made on every path from the entry to a
return (by the same block, one that dominates every exit, or by each of the blocks the paths
take) and its target is known; a path taken only when a variable that is zero when mapped tests
nonzero (`cmp $0, mem; jne`, or `test` of a register just loaded from it: a C++ static's guard)
has that variable written before:
- a store whose memory operand is RIP-relative, absolute (ET_EXEC), or based on a register that
  holds a known address, a symbol's address loaded from its GOT slot included;
- `rep stos` / `rep movs` with a known count;
- a call to memset, memcpy, memmove, mempcpy, their _chk forms, bzero or explicit_bzero with a
  known destination and a constant length (rdi, rsi, rdx on x86_64; the stack slots on i386),
  named through the PLT (the JUMP_SLOT or GLOB_DAT record of the slot its PLT entry jumps
  through; in a static executable, the symbol of the IRELATIVE resolver) or by its symbol;
- the same, made by a function called directly (to depth MAX_DEPTH; each initialiser and the
  whole object bounded in instructions, OWN_CODE_INSNS kept for the initialiser's own code),
  and its stores through its arguments (x86_64: rdi, rsi, rdx as it was given them, a
  constructor's `this`), placed where each caller's argument points.
Exits are the returns, the tail calls and every place control goes somewhere not known (an
indirect jump, code that does not decode, falling through into another function after a call
that does not return); a path that ends in a call that never returns (abort, a noreturn
function of the object) or a trap is no exit.

Only writes into the object's own writable PT_LOAD segments are kept: the stack, TLS (fs, gs)
and other objects' variables are not this object's pages. Whatever else could write this
object is listed as unproven: a store on some paths only, a store through an unknown pointer,
an indirect call or jump, a call to a function whose effects are not known (an external one may
write through a pointer it is given), the limits.
"""

from __future__ import annotations

import array
import bisect
import heapq
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence

# capstone is imported only when an object has initialisers of its own to analyse: importing
# it costs about 60 ms (every architecture's tables).
from typing import TYPE_CHECKING, Any

import msgspec

from elfcost.elf.facts import InitWrite, InitWrites
from elfcost.elf.machines import BY_NAME, RelocClass, reloc_type
from elfcost.elf.reader import vaddr_to_offset
from elfcost.elf.relocs import Entry, records_at
from elfcost.errors import ElfcostError
from elfcost.model import ET_EXEC, Dso, Prot, inside

if TYPE_CHECKING:
    from capstone import Cs, CsInsn

CS_AC_WRITE = 2  # capstone's operand access bit for a written operand

DT_INIT = 12
DT_INIT_ARRAY = 25
DT_INIT_ARRAYSZ = 27
DT_PREINIT_ARRAY = 32
DT_PREINIT_ARRAYSZ = 33
SHT_SYMTAB = 2
SHT_DYNSYM = 11
SHT_INIT_ARRAY = 14
SHT_PREINIT_ARRAY = 16
STT_NOTYPE = 0  # an assembler label: code, when a call lands on it
STT_FUNC = 2
STT_GNU_IFUNC = 10
_CODE_TYPES = (STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE)

MAX_DEPTH = 3  # calls followed from an initialiser
MAX_FUNCTION_INSNS = 1000  # instructions decoded per function
MAX_INITIALISER_INSNS = 300  # per initialiser, its callees included
# of which the functions it calls may use all but this many: an initialiser's own code is
# read even when what it calls is too long to follow
OWN_CODE_INSNS = 150
MAX_OBJECT_INSNS = 400  # per object, all initialisers together
MAX_INITIALISERS = 512  # array entries looked at
MAX_UNPROVEN = 12  # lines kept
MAX_WRITES = 1024  # merged writes kept
MAX_RECORD_RANGE_BYTES = 64 << 20  # the GOT and init arrays whose records are kept, at most
MAX_SYMBOL_TABLE = 64 << 20  # bytes of .symtab / .dynsym read for function names
# A string table up to this size is read whole when a name is first asked; a larger one, a
# name at a time, STRING_PIECE bytes per read until its NUL.
SMALL_STRING_TABLE = 256 << 10
STRING_PIECE = 512
LARGE_SYMBOL_TABLE = 20000  # entries: beyond this many, indexed with numpy
# Once numpy is loaded (a scan loads it for the first large object), beyond this many: a C++
# program's few thousand symbols cost ~4 ms in Python, under 1 ms in numpy.
LARGE_SYMBOL_TABLE_NUMPY_LOADED = 512
RECORDS_NUMPY = 64  # relocation records per table, once numpy is loaded (see records)
# Converted instructions kept by their bytes, for every object this process analyses (see
# _Decoder._shared), ~800 bytes each; a full table is emptied and refilled. The 190 objects
# with initialisers of /usr/bin and /usr/sbin's programs hold ~11,000 distinct ones.
MAX_SHARED_INSNS = 20_000

# Functions whose writes are their arguments: name -> (destination argument, length argument).
MEMORY_FUNCTIONS = {
    "memset": (0, 2),
    "memcpy": (0, 2),
    "memmove": (0, 2),
    "mempcpy": (0, 2),
    "__memset_chk": (0, 2),
    "__memcpy_chk": (0, 2),
    "__memmove_chk": (0, 2),
    "__mempcpy_chk": (0, 2),
    "bzero": (0, 1),
    "explicit_bzero": (0, 1),
    "__explicit_bzero_chk": (0, 1),
}
# Functions that write nothing of the object that calls them: the crtstuff/crti hooks (gprof's
# __gmon_start__, libitm's clone tables), exit-handler registration (which keeps the pointers it
# is given), and libstdc++'s ios_base::Init constructor (the Init object is empty: it counts in
# libstdc++'s own static and builds cout & co there).
HARMLESS_FUNCTIONS = frozenset(
    {
        "__gmon_start__",
        "_ITM_registerTMCloneTable",
        "_ITM_deregisterTMCloneTable",
        "__cxa_atexit",
        "atexit",
        "__cxa_finalize",
        "getenv",
        "secure_getenv",
        "_ZNSt8ios_base4InitC1Ev",
        "_ZNSt8ios_base4InitC2Ev",
    }
)
NORETURN_FUNCTIONS = frozenset(
    {
        "abort",
        "exit",
        "_exit",
        "_Exit",
        "quick_exit",
        "__assert_fail",
        "__stack_chk_fail",
        "__chk_fail",
        "__fortify_fail",
        "err",
        "errx",
        "verr",
        "verrx",
        "longjmp",
        "siglongjmp",
        "__longjmp_chk",
        "pthread_exit",
        "__cxa_throw",
        "__cxa_rethrow",
        "__cxa_bad_cast",
        "__cxa_bad_typeid",
        "__cxa_pure_virtual",
        "_Unwind_Resume",
        "_ZSt9terminatev",
    }
)


def _noreturn(name: str) -> bool:
    # libstdc++'s std::__throw_length_error and the like
    return name in NORETURN_FUNCTIONS or (name.startswith("_ZSt") and "__throw_" in name)


class _Arch(msgspec.Struct, frozen=True):
    mode: int  # capstone's CS_MODE_64 / CS_MODE_32
    word: int
    sp: str
    bp: str
    args: tuple[str, ...]  # argument registers; () for i386 (arguments on the stack)
    caller_saved: frozenset[str]  # what a call may change (the psABI's scratch registers)
    count: str  # rcx / ecx: the count of rep prefixes


def _arch(machine: str) -> _Arch | None:
    import capstone

    if machine == "x86_64":
        return _Arch(
            mode=capstone.CS_MODE_64,
            word=8,
            sp="rsp",
            bp="rbp",
            args=("rdi", "rsi", "rdx"),
            caller_saved=frozenset({"rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"}),
            count="rcx",
        )
    if machine == "i386":
        return _Arch(
            mode=capstone.CS_MODE_32,
            word=4,
            sp="esp",
            bp="ebp",
            args=(),
            caller_saved=frozenset({"eax", "ecx", "edx"}),
            count="ecx",
        )
    return None


MACHINES = frozenset({"x86_64", "i386"})


def _register_names(word: int) -> dict[str, tuple[str, int]]:
    """capstone register name -> (the full register it is part of, its width in bytes)."""
    out: dict[str, tuple[str, int]] = {}
    full = "r" if word == 8 else "e"
    for r in "abcd":
        reg = f"{full}{r}x"
        out.update({f"{r}l": (reg, 1), f"{r}h": (reg, 1), f"{r}x": (reg, 2), f"e{r}x": (reg, 4)})
        out[reg] = (reg, word)
    for r in ("si", "di", "bp", "sp"):
        reg = f"{full}{r}"
        out.update({f"{r}l": (reg, 1), r: (reg, 2), f"e{r}": (reg, 4)})
        out[reg] = (reg, word)
    if word == 8:
        for n in range(8, 16):
            reg = f"r{n}"
            out.update({f"{reg}b": (reg, 1), f"{reg}w": (reg, 2), f"{reg}d": (reg, 4)})
            out[reg] = (reg, 8)
    return out


_REGISTER_NAMES = {word: _register_names(word) for word in (4, 8)}


# -- instructions -------------------------------------------------------------------------------


# Instructions and their operands are kept for every object a process analyses (_SHARED_INSNS):
# tens of thousands of them, long-lived. As msgspec Structs without garbage-collector support
# (gc=False) they, and the tuples that hold only them, are not tracked: a full collection of a
# scan's process walked them all, each time (~25 ms for /usr/bin's). Nothing in one refers back
# to what holds it, so they make no reference cycle.


class _Op(msgspec.Struct, gc=False):
    """One operand, read once from capstone (whose accessors are slow)."""

    kind: str  # "r" register, "i" immediate, "m" memory, "?" other
    size: int  # bytes
    write: bool
    reg: str = ""  # "r": the full register
    width: int = 0  # "r": the bytes of it named
    imm: int = 0
    tls: bool = False  # "m": fs- or gs-based
    base: str = ""  # "m": the full base register, "rip", or ""
    base_width: int = 0
    index: str = ""
    index_width: int = 0
    scale: int = 1
    disp: int = 0


class _Insn(msgspec.Struct, gc=False):
    """One instruction, with what the analysis asks of it."""

    address: int
    next: int
    id: int
    mnemonic: str
    flow: str = ""  # "call", "jump" (conditional or not), "ret", or ""
    rep: bool = False
    ops: tuple[_Op, ...] = ()
    stores: tuple[_Op, ...] = ()  # the memory operands it writes: most have none
    written: tuple[tuple[str, int], ...] = ()  # full registers written, and widths
    effect: str = ""  # what _registers does for it (_effect); "": nothing
    ends_run: bool = False  # its mnemonic ends with one of _ENDS_RUN

    def at(self, address: int) -> _Insn:
        """The same instruction at `address` (its operands are never changed: shared)."""
        return _Insn(
            address,
            address + self.next - self.address,
            self.id,
            self.mnemonic,
            self.flow,
            self.rep,
            self.ops,
            self.stores,
            self.written,
            self.effect,
            self.ends_run,
        )


def _insn(
    address: int,
    size: int,
    iid: int,
    mnemonic: str,
    groups: Sequence[int],
    rep: bool,
    ops: list[_Op],
    writes_memory: bool,
    written: tuple[tuple[str, int], ...],
    g: Any,
) -> _Insn:
    """An instruction from what either reading path read of capstone's: its groups give
    its flow; `writes_memory`: one of its memory operands is written (few are)."""
    flow = ""
    if groups:
        if g.X86_GRP_RET in groups or g.X86_GRP_IRET in groups:
            flow = "ret"
        elif g.X86_GRP_CALL in groups:
            flow = "call"
        elif g.X86_GRP_JUMP in groups:
            flow = "jump"
    stores = tuple([op for op in ops if op.write and op.kind == "m"]) if writes_memory else ()
    effect = _effect(iid, ops, written, g)
    ends = mnemonic.endswith(_ENDS_RUN)
    return _Insn(
        address, address + size, iid, mnemonic, flow, rep, tuple(ops), stores, written, effect, ends
    )


def _effect(iid: int, ops: list[_Op], written: tuple[tuple[str, int], ...], g: Any) -> str:
    """How _registers treats an instruction, found once for all the places it is met: "push",
    "pop", "leave"; "move" for two operands with a register destination that alone changes
    (most moves), "move+" when others change too; "regs" for other registers written; ""
    when none is (a compare, a test, a store, a jump)."""
    if iid == g.X86_INS_PUSH and len(ops) == 1:
        return "push"
    if iid == g.X86_INS_POP and len(ops) == 1:
        return "pop"
    if iid == g.X86_INS_LEAVE:
        return "leave"
    if len(ops) == 2 and ops[0].kind == "r" and ops[0].write and ops[0].reg:
        return "move" if len(written) == 1 and written[0][0] == ops[0].reg else "move+"
    return "regs" if written else ""


def _memory(
    size: int,
    write: bool,
    segment: int,
    base: int,
    index: int,
    scale: int,
    disp: int,
    g: Any,
    register: Callable[[int], tuple[str, int] | None],
) -> _Op:
    """A memory operand, from the fields of capstone's x86_op_mem (either reading path);
    `register`: a capstone register number's full register and width, None if not one."""
    if base == g.X86_REG_RIP:
        base_name, base_width = "rip", 8
    elif base:
        base_name, base_width = register(base) or ("?", 0)
    else:
        base_name, base_width = "", 0
    index_name, index_width = (register(index) or ("?", 0)) if index else ("", 0)
    return _Op(
        "m",
        size,
        write,
        tls=segment in (g.X86_REG_FS, g.X86_REG_GS),
        base=base_name,
        base_width=base_width,
        index=index_name,
        index_width=index_width,
        scale=scale,
        disp=disp,
    )


def _convert(ci: CsInsn, md: Cs, x86: object, names: dict[str, tuple[str, int]]) -> _Insn:
    g: Any = x86  # the capstone.x86 module

    def register(reg: int) -> tuple[str, int] | None:
        return names.get(md.reg_name(reg))

    ops = []
    for o in ci.operands:
        size, write = o.size, bool(o.access & CS_AC_WRITE)
        if o.type == g.X86_OP_REG:
            reg, width = names.get(md.reg_name(o.reg), ("", 0))
            ops.append(_Op("r", size, write, reg, width))
        elif o.type == g.X86_OP_IMM:
            ops.append(_Op("i", size, write, imm=o.imm))
        elif o.type == g.X86_OP_MEM:
            m = o.mem
            ops.append(
                _memory(size, write, m.segment, m.base, m.index, m.scale, m.disp, g, register)
            )
        else:
            ops.append(_Op("?", size, write))
    try:
        _, regs = ci.regs_access()
    except Exception:  # capstone has no access data for a few instructions: all may change
        written = tuple(sorted(set(names.values())))
    else:
        found = (names.get(md.reg_name(r)) for r in regs)
        written = tuple(w for w in found if w is not None)
    rep = ci.prefix[0] in (g.X86_PREFIX_REP, g.X86_PREFIX_REPNE)
    stores = any(op.write and op.kind == "m" for op in ops)
    return _insn(ci.address, ci.size, ci.id, ci.mnemonic, ci.groups, rep, ops, stores, written, g)


class _Lean:
    """Instructions decoded and their details read from capstone's own structures, as
    md.disasm and _convert read them through CsInsn: the same fields, without the binding's
    copies of the instruction, of its details and of every operand (most of a conversion's
    time). Only for the capstone release whose structures these are (5.x; capstone._cs_insn
    and capstone.x86.CsX86 as 5.0 lays them out); elsewhere `usable` is False and
    md.disasm and _convert are used."""

    def __init__(self) -> None:
        import ctypes

        import capstone

        self.ctypes = ctypes
        self.byref = ctypes.byref
        self.capstone = capstone
        major = str(getattr(capstone, "__version__", "0")).split(".")[0]
        self.usable = major == "5" and all(
            hasattr(capstone, name) for name in ("_cs", "_cs_insn", "CS_ERR_OK")
        )
        # capstone register number -> (full register, width), for each register name table
        self.registers: dict[int, dict[int, tuple[str, int]]] = {}
        self.regs_read = (ctypes.c_uint16 * 64)()
        self.regs_write = (ctypes.c_uint16 * 64)()
        self.read_count = ctypes.c_uint8()
        self.write_count = ctypes.c_uint8()
        # cs_regs_access's output arguments, made once
        self.access = tuple(
            ctypes.byref(b)
            for b in (self.regs_read, self.read_count, self.regs_write, self.write_count)
        )
        if self.usable:
            # capstone's functions called without argument types (new function objects: the
            # binding's own keep theirs), their arguments given as C types: checking each
            # argument against its declared type is most of a call's cost here.
            lib = capstone._cs
            self.cs_disasm = lib["cs_disasm"]
            self.cs_disasm.restype = ctypes.c_size_t
            self.cs_free = lib["cs_free"]
            self.cs_free.restype = None
            self.cs_regs_access = lib["cs_regs_access"]
            self.cs_regs_access.restype = ctypes.c_int

    def _registers(self, md: Cs, names: dict[str, tuple[str, int]]) -> dict[int, tuple[str, int]]:
        """`names` by capstone's register number: a register's name is the architecture's,
        not the mode's, so one table per width serves every handle."""
        table = self.registers.get(id(names))
        if table is None:
            from capstone import x86

            table = self.registers[id(names)] = {}
            for reg in range(1, x86.X86_REG_ENDING):
                found = names.get(md.reg_name(reg))
                if found is not None:
                    table[reg] = found
        return table

    def disasm(self, md: Cs, code: bytes, vaddr: int, count: int) -> tuple[Any, int]:
        """Up to `count` of capstone's instructions of `code` at `vaddr`, decoded in one call
        with their details, as md.disasm would give them: capstone's array of _cs_insn and
        their number, for the caller to free (free). Not a generator: leaving one early
        raises GeneratorExit in it, which costs more than a short run's decoding."""
        ctypes, cs = self.ctypes, self.capstone
        found = ctypes.POINTER(cs._cs_insn)()
        size_t = ctypes.c_size_t
        n = self.cs_disasm(
            md.csh,
            code,
            size_t(len(code)),
            ctypes.c_uint64(vaddr),
            size_t(count),
            ctypes.byref(found),
        )
        if n <= 0:
            status = cs._cs.cs_errno(md.csh)
            if status != cs.CS_ERR_OK:
                raise cs.CsError(status)
            return found, 0
        return found, n

    def free(self, found: Any, n: int) -> None:
        if n > 0:
            self.cs_free(found, self.ctypes.c_size_t(n))

    def insn(self, md: Cs, raw: Any, x86: Any, names: dict[str, tuple[str, int]]) -> _Insn:
        """The instruction `raw` (a capstone._cs_insn), as _convert gives it."""
        g = x86  # the capstone.x86 module
        registers = self.registers.get(id(names)) or self._registers(md, names)
        detail = raw.detail.contents
        count = detail.groups_count
        groups = detail.groups[:count] if count else ()
        a = detail.arch.x86
        ops = []
        stores = False
        operands = a.operands
        for i in range(a.op_count):
            o = operands[i]
            size, write, kind = o.size, bool(o.access & CS_AC_WRITE), o.type
            if kind == g.X86_OP_REG:
                reg, width = registers.get(o.value.reg, ("", 0))
                ops.append(_Op("r", size, write, reg, width))
            elif kind == g.X86_OP_IMM:
                ops.append(_Op("i", size, write, imm=o.value.imm))
            elif kind == g.X86_OP_MEM:
                m = o.value.mem
                where = (m.segment, m.base, m.index, m.scale, m.disp)
                ops.append(_memory(size, write, *where, g, registers.get))
                stores = stores or write
            else:
                ops.append(_Op("?", size, write))
        status = self.cs_regs_access(md.csh, self.byref(raw), *self.access)
        if status != self.capstone.CS_ERR_OK:
            # as _convert, when regs_access raises: all may change
            written = tuple(sorted(set(names.values())))
        else:
            # the registers it writes that are in `names` (a table's entries are never empty)
            found = map(registers.get, self.regs_write[: self.write_count.value])
            written = tuple(filter(None, found))
        rep = a.prefix[0] in (g.X86_PREFIX_REP, g.X86_PREFIX_REPNE)
        mnemonic = raw.mnemonic.decode("ascii")
        address, size, iid = raw.address, raw.size, raw.id
        return _insn(address, size, iid, mnemonic, groups, rep, ops, stores, written, g)


# Mnemonic endings after which a decoded run stops: an unconditional jump, a return, a trap
# (capstone spells `bnd jmp`, `notrack jmp`, `ljmp`, `retf`, ...). What follows one may be
# another function, or not code; a conditional jump or a call falls through to the next
# instruction, which the analysis reads too.
_ENDS_RUN = ("jmp", "ret", "retf", "retfq", "iret", "iretd", "iretq", "ud2", "hlt", "int3")
_ENDS_RUN_ASCII = tuple(m.encode("ascii") for m in _ENDS_RUN)  # as _cs_insn.mnemonic holds them
# Decoded at a time: at most so many bytes and instructions. capstone decodes and prints every
# instruction it is given bytes for, and one decoded and not used (past a call that does not
# return, past the end of a function's code read) costs about what one more call costs.
RUN_BYTES = 64
RUN_INSNS = 8


class _Decoder:
    """Instructions of the object's executable segments, read page by page, each once."""

    def __init__(self, dso: Dso, fd: int, md: Cs, names: dict[str, tuple[str, int]]) -> None:
        from capstone import x86

        self.x86 = x86
        self.fd = fd
        self.md = md
        self.mode = md.mode
        self.names = names
        self.segments = [s for s in dso.loads if s.flags & Prot.X and s.filesz > 0]
        self.ranges = [(s.vaddr, s.vaddr + s.filesz) for s in self.segments]
        self.pages: dict[tuple[int, int], bytes] = {}
        self.cache: dict[int, _Insn | None] = {}

    def executable(self, vaddr: int) -> bool:
        return inside(vaddr, self.ranges)

    def _bytes(self, vaddr: int, n: int) -> bytes:
        for s in self.segments:
            if not s.vaddr <= vaddr < s.vaddr + s.filesz:
                continue
            n = min(n, s.vaddr + s.filesz - vaddr)
            out = b""
            while len(out) < n:
                at = vaddr + len(out) - s.vaddr  # offset in the segment
                page = at - at % 4096
                data = self.pages.get((s.offset, page))
                if data is None:
                    size = min(4096, s.filesz - page)
                    data = self.pages[s.offset, page] = os.pread(self.fd, size, s.offset + page)
                piece = data[at - page : at - page + n - len(out)]
                if not out and len(piece) == n:
                    return piece  # within one page, as most runs are
                if not piece:
                    break
                out += piece
            return out
        return b""

    def insn(self, vaddr: int) -> _Insn | None:
        cache = self.cache
        if vaddr not in cache:
            self._decode(vaddr)
            cache.setdefault(vaddr, None)  # does not decode
        return cache[vaddr]

    def _decode(self, vaddr: int) -> None:
        """Decode a run from `vaddr`, in one capstone call: the instructions that follow one
        are the ones reached by falling through it. Each one not met before is converted (an
        instruction already decoded from another run keeps its first conversion: the same
        bytes give the same one)."""
        run = self._bytes(vaddr, RUN_BYTES)
        if not run:
            return
        cache = self.cache
        at = 0
        lean = _lean()
        if lean.usable:
            md, x86, names, mode = self.md, self.x86, self.names, self.mode
            found, n = lean.disasm(md, run, vaddr, RUN_INSNS)
            try:
                for i in range(n):
                    address = vaddr + at
                    # An instruction known says its size and whether it ends the run, without
                    # capstone's structure read again (the same bytes, the same instruction).
                    insn = cache.get(address)
                    if insn is None:
                        raw = found[i]
                        size = raw.size
                        if address not in cache:
                            code = run[at : at + size]
                            shared = _SHARED_INSNS.get((mode, code))  # as _shared, inline
                            if shared is not None:
                                cache[address] = shared.at(address)
                            else:
                                converted = lean.insn(md, raw, x86, names)
                                cache[address] = self._share(code, converted)
                        at += size
                        if raw.mnemonic.endswith(_ENDS_RUN_ASCII):
                            break  # what follows may be another function, or not code
                    else:
                        at = insn.next - vaddr
                        if insn.ends_run:
                            break
            finally:
                lean.free(found, n)
            return
        for ci in self.md.disasm(run, vaddr, RUN_INSNS):
            address = vaddr + at
            if address not in cache:
                code = run[at : at + ci.size]
                insn = self._shared(address, code)
                if insn is None:
                    insn = self._share(code, _convert(ci, self.md, self.x86, self.names))
                cache[address] = insn
            at += ci.size
            if ci.mnemonic.endswith(_ENDS_RUN):
                break

    def _shared(self, vaddr: int, code: bytes) -> _Insn | None:
        """A copy at `vaddr` of the instruction `code` converted before (in this object or
        another: `mov %rdi,%rbx` is the same everywhere), if it was. Reading capstone's
        details is most of the disassembly's time, and about two instructions in three of a
        scan's initialisers were met before. A jump or a call is never shared: capstone
        gives its target as an absolute address (a return has none). An operand relative to
        the instruction pointer holds the displacement, and `next` is this instruction's."""
        shared = _SHARED_INSNS.get((self.mode, code))
        return shared.at(vaddr) if shared is not None else None

    def _share(self, code: bytes, insn: _Insn) -> _Insn:
        if insn.flow not in ("jump", "call"):
            if len(_SHARED_INSNS) >= MAX_SHARED_INSNS:
                _SHARED_INSNS.clear()
            _SHARED_INSNS[self.mode, code] = insn
        return insn


_SHARED_INSNS: dict[tuple[int, bytes], _Insn] = {}


def _lean() -> _Lean:
    """This thread's _Lean (its buffers are written by each conversion)."""
    lean: _Lean | None = getattr(_THREAD, "lean", None)
    if lean is None:
        lean = _THREAD.lean = _Lean()
    return lean


# -- symbols ------------------------------------------------------------------------------------


class _Symbols:
    """Names of the object's functions by address, and its dynamic symbols by index."""

    def __init__(self, dso: Dso, fd: int) -> None:
        self.dso = dso
        self.fd = fd
        # The function symbols' addresses, sorted, and for each: a function's symbol (not an
        # untyped label), a local one, its name's offset in the string table. The order among the
        # names at one address is made by names().
        self._values: Sequence[int] | None = None
        self._typed: Sequence[int] = []
        self._local: Sequence[int] = []
        self._name_offsets: Sequence[int] = []
        self._string_table = (0, 0)  # the string table's file offset and size
        self._strings: bytes | None = None  # a small one, read whole when first asked
        self._starts: frozenset[int] | None = None  # a small table's function_at, as a set
        self._dynamic: dict[int, tuple[str, int, int] | None] = {}
        self.fmt = ("<" if dso.little_endian else ">") + (
            "IBBHQQ" if dso.elf_class == 64 else "IIIBBH"
        )

    def _fields(self, entry: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(st_name, st_value, st_info, st_shndx) of an unpacked Elf64_Sym or Elf32_Sym."""
        if self.dso.elf_class == 64:
            name, info, _, shndx, value, _ = entry
        else:
            name, value, _, info, _, shndx = entry
        return name, value, info, shndx

    def names(self, vaddr: int) -> list[str]:
        """The function symbols at `vaddr`: functions before untyped labels, global before
        local, then by name's offset."""
        if self._values is None:
            self._read_names()
        values = self._values
        assert values is not None
        i = j = bisect.bisect_left(values, vaddr)
        while j < len(values) and values[j] == vaddr:
            j += 1
        if j - i < 2:  # most addresses have one name, or none
            offsets = self._name_offsets[i:j]
        else:
            rows = sorted(
                (not self._typed[k], self._local[k], self._name_offsets[k]) for k in range(i, j)
            )
            offsets = [off for _, _, off in rows]
        out = []
        for off in offsets:
            name = self._string(off)
            if name is not None:
                out.append(name.decode("utf-8", "surrogateescape"))
        return out

    def _string(self, off: int) -> bytes | None:
        """The NUL-terminated string at `off` in the string table, None if it is not ended
        within the table. A large table (a C++ program's .strtab, several MB) is not read
        whole for the few names asked."""
        start, size = self._string_table
        if size <= SMALL_STRING_TABLE:
            if self._strings is None:
                self._strings = os.pread(self.fd, size, start)
            end = self._strings.find(b"\0", off)
            return self._strings[off:end] if end >= 0 else None
        found = b""
        at = off
        while at < size:
            piece = os.pread(self.fd, min(STRING_PIECE, size - at), start + at)
            end = piece.find(b"\0")
            if end >= 0:
                return found + piece[:end]
            if not piece:
                break  # the file ends before the table
            found += piece
            at += len(piece)
        return None

    def name(self, vaddr: int) -> str:
        names = self.names(vaddr)
        return names[0] if names else f"0x{vaddr:x}"

    def starts(self) -> frozenset[int] | None:
        """The addresses function_at is True at, when the table is small (indexed in
        Python); None for a large one (bisected)."""
        if self._values is None:
            self._read_names()
        return self._starts

    def function_at(self, vaddr: int) -> bool:
        """Whether a function symbol (STT_FUNC, STT_GNU_IFUNC) starts at `vaddr`."""
        if self._values is None:
            self._read_names()
        values = self._values
        assert values is not None
        i = bisect.bisect_left(values, vaddr)
        while i < len(values) and values[i] == vaddr:
            if self._typed[i]:
                return True
            i += 1
        return False

    def _read_names(self) -> None:
        """Index the function symbols of .symtab (else .dynsym) by address."""
        self._values, self._typed, self._local, self._name_offsets = [], [], [], []
        self._starts = frozenset()
        self._string_table, self._strings = (0, 0), None
        by_name = {s.name: s for s in self.dso.sections}
        for table, strings in ((".symtab", ".strtab"), (".dynsym", ".dynstr")):
            sym, strs = by_name.get(table), by_name.get(strings)
            if sym is None or strs is None or sym.sh_type not in (SHT_SYMTAB, SHT_DYNSYM):
                continue
            if sym.size > MAX_SYMBOL_TABLE or strs.size > MAX_SYMBOL_TABLE:
                continue
            size = struct.calcsize(self.fmt)
            raw = os.pread(self.fd, sym.size - sym.size % size, sym.offset)
            self._string_table = (strs.offset, strs.size)
            numpy = "numpy" in sys.modules
            large = LARGE_SYMBOL_TABLE_NUMPY_LOADED if numpy else LARGE_SYMBOL_TABLE
            if len(raw) // size > large:
                self._index_numpy(raw)
                return
            # (st_name, st_info, st_shndx, st_value) of each entry, in one comprehension
            order = self.fmt[0]
            if self.dso.elf_class == 64:
                entries = struct.iter_unpack(order + "IBxHQ8x", raw)
            else:
                fields = struct.iter_unpack(order + "II4xBxH", raw)
                entries = ((n, i, x, v) for n, v, i, x in fields)
            rows = [
                (value, info & 0xF != STT_NOTYPE, info >> 4 == 0, name_off)
                for name_off, info, shndx, value in entries
                if info & 0xF in _CODE_TYPES and shndx and name_off
            ]
            rows.sort(key=lambda r: r[0])
            self._values = [r[0] for r in rows]
            self._typed = [r[1] for r in rows]
            self._local = [r[2] for r in rows]
            self._name_offsets = [r[3] for r in rows]
            self._starts = frozenset(r[0] for r in rows if r[1])
            return

    def _index_numpy(self, raw: bytes) -> None:
        import numpy as np

        e = "<" if self.dso.little_endian else ">"
        if self.dso.elf_class == 64:
            fields = [("name", e + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", e + "u2")]
            fields += [("value", e + "u8"), ("size", e + "u8")]
        else:
            fields = [("name", e + "u4"), ("value", e + "u4"), ("size", e + "u4")]
            fields += [("info", "u1"), ("other", "u1"), ("shndx", e + "u2")]
        arr = np.frombuffer(raw, np.dtype(fields))
        kind = arr["info"] & 0xF
        keep = (kind == STT_FUNC) | (kind == STT_GNU_IFUNC) | (kind == STT_NOTYPE)
        keep &= (arr["shndx"] != 0) & (arr["name"] != 0)
        values = arr["value"][keep].astype(np.uint64)
        untyped = kind[keep] == STT_NOTYPE
        local = (arr["info"][keep] >> 4) == 0
        names = arr["name"][keep]
        # By address only, and kept as arrays of machine words (bisect reads them as ints):
        # a large table's full order and Python lists cost more than the few lookups made.
        order = np.argsort(values)
        self._starts = None  # bisected: a set of a large table's addresses costs more
        self._values = array.array("Q", values[order].tobytes())
        self._typed = array.array("B", (~untyped[order]).astype(np.uint8).tobytes())
        self._local = array.array("B", local[order].astype(np.uint8).tobytes())
        self._name_offsets = array.array("I", names[order].astype(np.uint32).tobytes())

    def dynamic(self, index: int) -> tuple[str, int, int] | None:
        """(name, st_value, st_shndx) of the DT_SYMTAB entry `index`."""
        if index not in self._dynamic:
            self._dynamic[index] = self._read_dynamic(index)
        return self._dynamic[index]

    def _read_dynamic(self, index: int) -> tuple[str, int, int] | None:
        dyn = self.dso.dynamic
        if dyn is None or dyn.symtab is None or dyn.strtab is None:
            return None
        size = struct.calcsize(self.fmt)
        off = vaddr_to_offset(self.dso.phdrs, dyn.symtab + index * size, size)
        str_off = vaddr_to_offset(self.dso.phdrs, dyn.strtab, 1)
        if off is None or str_off is None:
            return None
        raw = os.pread(self.fd, size, off)
        if len(raw) != size:
            return None
        name_off, value, _, shndx = self._fields(struct.unpack(self.fmt, raw))
        text = os.pread(self.fd, 1024, str_off + name_off)
        end = text.find(b"\0")
        if end < 0:
            return None
        return text[:end].decode("utf-8", "surrogateescape"), value, shndx


# -- the abstract machine -----------------------------------------------------------------------

# A value in a register or stack slot: ("k", n) a number; ("a", n) a link-time address in this
# object; ("s", k) the stack, k bytes from the stack pointer at the function's entry (None: not
# known where); ("g", slot, offset) the word the loader stores in the GOT slot at `slot` (a
# symbol's address) plus `offset`.
Value = tuple[str, int | None] | tuple[str, int, int]
# ("p", i, offset): the function's argument i (as it was on entry) plus offset
_STACK_SOMEWHERE: Value = ("s", None)


class _State:
    """Registers and stack slots at a point of a function."""

    __slots__ = ("regs", "slots")

    def __init__(self, regs: dict[str, Value], slots: dict[int, Value]) -> None:
        self.regs = regs
        self.slots = slots

    def copy(self) -> _State:
        return _State(dict(self.regs), dict(self.slots))

    def join(self, other: _State) -> bool:
        """Keep what both agree on; True if this state changed."""
        regs = {r: v for r, v in self.regs.items() if other.regs.get(r) == v}
        slots = {k: v for k, v in self.slots.items() if other.slots.get(k) == v}
        changed = len(regs) != len(self.regs) or len(slots) != len(self.slots)
        self.regs, self.slots = regs, slots
        return changed


class _Write(msgspec.Struct, frozen=True):
    vaddr: int  # param -1: an address of this object; else an offset from that argument
    size: int
    how: str
    symbol: str | None
    # A function's write through its argument `param` (x86_64: rdi, rsi, rdx): a constructor
    # storing into `this`. Each caller places it where its argument points (_call).
    param: int = -1


class _Summary(msgspec.Struct):
    """What a function certainly writes when it returns, and what it might write."""

    writes: list[_Write]
    unproven: list[str]
    returns: bool


class _Callee(msgspec.Struct, frozen=True):
    """A call's target as far as the analysis needs it."""

    # "memory", "harmless", "noreturn", "internal", "thunk", "unknown", "null" (address 0: a
    # weak function that is absent, which the code tests before calling; the call never runs)
    kind: str
    name: str
    address: int = 0  # "internal": the function's entry
    args: tuple[int, int] = (0, 0)  # "memory": destination and length argument
    register: str = ""  # "thunk": the register it loads with the return address


class _Slot(msgspec.Struct, frozen=True):
    """What the loader leaves in a word of the object (a GOT slot, an init array entry)."""

    # "address": this object's, at `address`; "symbol": another object's `name`; "ifunc": what
    # the IRELATIVE resolver at `address` returns; "number": `address` is a plain number
    kind: str
    address: int = 0
    name: str | None = None  # "address": the symbol it was bound through, if any


class _Block(msgspec.Struct):
    body: list[_Insn]
    succ: list[int]
    end: str  # "exit": control leaves the function (a return, a tail call, lost); "dead": never
    why: str = ""  # what was not followed, for the unproven list


_NEXT: tuple[str, tuple[int, ...]] = ("next", ())  # _flow's answer for most instructions


class _Limit(Exception):
    """The object's instruction budget is spent."""


class _Analysis:
    """One object's initialisers, and what every function analysed so far does."""

    def __init__(self, dso: Dso, fd: int, arch: _Arch, md: Cs) -> None:
        from capstone import x86

        self.x86 = x86
        self.string_stores = frozenset(  # stos and movs: with rep, a count of them
            getattr(x86, f"X86_INS_{op}{size}") for op in ("STOS", "MOVS") for size in "BWDQ"
        )
        self.traps = frozenset({x86.X86_INS_UD2, x86.X86_INS_HLT, x86.X86_INS_INT3})
        self.dso = dso
        self.fd = fd
        self.arch = arch
        # In an ET_EXEC file link-time addresses are run-time ones: a number may be an address.
        self.exec_file = dso.e_type == ET_EXEC
        self.code = _Decoder(dso, fd, md, _REGISTER_NAMES[arch.word])
        self.symbols = _Symbols(dso, fd)
        self.mask = (1 << (8 * arch.word)) - 1
        self.writable = [(s.vaddr, s.end) for s in dso.loads if s.writable]
        self.got = [(s.addr, s.addr + s.size) for s in dso.sections if s.name.startswith(".got")]
        self.pltgot = dso.dynamic.pltgot if dso.dynamic else None
        self.budget = MAX_OBJECT_INSNS
        self.summaries: dict[int, _Summary] = {}
        self.active: set[int] = set()
        self.cut = 0  # callees not followed for the instruction limit, each time
        self.callees: dict[int, _Callee] = {}
        self.called: set[str] = set()  # functions of other objects called (InitWrites.calls)
        self.array_ranges: list[tuple[int, int]] = []
        self._records: dict[int, Entry] | None = None

    # -- values -------------------------------------------------------------------------------

    def number(self, v: Value | None) -> int | None:
        if v is not None and (v[0] == "k" or (v[0] == "a" and self.exec_file)):
            return v[1]
        return None

    def link_address(self, v: Value | None) -> int | None:
        if v is not None and (v[0] == "a" or (v[0] == "k" and self.exec_file)):
            return v[1]
        return None

    def add(self, v: Value | None, n: int) -> Value | None:
        if v is None:
            return None
        if v[0] in ("k", "a"):
            assert v[1] is not None
            return (v[0], (v[1] + n) & self.mask)
        if v[0] == "s":
            return ("s", v[1] + n if v[1] is not None else None)
        if v[0] in ("g", "p") and len(v) == 3:
            return (v[0], v[1], v[2] + n)
        return None

    def reg(self, state: _State, full: str, width: int) -> Value | None:
        """A register's value, read `width` bytes wide."""
        v = state.regs.get(full)
        if v is None or width == self.arch.word:
            return v
        if width == 4 and v[0] == "k" and v[1] is not None:
            return ("k", v[1] & 0xFFFFFFFF)
        return None

    def operand(self, op: _Op, state: _State) -> Value | None:
        if op.kind == "i":
            return ("k", op.imm & self.mask)
        if op.kind == "r":
            return self.reg(state, op.reg, op.width)
        return None

    def address(self, insn: _Insn, op: _Op, state: _State) -> Value | str | None:
        """The address of a memory operand: a Value, "tls" (fs, gs), or None (unknown)."""
        if op.tls:
            return "tls"
        disp = op.disp
        if op.base == "rip":
            return ("a", (insn.next + disp) & self.mask)
        base = self.reg(state, op.base, op.base_width) if op.base else ("k", 0)
        if op.index:
            index = self.number(self.reg(state, op.index, op.index_width))
            if index is None:
                return None
            disp += index * op.scale
        return self.add(base, disp)

    # -- relocations and symbols --------------------------------------------------------------

    @property
    def records(self) -> dict[int, Entry]:
        if self._records is None:
            # Where the GOT is, from the section headers, else every symbolic record.
            # Once numpy is loaded, tables of more than RECORDS_NUMPY records are filtered with
            # it: the Python path's cost per record (its range, its addend, its entry) is
            # more than numpy's fixed cost beyond a few dozen.
            numpy = "numpy" in sys.modules
            ranges = [*self.array_ranges, *self.got]
            if sum(b - a for a, b in ranges) > MAX_RECORD_RANGE_BYTES:
                # Each word of these is a record kept (a DT_RELR bitmap word stands for 63):
                # section headers claiming more (crafted; nothing needs them to load) are not
                # believed, and nothing is proved.
                raise ElfcostError(self.dso.file, "GOT and init arrays", "larger than 64 MiB")
            self._records = records_at(
                self.dso,
                ranges,
                self.fd,
                symbolic_anywhere=not self.got,
                small=RECORDS_NUMPY if numpy else None,
            )
        return self._records

    def word_at(self, vaddr: int) -> int | None:
        w = self.arch.word
        off = vaddr_to_offset(self.dso.phdrs, vaddr, w)
        if off is None:
            return None
        raw = os.pread(self.fd, w, off)
        return int.from_bytes(raw, "little") if len(raw) == w else None

    def slot(self, vaddr: int) -> _Slot | None:
        """What the loader leaves in the word at `vaddr` (None: not known)."""
        rec = self.records.get(vaddr)
        if rec is None:
            # No record: the word as linked. In a PIE or shared object that is a number, not
            # an address (crtstuff's hooks, weak and undefined in a static-pie: 0).
            word = self.word_at(vaddr)
            if word is None:
                return None
            return _Slot("address" if self.exec_file else "number", word)
        r_type, sym, addend, _ = rec
        kind = reloc_type(BY_NAME.get(self.dso.machine), r_type, self.arch.word).kind
        if r_type == 0 or kind is RelocClass.RELATIVE:  # RELR records have type 0
            base = addend if addend is not None else self.word_at(vaddr)
            return _Slot("address", base) if base is not None else None
        if kind is RelocClass.IRELATIVE:
            resolver = addend if addend is not None else self.word_at(vaddr)
            return _Slot("ifunc", resolver) if resolver is not None else None
        if kind not in (RelocClass.SYMBOLIC, RelocClass.JUMP_SLOT) or not sym:
            return None
        found = self.symbols.dynamic(sym)
        if found is None:
            return None
        name, value, shndx = found
        if shndx == 0:
            return _Slot("symbol", name=name)
        # REL: GLOB_DAT and JMP_SLOT store the symbol's address alone; RELA adds r_addend.
        return _Slot("address", value + (addend or 0), name)

    def got_slot(self, vaddr: int) -> bool:
        """A word the loader fills with an address and nothing else writes: a GOT entry."""
        if self.got:
            return inside(vaddr, self.got)
        return vaddr in self.records

    # -- callees ------------------------------------------------------------------------------

    @staticmethod
    def by_name(names: Iterable[str]) -> _Callee | None:
        for name in names:
            if name in MEMORY_FUNCTIONS:
                return _Callee("memory", name, args=MEMORY_FUNCTIONS[name])
            if name in HARMLESS_FUNCTIONS:
                return _Callee("harmless", name)
            if _noreturn(name):
                return _Callee("noreturn", name)
        return None

    def callee_at(self, target: int) -> _Callee:
        """A direct call's or jump's target: a known function by its symbol, a PLT entry, a PC
        thunk, or a function of this object to analyse."""
        if target not in self.callees:
            # A PLT entry whose slot leads back to itself must not loop: while it is being
            # worked out, the target is a function not known.
            self.callees[target] = _Callee("unknown", f"0x{target:x}")
            self.callees[target] = self._callee_at(target)
        return self.callees[target]

    def _callee_at(self, target: int) -> _Callee:
        if target == 0:
            return _Callee("null", "0x0")
        names = self.symbols.names(target)
        known = self.by_name(names)
        if known is not None:
            return known
        slot = self.plt_slot(target)
        if slot is not None:
            return self.callee_by_slot(slot)
        name = names[0] if names else f"0x{target:x}"
        first = self.code.insn(target)
        if first is None:
            return _Callee("unknown", f"{name} (not code)")
        thunk = self._thunk(first)
        if thunk:
            return _Callee("thunk", name, register=thunk)
        return _Callee("internal", name, address=target)

    def _thunk(self, first: _Insn) -> str:
        """i386 PIC: __x86.get_pc_thunk.REG is `mov REG, [esp]; ret`."""
        if self.arch.word != 4 or first.id != self.x86.X86_INS_MOV or len(first.ops) != 2:
            return ""
        dst, src = first.ops
        if dst.kind != "r" or dst.width != 4 or src.kind != "m":
            return ""
        if src.base != "esp" or src.index or src.disp or src.tls:
            return ""
        ret = self.code.insn(first.next)
        return dst.reg if ret is not None and ret.flow == "ret" else ""

    def plt_slot(self, target: int) -> int | None:
        """The GOT slot a PLT entry at `target` jumps through (after an endbr), if it is one."""
        x86 = self.x86
        insn = self.code.insn(target)
        if insn is not None and insn.id in (x86.X86_INS_ENDBR64, x86.X86_INS_ENDBR32):
            insn = self.code.insn(insn.next)
        if insn is None or insn.id != x86.X86_INS_JMP or len(insn.ops) != 1:
            return None
        op = insn.ops[0]
        if op.kind != "m" or op.index or op.tls:
            return None
        if op.base == "rip":
            return insn.next + op.disp
        if not op.base:
            return op.disp & self.mask
        if op.base == "ebx" and self.pltgot is not None:
            # i386 PIC PLT: the caller holds the GOT's address in ebx (the psABI's rule)
            return (self.pltgot + op.disp) & self.mask
        return None

    def callee_by_slot(self, vaddr: int) -> _Callee:
        """The function called through the word at `vaddr` (a GOT slot)."""
        slot = self.slot(vaddr)
        if slot is None:
            return _Callee("unknown", f"the function in GOT slot 0x{vaddr:x}")
        if slot.kind == "number":
            return _Callee("null" if slot.address == 0 else "unknown", f"0x{slot.address:x}")
        if slot.kind == "ifunc":
            names = self.symbols.names(slot.address)
            known = self.by_name(names)
            if known is not None:
                return known
            return _Callee("unknown", names[0] if names else f"IFUNC 0x{slot.address:x}")
        names = [slot.name] if slot.name else []
        known = self.by_name(names)
        if known is not None:
            return known
        if slot.kind == "symbol":
            return _Callee("unknown", names[0])
        # This object's own function (through its PLT: interposable, but the loader binds it
        # here unless an object earlier in the lookup scope defines the name).
        return self.callee_at(slot.address)

    def static_callee(self, insn: _Insn, op: _Op) -> _Callee | None:
        """A call's target when the instruction alone says it."""
        if op.kind == "i":
            return self.callee_at(op.imm & self.mask)
        if op.kind == "m" and not op.index and not op.tls:
            if op.base == "rip":
                return self.callee_by_slot(insn.next + op.disp)
            if not op.base and self.exec_file:
                return self.callee_by_slot(op.disp & self.mask)
        return None

    # -- functions ----------------------------------------------------------------------------

    def summary(self, entry: int, depth: int) -> _Summary:
        if entry in self.summaries:
            return self.summaries[entry]
        name = self.symbols.name(entry)
        if entry in self.active:
            return _Summary([], [f"{name}: recursive call"], True)
        if depth > MAX_DEPTH:
            return _Summary([], [f"{name}: called deeper than {MAX_DEPTH} levels"], True)
        self.active.add(entry)
        try:
            found = self._function(entry, name, depth)
        except _Limit:
            if depth == 0:
                raise
            # A callee too long to follow within the initialiser's budget: not known, and the
            # caller's own code is still read (OWN_CODE_INSNS are kept for it). Not kept:
            # each call tries it again (and spends an instruction).
            self.cut += 1
            return _Summary([], [f"{name}: not followed, instruction limit"], True)
        finally:
            self.active.discard(entry)
        self.summaries[entry] = found
        return found

    def _flow(self, insn: _Insn, depth: int) -> tuple[str, tuple[int, ...]]:
        """How control leaves `insn`: "next"; "cond" (to its target or the next instruction);
        "jump" (within the function); "exit" (a return); "tail" (a call, then a return);
        "dead" (never returns); "lost" (to somewhere not known). _function adds "into": falling
        through into another function."""
        flow = insn.flow
        if flow == "ret":
            return "exit", ()
        if insn.id in self.traps:
            return "dead", ()
        if not flow:
            return "next", ()
        ops = insn.ops
        op = ops[0] if len(ops) == 1 else None
        if flow == "jump":
            if op is None:
                return "lost", ()
            if insn.id != self.x86.X86_INS_JMP:
                return ("cond", (op.imm & self.mask,)) if op.kind == "i" else ("lost", ())
            if op.kind != "i":
                return "tail", ()  # through memory or a register: resolved when run
            t = op.imm & self.mask
            callee = self.callee_at(t)
            if callee.kind in ("noreturn", "null"):
                return "dead", ()
            if callee.kind == "internal" and self.code.executable(t):
                return "jump", (t,)
            return "tail", ()
        called = self.static_callee(insn, op) if flow == "call" and op is not None else None
        if called is None:
            return "next", ()
        if called.kind in ("noreturn", "null"):
            return "dead", ()
        internal = called.kind == "internal"
        return (
            ("dead", ())
            if internal and not self.summary(called.address, depth + 1).returns
            else ("next", ())
        )

    def _function(self, entry: int, name: str, depth: int) -> _Summary:
        insns: dict[int, _Insn] = {}
        flow: dict[int, tuple[str, tuple[int, ...]]] = {}
        leaders = {entry}
        lost: set[int] = set()  # addresses that do not decode
        work = [entry]
        floor = OWN_CODE_INSNS if depth else 0
        decoded, traps = self.code.cache, self.traps
        starts = self.symbols.starts()
        function_at = self.symbols.function_at if starts is None else starts.__contains__
        while work:
            a = work.pop()
            leaders.add(a)
            while a not in insns and a not in lost:
                insn = decoded[a] if a in decoded else self.code.insn(a)
                if insn is None:
                    lost.add(a)
                    break
                self.budget -= 1
                if self.budget < floor:
                    raise _Limit
                if len(insns) >= MAX_FUNCTION_INSNS:
                    why = f"{name}: longer than {MAX_FUNCTION_INSNS} instructions"
                    return _Summary([], [why], True)
                insns[a] = insn
                if not insn.flow and insn.id not in traps:
                    kind, targets = flow[a] = _NEXT  # as _flow gives it, without the call
                else:
                    kind, targets = flow[a] = self._flow(insn, depth)
                if kind == "next" and insn.next != entry and function_at(insn.next):
                    # Running into another function: past a call that does not return, most
                    # likely. Where control goes is not known.
                    kind, targets = flow[a] = ("into", ())
                if kind == "next":
                    a = insn.next
                    if a in insns or a in lost:
                        leaders.add(a)
                    continue
                if kind == "cond":
                    targets = (*targets, insn.next)
                for t in targets:
                    leaders.add(t)
                    work.append(t)
                break
        return self._solve(entry, name, depth, self._blocks(insns, flow, leaders, lost, name))

    @staticmethod
    def _blocks(
        insns: dict[int, _Insn],
        flow: dict[int, tuple[str, tuple[int, ...]]],
        leaders: set[int],
        lost: set[int],
        name: str,
    ) -> dict[int, _Block]:
        """Basic blocks by start address."""
        blocks: dict[int, _Block] = {}
        for start in sorted(leaders):
            if start in lost:
                blocks[start] = _Block([], [], "exit", f"{name}: code at 0x{start:x} not decoded")
                continue
            body: list[_Insn] = []
            a = start
            while True:
                insn = insns[a]
                body.append(insn)
                kind, targets = flow[a]
                if kind == "next" and insn.next in insns and insn.next not in leaders:
                    a = insn.next
                    continue
                if kind == "next":
                    blocks[start] = _Block(body, [insn.next], "")
                elif kind == "cond":
                    blocks[start] = _Block(body, [*targets, insn.next], "")
                elif kind == "jump":
                    blocks[start] = _Block(body, list(targets), "")
                elif kind == "dead":
                    blocks[start] = _Block(body, [], "dead")
                elif kind == "lost":
                    why = f"{name}: jump at 0x{a:x} not followed"
                    blocks[start] = _Block(body, [], "exit", why)
                elif kind == "into":
                    why = f"{name}: runs into another function at 0x{insn.next:x}"
                    blocks[start] = _Block(body, [], "exit", why)
                else:  # exit, tail
                    blocks[start] = _Block(body, [], "exit")
                break
        return blocks

    def _solve(self, entry: int, name: str, depth: int, blocks: dict[int, _Block]) -> _Summary:
        """Run the blocks to a fixed point, then keep the writes of the blocks that lie on
        every path from the entry to an exit."""
        order = _reverse_postorder(entry, blocks)
        rank = {b: i for i, b in enumerate(order)}
        start: dict[str, Value] = {self.arch.sp: ("s", 0)}
        if depth:  # a callee: what it writes through its arguments, for its callers to place
            start.update((r, ("p", i, 0)) for i, r in enumerate(self.arch.args))
        states: dict[int, _State] = {entry: _State(start, {})}
        # Each block's writes and notes from its last run. A block runs again whenever its
        # entry state changes, so its last run started from the state the blocks settle on:
        # what it recorded then is what a run after the fixed point records. (Recording
        # changes no register or slot.)
        found: dict[int, tuple[list[_Write], list[str]]] = {}
        cut = self.cut
        pending = [0]  # ranks of the blocks whose entry state changed, a heap
        queued = {entry}
        runs = 0
        while pending:
            b = order[heapq.heappop(pending)]
            queued.discard(b)
            runs += 1
            if runs > 16 * len(order):
                return _Summary([], [f"{name}: registers did not settle"], True)
            recorded = found[b] = ([], [])
            out = self._run(blocks[b].body, states[b].copy(), depth, name, *recorded)
            for s in blocks[b].succ:
                if s not in rank:
                    continue
                if s in states and not states[s].join(out):
                    continue
                if s not in states:
                    states[s] = out.copy()
                if s not in queued:
                    queued.add(s)
                    heapq.heappush(pending, rank[s])
        if self.cut != cut:
            # A callee was cut short for the instruction limit: each call to it tries it
            # again, spending an instruction of the budget, and what is left decides how far
            # the next initialisers are read. Every block is then run once more from its
            # settled state, in order, recording: the budget is spent as one recording run
            # after the fixed point spends it.
            for b in order:
                recorded = found[b] = ([], [])
                self._run(blocks[b].body, states[b].copy(), depth, name, *recorded)
        unproven = [blocks[b].why for b in order if blocks[b].why]
        exits = [b for b in order if blocks[b].end == "exit"]
        proved: set[_Key] = set()
        helped: set[_Key] = set()  # proved only thanks to a test that found them set before
        if exits and any(found[b][0] for b in order):  # which writes are proved: none made
            made_keys = {b: {_key(w) for w in found[b][0]} for b in order}
            proved = _written_on_every_path(entry, order, blocks, made_keys, {}, exits)
            tested = self._set_before(order, blocks, states, depth, name)
            if tested:
                more = _written_on_every_path(entry, order, blocks, made_keys, tested, exits)
                helped = more - proved
                proved = more
        writes: list[_Write] = []
        for b in order:
            made, notes = found[b]
            unproven.extend(notes)
            for w in made:
                if _key(w) not in proved:
                    unproven.append(f"{name}: {w.how} only on some paths")
                elif _key(w) in helped:
                    writes.append(msgspec.structs.replace(w, how=f"{w.how}, if not set before"))
                else:
                    writes.append(w)
        return _Summary(writes, unproven, bool(exits))

    def _set_before(
        self,
        order: Sequence[int],
        blocks: dict[int, _Block],
        states: dict[int, _State],
        depth: int,
        name: str,
    ) -> dict[tuple[int, int], set[_Key]]:
        """The branches taken only when a variable of this object that starts as zero has
        been written: `cmp $0, mem` then `jne` (its target) or `je` (the next instruction),
        `mem` this object's and zero in the file (or .bss). Memory zero when mapped holds
        anything else only once written (by the loader, another initialiser, this one before):
        its page is dirty either way. This is the guard of a C++ static (`if (!guard) guard =
        1`: a template's static member, a facet's id): the store is on one path, and the page
        written on both."""
        x86 = self.x86
        out: dict[tuple[int, int], set[_Key]] = {}
        for b in order:
            body = blocks[b].body
            if len(body) < 2 or body[-1].id not in (x86.X86_INS_JNE, x86.X86_INS_JE):
                continue
            jcc = body[-1]
            tested = self._tested(body)
            if tested is None:
                continue
            at, mem = tested
            before = body[:at]
            if any(i.flow for i in before):
                continue  # a call on the way (its effects are run once, when recording)
            state = self._run(before, states[b].copy(), depth, name, None, None)
            found = self.target(self.address(body[at], mem, state))
            if not isinstance(found, tuple) or not self._zero_when_mapped(found[0], mem.size):
                continue
            succ = blocks[b].succ  # "cond": the target, then the next instruction
            if len(succ) != 2 or succ[0] == succ[1]:
                continue
            set_edge = (b, succ[0] if jcc.id == x86.X86_INS_JNE else succ[1])
            out.setdefault(set_edge, set()).add((found[0], mem.size, found[1], -1))
        return out

    def _tested(self, body: list[_Insn]) -> tuple[int, _Op] | None:
        """The memory operand whose being zero the block's last instruction (a jne or je)
        tests, and the index of the instruction that reads it: `cmp $0, mem`, or `test r, r`
        of a register last loaded whole from `mem` (`mov`, `movzx`) in the same block."""
        x86 = self.x86
        last = body[-2]
        ops = last.ops
        if last.id == x86.X86_INS_CMP and len(ops) == 2 and ops[0].kind == "m":
            return (len(body) - 2, ops[0]) if ops[1].kind == "i" and ops[1].imm == 0 else None
        if last.id != x86.X86_INS_TEST or len(ops) != 2 or ops[0].kind != "r":
            return None
        if ops[1].kind != "r" or (ops[0].reg, ops[0].width) != (ops[1].reg, ops[1].width):
            return None
        reg = ops[0].reg
        for i in range(len(body) - 3, -1, -1):
            insn = body[i]
            if not any(r == reg for r, _ in insn.written):
                continue
            o = insn.ops
            load = insn.id in (x86.X86_INS_MOV, x86.X86_INS_MOVZX) and len(o) == 2
            if not load or o[0].kind != "r" or o[1].kind != "m" or o[0].width < ops[0].width:
                return None
            # the register tested holds the loaded bytes (its low part at most)
            return (i, o[1]) if o[1].size >= ops[0].width or insn.id == x86.X86_INS_MOVZX else None
        return None

    def _zero_when_mapped(self, vaddr: int, size: int) -> bool:
        """Whether `size` bytes at `vaddr` are zero when the object is mapped: in a writable
        segment's .bss part (past p_filesz), or zero bytes of the file."""
        for s in self.dso.loads:
            if not (s.writable and s.vaddr <= vaddr and vaddr + size <= s.vaddr + s.memsz):
                continue
            in_file = max(0, min(vaddr + size, s.vaddr + s.filesz) - vaddr)
            if not in_file:
                return True
            data = os.pread(self.fd, in_file, s.offset + vaddr - s.vaddr)
            return len(data) == in_file and not any(data)
        return False

    # -- running instructions -----------------------------------------------------------------

    def _run(
        self,
        body: list[_Insn],
        state: _State,
        depth: int,
        name: str,
        writes: list[_Write] | None,
        unproven: list[str] | None,
    ) -> _State:
        """`state` after the instructions; with `writes`, the writes they make (and what they
        might write, in `unproven`) are recorded."""
        jmp = self.x86.X86_INS_JMP
        for insn in body:
            if insn.stores:
                self._stores(insn, state, name, writes, unproven)
            ops = insn.ops
            if insn.flow == "call":
                if len(ops) == 1:
                    self._call(insn, state, depth, name, writes, unproven)
                    continue
                self._note(unproven, f"{name}: call at 0x{insn.address:x} not followed")
                self._clobber(state)
            elif (
                insn.id == jmp
                and len(ops) == 1
                and (ops[0].kind != "i" or self._tail(ops[0].imm & self.mask))
            ):
                self._call(insn, state, depth, name, writes, unproven)
            elif insn.effect:
                self._registers(insn, state)
        return state

    def _tail(self, target: int) -> bool:
        callee = self.callee_at(target)
        return callee.kind != "internal" or not self.code.executable(target)

    def _stores(
        self,
        insn: _Insn,
        state: _State,
        name: str,
        writes: list[_Write] | None,
        unproven: list[str] | None,
    ) -> None:
        """Memory `insn` writes through its operands (a push or a call only writes the
        stack). Stack slots are kept for word stores, forgotten for others."""
        for op in insn.stores:
            where = self.address(insn, op, state)
            size = op.size
            how = f"store at 0x{insn.address:x}"
            if insn.rep and insn.id in self.string_stores:
                how = f"rep {insn.mnemonic.split()[-1]} at 0x{insn.address:x}"
                count = self.number(state.regs.get(self.arch.count))
                if count is None:
                    if writes is not None and self.target(where) is not None:
                        self._note(unproven, f"{name}: {how}: count not known")
                    continue
                size *= count
            if writes is not None:
                self._record(where, size, how, name, writes, unproven)
            if isinstance(where, tuple) and where[0] == "s" and where[1] is not None:
                k = where[1]
                word = self.arch.word
                for old in [s for s in state.slots if k - word < s < k + size]:
                    del state.slots[old]
                mov = insn.id == self.x86.X86_INS_MOV
                if size == word and mov and len(insn.ops) == 2:
                    v = self.operand(insn.ops[1], state)
                    if v is not None:
                        state.slots[k] = v

    def target(self, v: Value | str | None) -> tuple[int, str | None] | str | None:
        """Where a write at `v` lands: (vaddr, symbol bound through) in this object's writable
        segments; "unknown"; None when it is not this object's memory (the stack, TLS, another
        object's variable, an absolute address in a PIE, code)."""
        if v is None:
            return "unknown"
        if isinstance(v, str) or v[0] == "s":
            return None
        if v[0] == "p":
            # Through an argument: wherever the caller points it. _record keeps such a
            # write for the callers to place; anything else about it is not known here.
            return "unknown"
        symbol: str | None = None
        if v[0] == "g" and len(v) == 3:
            assert v[1] is not None
            slot = self.slot(v[1])
            if slot is None:
                return "unknown"
            if slot.kind != "address":
                return None  # another object's variable
            vaddr = slot.address + v[2]
            symbol = slot.name
        else:
            found = self.link_address(v)
            if found is None:
                return None  # a number used as an address in a PIE: not this object's
            vaddr = found
        return (vaddr, symbol) if inside(vaddr, self.writable) else None

    def _record(
        self,
        where: Value | str | None,
        size: int,
        how: str,
        name: str,
        writes: list[_Write],
        unproven: list[str] | None,
    ) -> None:
        if isinstance(where, tuple) and where[0] == "p" and len(where) == 3:
            if size > 0:
                writes.append(_Write(where[2], size, how, None, where[1]))
            return
        found = self.target(where)
        if found == "unknown":
            self._note(unproven, f"{name}: {how} through a pointer not known")
        elif isinstance(found, tuple) and size > 0:
            writes.append(_Write(found[0], size, how, found[1]))

    @staticmethod
    def _note(unproven: list[str] | None, text: str) -> None:
        if unproven is not None:
            unproven.append(text)

    def _registers(self, insn: _Insn, state: _State) -> None:
        """The registers (and stack slots, for push and pop) after an instruction that is
        neither a call nor a tail call, and writes some (insn.effect)."""
        arch = self.arch
        effect = insn.effect
        ops = insn.ops
        regs = state.regs
        sp = arch.sp
        if effect == "move" and ops[0].reg != sp:
            # the destination alone changes (most moves): as below, without the dict
            dst = ops[0].reg
            v = self._value(insn, state)
            if v is None:
                regs.pop(dst, None)
            else:
                regs[dst] = v
            return
        new: dict[str, Value | None] = {}
        if effect == "push":
            s = self.add(regs.get(sp), -arch.word)
            if s is not None and s[1] is not None:
                v = self.operand(ops[0], state) if ops[0].size == arch.word else None
                if v is None:
                    state.slots.pop(s[1], None)
                else:
                    state.slots[s[1]] = v
            new[sp] = s
        elif effect == "pop":
            s = regs.get(sp)
            v = state.slots.get(s[1]) if s is not None and s[1] is not None else None
            new[sp] = self.add(s, arch.word)
            if ops[0].kind == "r":
                new[ops[0].reg] = v if ops[0].width == arch.word else None
        elif effect == "leave":
            bp = regs.get(arch.bp)
            if bp is not None and bp[0] == "s":
                new[sp] = self.add(bp, arch.word)
                new[arch.bp] = state.slots.get(bp[1]) if bp[1] is not None else None
            else:
                new[sp] = _STACK_SOMEWHERE
                new[arch.bp] = None
        elif effect in ("move", "move+"):
            new[ops[0].reg] = self._value(insn, state)
        for full, _ in insn.written:
            if full not in new:
                new[full] = None
        if sp in new and new[sp] is None and (regs.get(sp) or ("",))[0] == "s":
            new[sp] = _STACK_SOMEWHERE  # still the stack, wherever in it
        for r, v in new.items():
            if v is None:
                regs.pop(r, None)
            else:
                regs[r] = v

    def _value(self, insn: _Insn, state: _State) -> Value | None:
        """What a two-operand instruction leaves in its destination register."""
        x86 = self.x86
        iid = insn.id
        dst, src = insn.ops
        word = self.arch.word
        if dst.width not in (4, word):
            return None  # a partial write
        v: Value | None = None
        if iid in (x86.X86_INS_MOV, x86.X86_INS_MOVABS):
            v = self._load(insn, src, state) if src.kind == "m" else self.operand(src, state)
        elif iid == x86.X86_INS_LEA and src.kind == "m":
            where = self.address(insn, src, state)
            v = where if isinstance(where, tuple) else None
        elif iid in (x86.X86_INS_XOR, x86.X86_INS_SUB) and src.kind == "r":
            v = ("k", 0) if src.reg == dst.reg and src.width == dst.width else None
        elif iid in (x86.X86_INS_ADD, x86.X86_INS_SUB) and src.kind == "i":
            n = src.imm if iid == x86.X86_INS_ADD else -src.imm
            v = self.add(self.reg(state, dst.reg, dst.width), n)
        elif iid == x86.X86_INS_AND and dst.reg == self.arch.sp:
            old = state.regs.get(dst.reg)
            v = _STACK_SOMEWHERE if old is not None and old[0] == "s" else None
        if v is None or dst.width == word:
            return v
        # a 32-bit write zero-extends (x86_64): only a number survives it
        return ("k", v[1] & 0xFFFFFFFF) if v[0] == "k" and v[1] is not None else None

    def _load(self, insn: _Insn, op: _Op, state: _State) -> Value | None:
        """A word read from memory: a GOT slot's address, a stack slot's value, else unknown."""
        if op.size != self.arch.word:
            return None
        where = self.address(insn, op, state)
        if not isinstance(where, tuple):
            return None
        if where[0] == "s":
            return state.slots.get(where[1]) if where[1] is not None else None
        vaddr = self.link_address(where)
        if vaddr is not None and self.got_slot(vaddr):
            return ("g", vaddr, 0)
        return None

    # -- calls ----------------------------------------------------------------------------------

    def _call(
        self,
        insn: _Insn,
        state: _State,
        depth: int,
        name: str,
        writes: list[_Write] | None,
        unproven: list[str] | None,
    ) -> None:
        """A call, or a tail call (a jump to another function): its writes, then the
        registers a function may change (the psABI's scratch ones) and the stack slots
        forgotten."""
        op = insn.ops[0]
        callee = self.static_callee(insn, op)
        if callee is None and op.kind in ("r", "m"):
            if op.kind == "r":
                v = self.reg(state, op.reg, op.width)
            else:
                where = self.address(insn, op, state)
                at = self.link_address(where) if isinstance(where, tuple) else None
                v = ("g", at, 0) if at is not None else None
            if v is not None and v[0] == "g" and len(v) == 3 and v[2] == 0:
                assert v[1] is not None
                callee = self.callee_by_slot(v[1])
            elif self.link_address(v) is not None or self.number(v) == 0:
                callee = self.callee_at(self.link_address(v) or 0)
        what = "call" if insn.flow == "call" else "jump"
        if callee is not None and callee.kind in ("memory", "harmless", "unknown"):
            self.called.add(callee.name)
        if callee is None:
            self._note(unproven, f"{name}: indirect {what} at 0x{insn.address:x}")
        elif callee.kind == "memory":
            self._memory(insn, callee, state, name, what, writes, unproven)
        elif callee.kind == "unknown":
            self._note(unproven, f"{name}: calls {callee.name} (what it writes is not known)")
        elif callee.kind == "internal":
            s = self.summary(callee.address, depth + 1)
            if writes is not None:
                where = f" in {callee.name}"
                for w in s.writes:
                    if " in " not in w.how:
                        w = msgspec.structs.replace(w, how=w.how + where)
                    if w.param < 0:
                        writes.append(w)
                        continue
                    # Through the callee's argument: where this call's argument points.
                    dest = self.add(self._argument(state, w.param), w.vaddr)
                    if dest is None:
                        self._note(unproven, f"{name}: {w.how} through an argument not known")
                    else:
                        self._record(dest, w.size, w.how, name, writes, unproven)
            if unproven is not None:
                unproven.extend(s.unproven)
        elif callee.kind == "thunk":
            # __x86.get_pc_thunk: returns with its register holding the return address
            state.regs[callee.register] = ("a", insn.next)
            return
        self._clobber(state)

    def _clobber(self, state: _State) -> None:
        """What a call may change: the psABI's scratch registers, the stack slots. (The few
        registers known are looked at, not every scratch one.)"""
        regs, scratch = state.regs, self.arch.caller_saved
        for r in [r for r in regs if r in scratch]:
            del regs[r]
        state.slots.clear()

    def _memory(
        self,
        insn: _Insn,
        callee: _Callee,
        state: _State,
        name: str,
        what: str,
        writes: list[_Write] | None,
        unproven: list[str] | None,
    ) -> None:
        """memset and friends: `length` bytes at the destination argument."""
        if writes is None:
            return
        dst_arg, len_arg = callee.args
        dst, length = self._argument(state, dst_arg), self._argument(state, len_arg)
        verb = "called" if what == "call" else "jumped to"
        how = f"{callee.name} {verb} at 0x{insn.address:x}"
        n = self.number(length)
        if dst is not None and dst[0] == "p" and n is not None:
            self._record(dst, n, how, name, writes, unproven)
            return
        found = self.target(dst)
        if found is None:
            return
        if found == "unknown" or n is None:
            self._note(unproven, f"{name}: {how} with a destination or length not known")
        elif isinstance(found, tuple) and n > 0:
            writes.append(_Write(found[0], n, how, found[1]))

    def _argument(self, state: _State, i: int) -> Value | None:
        if self.arch.args:
            return state.regs.get(self.arch.args[i])
        sp = state.regs.get(self.arch.sp)  # i386: the stack slots above the return address
        if sp is None or sp[0] != "s" or sp[1] is None:
            return None
        return state.slots.get(sp[1] + 4 * i)


def _reverse_postorder(entry: int, blocks: dict[int, _Block]) -> list[int]:
    seen = {entry}
    post: list[int] = []
    stack: list[tuple[int, int]] = [(entry, 0)]
    while stack:
        b, i = stack.pop()
        succ = blocks[b].succ
        if i < len(succ):
            stack.append((b, i + 1))
            s = succ[i]
            if s not in seen and s in blocks:
                seen.add(s)
                stack.append((s, 0))
        else:
            post.append(b)
    return post[::-1]


# A write as the analysis proves it: (vaddr, size, symbol bound through, argument or -1).
_Key = tuple[int, int, str | None, int]


def _key(w: _Write) -> _Key:
    return (w.vaddr, w.size, w.symbol, w.param)


def _written_on_every_path(
    entry: int,
    order: Sequence[int],
    blocks: dict[int, _Block],
    made: dict[int, set[_Key]],
    tested: dict[tuple[int, int], set[_Key]],
    exits: Sequence[int],
) -> set[_Key]:
    """The writes made on every path from the entry to any exit, whichever block makes them
    (both arms of an if may store the same variable). A forward must-analysis (Aho, Lam, Sethi
    and Ullman, "available expressions"): what a block has certainly written when it ends is
    what every predecessor had when it ended, plus what the edge from it proves (`tested`: a
    branch taken only when the variable was set before), plus what the block writes. `order`
    is the reachable blocks in reverse postorder from `entry`; writes in a block that lies on
    every path (a dominator of every exit) are among them."""
    preds: dict[int, list[int]] = {b: [] for b in order}
    for b in order:
        for s in blocks[b].succ:
            if s in preds:
                preds[s].append(b)
    done: dict[int, set[_Key]] = {}  # a block not yet reached: anything (the top)
    changed = True
    while changed:
        changed = False
        for b in order:
            into: set[_Key] | None = set() if b == entry else None
            if b != entry:
                for p in preds[b]:
                    if p in done:
                        have = done[p] | tested.get((p, b), set())
                        into = have if into is None else into & have
            if into is None:
                continue
            new = into | made[b]
            if done.get(b) != new:
                done[b] = new
                changed = True
    return set.intersection(*(done.get(e, set()) for e in exits))


# -- the initialisers ---------------------------------------------------------------------------


class _Initialiser(msgspec.Struct, frozen=True):
    label: str  # where it is listed: "DT_INIT", "DT_INIT_ARRAY[1]"
    vaddr: int | None  # None: the entry is not one of this object's functions
    preinit: bool
    why: str = ""  # vaddr None: why


def _dynamic_values(dso: Dso) -> dict[int, int]:
    """The dynamic section's values by tag, in one pass: the last entry wins, as in
    elf_get_dynamic_info."""
    dyn = dso.dynamic
    return {e.tag: e.value for e in dyn.entries} if dyn else {}


def _arrays(dso: Dso) -> tuple[list[tuple[str, int, int, bool]], int | None]:
    """The initialiser arrays (name, vaddr, size, preinit) and DT_INIT's address."""
    arrays: list[tuple[str, int, int, bool]] = []
    if dso.dynamic is not None:
        values = _dynamic_values(dso)
        for name, tag, size_tag, preinit in (
            ("DT_PREINIT_ARRAY", DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, True),
            ("DT_INIT_ARRAY", DT_INIT_ARRAY, DT_INIT_ARRAYSZ, False),
        ):
            at, size = values.get(tag), values.get(size_tag)
            if at is not None and size:
                arrays.append((name, at, size, preinit))
        return arrays, values.get(DT_INIT)
    init: int | None = None
    for s in dso.sections:
        if s.sh_type == SHT_PREINIT_ARRAY and s.size:
            arrays.append((".preinit_array", s.addr, s.size, True))
        elif s.sh_type == SHT_INIT_ARRAY and s.size:
            arrays.append((".init_array", s.addr, s.size, False))
        elif s.name == ".init" and s.size:
            init = s.addr
    return arrays, init


def _initialisers(a: _Analysis) -> list[_Initialiser]:
    """The functions the loader or libc start-up calls: the preinit array, DT_INIT, the init
    array (glibc elf/dl-init.c call_init's order)."""
    arrays, init = _arrays(a.dso)
    a.array_ranges = [(at, at + size) for _, at, size, _ in arrays]
    out: list[_Initialiser] = []
    word = a.arch.word
    for name, at, size, preinit in arrays:
        if not preinit and init is not None:
            out.append(_Initialiser("DT_INIT", init, False))
            init = None
        n = size // word
        for i in range(min(n, MAX_INITIALISERS)):
            label = f"{name}[{i}]"
            slot = a.slot(at + i * word)
            if slot is None:
                out.append(_Initialiser(label, None, preinit, "entry not known"))
            elif slot.kind != "address":
                why = f"{slot.name or 'an IFUNC'} of another object"
                out.append(_Initialiser(label, None, preinit, why))
            elif slot.address not in (0, a.mask):  # 0, -1: legacy .ctors markers
                out.append(_Initialiser(label, slot.address, preinit))
        if n > MAX_INITIALISERS:
            why = f"{n - MAX_INITIALISERS} entries not read"
            out.append(_Initialiser(f"{name}[{MAX_INITIALISERS}:]", None, preinit, why))
    if init is not None:
        out.append(_Initialiser("DT_INIT", init, False))
    return out


def _merge(writes: list[InitWrite]) -> list[InitWrite]:
    """Writes that overlap or touch, by the same initialiser in the same way, as one."""
    out: list[InitWrite] = []
    more: dict[int, int] = {}
    for w in sorted(writes, key=lambda w: (w.vaddr, -w.size)):
        last = out[-1] if out else None
        same = last is not None and (last.initialiser, last.preinit, last.symbol) == (
            w.initialiser,
            w.preinit,
            w.symbol,
        )
        if last is not None and same and w.vaddr <= last.vaddr + last.size:
            end = max(last.vaddr + last.size, w.vaddr + w.size)
            out[-1] = msgspec.structs.replace(last, size=end - last.vaddr)
            more[len(out) - 1] = more.get(len(out) - 1, 0) + 1
            continue
        out.append(w)
    for i, n in more.items():
        out[i] = msgspec.structs.replace(out[i], how=f"{out[i].how} and {n} more")
    return out


def initialiser_writes(dso: Dso, fd: int) -> InitWrites:
    """What `dso`'s initialisers certainly write into its own writable segments, and what
    they might (see the module docstring); `fd`: the object, open."""
    if dso.machine not in MACHINES or not dso.little_endian:
        return InitWrites(analysed=False, unproven=(f"{dso.machine} code is not disassembled",))
    arch = _arch(dso.machine)
    assert arch is not None
    from capstone import CsError

    try:
        return _analyse(_Analysis(dso, fd, arch, _disassembler(arch.mode)))
    except (ElfcostError, OSError, ValueError, struct.error, IndexError, CsError) as exc:
        # A file the loader would refuse, or one crafted against the analysis: nothing proved.
        why = f"initialisers not analysed: {type(exc).__name__}: {exc}"
        return InitWrites(analysed=False, unproven=(why[:200],))


# A disassembler per mode and thread, kept across objects: making one costs more than a
# small initialiser's analysis. (A capstone handle is not to be shared between threads, and a
# Dask worker analyses in several.)
_THREAD = threading.local()


def _disassembler(mode: int) -> Cs:
    from capstone import CS_ARCH_X86, Cs

    made: dict[int, Cs] = _THREAD.__dict__.setdefault("disassemblers", {})
    md = made.get(mode)
    if md is None:
        md = made[mode] = Cs(CS_ARCH_X86, mode)
        md.detail = True
    return md


def _analyse(a: _Analysis) -> InitWrites:
    unproven: list[str] = []
    writes: list[InitWrite] = []
    done = 0
    left = MAX_OBJECT_INSNS
    for init in _initialisers(a):
        if init.vaddr is None:
            unproven.append(f"{init.label}: {init.why}")
            continue
        name = a.symbols.name(init.vaddr)
        if left <= 0:
            unproven.append(
                f"{init.label} ({name}): not analysed, {MAX_OBJECT_INSNS} instructions done"
            )
            continue
        a.budget = min(left, MAX_INITIALISER_INSNS)
        try:
            s = a.summary(init.vaddr, 0)
        except _Limit:
            s = None
            unproven.append(f"{init.label} ({name}): over {MAX_INITIALISER_INSNS} instructions")
        left -= min(left, MAX_INITIALISER_INSNS) - max(a.budget, 0)
        if s is None:
            continue
        done += 1
        unproven.extend(s.unproven)
        # An initialiser's arguments are the loader's (argc, argv, envp: elf/dl-init.c
        # call_init): a write through one is not into this object. (Its summary has such
        # writes when the function was first met as another initialiser's callee.)
        unproven.extend(f"{name}: {w.how} through an argument" for w in s.writes if w.param >= 0)
        writes.extend(
            InitWrite(
                vaddr=w.vaddr,
                size=w.size,
                initialiser=name,
                how=w.how,
                preinit=init.preinit,
                symbol=w.symbol,
            )
            for w in s.writes
            if w.param < 0
        )
    merged = _merge(writes)
    if len(merged) > MAX_WRITES:
        unproven.append(f"{len(merged) - MAX_WRITES} more proved writes not listed")
        merged = merged[:MAX_WRITES]
    lines = list(dict.fromkeys(unproven))
    if len(lines) > MAX_UNPROVEN:
        lines = [*lines[: MAX_UNPROVEN - 1], f"and {len(lines) - MAX_UNPROVEN + 1} more"]
    return InitWrites(
        analysed=True,
        initialisers=done,
        writes=tuple(merged),
        unproven=tuple(lines),
        calls=tuple(sorted(a.called)),
    )
