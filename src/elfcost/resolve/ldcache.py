"""Parse /etc/ld.so.cache (pure: bytes in, entries out).

Layout from glibc `sysdeps/generic/dl-cache.h` (struct cache_file_new, file_entry_new,
cache_extension) and the lookup rules of `elf/dl-cache.c search_cache`: entries are keyed by
soname; an entry whose hwcap word has bit 62 set (DL_CACHE_HWCAP_EXTENSION) lives in a
glibc-hwcaps subdirectory named by the glibc-hwcaps extension section.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import msgspec

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
_HWCAP_EXTENSION = 1 << 62
_EXTENSION_MAGIC = 0xEAA42174
_TAG_GLIBC_HWCAPS = 1


class CacheFormatError(Exception):
    pass


class CacheEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One library entry of /etc/ld.so.cache."""

    soname: str
    path: str
    flags: int
    hwcaps: str | None  # glibc-hwcaps subdirectory name ("x86-64-v3"), None for a plain entry
    legacy_hwcap: int  # pre-2.33 hwcap bits; non-zero entries are not used (see lookup)


# (path, flags, hwcaps, legacy_hwcap) of one entry: CacheEntry's fields but the soname.
RawEntry = tuple[str, int, str | None, int]


class LdCache(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed /etc/ld.so.cache: its entries by soname.

    Entries are kept as tuples and made CacheEntry records when asked for: a cache holds about
    a thousand, a program's resolution looks up a few.
    """

    raw: Mapping[str, tuple[RawEntry, ...]]  # by soname, in file order

    def entries(self, soname: str) -> tuple[CacheEntry, ...]:
        return tuple(
            CacheEntry(soname=soname, path=path, flags=flags, hwcaps=sub, legacy_hwcap=legacy)
            for path, flags, sub, legacy in self.raw.get(soname, ())
        )

    def lookup(
        self, soname: str, flags: tuple[int, ...], hwcaps: tuple[str, ...]
    ) -> CacheEntry | None:
        """The entry glibc would use: the best supported glibc-hwcaps entry, else a plain one."""
        best: CacheEntry | None = None
        best_rank = len(hwcaps) + 1
        for e in self.entries(soname):
            if flags and e.flags not in flags:
                continue  # _dl_cache_check_flags: another ABI's library
            if e.legacy_hwcap:
                continue  # legacy hwcaps subdirectories (removed in glibc 2.37)
            if e.hwcaps is None:
                rank = len(hwcaps)
            elif e.hwcaps in hwcaps:
                rank = hwcaps.index(e.hwcaps)
            else:
                continue
            if rank < best_rank:
                best, best_rank = e, rank
        return best


def parse(data: bytes) -> LdCache:
    """Parse a cache in the new format, alone or after an old-format block.

    Raises CacheFormatError for anything malformed (a sysroot's cache is untrusted input).
    """
    try:
        return _parse(data)
    except struct.error as exc:
        raise CacheFormatError(str(exc)) from None


def _parse(data: bytes) -> LdCache:
    start = 0
    if data.startswith(OLD_MAGIC):
        if len(data) < 16:
            raise CacheFormatError("truncated old-format header")
        (nlibs,) = struct.unpack_from("<I", data, 12)
        start = 16 + nlibs * 12
        start = (start + 7) & ~7  # ALIGN_CACHE
        if not data.startswith(NEW_MAGIC, start):
            raise CacheFormatError("old-format cache without the new format: not supported")
    elif not data.startswith(NEW_MAGIC):
        raise CacheFormatError("not an ld.so.cache")
    if len(data) < start + 48:
        raise CacheFormatError("truncated header")
    endian_flag = data[start + 28]
    e = ">" if endian_flag == 3 else "<"
    nlibs, _len_strings = struct.unpack_from(e + "II", data, start + 20)
    (ext_offset,) = struct.unpack_from(e + "I", data, start + 32)
    entries_end = start + 48 + nlibs * 24
    if entries_end > len(data):
        raise CacheFormatError("entries beyond the end of the file")
    base = start  # string offsets are relative to the new header

    def string(offset: int) -> str:
        pos = base + offset
        if not 0 <= pos < len(data):
            raise CacheFormatError(f"string offset {offset:#x} out of range")
        end = data.find(b"\0", pos)
        if end < 0:
            raise CacheFormatError("unterminated string")
        return data[pos:end].decode("utf-8", "surrogateescape")

    hwcap_names = _hwcap_names(data, base, ext_offset, e, string)
    by_name: dict[str, list[RawEntry]] = {}
    table = data[start + 48 : entries_end]
    for flags, key, value, _osv, hwcap in struct.iter_unpack(e + "iIIIQ", table):
        sub: str | None = None
        legacy = 0
        if hwcap & _HWCAP_EXTENSION:
            index = hwcap & 0xFFFFFFFF
            sub = hwcap_names[index] if index < len(hwcap_names) else f"#{index}"
        else:
            legacy = hwcap
        by_name.setdefault(string(key), []).append((string(value), flags, sub, legacy))
    return LdCache(raw={k: tuple(v) for k, v in by_name.items()})


def _hwcap_names(data: bytes, base: int, ext_offset: int, e: str, string: object) -> list[str]:
    if not ext_offset or base + ext_offset + 8 > len(data):
        return []
    magic, count = struct.unpack_from(e + "II", data, base + ext_offset)
    if magic != _EXTENSION_MAGIC:
        return []
    names: list[str] = []
    for i in range(min(count, 64)):
        pos = base + ext_offset + 8 + i * 16
        if pos + 16 > len(data):
            break
        tag, _flags, offset, size = struct.unpack_from(e + "IIII", data, pos)
        if tag != _TAG_GLIBC_HWCAPS:
            continue
        for j in range(min(size // 4, 1024)):
            (str_off,) = struct.unpack_from(e + "I", data, base + offset + 4 * j)
            names.append(string(str_off))  # type: ignore[operator]
    return names
