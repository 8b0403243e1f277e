"""elf/ctors.py on hand-written constructors: each test assembles a tiny shared object (or
program) whose DT_INIT_ARRAY names one function, then checks exactly which writes the
disassembly proves and what it leaves unproven. Assembly, not C, so the instructions are the
ones the test means whatever the compiler would make of them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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


def test_rip_relative_stores_are_proved_byte_for_byte(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    movq $1, buf(%rip)
    movb $2, buf+8192(%rip)
    movl $3, buf+8196(%rip)
    ret
""",
        )
    )
    buf = sym["buf"]
    # the two stores on page 2 touch (8192..8193, 8196..8200): not merged, a byte apart
    assert writes(found) == [(buf, 8), (buf + 8192, 1), (buf + 8196, 4)]
    assert found.complete and found.initialisers == 1
    assert found.writes[0].initialiser == "ctor"
    assert found.writes[0].how.startswith("store at 0x")


def test_adjacent_stores_merge(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    movq $1, buf+16(%rip)
    movq $2, buf+24(%rip)
    movq $3, buf+32(%rip)
    ret
""",
        )
    )
    assert writes(found) == [(sym["buf"] + 16, 24)]
    assert found.writes[0].how.endswith("and 2 more")


def test_memset_through_the_plt_with_a_constant_length(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
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
        )
    )
    assert writes(found) == [(sym["buf"] + 4096, 12288)]
    assert found.writes[0].how.startswith("memset called at 0x")
    assert found.complete


def test_a_tail_call_to_memcpy_and_rep_stos(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
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
        )
    )
    buf = sym["buf"]
    assert writes(found) == [(buf, 100), (buf + 40960, 4096)]
    assert {w.how.split()[0] for w in found.writes} == {"memcpy", "rep"}


def test_a_length_not_known_is_unproven(tmp_path: Path) -> None:
    # %rdx is the constructor's third argument (envp in glibc): not a constant
    found, _ = analyse(
        build(
            tmp_path,
            """
ctor:
    leaq buf(%rip), %rdi
    xorl %esi, %esi
    jmp memset@PLT
""",
        )
    )
    assert found.writes == ()
    assert any("memset" in u and "not known" in u for u in found.unproven)


def test_a_store_through_an_unknown_pointer_stays_possible(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    movq $7, (%rdi)
    movq $1, buf+8(%rip)
    ret
""",
        )
    )
    assert writes(found) == [(sym["buf"] + 8, 8)]
    assert not found.complete
    assert any("through a pointer not known" in u for u in found.unproven)


def test_a_store_on_one_branch_only_is_not_proved(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    testl %edi, %edi
    je 1f
    movq $1, buf+4096(%rip)
1:
    movq $2, buf(%rip)
    ret
""",
        )
    )
    assert writes(found) == [(sym["buf"], 8)]  # after the join: on every path
    assert any("only on some paths" in u for u in found.unproven)


def test_an_indirect_call_is_unproven_and_the_stores_around_it_are_kept(
    tmp_path: Path,
) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    pushq %rbx
    movq $1, buf(%rip)
    call *%rsi
    movq $2, buf+4096(%rip)
    popq %rbx
    ret
""",
        )
    )
    assert writes(found) == [(sym["buf"], 8), (sym["buf"] + 4096, 8)]
    assert any("indirect call" in u for u in found.unproven)


def test_a_store_through_a_register_that_holds_an_address_is_proved(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    leaq buf(%rip), %rax
    addq $8192, %rax
    movq %rax, %rcx
    movw $5, 6(%rcx)
    ret
""",
        )
    )
    assert writes(found) == [(sym["buf"] + 8198, 2)]


def test_the_stack_and_tls_are_not_the_objects_pages(tmp_path: Path) -> None:
    found, _ = analyse(
        build(
            tmp_path,
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
        )
    )
    assert found.writes == () and found.complete


def test_a_global_written_through_its_got_entry(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    movq exported@GOTPCREL(%rip), %rax
    movq $42, 56(%rax)
    ret
""",
        )
    )
    (w,) = found.writes
    assert (w.vaddr, w.size, w.symbol) == (sym["exported"] + 56, 8, "exported")


def test_another_objects_variable_is_not_this_objects_page(tmp_path: Path) -> None:
    found, _ = analyse(
        build(
            tmp_path,
            """
ctor:
    movq elsewhere@GOTPCREL(%rip), %rax
    movq $1, (%rax)
    ret
""",
        )
    )
    assert found.writes == () and found.complete


def test_callees_are_followed_and_named(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
    .type helper, @function
helper:
    movq $1, buf+12288(%rip)
    ret
ctor:
    call helper
    ret
""",
        )
    )
    (w,) = found.writes
    assert (w.vaddr, w.size) == (sym["buf"] + 12288, 8)
    assert w.how.endswith(" in helper") and w.initialiser == "ctor"


def test_calls_are_followed_only_so_deep(tmp_path: Path) -> None:
    # ctor -> f1 -> f2 -> f3 -> f4: f4 is one level past MAX_DEPTH (3)
    chain = "".join(f"f{i}:\n    call f{i + 1}\n    ret\n" for i in range(1, MAX_DEPTH + 1))
    found, _ = analyse(
        build(
            tmp_path,
            f"""
{chain}f{MAX_DEPTH + 1}:
    movq $1, buf(%rip)
    ret
ctor:
    call f1
    ret
""",
        )
    )
    assert found.writes == ()
    assert any("deeper than" in u for u in found.unproven)


def test_a_call_that_never_returns_ends_its_path(tmp_path: Path) -> None:
    # the abort branch never reaches the return: the store after the join is on every path
    found, sym = analyse(
        build(
            tmp_path,
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
        )
    )
    assert writes(found) == [(sym["buf"] + 20480, 8)]
    assert found.complete


def test_a_function_that_is_not_known_is_unproven(tmp_path: Path) -> None:
    found, _ = analyse(
        build(
            tmp_path,
            """
ctor:
    leaq buf(%rip), %rdi
    jmp pthread_mutex_init@PLT
""",
        )
    )
    assert found.writes == ()
    assert any("pthread_mutex_init" in u for u in found.unproven)


def test_i386_pic_thunk_and_memset_arguments_on_the_stack(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
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
            m32=True,
        )
    )
    buf = sym["buf"]
    assert writes(found) == [(buf, 4), (buf + 8192, 16384)]


def test_absolute_addresses_in_a_non_pie_program(tmp_path: Path) -> None:
    found, sym = analyse(
        build(
            tmp_path,
            """
ctor:
    movl $buf+4096, %eax
    movl $9, (%eax)
    movl $1, buf+8192
    ret
""",
            m32=True,
            program=True,
        )
    )
    assert writes(found) == [(sym["buf"] + 4096, 4), (sym["buf"] + 8192, 4)]


def test_another_machine_is_not_disassembled(tmp_path: Path) -> None:
    dso = read_dso(str(build(tmp_path, "ctor:\n    ret\n")))
    other = type(dso)(
        **{**{f: getattr(dso, f) for f in dso.__struct_fields__}, "machine": "aarch64"}
    )
    with opened(dso.file) as (fd, _):
        found = initialiser_writes(other, fd)
    assert not found.analysed and not found.complete and found.writes == ()
