"""elf/ctors.py on hand-written constructors: each test assembles a tiny shared object (or
program) whose DT_INIT_ARRAY names one function, then checks exactly which writes the
disassembly proves and what it leaves unproven. Assembly, not C, so the instructions are the
ones the test means whatever the compiler would make of them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import msgspec
import pytest

from elfcost.elf.ctors import MAX_DEPTH, initialiser_writes
from elfcost.elf.facts import InitWrites
from elfcost.elf.reader import opened, read_dso
from elfcost.elf.symbols import find_symbols

pytest.importorskip("capstone")
if shutil.which("gcc") is None:
    pytest.skip("no C compiler to assemble the constructors", allow_module_level=True)

# A page-aligned 64 KiB .bss table, an exported variable on a page of its own, and the init
# array entry; the test supplies `ctor` (and whatever else) in .text.
PRELUDE_64 = """
    .bss
    .balign 4096
buf:
    .zero 65536
    .globl exported
    .type exported, @object
    .size exported, 4096
    .balign 4096
exported:
    .zero 4096
    .section .init_array,"aw"
    .balign 8
    .quad ctor
    .text
"""
PRELUDE_32 = PRELUDE_64.replace(".quad ctor", ".long ctor").replace(".balign 8", ".balign 4")


def build(tmp: Path, asm: str, *, m32: bool = False, program: bool = False) -> Path:
    """Assemble and link `asm` (AT&T syntax) after the prelude: a shared object, or a
    non-PIE program entered at `ctor` with `program`."""
    src = tmp / "t.s"
    src.write_text((PRELUDE_32 if m32 else PRELUDE_64) + asm)
    out = tmp / ("t" if program else "libt.so")
    kind = ["-no-pie", "-Wl,-e,ctor"] if program else ["-shared", "-fPIC"]
    cmd = ["gcc", "-nostdlib", *(["-m32"] if m32 else []), *kind, str(src), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode and m32:
        pytest.skip(f"gcc -m32 cannot link: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return out


def analyse(path: Path) -> tuple[InitWrites, dict[str, int]]:
    dso = read_dso(str(path))
    with opened(dso.file) as (fd, _):
        found = initialiser_writes(dso, fd)
    symbols = find_symbols(dso, ("buf", "exported", "ctor"))
    return found, {name: value for name, (value, _) in symbols.items()}


def writes(found: InitWrites) -> list[tuple[int, int]]:
    return [(w.vaddr, w.size) for w in found.writes]


class Case(NamedTuple):
    """A constructor and what the analysis must make of it."""

    asm: str  # `ctor` (and its callees), after the prelude
    proved: list[tuple[str, int, int]]  # (symbol, offset, size) of each write, in order
    unproven: str = ""  # a pattern one unproven line matches; "": none, the writes complete
    how: tuple[str, ...] = ()  # a pattern the start of each write's `how` matches, in order
    symbols: tuple[str, ...] = ()  # the symbols the writes name (buf is local: unnamed)
    m32: bool = False
    program: bool = False  # a non-PIE program, not a shared object


# ctor -> f1 -> f2 -> f3 -> f4: f4 is one level past MAX_DEPTH (3)
CHAIN = "".join(f"f{i}:\n    call f{i + 1}\n    ret\n" for i in range(1, MAX_DEPTH + 1))

CASES = {
    # the two stores on page 2 touch (8192..8193, 8196..8200): not merged, a byte apart
    "rip_relative_stores_are_proved_byte_for_byte": Case(
        """
ctor:
    movq $1, buf(%rip)
    movb $2, buf+8192(%rip)
    movl $3, buf+8196(%rip)
    ret
""",
        [("buf", 0, 8), ("buf", 8192, 1), ("buf", 8196, 4)],
        how=("store at 0x",),
    ),
    "adjacent_stores_merge": Case(
        """
ctor:
    movq $1, buf+16(%rip)
    movq $2, buf+24(%rip)
    movq $3, buf+32(%rip)
    ret
""",
        [("buf", 16, 24)],
        how=(".* and 2 more$",),
    ),
    "memset_through_the_plt_with_a_constant_length": Case(
        """
ctor:
    subq $8, %rsp
    leaq buf+4096(%rip), %rdi
    xorl %esi, %esi
    movl $12288, %edx
    call memset@PLT
    addq $8, %rsp
    ret
""",
        [("buf", 4096, 12288)],
        how=("memset called at 0x",),
    ),
    "a_tail_call_to_memcpy_and_rep_stos": Case(
        """
ctor:
    leaq buf+40960(%rip), %rdi
    movl $512, %ecx
    xorl %eax, %eax
    rep stosq
    leaq buf(%rip), %rdi
    leaq buf+32768(%rip), %rsi
    movl $100, %edx
    jmp memcpy@PLT
""",
        [("buf", 0, 100), ("buf", 40960, 4096)],
        how=("memcpy ", "rep "),
    ),
    # %rdx is the constructor's third argument (envp in glibc): not a constant
    "a_length_not_known_is_unproven": Case(
        """
ctor:
    leaq buf(%rip), %rdi
    xorl %esi, %esi
    jmp memset@PLT
""",
        [],
        unproven="memset.*not known",
    ),
    "a_store_through_an_unknown_pointer_stays_possible": Case(
        """
ctor:
    movq $7, (%rdi)
    movq $1, buf+8(%rip)
    ret
""",
        [("buf", 8, 8)],
        unproven="through a pointer not known",
    ),
    # the store after the join is on every path, the one before it only on some
    "a_store_on_one_branch_only_is_not_proved": Case(
        """
ctor:
    testl %edi, %edi
    je 1f
    movq $1, buf+4096(%rip)
1:
    movq $2, buf(%rip)
    ret
""",
        [("buf", 0, 8)],
        unproven="only on some paths",
    ),
    # each arm stores the same variable: written on every path, by one block or the other
    "a_store_on_both_branches_is_proved": Case(
        """
ctor:
    testl %edi, %edi
    je 1f
    movq $1, buf+4096(%rip)
    ret
1:
    movq $2, buf+4096(%rip)
    ret
""",
        [("buf", 4096, 8)],
        how=("store at 0x[0-9a-f]+ and 1 more$",),
    ),
    # a C++ static's guard: set when clear, else set before (.bss starts as zero: only a
    # write makes it nonzero); its page is written on both paths
    "a_guard_set_when_clear_is_proved": Case(
        """
ctor:
    cmpb $0, buf+4096(%rip)
    jne 1f
    movb $1, buf+4096(%rip)
1:
    ret
""",
        [("buf", 4096, 1)],
        how=("store at 0x[0-9a-f]+, if not set before$",),
    ),
    "a_guard_reached_through_its_got_slot_and_tested_with_je": Case(
        """
ctor:
    movq exported@GOTPCREL(%rip), %rax
    cmpb $0, (%rax)
    je 1f
    ret
1:
    movb $1, (%rax)
    ret
""",
        [("exported", 0, 1)],
        how=("store at 0x[0-9a-f]+, if not set before$",),
        symbols=("exported",),
    ),
    # the same guard loaded into a register, then tested (gcc's `movzbl; testb`)
    "a_guard_loaded_then_tested_is_proved": Case(
        """
ctor:
    movzbl buf+4096(%rip), %eax
    testb %al, %al
    jne 1f
    movb $1, buf+4096(%rip)
1:
    ret
""",
        [("buf", 4096, 1)],
        how=("store at 0x[0-9a-f]+, if not set before$",),
    ),
    # the register tested holds more than was loaded (its upper bytes are not the guard's),
    # or was written again after the load: not a test of the variable
    "a_register_wider_than_the_load_proves_nothing": Case(
        """
ctor:
    movb buf+4096(%rip), %al
    testl %eax, %eax
    jne 1f
    movb $1, buf+4096(%rip)
1:
    ret
""",
        [],
        unproven="only on some paths",
    ),
    "a_register_written_after_the_load_proves_nothing": Case(
        """
ctor:
    movzbl buf+4096(%rip), %eax
    movl %edi, %eax
    testl %eax, %eax
    jne 1f
    movb $1, buf+4096(%rip)
1:
    ret
""",
        [],
        unproven="only on some paths",
    ),
    # a constructor called with `this` = a variable of the object: its stores through `this`
    # (and a nested call's, through `this` + 8) land there
    "stores_through_a_callees_argument_land_where_the_caller_points_it": Case(
        """
ctor:
    leaq buf+4096(%rip), %rdi
    call init_obj
    ret
    .type init_obj, @function
init_obj:
    movq $1, (%rdi)
    addq $8, %rdi
    jmp init_part
    .type init_part, @function
init_part:
    movq $2, (%rdi)
    movq $3, 8(%rdi)
    ret
""",
        [("buf", 4096, 24)],
        how=("store at 0x[0-9a-f]+ in init_obj and 2 more$",),
    ),
    "memset_of_a_callees_argument": Case(
        """
ctor:
    subq $8, %rsp
    leaq buf+8192(%rip), %rdi
    call clear
    addq $8, %rsp
    ret
    .type clear, @function
clear:
    movl $64, %edx
    xorl %esi, %esi
    jmp memset@PLT
""",
        [("buf", 8192, 64)],
        how=("memset jumped to at 0x[0-9a-f]+ in clear$",),
    ),
    # a callee's write through its argument whose length is not known: not proved, and said
    # so (not dropped as memory of no object's)
    "a_callees_rep_stos_of_an_unknown_count_through_its_argument": Case(
        """
ctor:
    leaq buf+4096(%rip), %rdi
    call clear
    ret
    .type clear, @function
clear:
    movq %rsi, %rcx
    xorl %eax, %eax
    rep stosq
    ret
""",
        [],
        unproven="rep stosq at 0x[0-9a-f]+: count not known",
    ),
    "a_callees_memset_of_an_unknown_length_through_its_argument": Case(
        """
ctor:
    subq $8, %rsp
    leaq buf+4096(%rip), %rdi
    call clear
    addq $8, %rsp
    ret
    .type clear, @function
clear:
    movq %rsi, %rdx
    xorl %esi, %esi
    jmp memset@PLT
""",
        [],
        unproven="memset jumped to at 0x[0-9a-f]+ with a destination or length not known",
    ),
    # the argument the caller passes is not known: nothing proved, and it says why
    "a_callees_store_through_an_argument_not_known": Case(
        """
ctor:
    movq (%rsi), %rdi
    call init_obj
    ret
    .type init_obj, @function
init_obj:
    movq $1, (%rdi)
    ret
""",
        [],
        unproven="store at 0x[0-9a-f]+ in init_obj through an argument not known",
    ),
    # an initialiser's own arguments are the loader's (argc, argv, envp): not this object's
    "an_initialisers_store_through_its_own_argument_is_not_known": Case(
        """
ctor:
    movq $1, (%rsi)
    ret
""",
        [],
        unproven="through a pointer not known",
    ),
    # nonzero in the file: the test may find it so without any write
    "a_guard_that_starts_set_proves_nothing": Case(
        """
    .data
flag:
    .byte 1
    .text
ctor:
    cmpb $0, flag(%rip)
    jne 1f
    movb $1, flag(%rip)
1:
    ret
""",
        [],
        unproven="only on some paths",
    ),
    # the store is made when the variable is set: the path where it is clear writes nothing
    "a_store_made_only_when_set_proves_nothing": Case(
        """
ctor:
    cmpb $0, buf+4096(%rip)
    je 1f
    movb $2, buf+4096(%rip)
1:
    ret
""",
        [],
        unproven="only on some paths",
    ),
    # compared with 1, not 0: not a test of whether it was written
    "a_variable_compared_with_another_value_proves_nothing": Case(
        """
ctor:
    cmpb $1, buf+4096(%rip)
    jne 1f
    movb $1, buf+4096(%rip)
1:
    ret
""",
        [],
        unproven="only on some paths",
    ),
    "an_indirect_call_is_unproven_and_the_stores_around_it_are_kept": Case(
        """
ctor:
    pushq %rbx
    movq $1, buf(%rip)
    call *%rsi
    movq $2, buf+4096(%rip)
    popq %rbx
    ret
""",
        [("buf", 0, 8), ("buf", 4096, 8)],
        unproven="indirect call",
    ),
    "a_store_through_a_register_that_holds_an_address_is_proved": Case(
        """
ctor:
    leaq buf(%rip), %rax
    addq $8192, %rax
    movq %rax, %rcx
    movw $5, 6(%rcx)
    ret
""",
        [("buf", 8198, 2)],
    ),
    "the_stack_and_tls_are_not_the_objects_pages": Case(
        """
ctor:
    pushq %rbp
    movq %rsp, %rbp
    subq $32, %rsp
    movq $1, -8(%rbp)
    movq $2, 8(%rsp)
    movl $3, %fs:-4
    leave
    ret
""",
        [],
    ),
    "a_global_written_through_its_got_entry": Case(
        """
ctor:
    movq exported@GOTPCREL(%rip), %rax
    movq $42, 56(%rax)
    ret
""",
        [("exported", 56, 8)],
        symbols=("exported",),
    ),
    "another_objects_variable_is_not_this_objects_page": Case(
        """
ctor:
    movq elsewhere@GOTPCREL(%rip), %rax
    movq $1, (%rax)
    ret
""",
        [],
    ),
    "callees_are_followed_and_named": Case(
        """
    .type helper, @function
helper:
    movq $1, buf+12288(%rip)
    ret
ctor:
    call helper
    ret
""",
        [("buf", 12288, 8)],
        how=(".* in helper$",),
    ),
    "calls_are_followed_only_so_deep": Case(
        f"""
{CHAIN}f{MAX_DEPTH + 1}:
    movq $1, buf(%rip)
    ret
ctor:
    call f1
    ret
""",
        [],
        unproven="deeper than",
    ),
    # the abort branch never reaches the return: the store after the join is on every path
    "a_call_that_never_returns_ends_its_path": Case(
        """
ctor:
    subq $8, %rsp
    testl %edi, %edi
    jne 1f
    call abort@PLT
1:
    movq $1, buf+20480(%rip)
    addq $8, %rsp
    ret
""",
        [("buf", 20480, 8)],
    ),
    "a_function_that_is_not_known_is_unproven": Case(
        """
ctor:
    leaq buf(%rip), %rdi
    jmp pthread_mutex_init@PLT
""",
        [],
        unproven="pthread_mutex_init",
    ),
    "i386_pic_thunk_and_memset_arguments_on_the_stack": Case(
        """
    .type thunk, @function
thunk:
    movl (%esp), %ebx
    ret
ctor:
    pushl %ebx
    subl $8, %esp
    call thunk
    addl $_GLOBAL_OFFSET_TABLE_, %ebx
    movl $1, buf@GOTOFF(%ebx)
    pushl $16384
    pushl $0
    leal buf+8192@GOTOFF(%ebx), %eax
    pushl %eax
    call memset@PLT
    addl $20, %esp
    popl %ebx
    ret
""",
        [("buf", 0, 4), ("buf", 8192, 16384)],
        m32=True,
    ),
    "absolute_addresses_in_a_non_pie_program": Case(
        """
ctor:
    movl $buf+4096, %eax
    movl $9, (%eax)
    movl $1, buf+8192
    ret
""",
        [("buf", 4096, 4), ("buf", 8192, 4)],
        m32=True,
        program=True,
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_what_a_constructor_writes(tmp_path: Path, case: Case) -> None:
    found, sym = analyse(build(tmp_path, case.asm, m32=case.m32, program=case.program))
    assert writes(found) == [(sym[name] + offset, size) for name, offset, size in case.proved]
    # One constructor, which every write is put down to (a callee's by its name in `how`).
    assert found.initialisers == 1
    assert all(w.initialiser == "ctor" for w in found.writes)
    for w, pattern in zip(found.writes, case.how, strict=False):
        assert re.match(pattern, w.how), (w.how, pattern)
    assert tuple(w.symbol for w in found.writes if w.symbol) == case.symbols
    if case.unproven:
        assert not found.complete
        assert any(re.search(case.unproven, u) for u in found.unproven), found.unproven
    else:
        assert found.complete and found.unproven == ()


def test_another_machine_is_not_disassembled(tmp_path: Path) -> None:
    dso = read_dso(str(build(tmp_path, "ctor:\n    ret\n")))
    other = type(dso)(
        **{**{f: getattr(dso, f) for f in dso.__struct_fields__}, "machine": "aarch64"}
    )
    with opened(dso.file) as (fd, _):
        found = initialiser_writes(other, fd)
    assert not found.analysed and not found.complete and found.writes == ()


Key = tuple[int, int, None]


def _escapes(
    k: Key,
    succ: dict[int, list[int]],
    made: dict[int, set[Key]],
    tested: dict[tuple[int, int], set[Key]],
    exits: list[int],
) -> bool:
    """An exit reached from the entry (block 0) avoiding every block and edge that writes k."""
    if k in made[0]:
        return False
    seen, work = {0}, [0]
    while work:
        b = work.pop()
        if b in exits:
            return True
        for s in succ[b]:
            if s not in seen and k not in made[s] and k not in tested[b, s]:
                seen.add(s)
                work.append(s)
    return False


def test_writes_on_every_path_agree_with_reachability() -> None:
    """Which writes lie on every path from a function's entry to its exits decides which are
    proved. On random control flow (loops, back edges to the entry, blocks not reached, one
    exit or several, edges that prove a write: a guard tested set), a write is proved exactly
    when no exit can be reached from the entry without passing a block or an edge that makes
    it: checked by a plain search of the graph with those removed."""
    import random

    from elfcost.elf.ctors import _Block, _reverse_postorder, _written_on_every_path

    rng = random.Random(7)
    keys: list[Key] = [(0x1000 + 8 * i, 8, None) for i in range(4)]
    for _ in range(500):
        n = rng.randint(1, 30)
        succ = {b: rng.sample(range(n), rng.randint(0, min(3, n))) for b in range(n)}
        blocks = {b: _Block([], s, "") for b, s in succ.items()}
        order = _reverse_postorder(0, blocks)
        made = {b: {k for k in keys if rng.random() < 0.2} for b in order}
        tested = {(b, s): {k for k in keys if rng.random() < 0.1} for b in order for s in succ[b]}
        exits = rng.sample(order, rng.randint(1, min(3, len(order))))

        want = {k for k in keys if not _escapes(k, succ, made, tested, exits)}
        got = _written_on_every_path(0, order, blocks, made, tested, exits)
        assert got == want, (succ, made, tested, exits)


def test_a_got_claimed_larger_than_any_is_not_believed(tmp_path: Path) -> None:
    # Every relocation record that writes in the GOT and the init arrays is kept (a DT_RELR
    # bitmap word stands for 63): section headers, which nothing needs to load, claiming more
    # than 64 MiB of them are not believed, and nothing is proved rather than all kept.
    dso = read_dso(str(build(tmp_path, "ctor:\n    movq $1, buf(%rip)\n    ret\n")))
    text = next(s for s in dso.sections if s.name == ".text")
    got = msgspec.structs.replace(text, name=".got", sh_type=1, flags=3, size=1 << 40)
    huge = (*dso.sections, got)
    with opened(dso.file) as (fd, _):
        found = initialiser_writes(msgspec.structs.replace(dso, sections=huge), fd)
        whole = initialiser_writes(dso, fd)
    assert whole.complete and len(whole.writes) == 1
    assert not found.analysed and found.writes == ()
    assert found.unproven == (
        f"initialisers not analysed: ElfcostError: {dso.file}: GOT and init arrays: "
        "larger than 64 MiB",
    )
