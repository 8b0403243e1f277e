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
_FIELD = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*):\s*(?P<value>.*)")
_KB = re.compile(r"(?P<n>\d+) kB")


def parse_smaps(text: str, *, source: str = "smaps") -> tuple[SmapsEntry, ...]:
    """Every mapping in `text`, in file order, with its counters in bytes.

    `source` names the input in errors. Raises MeasurementError on a line that is neither a
    mapping header nor a `Name: value` field, or a field before the first header.
    """
    return tuple(_entry(header, body, source) for header, body in _blocks(text, source))


def parse_rollup(text: str, *, source: str = "smaps_rollup") -> dict[str, int]:
    """The counters of smaps_rollup (`show_smaps_rollup`) by their smaps names, kB in bytes.

    The `[rollup]` header line is skipped; unit-less fields keep their printed integer value.
    """
    out: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or _HEADER.fullmatch(line):
            continue
        m = _FIELD.fullmatch(line.rstrip())
        if m is None:
            raise MeasurementError(source, f"line {lineno}", f"not a field: {line!r}")
        value = _value(m["value"])
        if isinstance(value, int):
            out[m["name"]] = value
    return out


def _blocks(text: str, source: str) -> Iterator[tuple[tuple[int, re.Match[str]], list[str]]]:
    header: tuple[int, re.Match[str]] | None = None
    body: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _HEADER.fullmatch(line)
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
    kb = _KB.fullmatch(text)
    if kb is not None:
        return int(kb["n"]) * 1024
    try:
        return int(text)
    except ValueError:
        return text


def _entry(header: tuple[int, re.Match[str]], body: list[str], source: str) -> SmapsEntry:
    lineno, h = header
    known: dict[str, int] = {}
    extra: list[tuple[str, int | str]] = []
    vm_flags: tuple[str, ...] = ()
    for i, line in enumerate(body, lineno + 1):
        m = _FIELD.fullmatch(line.rstrip())
        if m is None:
            raise MeasurementError(source, f"line {i}", f"not a field: {line!r}")
        name = m["name"]
        if name == "VmFlags":
            vm_flags = tuple(m["value"].split())
            continue
        value = _value(m["value"])
        attr = SMAPS_FIELDS.get(name)
        if attr is not None and isinstance(value, int):
            known[attr] = value
        else:
            extra.append((name, value))
    start, end = int(h["start"], 16), int(h["end"], 16)
    if end < start:
        raise MeasurementError(source, f"line {lineno}", f"mapping ends before it starts: {h[0]}")
    return SmapsEntry(
        start=start,
        end=end,
        perms=h["perms"],
        offset=int(h["offset"], 16),
        dev=h["dev"],
        inode=int(h["inode"]),
        pathname=h["path"] or "",
        size=known.get("size", end - start),
        kernel_page_size=known.get("kernel_page_size", 0),
        mmu_page_size=known.get("mmu_page_size", 0),
        rss=known.get("rss", 0),
        pss=known.get("pss", 0),
        pss_dirty=known.get("pss_dirty", 0),
        shared_clean=known.get("shared_clean", 0),
        shared_dirty=known.get("shared_dirty", 0),
        private_clean=known.get("private_clean", 0),
        private_dirty=known.get("private_dirty", 0),
        referenced=known.get("referenced", 0),
        anonymous=known.get("anonymous", 0),
        anon_huge_pages=known.get("anon_huge_pages", 0),
        swap=known.get("swap", 0),
        swap_pss=known.get("swap_pss", 0),
        locked=known.get("locked", 0),
        vm_flags=vm_flags,
        extra=tuple(extra),
    )
