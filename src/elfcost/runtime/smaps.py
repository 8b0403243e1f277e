"""Parse /proc/PID/smaps and /proc/PID/smaps_rollup text (pure: str in, records out).

Format (fs/proc/task_mmu.c): `show_map_vma` prints the header line
`start-end perms offset major:minor inode` and, after padding to a fixed column, the pathname;
`show_smap` then prints one `Name: value kB` line per counter (`__show_smap`), a few unit-less
lines (`THPeligible`, `ProtectionKey`) and `VmFlags: rd wr mr ...` last. Counters are printed in
kB; they are converted to bytes here. The field list grows with kernel versions (Pss_Dirty in
5.19, KSM in 6.1, ...), so unknown fields are kept rather than rejected and missing ones are 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from elfcost.errors import MeasurementError
from elfcost.runtime.records import SMAPS_FIELDS, SmapsEntry

# The header: hex addresses of any width (a 32-bit process prints 8 digits), perms, offset,
# dev, inode, then the padding and an optional pathname that may itself contain spaces.
_HEADER = re.compile(
    r"(?P<start>[0-9a-f]+)-(?P<end>[0-9a-f]+) (?P<perms>[-rwxsp]{4}) (?P<offset>[0-9a-f]+) "
    r"(?P<dev>[0-9a-f]+:[0-9a-f]+) (?P<inode>\d+)(?: +(?P<path>.*))?"
)


def parse_smaps(text: str, *, source: str = "smaps") -> tuple[SmapsEntry, ...]:
    """Every mapping in `text`, in file order, with its counters in bytes.

    `source` names the input in errors. Raises MeasurementError on a line that is neither a
    mapping header nor a `Name: value` field, or a field before the first header, and on a
    mapping without the `VmFlags` line that every other one has: the kernel prints it last in
    each (since Linux 3.8), so a file cut short ends in a mapping without it.
    """
    entries = tuple(_entry(header, body, source) for header, body in _blocks(text, source))
    flagged = [bool(e.vm_flags) for e in entries]
    if any(flagged) and not all(flagged):
        cut = entries[flagged.index(False)]
        raise MeasurementError(
            source,
            f"mapping {cut.start:x}-{cut.end:x}",
            "no VmFlags line where every other mapping has one: the file is cut short",
        )
    return entries


def parse_rollup(text: str, *, source: str = "smaps_rollup") -> dict[str, int]:
    """The counters of smaps_rollup (`show_smaps_rollup`) by their smaps names, kB in bytes.

    The `[rollup]` header line is skipped; unit-less fields keep their printed integer value.
    """
    out: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or _HEADER.fullmatch(line):
            continue
        field = _field(line)
        if field is None:
            raise MeasurementError(source, f"line {lineno}", f"not a field: {line!r}")
        value = _value(field[1])
        if isinstance(value, int):
            out[field[0]] = value
    return out


_HEX_START = frozenset("0123456789abcdef")  # a header; every field name starts upper-case


def _blocks(text: str, source: str) -> Iterator[tuple[tuple[int, re.Match[str]], list[str]]]:
    header: tuple[int, re.Match[str]] | None = None
    body: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _HEADER.fullmatch(line) if line[:1] in _HEX_START else None
        if m is not None:
            if header is not None:
                yield header, body
            header, body = (lineno, m), []
        elif not line.strip():
            continue
        elif header is None:
            raise MeasurementError(source, f"line {lineno}", f"field before a mapping: {line!r}")
        else:
            body.append(line)
    if header is not None:
        yield header, body


def _value(text: str) -> int | str:
    text = text.strip()
    if text.endswith(" kB") and text[:-3].isdigit():
        return int(text[:-3]) * 1024
    if text.isdigit():
        return int(text)
    return text


def _field(line: str) -> tuple[str, str] | None:
    name, colon, value = line.partition(":")
    if not colon or not name.isidentifier():
        return None
    return name, value


def _entry(header: tuple[int, re.Match[str]], body: list[str], source: str) -> SmapsEntry:
    lineno, h = header
    known: dict[str, int] = {}
    extra: list[tuple[str, int | str]] = []
    vm_flags: tuple[str, ...] = ()
    for i, line in enumerate(body, lineno + 1):
        field = _field(line)
        if field is None:
            raise MeasurementError(source, f"line {i}", f"not a field: {line!r}")
        name, text = field
        if name == "VmFlags":
            vm_flags = tuple(text.split())
            continue
        value = _value(text)
        attr = SMAPS_FIELDS.get(name)
        if attr is not None and isinstance(value, int):
            known[attr] = value
        else:
            extra.append((name, value))
    start, end = int(h["start"], 16), int(h["end"], 16)
    if end < start:
        raise MeasurementError(source, f"line {lineno}", f"mapping ends before it starts: {h[0]}")
    get = known.get
    return SmapsEntry(
        start=start,
        end=end,
        perms=h["perms"],
        offset=int(h["offset"], 16),
        dev=h["dev"],
        inode=int(h["inode"]),
        pathname=h["path"] or "",
        size=get("size", end - start),
        kernel_page_size=get("kernel_page_size", 0),
        mmu_page_size=get("mmu_page_size", 0),
        rss=get("rss", 0),
        pss=get("pss", 0),
        pss_dirty=get("pss_dirty", 0),
        shared_clean=get("shared_clean", 0),
        shared_dirty=get("shared_dirty", 0),
        private_clean=get("private_clean", 0),
        private_dirty=get("private_dirty", 0),
        referenced=get("referenced", 0),
        anonymous=get("anonymous", 0),
        anon_huge_pages=get("anon_huge_pages", 0),
        swap=get("swap", 0),
        swap_pss=get("swap_pss", 0),
        locked=get("locked", 0),
        vm_flags=vm_flags,
        extra=tuple(extra),
    )
