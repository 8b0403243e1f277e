"""Mutations of real ELF files, and the static pipeline every mutant is fed to.

A mutation is a short list of operations (plain tuples, so a failing case prints readably):

    ("set", "phdr[3].p_filesz", 0x10000000000)   an integer field, masked to its width
    ("string", "dynstr", 0x21, b"../x")          bytes written inside a string table
    ("bytes", 0x1234, b"\\xff")                  raw bytes anywhere
    ("copy_phdr", 2, 5) / ("swap_phdr", 2, 5)    program header records copied or swapped
    ("truncate", 0x340)                          the file cut at that length (applied last)

The choices are made through a `Chooser`, implemented over hypothesis (`DataChooser`, for the
test suite) and over `random.Random` (`RandomChooser`, for quick exploration outside pytest), so
the same generator serves both.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from elfpatch import ElfMap, Field

T = TypeVar("T")
Op = tuple[Any, ...]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "data" / "elf"
# `make fuzz`: a long randomized run of about this many mutants instead of the bounded one.
LONG_EXAMPLES = int(os.environ.get("ELFCOST_FUZZ_EXAMPLES", "0") or 0)


class Tally:
    """Mutants run, by outcome, and the slowest one (printed at the end of the session)."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.slowest = (0.0, "")
        self.started = time.monotonic()

    def record(self, outcome: str, seconds: float, label: str) -> None:
        self.outcomes["analysed" if outcome == "ok" else "refused with ElfcostError"] += 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, label)


TALLY = Tally()


class Chooser(Protocol):
    def choice(self, seq: Sequence[T], label: str) -> T: ...
    def integer(self, lo: int, hi: int, label: str) -> int: ...
    def raw(self, n: int, label: str) -> bytes: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, seq: Sequence[T], label: str) -> T:
        return seq[self.rng.randrange(len(seq))]

    def integer(self, lo: int, hi: int, label: str) -> int:
        return self.rng.randint(lo, hi)

    def raw(self, n: int, label: str) -> bytes:
        return self.rng.randbytes(n)


class DataChooser:
    """Draws through hypothesis' `st.data()`, so cases shrink and replay."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def choice(self, seq: Sequence[T], label: str) -> T:
        return self.data.draw(self.st.sampled_from(seq), label=label)  # type: ignore[no-any-return]

    def integer(self, lo: int, hi: int, label: str) -> int:
        return self.data.draw(self.st.integers(lo, hi), label=label)  # type: ignore[no-any-return]

    def raw(self, n: int, label: str) -> bytes:
        return self.data.draw(self.st.binary(min_size=n, max_size=n), label=label)  # type: ignore[no-any-return]


# -- seeds ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seed:
    """A directory of files analysed together: `main` is analysed, `target` is mutated."""

    name: str
    files: tuple[Path, ...]  # copied side by side (RUNPATH $ORIGIN finds the libraries)
    main: str
    target: str


SAMPLE_SEEDS = (
    # (main, target, other files); all under the samples build directory
    ("trivial.pie", "trivial.pie", ()),
    ("trivial.nopie", "trivial.nopie", ()),
    ("libown.so", "libown.so", ()),
    ("ownlib.pie", "libown.so", ()),
    ("copy_reloc.nopie", "copy_reloc.nopie", ("libcopydata.so",)),
    ("copy_reloc.nopie", "libcopydata.so", ()),
    ("relro_ptr_table.norelro", "relro_ptr_table.norelro", ()),
    ("tls.lazy", "tls.lazy", ()),
    ("trivial.static", "trivial.static", ()),
    ("ifunc.static", "ifunc.static", ()),
    ("trivial.static-pie", "trivial.static-pie", ()),
    # imports the printf family and holds a floating format: its .rodata is searched
    ("printf_format.pie", "printf_format.pie", ()),
)
MUSL_SEEDS = (
    ("trivial.musl-dyn", "trivial.musl-dyn", ()),
    ("trivial.musl-static",) * 2 + ((),),
    ("printf_format.musl-dyn",) * 2 + ((),),
)
# 100-400 ms a case instead of ~15 (the i386 programs resolve this machine's real 32-bit libc,
# whose start-up symbols are looked up with pyelftools): only in the long run.
SLOW_SEEDS = ("i386/hello:", "i386/hello.nosections:", "trivial.static-pie:", "ifunc.static:")


def seeds(samples: Path | None, *, musl: bool = False, slow: bool = True) -> list[Seed]:
    """Every seed available: the committed cross-machine fixtures, then built samples."""
    out: list[Seed] = []
    for d in sorted(p for p in FIXTURES.iterdir() if (p / "hello").is_file()):
        files = tuple(d / n for n in ("hello", "hello.nosections", "libfix.so.1"))
        for main, target in (
            ("hello", "hello"),
            ("hello", "libfix.so.1"),
            ("libfix.so.1", "libfix.so.1"),
            ("hello.nosections", "hello.nosections"),
        ):
            out.append(Seed(f"{d.name}/{main}:{target}", files, main, target))
    if samples is not None:
        rows = list(SAMPLE_SEEDS) + (list(MUSL_SEEDS) if musl else [])
        for main, target, extra in rows:
            names = dict.fromkeys((main, target, *extra))
            paths = tuple(samples / n for n in names)
            if all(p.is_file() for p in paths):
                out.append(Seed(f"{main}:{target}", paths, main, target))
    return [s for s in out if slow or not s.name.startswith(SLOW_SEEDS)]


class Workdir:
    """One directory per seed holding its files; the target is rewritten for every case."""

    def __init__(self, base: Path, seed: Seed) -> None:
        self.dir = base / seed.name.replace("/", "_").replace(":", "__")
        if not self.dir.exists():
            self.dir.mkdir(parents=True)
            for f in seed.files:
                shutil.copyfile(f, self.dir / f.name)
        self.main = self.dir / seed.main
        self.target = self.dir / seed.target

    def write(self, data: bytes) -> None:
        tmp = self.target.with_name(self.target.name + ".new")
        tmp.write_bytes(data)
        tmp.replace(self.target)


# -- generating operations ---------------------------------------------------------------------

GROUPS = ("ehdr", "phdr", "dyn", "strings", "reloc", "shdr", "truncate", "mixed")

# Dynamic tags worth swapping in: everything elfcost or a loader reads, and some it does not.
DYN_TAGS = (
    *range(0, 38),
    0x6FFFFEF5,  # DT_GNU_HASH
    0x6FFFFFF0,  # DT_VERSYM
    0x6FFFFFF9,  # DT_RELACOUNT
    0x6FFFFFFA,  # DT_RELCOUNT
    0x6FFFFFFB,  # DT_FLAGS_1
    0x6FFFFFFE,  # DT_VERNEED
    0x7FFFFFFF,
    0x80000000,
    -1,
)
# p_type values: the ones elfcost reads, duplicates of them, GNU ones, junk.
PT_TYPES = (0, 1, 2, 3, 4, 6, 7, 0x6474E550, 0x6474E551, 0x6474E552, 0x6474E553, 0x70000000)


def interesting(f: Field, old: int, file_size: int) -> list[int]:
    bits = 8 * f.size
    top = (1 << bits) - 1
    vals = [0, 1, 2, 3, 4, 7, 8, 16, 0x40, 0x7F, 0x80, 0xFF, 0x100, 0xFFF, 0x1000, 0x1001]
    vals += [0xFFFF, 0x10000, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**48, 2**60]
    vals += [2**63 - 1, 2**63, top, top - 7, file_size, file_size - 1, file_size + 1]
    vals += [old + 1, old - 1, old + 8, old - 8, old + 0x1000, old - 0x1000, old * 2, old << 32]
    vals += [old ^ (1 << (bits - 1)), file_size * 2, 1 << (bits - 1)]
    return sorted({v & top for v in vals})


def _set_field(ch: Chooser, m: ElfMap, fields: Sequence[Field]) -> Op:
    f = ch.choice(fields, "field")
    old = m.get(f.offset, f.size)
    how = ch.choice(("interesting", "interesting", "random", "other-field"), "how")
    if how == "interesting" or not fields:
        value = ch.choice(interesting(f, old, len(m.data)), "value")
    elif how == "random":
        value = ch.integer(0, (1 << (8 * f.size)) - 1, "value")
    else:
        other = ch.choice(fields, "from")
        value = m.get(other.offset, other.size)
    if f.name.endswith(".d_tag") and ch.integer(0, 1, "as tag"):
        value = ch.choice(DYN_TAGS, "tag") & ((1 << (8 * f.size)) - 1)
    if f.name.endswith(".p_type") and ch.integer(0, 1, "as p_type"):
        value = ch.choice(PT_TYPES, "p_type")
    return ("set", f.name, value)


def _reloc_op(ch: Chooser, m: ElfMap, fields: Sequence[Field]) -> Op:
    """Relocation records: the type and the symbol index inside r_info, or a whole field."""
    f = ch.choice(fields, "field")
    if not f.name.endswith(".r_info") or not ch.integer(0, 1, "split r_info"):
        return _set_field(ch, m, [f])
    info = m.get(f.offset, f.size)
    if m.elf64:
        sym, rtype, shift, tmask = info >> 32, info & 0xFFFFFFFF, 32, 0xFFFFFFFF
    else:
        sym, rtype, shift, tmask = info >> 8, info & 0xFF, 8, 0xFF
    if ch.integer(0, 1, "type or symbol"):
        rtype = ch.choice((0, 1, 5, 6, 7, 8, 16, 18, 36, 37, 38, 0xFF, tmask), "r_type") & tmask
    else:
        sym = ch.choice((0, 1, 2, 0x1000, 0xFFFFFF, 0xFFFFFFFF, sym + 1), "sym") & (
            (1 << (8 * f.size - shift)) - 1
        )
    return ("set", f.name, (sym << shift) | rtype)


STRING_PAYLOADS = (
    b"\0",
    b"/",
    b"..",
    b"../../../../../../etc/passwd\0",
    b"$ORIGIN/..\0",
    b"${ORIGIN}\0",
    b"$LIB:$PLATFORM:\0",
    b"libc.so.6\0",
    b"/dev/zero\0",
    b"/proc/self/fd/0\0",
    b"\xff\xfe\x80",
    b"A" * 300,
    b":::",
)


def _string_op(ch: Chooser, m: ElfMap) -> Op:
    what, off, size = ch.choice(m.strings, "table")
    if size <= 0:
        return ("bytes", off, b"\xff")
    rel = ch.integer(0, max(0, size - 1), "at")
    how = ch.choice(("payload", "unterminate", "random"), "how")
    if how == "payload":
        payload = ch.choice(STRING_PAYLOADS, "payload")
    elif how == "unterminate":  # every NUL from here to the table's end replaced
        payload = bytes(b if b else 0x41 for b in m.data[off + rel : off + size])
    else:
        payload = ch.raw(ch.integer(1, 16, "len"), "bytes")
    return ("string", what, rel, payload)


def _truncate_op(ch: Chooser, m: ElfMap) -> Op:
    at = ch.choice(sorted(m.boundaries), "boundary")
    delta = ch.choice((0, 0, -1, 1, -4, 4, -8, 8, -7), "delta")
    return ("truncate", max(0, min(len(m.data) - 1, at + delta)))


def one_op(ch: Chooser, m: ElfMap, group: str) -> Op:
    if group == "mixed":
        group = ch.choice(("ehdr", "phdr", "dyn", "strings", "reloc", "shdr", "bytes"), "group")
    if group == "truncate":
        return _truncate_op(ch, m)
    if group == "strings":
        return _string_op(ch, m) if m.strings else ("bytes", 0x20, b"\xff")
    if group == "bytes":
        at = ch.integer(0, len(m.data) - 1, "at")
        return ("bytes", at, ch.raw(ch.integer(1, 8, "len"), "bytes"))
    if group == "phdr" and len(m.phdr_records) > 1 and ch.integer(0, 4, "records") == 0:
        a = ch.integer(0, len(m.phdr_records) - 1, "a")
        b = ch.integer(0, len(m.phdr_records) - 1, "b")
        return (ch.choice(("copy_phdr", "swap_phdr"), "op"), a, b)
    wanted = {"reloc": ("reloc", "sym"), "shdr": ("shdr", "note")}.get(group, (group,))
    fields = [f for f in m.fields if f.group in wanted]
    if not fields:
        fields = [f for f in m.fields if f.group == "ehdr"]
    if group == "reloc":
        return _reloc_op(ch, m, fields)
    return _set_field(ch, m, fields)


def mutation(ch: Chooser, m: ElfMap, group: str) -> list[Op]:
    """One to four operations from `group`, maybe followed by a truncation."""
    ops = [one_op(ch, m, group) for _ in range(ch.integer(1, 4, "ops"))]
    if group not in ("truncate",) and ch.integer(0, 9, "then truncate") == 0:
        ops.append(_truncate_op(ch, m))
    return ops


def apply(m: ElfMap, ops: Sequence[Op]) -> bytes:
    buf = bytearray(m.data)
    cut: int | None = None
    by_name = {f.name: f for f in m.fields}
    strings = {what: off for what, off, _ in m.strings}
    for op in ops:
        kind = op[0]
        if kind == "set":
            f = by_name[op[1]]
            m.put(buf, f.offset, f.size, op[2])
        elif kind == "bytes":
            buf[op[1] : op[1] + len(op[2])] = op[2]
            del buf[len(m.data) :]
        elif kind == "string":
            at = strings[op[1]] + op[2]
            buf[at : at + len(op[3])] = op[3]
            del buf[len(m.data) :]
        elif kind in ("copy_phdr", "swap_phdr"):
            (oa, size), (ob, _) = m.phdr_records[op[1]], m.phdr_records[op[2]]
            ra, rb = bytes(buf[oa : oa + size]), bytes(buf[ob : ob + size])
            buf[ob : ob + size] = ra
            if kind == "swap_phdr":
                buf[oa : oa + size] = rb
        elif kind == "truncate":
            cut = op[1] if cut is None else min(cut, op[1])
    return bytes(buf[:cut] if cut is not None else buf)


# -- the pipeline under test -------------------------------------------------------------------


class CaseTimeout(Exception):
    """A single case ran past its deadline."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in the main thread after `seconds` (SIGALRM; Linux only)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_WARM: dict[str, object] = {}


def host() -> Any:
    """A fresh Host; only the parsed /etc/ld.so.cache and the CPU's hwcaps are reused."""
    from elfcost.resolve.host import Host

    h = Host()
    if not _WARM:
        h.ld_so_cache()
        h.glibc_hwcaps("x86_64")
        _WARM.update(h._conf_cache)
    else:
        h._conf_cache.update(_WARM)
    return h


def run_pipeline(path: str, new_host: Callable[[], Any] = host, *, text: bool = False) -> str:
    """resolve → estimate → JSON documents, as the CLI does. Returns "ok" or the error text.

    With `text`, the terminal reports are rendered too (deps, estimate, explain). ElfcostError
    is a clean refusal; any other exception propagates (it is a bug).
    """
    from elfcost.errors import ElfcostError
    from elfcost.predict import estimate
    from elfcost.report.jsonout import deps_doc, dumps, estimate_doc
    from elfcost.resolve.search import resolve

    try:
        graph = resolve(path, new_host())
        dumps(deps_doc(graph))
        est = estimate(graph)
        doc = estimate_doc(est)
        dumps(doc)
        if text:
            from elfcost.report import text as render

            render.deps_text(graph)
            render.estimate_text(doc)
            render.explain_text(est)
    except ElfcostError as exc:
        return f"error: {exc}"
    return "ok"
