"""Parse /etc/ld.so.cache (pure: bytes in, entries out).

Layout from glibc `sysdeps/generic/dl-cache.h` (struct cache_file_new, file_entry_new,
cache_extension) and the lookup rules of `elf/dl-cache.c search_cache`: entries are keyed by
soname; an entry whose hwcap word is DL_CACHE_HWCAP_EXTENSION (bit 62) apart from its ISA level
bits (32..41) and its low 32 bits (`dl_cache_hwcap_extension`) lives in a glibc-hwcaps
subdirectory, whose name the glibc-hwcaps extension section gives by the low 32 bits. ldconfig
(elf/cache.c) writes those entries before the plain one of the same soname.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import msgspec

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
_HWCAP_EXTENSION = 1 << 62
_ISA_LEVEL_MASK = (1 << 10) - 1  # DL_CACHE_HWCAP_ISA_LEVEL_MASK, in the upper 32 bits
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
    # The ISA level ldconfig read from the library's GNU_PROPERTY_X86_ISA_1_NEEDED (0 baseline,
    # 1 x86-64-v2, 2 x86-64-v3, 3 x86-64-v4), for glibc-hwcaps entries; 0 elsewhere.
    isa_level: int = 0


# (path, flags, hwcaps, legacy_hwcap, isa_level) of one entry: CacheEntry's fields but the
# soname.
RawEntry = tuple[str, int, str | None, int, int]


class LdCache(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed /etc/ld.so.cache: its entries by soname.

    Entries are kept as tuples and made CacheEntry records when asked for: a cache holds about
    a thousand, a program's resolution looks up a few.
    """

    raw: Mapping[str, tuple[RawEntry, ...]]  # by soname, in file order

    def entries(self, soname: str) -> tuple[CacheEntry, ...]:
        return tuple(
            CacheEntry(
                soname=soname,
                path=path,
                flags=flags,
                hwcaps=sub,
                legacy_hwcap=legacy,
                isa_level=isa,
            )
            for path, flags, sub, legacy, isa in self.raw.get(soname, ())
        )

    def lookup(
        self,
        soname: str,
        flags: tuple[int, ...],
        hwcaps: tuple[str, ...],
        isa_level: int | None = None,
    ) -> CacheEntry | None:
        """The entry glibc would use: the best supported glibc-hwcaps entry, else a plain one.

        `hwcaps`: the glibc-hwcaps subdirectories the CPU supports, best first (an entry's
        priority is its place there: elf/dl-hwcaps.c _dl_hwcaps_priorities, search_cache's
        glibc_hwcaps_priority; one not listed is never used). `isa_level`: on x86, the CPU's
        ISA level; a glibc-hwcaps entry needing more is skipped
        (sysdeps/x86/dl-isa-level.h dl_cache_hwcap_isa_level_compatible).
        """
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
                if isa_level is not None and e.isa_level > isa_level:
                    continue
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
        legacy = isa = 0
        if (hwcap >> 32) & ~_ISA_LEVEL_MASK == _HWCAP_EXTENSION >> 32:
            # sysdeps/generic/dl-cache.h dl_cache_hwcap_extension
            index = hwcap & 0xFFFFFFFF
            sub = hwcap_names[index] if index < len(hwcap_names) else f"#{index}"
            isa = (hwcap >> 32) & _ISA_LEVEL_MASK
        else:
            legacy = hwcap
        by_name.setdefault(string(key), []).append((string(value), flags, sub, legacy, isa))
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
