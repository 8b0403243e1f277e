"""printf format strings with a floating-point conversion in an object's read-only data.

Importing the printf family says a program may format; it does not say it formats a double,
which is what makes musl's vfprintf deep (src/stdio/vfprintf.c fmt_fp: a multiprecision array
of about 7 KiB on the stack). A format string such as "%.3f" or "%g" in the same object's
.rodata is the evidence the cost model looks for (cost/aftermain.py): the compiler keeps a
literal format where the call passes it.

Only conversions that strftime and the other %-languages do not share are taken: f and g with
any flags, width and precision, and e only with a precision ("%e" alone is strftime's day of
the month).
"""

from __future__ import annotations

import os
import re

from elfcost.model import Dso

# C11 7.21.6.1: flags, width, precision, the L length modifier, then the conversion. The
# pattern starts with a literal so the search skips ahead quickly; what it cannot say cheaply
# is checked on each hit (_FloatHit): not after another % ("%%5.1f" is literal text), not
# followed by a letter or digit ("%fs base"), and e only with a precision.
_FLOAT = re.compile(rb"%[-+ #0]*(?:\d+|\*)?(\.(?:\d+|\*)?)?L?[fFgGeE]")
# One whole printf directive (with glibc's %m and positional arguments), to check that every %
# of a candidate string is one: "%p%t%g%t%m%t%f" (a locale's name format) is not printf's.
_DIRECTIVE = re.compile(
    rb"%(?:%|(?:\d+\$)?[-+ #0'I]*(?:\d+|\*(?:\d+\$)?)?(?:\.(?:\d+|\*(?:\d+\$)?)?)?"
    rb"(?:hh|h|ll|l|L|j|z|t|q)?[diouxXfFeEgGaAcspnm])"
)
_TEXT = re.compile(rb"[\t\n\r\x20-\x7e]*")
_SHF_ALLOC = 0x2
_SHF_WRITE = 0x1
_SHF_EXECINSTR = 0x4
SHT_PROGBITS = 1
# The read-only data searched, at most: a .rodata larger than this (some libraries carry tens of
# MiB of tables) is searched in its first part only, where compilers put merged strings first.
MAX_RODATA_BYTES = 16 << 20


def float_format(dso: Dso, fd: int) -> str | None:
    """The first printf format with a floating conversion in `dso`'s read-only data sections
    (allocated, not writable, not code: .rodata and its kin), as text; None if there is none."""
    budget = MAX_RODATA_BYTES
    file_size = os.fstat(fd).st_size
    for s in dso.sections:
        if s.sh_type != SHT_PROGBITS or budget <= 0:
            continue
        if s.flags & (_SHF_ALLOC | _SHF_WRITE | _SHF_EXECINSTR) != _SHF_ALLOC:
            continue
        if not s.name.startswith(".rodata") or s.offset >= file_size:
            continue  # section headers are not needed to load: one may point anywhere
        data = os.pread(fd, min(s.size, budget, file_size - s.offset), s.offset)
        budget -= len(data)
        for m in _FLOAT.finditer(data):
            if not _float_hit(data, m):
                continue
            start = data.rfind(b"\0", 0, m.start()) + 1
            end = data.find(b"\0", m.end())
            text = data[start : end if end >= 0 else len(data)]
            if _is_printf_format(text):
                return text[:80].decode("ascii")
    return None


def _float_hit(data: bytes, m: re.Match[bytes]) -> bool:
    """Whether a match of _FLOAT is a floating conversion (see there)."""
    at, end = m.start(), m.end()
    if at and data[at - 1] == 0x25:  # "%%f"
        return False
    if data[end : end + 1].isalnum():  # "%fs" (ASCII letters and digits only)
        return False
    return data[end - 1] not in b"eE" or (m.group(1) is not None and len(m.group(1)) > 1)


def _is_printf_format(text: bytes) -> bool:
    """Printable text in which every % starts a whole printf directive."""
    if not _TEXT.fullmatch(text):
        return False
    at = text.find(b"%")
    while at >= 0:
        m = _DIRECTIVE.match(text, at)
        if m is None:
            return False
        at = text.find(b"%", m.end())
    return True
