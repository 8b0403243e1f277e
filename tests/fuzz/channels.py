"""Mutations of the files elfcost reads besides ELF files, and the entry point each one reaches.

The channels (docs/robustness.md): a scan cache entry, a saved estimate report given to `diff`,
a budget (TOML policy), a baseline (`check --baseline`), a capture (`measure --capture`) and a
package archive (`scan` of a .deb, .tar.*, .apk). Every channel starts from real files elfcost
or the system's own tools wrote (`make_seeds`), and a case is one mutant of one of them fed to
the library function the command line calls for that file, in this process.

A case survives when that function returns (for the scan cache: an entry or a miss, never an
exception) or refuses the file with an ElfcostError (a budget also with a PolicyError, the
documented usage error, exit 2) whose message starts with the file's name. Anything else is a
bug. Mutations are drawn through the same `Chooser` as the ELF mutations (mutate.py), so
hypothesis drives them in the test suite and `random.Random` in the long run (`python3
tests/fuzz/channels.py CASES`).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from mutate import Chooser, RandomChooser, deadline  # noqa: E402

ROOT = HERE.parents[1]
ELFCOST = [sys.executable, "-m", "elfcost"]
# The samples every channel's seeds are made from (build/samples, sample_binaries/).
SEED_PROGRAMS = ("trivial.pie", "copy_reloc.nopie", "tls.lazy", "ownlib.pie")
SEED_LIBRARIES = ("libcopydata.so", "libown.so")
# A case may not raise the process's peak resident memory (ru_maxrss) by more than this: the
# seeds are at most a few hundred KB, so a case that needs more has believed a size a file
# claimed.
MAX_CASE_RSS_GROWTH = 256 << 20
MAX_ARCHIVE_BYTES = 64 << 20  # `scan --max-archive-bytes` for the archive channel


class CaseFailed(AssertionError):
    """A case that neither returned nor was refused cleanly (the bug's description)."""


# -- generic byte mutations ----------------------------------------------------------------------

TOKENS = (
    b"\0",
    b"\xff",
    b"\xff\xfe\x80",  # not UTF-8
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"\n",
    b"\r\n",
    b"\x1b[2J",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"\\",
    b":",
    b",",
    b"=",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"NaN",
    b"Infinity",
    b"nan",
    b"inf",
    b"A" * 257,
    b"../../../etc/passwd",
)


def mutate_bytes(ch: Chooser, data: bytes, others: Sequence[bytes] = ()) -> bytes:
    """One to four byte-level operations: flips, overwrites, inserts, deletions, duplicated
    runs, a splice from another seed of the channel, a truncation."""
    buf = bytearray(data)
    for _ in range(ch.integer(1, 4, "byte ops")):
        n = len(buf)
        op = ch.choice(
            ("flip", "set", "insert", "token", "delete", "dup", "splice", "truncate"), "byte op"
        )
        at = ch.integer(0, n, "at") if n else 0
        if op == "flip" and n:
            at = min(at, n - 1)
            buf[at] ^= 1 << ch.integer(0, 7, "bit")
        elif op == "set" and n:
            raw = ch.raw(ch.integer(1, 8, "len"), "bytes")
            buf[at : at + len(raw)] = raw
        elif op == "insert":
            buf[at:at] = ch.raw(ch.integer(1, 16, "len"), "bytes")
        elif op == "token":
            buf[at:at] = ch.choice(TOKENS, "token")
        elif op == "delete" and n:
            del buf[at : at + ch.integer(1, max(1, n // 4), "len")]
        elif op == "dup" and n:
            size = ch.integer(1, max(1, min(n - min(at, n - 1), 4096)), "len")
            buf[at:at] = buf[at : at + size] * ch.choice((1, 2, 16), "times")
        elif op == "splice" and others:
            other = ch.choice(others, "other")
            if other:
                start = ch.integer(0, len(other) - 1, "from")
                buf[at:] = other[start:] if ch.integer(0, 1, "tail") else buf[at:] + other[:start]
        elif op == "truncate":
            del buf[at:]
    return bytes(buf)


# -- JSON-aware mutations ------------------------------------------------------------------------


class Raw:
    """Text written as is by `emit`: what json.dumps cannot write (NaN, 400-digit numbers,
    deep nesting, bytes that are not UTF-8)."""

    def __init__(self, text: bytes) -> None:
        self.text = text


class Pairs:
    """An object written with its keys in this order, duplicates included (not a list or a
    dict, so later changes leave it as it is)."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self.pairs = pairs


def emit(v: Any) -> bytes:
    """`v` as JSON text: json.dumps (NaN and Infinity as JavaScript writes them), with each
    Raw and Pairs put in place of a placeholder string afterwards."""
    raws: dict[bytes, bytes] = {}

    def default(o: Any) -> str:
        if not isinstance(o, Raw | Pairs):
            raise TypeError(type(o).__name__)
        key = f"\0raw{len(raws)}\0"
        if isinstance(o, Raw):
            text = o.text
        else:
            text = b"{" + b",".join(emit(k) + b":" + emit(x) for k, x in o.pairs) + b"}"
        raws[json.dumps(key).encode()] = text
        return key

    out = json.dumps(v, ensure_ascii=False, default=default).encode("utf-8", "surrogatepass")
    for key, text in raws.items():
        out = out.replace(key, text, 1)
    return out


JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    4095,
    4096,
    16384,
    65536,
    2**31,
    2**32 - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    0.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "x",
    "A" * 5000,
    "\udcff",  # a lone surrogate: written as UTF-8 bytes that are not UTF-8
    "\0",
    "64K",
    "elfcost.estimate/2",
    "elfcost.estimate/1",
    "elfcost.deps/1",
    "executable",
    "relocation",
    [],
    {},
    [1, 2],
    {"a": 1},
    Raw(b"1" + b"0" * 400),
    Raw(b"-" + b"9" * 30),
    Raw(b"1e400"),
    Raw(b"NaN"),
    Raw(b"Infinity"),
    Raw(b'"\xff\xfe"'),
    Raw(b'"\\ud800"'),
    Raw(b"[" * 100 + b"]" * 100),
    Raw(b"[" * 5000 + b"]" * 5000),
    Raw(b"[" * 200000 + b"]" * 200000),
    Raw(b'{"a":' * 3000 + b"1" + b"}" * 3000),
)


def _nodes(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `v` (keys and indices), `v` itself first. Long lists are
    sampled (their first elements and a few more) so a page map does not dominate."""
    out = [path]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _nodes(x, (*path, k))
    elif isinstance(v, list):
        idx = list(range(min(len(v), 4))) + list(range(4, len(v), max(1, len(v) // 8)))
        for i in idx:
            out += _nodes(v[i], (*path, i))
    return out


def _get(v: Any, path: Sequence[Any]) -> Any:
    for k in path:
        v = v[k]
    return v


def mutate_json(ch: Chooser, doc: Any, keys: Sequence[str]) -> bytes:
    """One to three changes to a parsed JSON document, then written (`emit`): a value replaced
    (wrong types, huge and non-finite numbers, deep nesting, strings not UTF-8), a key removed,
    added (unknown or known elsewhere) or duplicated, a list element removed or repeated, two
    values swapped."""
    doc = json.loads(json.dumps(doc))  # a private copy
    nodes = _nodes(doc)
    for _ in range(ch.integer(1, 3, "json ops")):
        path = ch.choice(nodes, "node")
        op = ch.choice(
            ("value", "value", "value", "drop", "add", "dupkey", "repeat", "swap", "last"), "op"
        )
        parent = _get(doc, path[:-1]) if path else None
        try:
            if op == "value" or (not path and op != "add"):
                value = copy.deepcopy(ch.choice(JSON_VALUES, "value"))
                if not path:
                    doc = value
                    break
                parent[path[-1]] = value
            elif op == "drop":
                del parent[path[-1]]
            elif op == "add":
                target = _get(doc, path)
                if isinstance(target, dict):
                    key = ch.choice((*keys, "unknown", "", "\udcff"), "key")
                    target[key] = copy.deepcopy(ch.choice(JSON_VALUES, "value"))
                elif isinstance(target, list):
                    target.append(copy.deepcopy(ch.choice(JSON_VALUES, "value")))
            elif op == "dupkey" and isinstance(parent, dict):
                pairs = Pairs(list(parent.items()))
                pairs.pairs.append((path[-1], copy.deepcopy(ch.choice(JSON_VALUES, "value"))))
                if len(path) == 1:
                    doc = pairs
                    break
                _get(doc, path[:-2])[path[-2]] = pairs
            elif op == "last" and isinstance(parent, dict):  # a key moved to the end
                parent[path[-1]] = parent.pop(path[-1])
            elif op == "repeat" and isinstance(parent, list):
                times = ch.choice((1, 100), "times")
                parent[path[-1] : path[-1]] = [
                    copy.deepcopy(parent[path[-1]]) for _ in range(times)
                ]
            elif op == "swap":
                other = ch.choice(nodes, "with")
                if other and not _is_prefix(other, path) and not _is_prefix(path, other):
                    a, b = copy.deepcopy(_get(doc, path)), copy.deepcopy(_get(doc, other))
                    parent[path[-1]] = b
                    _get(doc, other[:-1])[other[-1]] = a
        except (KeyError, IndexError, TypeError, AttributeError):
            pass  # an earlier change removed or retyped the node: the document is as it is
        nodes = _nodes(doc) if not isinstance(doc, Pairs) else nodes
    return emit(doc)


def _is_prefix(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return len(a) <= len(b) and tuple(b[: len(a)]) == tuple(a)


# -- TOML-aware mutations (line by line) ---------------------------------------------------------

TOML_VALUES = (
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e400",
    "1.5",
    "0.0",
    "true",
    "false",
    '""',
    '"x"',
    '"1.5M"',
    '"64K"',
    '"99999999999999999999G"',
    '"1e9999"',
    '"-1K"',
    '" 4096 "',
    '"\\u0000"',
    '"\\udcff"',
    "'*'",
    '"[!"',
    '"' + "*" * 300 + '"',
    "[]",
    '[1, "a"]',
    "{}",
    "{ a = 1 }",
    "2027-01-31",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "0x7fffffffffffffff",
    "[" * 60 + "]" * 60,
    "[" * 5000 + "]" * 5000,
    "{a=" * 3000 + "1" + "}" * 3000,
)
TOML_KEYS = (
    "match",
    "limit",
    "reason",
    "expires",
    "file",
    "max_private_dirty",
    "instances",
    "max_fleet",
    "max_objects",
    "no_textrel",
    "no_missing",
    "baseline",
    "unknown",
    "defaults",
    '"quoted key"',
    "a.b",
)
TOML_HEADERS = (
    "[defaults]",
    "[[rule]]",
    "[[waiver]]",
    "[baseline]",
    "[unknown]",
    "[rule]",
    "[[defaults]]",
    "[defaults.x]",
    "[[baseline]]",
    "[waiver]",
)


def mutate_toml(ch: Chooser, text: str) -> bytes:
    """One to three line edits of a TOML file: a value or key replaced, a line or a whole table
    repeated (duplicate keys and tables), a table header inserted or changed, a line removed."""
    lines = text.splitlines()
    for _ in range(ch.integer(1, 3, "toml ops")):
        if not lines:
            lines = [""]
        i = ch.integer(0, len(lines) - 1, "line")
        line = lines[i]
        op = ch.choice(("value", "value", "key", "dup", "table", "header", "drop", "add"), "op")
        key, eq, _value = line.partition("=")
        if op == "value" and eq:
            lines[i] = f"{key}= {ch.choice(TOML_VALUES, 'value')}"
        elif op == "key" and eq:
            lines[i] = f"{ch.choice(TOML_KEYS, 'key')} ={_value}"
        elif op == "dup":
            lines.insert(i, line)
        elif op == "table":  # the table holding line i, repeated after itself
            start = next((j for j in range(i, -1, -1) if lines[j].startswith("[")), 0)
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("[")), None)
            block = lines[start:end]
            lines[start:start] = block
        elif op == "header":
            lines.insert(i, ch.choice(TOML_HEADERS, "header"))
        elif op == "drop":
            del lines[i]
        else:
            lines.insert(i, f"{ch.choice(TOML_KEYS, 'key')} = {ch.choice(TOML_VALUES, 'value')}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


# -- captures: smaps and its neighbours ----------------------------------------------------------

SMAPS_NUMBERS = (
    "0",
    "1",
    "4",
    "-4",
    "3",
    "4096",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "0x10",
    "1.5",
    "",
    "kB",
    "nan",
)
ADDRESSES = (
    "0",
    "1",
    "fff",
    "1000",
    "7fffffffffff",
    "ffffffffffffffff",
    "10000000000000000",
    "ffffffffff600000",
    "g00d",
    "",
)


def mutate_smaps_line(ch: Chooser, line: str) -> str:
    """A smaps (or smaps_rollup) line with one field replaced: a size of a `Key: N kB` line, or
    the range, permissions, offset, device, inode or path of a mapping header."""
    key, colon, rest = line.partition(":")
    fields = line.split(" ")
    if colon and not key.count("-") and rest.strip().endswith("kB"):
        what = ch.choice(("number", "unit", "key"), "what")
        if what == "number":
            return f"{key}: {ch.choice(SMAPS_NUMBERS, 'n')} kB"
        if what == "unit":
            return f"{key}: {rest.split()[0]} {ch.choice(('MB', '', 'kB kB', 'B'), 'unit')}"
        keys = ("Rss", "Pss", "Private_Dirty", "KernelPageSize", "Size", "X")
        return f"{ch.choice(keys, 'k')}:{rest}"
    if "-" in fields[0] and len(fields) >= 5:
        pos = ch.integer(0, len(fields) - 1, "field")
        if pos == 0:
            lo, _, hi = fields[0].partition("-")
            side = ch.integer(0, 2, "side")
            new = ch.choice(ADDRESSES, "address")
            fields[0] = f"{new}-{hi}" if side == 0 else f"{lo}-{new}" if side == 1 else f"{hi}-{lo}"
        else:
            fields[pos] = ch.choice(
                ("rw-p", "r-xp", "----", "rwxs", "xyz", "ffffffffffffffff", "fd:01", "-1",
                 "999999999999999999999", "/x (deleted)", "[heap]", "[stack]", "[vvar]", "",
                 "\udcff"),
                "value",
            )  # fmt: skip
        return " ".join(fields)
    return line + ch.choice((" x", "", ": 4 kB", " 4"), "tail")


AUXV_TAGS = (0, 3, 4, 5, 6, 7, 9, 16, 25, 26, 33, 51, 2**63, 2**64 - 1)
AUXV_VALUES = (0, 1, 3, 4095, 4096, 16384, 65536, 1 << 21, 1 << 30, 2**63, 2**64 - 1)


def mutate_capture(ch: Chooser, files: dict[str, bytes], names: Sequence[str]) -> dict[str, bytes]:
    """One to three changes to a capture's files: smaps or smaps_rollup lines edited, removed,
    repeated or swapped; pagemap ranges' bytes changed, truncated, renamed; auxv entries
    rewritten; the pid file; a file removed or turned into bytes that are not text."""
    out = dict(files)
    for _ in range(ch.integer(1, 3, "capture ops")):
        name = ch.choice(names, "file")
        data = out.get(name)
        if data is None:
            out[name] = ch.choice((b"", b"\xff\xfe", b"smaps\n"), "new file")
            continue
        op = ch.choice(("structured", "structured", "bytes", "remove", "rename"), "op")
        if op == "remove":
            del out[name]
        elif op == "rename":
            del out[name]
            out[ch.choice((
                "pagemap/0-ffffffffffffffff", "pagemap/1000-0", "pagemap/x-y", "smaps",
                "pagemap/../smaps", "pagemap/7ffe0000-7ffe1000", name + "/x",
            ), "new name")] = data  # fmt: skip
        elif op == "bytes":
            out[name] = mutate_bytes(ch, data, list(files.values())[:4])
        elif name in ("smaps", "smaps_rollup", "maps"):
            lines = data.decode("utf-8", "surrogateescape").splitlines()
            if lines:
                i = ch.integer(0, len(lines) - 1, "line")
                how = ch.choice(("edit", "edit", "edit", "drop", "dup", "swap"), "how")
                if how == "edit":
                    lines[i] = mutate_smaps_line(ch, lines[i])
                elif how == "drop":
                    del lines[i]
                elif how == "dup":
                    lines[i:i] = [lines[i]] * ch.choice((1, 2, 1000), "times")
                else:
                    j = ch.integer(0, len(lines) - 1, "with")
                    lines[i], lines[j] = lines[j], lines[i]
            out[name] = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        elif name == "auxv" and len(data) >= 16:
            buf = bytearray(data)
            i = ch.integer(0, len(buf) // 16 - 1, "entry") * 16
            if ch.integer(0, 1, "tag or value"):
                buf[i : i + 8] = ch.choice(AUXV_TAGS, "tag").to_bytes(8, "little")
            else:
                buf[i + 8 : i + 16] = ch.choice(AUXV_VALUES, "value").to_bytes(8, "little")
            out[name] = bytes(buf[: ch.choice((len(buf), len(buf), len(buf) - 3, 8), "cut")])
        elif name == "pid":
            out[name] = ch.choice(
                (b"0\n", b"-1\n", b"99999999999999999999\n", b"\xff\n", b"1 2\n", b""), "pid"
            )
        else:  # a pagemap range: entries with flag bits set or cleared, or a ragged length
            buf = bytearray(data)
            if buf and ch.integer(0, 1, "entry or length"):
                i = ch.integer(0, max(0, len(buf) // 8 - 1), "entry") * 8
                word = ch.choice((0, 1 << 63, 1 << 55, 1 << 61, 2**64 - 1, 1 << 62), "word")
                buf[i : i + 8] = word.to_bytes(8, "little")
            else:
                del buf[ch.integer(0, len(buf), "cut") :]
                buf += ch.raw(ch.integer(0, 7, "ragged"), "tail")
            out[name] = bytes(buf)
    return out


def write_capture(files: dict[str, bytes], where: Path, as_tar: str | None) -> Path:
    """The capture as a directory at `where`, or as a tar file (`as_tar` its tarfile mode)."""
    if as_tar is None:
        if where.exists():
            shutil.rmtree(where)
        where.mkdir()
        for name, data in files.items():
            p = where / name
            if not p.resolve().is_relative_to(where.resolve()):
                continue  # a name such as pagemap/../../x: only inside the tar form
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                pass  # both "x" and "x/y" in one capture: the directory form keeps the first
        return where
    path = where.with_suffix(".tgz" if as_tar == "w:gz" else ".tar")
    with tarfile.open(path, as_tar) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# -- archives: tar headers and ar -----------------------------------------------------------------

TAR_NAMES = (
    b"../escape",
    b"/etc/escape",
    b"usr/../../escape",
    b"./usr/bin/prog",
    b"usr/lib",
    b"usr/lib/libown.so",
    b"link/escape",
    b"",
    b".",
    b"./",
    b"a" * 100,
    b"\xff\xfe",
    b"usr/bin/\n\x1b[2J",
)
TAR_TYPES = b"0123456 7gxLKSVMNDZ\0"
# "../outside" from the top of the unpack directory is a directory beside it, which the archive
# channel checks stays empty: a member written through such a link would land there.
TAR_LINKS = (b"/etc", b"..", b"../../..", b"usr/bin/prog", b"./usr/bin/prog", b"link", b"",
             b"usr/lib", b"/", b"nonexistent", b"usr/lib/libown.so", b"../outside",
             b"../../outside", b"../../../outside")  # fmt: skip
TAR_SIZES = (b"0", b"1", b"777", b"77777777777", b"7777777777777777", b"-1", b"9", b"x",
             b"\x80\0\0\0\0\0\0\0\0\x01\0\0", b"\xff" * 12, b"\x80" + b"\xff" * 11)  # fmt: skip
# (offset, length) of the ustar header fields a mutation rewrites
TAR_FIELDS = {
    "name": (0, 100),
    "mode": (100, 8),
    "size": (124, 12),
    "mtime": (136, 12),
    "type": (156, 1),
    "linkname": (157, 100),
    "magic": (257, 8),
    "prefix": (345, 155),
}


def tar_headers(data: bytes) -> list[int]:
    """Offsets of the member headers of an uncompressed tar (walked by their size fields)."""
    out, off = [], 0
    while off + 512 <= len(data) and data[off : off + 512].strip(b"\0"):
        out.append(off)
        try:
            size = int(data[off + 124 : off + 136].strip(b"\0 ") or b"0", 8)
        except ValueError:
            break
        off += 512 + (size + 511) // 512 * 512
    return out


def _checksum(header: bytearray) -> None:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % (sum(header) & 0o777777)


def mutate_tar(ch: Chooser, data: bytes) -> bytes:
    """One to three changes to member headers (name, size, type, link target, mode, magic),
    mostly with the checksum made right again, or a member repeated or removed."""
    buf = bytearray(data)
    for _ in range(ch.integer(1, 3, "tar ops")):
        heads = tar_headers(bytes(buf))
        if not heads:
            break
        at = ch.choice(heads, "member")
        op = ch.choice(("field", "field", "field", "repeat", "remove"), "op")
        end = next((h for h in heads if h > at), None)
        if end is None:
            end = len(buf)
            while end > at + 512 and not buf[end - 512 : end].strip(b"\0"):
                end -= 512
        if op == "repeat":
            buf[end:end] = buf[at:end]
            continue
        if op == "remove":
            del buf[at:end]
            continue
        name = ch.choice(sorted(TAR_FIELDS), "field")
        off, size = TAR_FIELDS[name]
        value = {
            "name": lambda: ch.choice(TAR_NAMES, "name"),
            "linkname": lambda: ch.choice(TAR_LINKS, "link"),
            "prefix": lambda: ch.choice(TAR_NAMES, "prefix"),
            "size": lambda: ch.choice(TAR_SIZES, "size"),
            "type": lambda: bytes([ch.choice(TAR_TYPES, "type")]),
            "mode": lambda: ch.choice((b"0000000", b"7777777", b"x"), "mode"),
            "mtime": lambda: ch.choice((b"77777777777", b"\xff" * 12, b"0"), "mtime"),
            "magic": lambda: ch.choice((b"ustar\x0000", b"ustar  \0", b"\0" * 8), "magic"),
        }[name]()[:size]
        buf[at + off : at + off + size] = value.ljust(size, b"\0")
        if ch.integer(0, 7, "bad checksum"):
            header = bytearray(buf[at : at + 512])
            _checksum(header)
            buf[at : at + 512] = header
    return bytes(buf)


def ar_archive(members: Sequence[tuple[bytes, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8)
        out += str(len(data)).encode().ljust(10) + b"`\n" + data
        if len(data) & 1:
            out += b"\n"
    return bytes(out)


def ar_members(data: bytes) -> list[tuple[bytes, bytes]]:
    out, off = [], 8
    while off + 60 <= len(data):
        size = int(data[off + 48 : off + 58])
        out.append((data[off : off + 16].rstrip(), data[off + 60 : off + 60 + size]))
        off += 60 + size + (size & 1)
    return out


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".tar": lambda b: b,
    ".tar.gz": lambda b: gzip.compress(b, mtime=0),
    ".tar.xz": lambda b: __import__("lzma").compress(b),
    ".tar.bz2": lambda b: __import__("bz2").compress(b),
    ".tar.zst": lambda b: __import__("zstandard").ZstdCompressor().compress(b),
}


def _decompress(suffix: str, data: bytes) -> bytes:
    if suffix == ".tar.gz":
        return gzip.decompress(data)
    if suffix == ".tar.xz":
        return __import__("lzma").decompress(data)
    if suffix == ".tar.bz2":
        return __import__("bz2").decompress(data)
    if suffix == ".tar.zst":
        return bytes(__import__("zstandard").ZstdDecompressor().decompressobj().decompress(data))
    return data


# -- the channels ----------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """Cases run, by channel and outcome, and the slowest one."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    slowest: tuple[float, str] = (0.0, "")

    def record(self, channel: str, outcome: str, seconds: float, label: str) -> None:
        self.counts[channel, outcome] += 1
        if seconds > self.slowest[0]:
            self.slowest = (seconds, f"{channel}: {label}"[:300])

    def summary(self) -> str:
        by: dict[str, Counter[str]] = {}
        for (chan, outcome), n in self.counts.items():
            by.setdefault(chan, Counter())[outcome] += 1 * n
        parts = []
        for chan in sorted(by):
            total = sum(by[chan].values())
            what = ", ".join(f"{n} {o}" for o, n in sorted(by[chan].items()))
            parts.append(f"{chan} {total} ({what})")
        return "; ".join(parts)


OUTCOMES = Outcomes()


class Channel:
    """A kind of file elfcost reads: its seeds, a mutation of one, and the entry point."""

    name = ""
    deadline_s = 5.0

    def __init__(self, seeds: dict[str, bytes], work: Path) -> None:
        self.seeds = seeds
        self.names = sorted(seeds)
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        """(seed name, mutated bytes)"""
        raise NotImplementedError

    def feed(self, path: Path) -> str:
        """Give the file to elfcost's entry point: "ok", or "refused" by ElfcostError."""
        raise NotImplementedError

    def target(self, seed: str) -> Path:
        return self.work / seed

    def case(self, ch: Chooser, label: str = "") -> str:
        seed, data = self.mutant(ch)
        path = self.target(seed)
        self.write(path, data)
        start = time.monotonic()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        try:
            with deadline(self.deadline_s):
                outcome = self.feed(path)
        except Exception as exc:
            raise CaseFailed(
                f"{self.name}: {seed} {label}: {type(exc).__name__}: {exc}"[:2000]
            ) from exc
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak
        if grown > MAX_CASE_RSS_GROWTH:
            raise CaseFailed(f"{self.name}: {seed} {label}: peak memory grew by {grown:,} bytes")
        OUTCOMES.record(self.name, outcome, time.monotonic() - start, f"{seed} {label}")
        return outcome

    def write(self, path: Path, data: bytes) -> None:
        path.write_bytes(data)


def refused(exc: Exception, path: Path | str) -> str:
    """ "refused" for an ElfcostError (or PolicyError) naming `path` in one line; else a bug."""
    text = str(exc)
    if not text.startswith(str(path)):
        raise CaseFailed(f"error does not start with the file's name {str(path)!r}: {text!r}")
    return "refused"


class BudgetChannel(Channel):
    """`check --budget FILE`: policy_of, then the gate on real facts and all three outputs."""

    name = "budget"

    def __init__(self, seeds: dict[str, bytes], work: Path, facts: Sequence[Any]) -> None:
        super().__init__(seeds, work)
        self.facts = facts

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        seed = ch.choice(self.names, "seed")
        data = self.seeds[seed]
        if ch.integer(0, 3, "bytes or toml"):
            return seed, mutate_toml(ch, data.decode())
        return seed, mutate_bytes(ch, data, [self.seeds[n] for n in self.names])

    def feed(self, path: Path) -> str:
        import datetime as dt

        from elfcost.check import output
        from elfcost.check.gate import PolicyError, evaluate
        from elfcost.check.run import policy_of
        from elfcost.errors import ElfcostError
        from elfcost.report.jsonout import dumps

        try:
            policy = policy_of(str(path))
        except (ElfcostError, PolicyError) as exc:
            return refused(exc, path)
        day = dt.date(2027, 1, 1)
        verdicts = [evaluate(f, policy, baseline={f.path: 4096}, today=day) for f in self.facts]
        dumps(output.check_doc(verdicts))
        output.junit(verdicts)
        output.check_text(verdicts)
        return "ok"


class BaselineChannel(Channel):
    """`check --baseline FILE [--update-baseline]`: read_baseline, the gate, the ratchet."""

    name = "baseline"

    def __init__(self, seeds: dict[str, bytes], work: Path, facts: Sequence[Any]) -> None:
        super().__init__(seeds, work)
        self.facts = facts
        self.parsed = {n: json.loads(d) for n, d in seeds.items()}

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        seed = ch.choice(self.names, "seed")
        if ch.integer(0, 3, "bytes or json"):
            return seed, mutate_json(ch, self.parsed[seed], [f.path for f in self.facts])
        return seed, mutate_bytes(ch, self.seeds[seed], [self.seeds[n] for n in self.names])

    def feed(self, path: Path) -> str:
        from elfcost.check import output
        from elfcost.check.gate import Policy, evaluate
        from elfcost.check.run import read_baseline, write_baseline
        from elfcost.errors import ElfcostError

        try:
            baseline = read_baseline(str(path))
        except ElfcostError as exc:
            return refused(exc, path)
        verdicts = [evaluate(f, Policy(), baseline=baseline) for f in self.facts]
        output.check_text(verdicts)
        write_baseline(str(self.work / "updated.json"), baseline, verdicts)
        return "ok"


class ReportChannel(Channel):
    """`diff OLD NEW` with NEW a saved estimate report: diff_builds, then both renderings."""

    name = "report"

    def __init__(self, seeds: dict[str, bytes], work: Path) -> None:
        super().__init__(seeds, work)
        self.parsed = {n: json.loads(d) for n, d in seeds.items()}
        self.keys = sorted({k for d in self.parsed.values() for p in _nodes(d) for k in p
                            if isinstance(k, str)})  # fmt: skip
        self.old = self.work / "old.json"
        self.old.write_bytes(seeds[self.names[0]])

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        seed = ch.choice(self.names, "seed")
        if ch.integer(0, 3, "bytes or json"):
            return seed, mutate_json(ch, self.parsed[seed], self.keys)
        return seed, mutate_bytes(ch, self.seeds[seed], [self.seeds[n] for n in self.names])

    def feed(self, path: Path) -> str:
        from elfcost.diffing import diff_builds
        from elfcost.errors import ElfcostError
        from elfcost.report import outputs
        from elfcost.resolve.host import Host

        host = Host()
        try:
            doc = diff_builds(str(self.old), str(path), host, host, instances=129)
        except ElfcostError as exc:
            return refused(exc, path)
        outputs.diff(doc, "text")
        outputs.diff(doc, "json")
        return "ok"


class CacheChannel(Channel):
    """A scan cache entry, stored in a pack and indexed: ResultCache.load must give the entry
    or a miss, never raise."""

    name = "cache"
    KEY = "0" * 64  # every mutant is stored under one key, in a cache of its own

    def __init__(self, seeds: dict[str, bytes], work: Path) -> None:
        super().__init__(seeds, work)
        self.headers: dict[str, Any] = {}
        self.bodies: dict[str, Any] = {}
        self.envs: dict[str, str] = {}
        for n, d in seeds.items():
            first, _, rest = d.partition(b"\n")
            self.headers[n] = json.loads(first)
            self.envs[n] = self.headers[n]["env"]
            self.bodies[n] = json.loads(rest) if rest else None
        self.keys = sorted({k for d in self.bodies.values() if d for p in _nodes(d) for k in p
                            if isinstance(k, str)} | set(self.headers[self.names[0]]))  # fmt: skip
        self.hits: Counter[bool] = Counter()

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        seed = ch.choice(self.names, "seed")
        head, body = self.headers[seed], self.bodies[seed]
        part = ch.choice(("body", "body", "header", "bytes"), "part")
        if part == "bytes":
            return seed, mutate_bytes(ch, self.seeds[seed], [self.seeds[n] for n in self.names])
        first, _, rest = self.seeds[seed].partition(b"\n")
        if part == "header":
            first = mutate_json(ch, head, self.keys)
        elif body is not None:
            rest = mutate_json(ch, body, self.keys)
        return seed, first + b"\n" + rest

    def write(self, path: Path, data: bytes) -> None:
        """The mutant as the one entry of a cache directory's pack, indexed."""
        from elfcost.scan.cache import ResultCache

        shutil.rmtree(path, ignore_errors=True)
        cache = ResultCache(str(path))
        cache.put(self.KEY, data)
        cache.close()

    def feed(self, path: Path) -> str:
        from elfcost.documents import EstimateDoc, decode
        from elfcost.resolve.host import Host
        from elfcost.scan.cache import ResultCache

        cache = ResultCache(str(path))
        try:
            entry = cache.load(self.KEY, self.envs[path.name], Host().locate)
        finally:
            cache.close()
        if entry is None:
            return "miss"
        if entry.text is not None:  # what the scan does with a hit (ScanResult.doc)
            decode(entry.text, EstimateDoc, source=str(path))
        return "hit"


class CaptureChannel(Channel):
    """`measure --capture DIR|TAR`: measure(), then the JSON document and the text report."""

    name = "capture"
    FILES_LIMIT = 12  # pagemap ranges mutated by name: the first few of the seed's

    def __init__(self, seeds: dict[str, dict[str, bytes]], work: Path) -> None:  # type: ignore[override]
        super().__init__({n: b"" for n in seeds}, work)
        self.captures = seeds
        self.file_names = {
            n: sorted(f for f in files if not f.startswith("pagemap/"))
            + sorted(f for f in files if f.startswith("pagemap/"))[: self.FILES_LIMIT]
            for n, files in seeds.items()
        }
        self.form: str | None = None

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        seed = ch.choice(self.names, "seed")
        files = mutate_capture(ch, self.captures[seed], self.file_names[seed])
        self.form = ch.choice((None, None, "w:gz", "w"), "form")
        if self.form is not None and ch.integer(0, 3, "tar bytes") == 0:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode=self.form) as tar:
                for name, data in files.items():
                    info = tarfile.TarInfo("./" + name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            raw = buf.getvalue()
            if self.form == "w":
                raw = mutate_tar(ch, raw) if ch.integer(0, 1, "tar-aware") else raw
            raw = mutate_bytes(ch, raw)
            self.form = "raw"
            return seed, raw
        return seed, json.dumps({k: v.hex() for k, v in files.items()}).encode()

    def write(self, path: Path, data: bytes) -> None:
        self.path = path
        if self.form == "raw":
            self.path = path.with_suffix(".tgz")
            self.path.write_bytes(data)
            return
        files = {k: bytes.fromhex(v) for k, v in json.loads(data).items()}
        self.path = write_capture(files, path, self.form)

    def feed(self, path: Path) -> str:
        from elfcost.errors import ElfcostError
        from elfcost.report import jsonout, text
        from elfcost.runtime.measure import measure, to_json

        try:
            (m,) = measure(capture=str(self.path))
        except ElfcostError as exc:
            return refused(exc, self.path)
        jsonout.dumps(to_json(m))
        text.measurement_text(m)
        return "ok"


class ArchiveChannel(Channel):
    """`scan ARCHIVE`: unpack into an empty directory; nothing may be written outside it."""

    name = "archive"
    deadline_s = 10.0

    def mutant(self, ch: Chooser) -> tuple[str, bytes]:
        seed = ch.choice(self.names, "seed")
        data = self.seeds[seed]
        how = ch.choice(("tar", "tar", "tar", "bytes"), "how")
        if how == "bytes":
            return seed, mutate_bytes(ch, data, [self.seeds[n] for n in self.names])
        if seed.endswith(".deb"):
            members = ar_members(data)
            i = next(k for k, (n, _) in enumerate(members) if n.startswith(b"data.tar"))
            name, inner = members[i]
            suffix = ".tar" + name.decode()[len("data.tar") :]
            inner = COMPRESS[suffix](mutate_tar(ch, _decompress(suffix, inner)))
            members[i] = (name, inner)
            if ch.integer(0, 3, "ar header") == 0:
                out = bytearray(ar_archive(members))
                at = ch.choice((8, 8 + 48, 8 + 60, len(out) - len(inner) - 12), "ar field")
                out[at : at + 10] = ch.choice(
                    (b"-1        ", b"9999999999", b"\xff" * 10, b"data.tar.x", b"          "),
                    "ar value",
                )
                return seed, bytes(out)
            return seed, ar_archive(members)
        if seed.endswith(".apk"):  # gzip streams of tar segments: one segment mutated
            segments = self.apk_segments[seed]
            i = ch.integer(0, len(segments) - 1, "segment")
            seg = list(segments)
            seg[i] = mutate_tar(ch, seg[i])
            return seed, b"".join(gzip.compress(s, mtime=0) for s in seg)
        suffix = next(s for s in COMPRESS if seed.endswith(s) and s != ".tar") if not seed.endswith(
            ".tar") else ".tar"  # fmt: skip
        return seed, COMPRESS[suffix](mutate_tar(ch, self.plain[seed]))

    def prepare(self) -> None:
        self.plain = {
            n: _decompress(next(s for s in COMPRESS if n.endswith(s)), d)
            for n, d in self.seeds.items()
            if n.endswith(tuple(COMPRESS))
        }
        self.apk_segments = {
            n: _gzip_members(d) for n, d in self.seeds.items() if n.endswith(".apk")
        }

    def feed(self, path: Path) -> str:
        from elfcost.errors import ElfcostError
        from elfcost.scan.archive import unpack

        box = self.work / "box"
        if box.exists():
            shutil.rmtree(box)
        dest = box / "dest"
        dest.mkdir(parents=True)
        (box / "outside").mkdir()
        try:
            unpack(str(path), str(dest), max_bytes=MAX_ARCHIVE_BYTES)
            outcome = "ok"
        except ElfcostError as exc:
            outcome = refused(exc, path)
        outside = [p for p in box.iterdir() if p.name != "dest"]
        outside += list((box / "outside").iterdir())
        if outside != [box / "outside"]:
            raise CaseFailed(f"written outside the unpack directory: {outside}")
        return outcome


def _gzip_members(data: bytes) -> list[bytes]:
    """The decompressed members of a multi-member gzip file, one by one."""
    import zlib

    out = []
    while data:
        d = zlib.decompressobj(31)
        out.append(d.decompress(data))
        data = d.unused_data
    return out


# -- seeds: made by elfcost and the system's tools ------------------------------------------------


def _run(argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, **kw)


def make_seeds(samples: Path, base: Path) -> dict[str, Channel]:
    """Every channel, its seeds made now from the samples by elfcost's own commands (estimate,
    scan, check --update-baseline), a real process captured with the documented script, and
    archives built by dpkg-deb, tar and gzip."""
    base.mkdir(parents=True, exist_ok=True)
    tree = base / "tree"  # the samples, copied: the cache's entries name these files
    tree.mkdir(exist_ok=True)
    for name in (*SEED_PROGRAMS, *SEED_LIBRARIES):
        shutil.copy(samples / name, tree / name)
    programs = [str(tree / n) for n in SEED_PROGRAMS]

    # estimate --format json, one report per program
    reports = {}
    for p in programs:
        r = _run([*ELFCOST, "estimate", "--format", "json", p])
        assert r.returncode == 0, r.stderr
        reports[Path(p).name + ".json"] = r.stdout.encode()

    # scan: its cache entries
    cache_dir = base / "scan-cache"
    r = _run([*ELFCOST, "scan", "-j", "1", "--cache-dir", str(cache_dir), "--format", "jsonl",
              str(tree)])  # fmt: skip
    assert r.returncode == 0, r.stderr
    from elfcost.scan.cache import ResultCache

    stored = ResultCache(str(cache_dir))
    entries = {f"entry{i}": data for i, (_, data) in enumerate(sorted(stored.entries()))}
    stored.close()
    assert any(b"\n{" in e for e in entries.values()), "no program's estimate in the cache"

    # budgets: the recipe's, memdemo's, and one like the tests' with every table
    budgets = {
        "recipe.toml": (ROOT / "docs" / "recipes" / "elfcost-budget.toml").read_bytes(),
        "memdemo.toml": (ROOT / "tests/data/debpkg/debian/elfcost.toml").read_bytes(),
        "full.toml": FULL_POLICY.encode(),
    }

    # check --update-baseline
    baseline = base / "baseline.json"
    r = _run([*ELFCOST, "check", "--baseline", str(baseline), "--update-baseline", *programs])
    assert r.returncode in (0, 1), r.stderr
    baselines = {"baseline.json": baseline.read_bytes()}

    # facts of the programs, for the gate
    from elfcost.check.run import facts_of
    from elfcost.pipeline import analyse
    from elfcost.resolve.host import Host

    host = Host()
    facts = [facts_of(analyse(p, host), p.lstrip("/")) for p in programs]

    captures = {"sleep": capture_process(base / "cap")}

    archives = build_archives(tree, base / "archives")
    work = base / "work"
    arch = ArchiveChannel(archives, work)
    arch.prepare()
    return {
        "budget": BudgetChannel(budgets, work, facts),
        "baseline": BaselineChannel(baselines, work, facts),
        "report": ReportChannel(reports, work),
        "cache": CacheChannel(entries, work),
        "capture": CaptureChannel(captures, work),
        "archive": arch,
    }


FULL_POLICY = """\
[defaults]
max_private_dirty = "1M"
max_objects = 10
instances = 2
max_fleet = "64M"
no_textrel = true
no_missing = false

[[rule]]
match = "*/trivial*"
max_private_dirty = 8192

[[rule]]
match = "/*copy*"
instances = 129
max_fleet = "17M"

[[waiver]]
match = "*"
limit = "max_private_dirty"
reason = "known: libc start-up"
expires = 2026-12-31

[[waiver]]
match = "*tls*"
limit = "*"
reason = "always"

[baseline]
file = "elfcost-baseline.json"
"""


def capture_process(where: Path) -> dict[str, bytes]:
    """A real process (/bin/sleep, held at idle) captured with the documented script."""
    from elfcost.runtime.launch import Launched
    from elfcost.runtime.measure import CAPTURE_SCRIPT

    if where.exists():
        shutil.rmtree(where)
    with Launched(["/bin/sleep", "100"], at="idle", settle=0.1) as p:
        env = {"P": str(p.pid), "PAGE": str(os.sysconf("SC_PAGE_SIZE")), "D": str(where),
               "PATH": "/usr/bin:/bin"}  # fmt: skip
        subprocess.run(["/bin/sh", "-c", CAPTURE_SCRIPT], env=env, check=True, capture_output=True)
    return {
        str(p.relative_to(where)): p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file()
    }


def build_archives(tree: Path, out: Path) -> dict[str, bytes]:
    """A .deb (dpkg-deb), tar files in each compression (GNU tar) and an Alpine-style .apk
    (two gzip'd tar segments), each installing two programs, a library and a symbolic link."""
    if out.exists():
        shutil.rmtree(out)
    stage = out / "stage"
    (stage / "usr" / "bin").mkdir(parents=True)
    (stage / "usr" / "lib").mkdir(parents=True)
    shutil.copy(tree / "trivial.pie", stage / "usr" / "bin" / "prog")
    shutil.copy(tree / "ownlib.pie", stage / "usr" / "bin" / "ownlib")
    shutil.copy(tree / "libown.so", stage / "usr" / "lib" / "libown.so")
    (stage / "usr" / "bin" / "alias").symlink_to("prog")
    os.link(stage / "usr" / "bin" / "prog", stage / "usr" / "bin" / "hard")
    result: dict[str, bytes] = {}
    for suffix, flag in ((".tar", ""), (".tar.gz", "z"), (".tar.xz", "J"), (".tar.bz2", "j"),
                         (".tar.zst", "--zstd")):  # fmt: skip
        path = out / f"pkg{suffix}"
        argv = ["tar", "-c", "-f", str(path), "-C", str(stage), "."]
        if flag:
            argv.insert(1, flag if flag.startswith("--") else "-" + flag)
        subprocess.run(argv, check=True)
        result[path.name] = path.read_bytes()
    deb = out / "debroot"
    shutil.copytree(stage, deb, symlinks=True)
    (deb / "DEBIAN").mkdir()
    (deb / "DEBIAN" / "control").write_text(
        "Package: fuzzdemo\nVersion: 1.0\nArchitecture: amd64\n"
        "Maintainer: elfcost <elfcost@example.org>\nDescription: fuzzing seed\n"
    )
    for comp in ("gzip", "xz"):
        path = out / f"fuzzdemo-{comp}.deb"
        subprocess.run(["dpkg-deb", "-Z", comp, "--root-owner-group", "--build", str(deb),
                        str(path)], check=True, capture_output=True)  # fmt: skip
        result[path.name] = path.read_bytes()
    plain = result["pkg.tar"]
    heads = tar_headers(plain)
    cut = heads[len(heads) // 2]
    segs = [plain[:cut] + b"\0" * 1024, plain[cut:]]
    result["pkg.apk"] = b"".join(gzip.compress(s, mtime=0) for s in segs)
    return result


def build_memdemo(out: Path) -> dict[str, bytes]:
    """tests/data/debpkg built with dpkg-buildpackage (dh_elfcost from this elfcost, as
    tests/integration/test_debhelper.py builds it): memdemo's and libmemdemo1's .deb, or
    nothing when the Debian build tools are missing or the build fails."""
    tools = ("dpkg-buildpackage", "dh", "fakeroot", "make", "cc", "perl")
    if any(shutil.which(t) is None for t in tools):
        return {}
    if out.exists():
        shutil.rmtree(out)
    tree = out / "memdemo-1.0"
    shutil.copytree(ROOT / "tests" / "data" / "debpkg", tree, symlinks=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["ELFCOST_PYTHON"] = sys.executable
    script = 'eval "$("$ELFCOST_PYTHON" -m elfcost debhelper-env)" && exec "$@"'
    argv = ["sh", "-c", script, "sh", "dpkg-buildpackage", "-us", "-uc", "-b"]
    r = subprocess.run(argv, cwd=tree, env=env, capture_output=True, timeout=600)
    if r.returncode != 0:
        return {}
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.deb"))}


# -- the long run ---------------------------------------------------------------------------------

# Share of the cases per channel in the long run: the cheap channels carry most of them.
WEIGHTS = {"budget": 30, "baseline": 30, "cache": 20, "report": 10, "capture": 6, "archive": 4}


def run_random(
    channels: dict[str, Channel],
    total: int,
    seed: int,
    *,
    stop_at: float | None = None,
    report_every: float = 60.0,
    keep_going: bool = False,
) -> Outcomes:
    """`total` random cases, the channels taking turns by WEIGHTS, until `stop_at` (a
    time.time()) if given. Each case's generator is seeded from (seed, channel, its number in
    the channel), so a failure is replayed alone with `--channel C --replay N`."""
    turns = [c for c in channels for _ in range(WEIGHTS[c])]
    done: Counter[str] = Counter()
    start = last = time.monotonic()
    for k in range(total):
        if stop_at is not None and time.time() > stop_at:
            print(f"stopped at the time limit after {k} cases", flush=True)
            break
        chan = turns[k % len(turns)]
        i = done[chan]
        done[chan] += 1
        rng = random.Random(f"{seed}:{chan}:{i}")
        label = f"--seed {seed} --channel {chan} --replay {i}"
        try:
            channels[chan].case(RandomChooser(rng), label)
        except CaseFailed as exc:
            if not keep_going:
                raise
            sig = failure_signature(exc)
            FAILURES.setdefault(sig, []).append(str(exc)[:300])
            if len(FAILURES[sig]) == 1:
                print(f"FAILURE {sig}\n    {str(exc)[:600]}", flush=True)
        if time.monotonic() - last > report_every:
            last = time.monotonic()
            print(f"{last - start:8.0f} s  {OUTCOMES.summary()}", flush=True)
    return OUTCOMES


FAILURES: dict[str, list[str]] = {}


def failure_signature(exc: BaseException) -> str:
    """The exception's type and the innermost frame of elfcost it came from."""
    import traceback

    cause = exc.__cause__ or exc
    frames = [f for f in traceback.extract_tb(cause.__traceback__) if "/elfcost/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(cause).__name__} at {where}"


def main(argv: Sequence[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="random cases over every channel")
    ap.add_argument("cases", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channel", action="append", choices=sorted(WEIGHTS))
    ap.add_argument("--replay", type=int, help="run only this case of --channel")
    ap.add_argument("--work", default=None, help="directory for seeds and mutants")
    ap.add_argument("--samples", default=str(ROOT / "build" / "samples"))
    ap.add_argument("--memdemo", action="store_true", help="tests/data/debpkg's .debs too")
    ap.add_argument("--keep-going", action="store_true", help="list failures, do not stop")
    ap.add_argument("--minutes", type=float, help="stop after this long, whatever is left")
    args = ap.parse_args(argv)
    import tempfile

    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # a write per case: memory, not disk
    work = Path(args.work or tempfile.mkdtemp(prefix="elfcost-channels-", dir=shm))
    try:
        return _run_main(args, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def _run_main(args: Any, work: Path) -> int:
    channels = make_seeds(Path(args.samples), work)
    if args.memdemo:
        debs = build_memdemo(work / "memdemo")
        assert debs, "tests/data/debpkg could not be built"
        archives = ArchiveChannel(debs, work)
        archives.prepare()
        channels["archive"] = archives
        print(f"archive seeds: {', '.join(debs)}", flush=True)
    if args.channel:
        channels = {c: channels[c] for c in args.channel}
    t0 = time.monotonic()
    if args.replay is not None:
        (chan,) = channels
        rng = random.Random(f"{args.seed}:{chan}:{args.replay}")
        print(channels[chan].case(RandomChooser(rng), "replay"))
        return 0
    stop_at = time.time() + 60 * args.minutes if args.minutes else None
    run_random(channels, args.cases, args.seed, stop_at=stop_at, keep_going=args.keep_going)
    for sig, cases in FAILURES.items():
        print(f"{len(cases)} x {sig}: {cases[0]}")
    secs, label = OUTCOMES.slowest
    print(f"done in {time.monotonic() - t0:.0f} s: {sum(OUTCOMES.counts.values())} cases survived")
    print(OUTCOMES.summary())
    print(f"slowest {secs:.2f} s ({label})")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
