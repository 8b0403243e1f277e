"""Tar streams read with what they may cost bounded: package archives (scan/archive.py) and
captures (runtime/capture.py) are tar files from anywhere.

tarfile reads two things before its caller can look at a member: a pax extended header's or a
GNU long name's data, whole, at the size its header claims (a 109 KB .tar.zst claiming 3 GiB
took 3.2 GB); and, with ignore_zeros (an Alpine .apk's tar segments follow each other's
end-of-archive blocks), every block that is not a header, skipped 512 bytes at a time (16 GiB
of zeros in a 568 KB file: minutes). Both are bounded here; past a bound the stream is
refused with TarRefused.
"""

from __future__ import annotations

import tarfile
from typing import Any

# A pax header or GNU long name's data: a path, a link target, extended attributes (an SELinux
# label, an ACL). Kilobytes in practice.
MAX_EXTENDED_HEADER = 1 << 20
# Blocks that are not a member's header a read may skip (ignore_zeros): the end-of-archive
# blocks and record padding between an .apk's segments, a few dozen.
MAX_SKIPPED_BLOCKS = 1 << 16
# tarfile's member types whose data is read into memory as header data (tarfile.py
# TarInfo._proc_member: _proc_gnulong, _proc_pax)
_HEADER_DATA = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class TarRefused(Exception):
    """A tar stream refused for what reading it would cost. (Not a tarfile.ReadError:
    tarfile.open in "r:*" mode takes that for "another compression" and tries the next.)"""


class _Info(tarfile.TarInfo):
    def _proc_member(self, tarfile: Any) -> Any:
        if self.type in _HEADER_DATA and self.size > MAX_EXTENDED_HEADER:
            what = "pax extended header" if self.type not in _HEADER_DATA[:2] else "long name"
            raise TarRefused(
                f"a {what} of {self.size:,} bytes at 0x{self.offset:x} (more than "
                f"{MAX_EXTENDED_HEADER:,}): refused"
            )
        return super()._proc_member(tarfile)  # type: ignore[misc]  # typeshed leaves it out


class BoundedTar(tarfile.TarFile):
    """TarFile with both bounds: open it as TarFile (BoundedTar.open(...))."""

    tarinfo = _Info
    skipped_blocks = 0

    def _dbg(self, level: int, msg: str) -> None:
        # TarFile.next reports each block it skips (ignore_zeros: a zero block, a block that
        # is not a header) through _dbg at level 2, its offset first ("0x...: why").
        if level == 2 and msg.startswith("0x"):
            self.skipped_blocks += 1
            if self.skipped_blocks > MAX_SKIPPED_BLOCKS:
                raise TarRefused(
                    f"more than {MAX_SKIPPED_BLOCKS} blocks that are no member header "
                    f"(at {msg.split(':', 1)[0]}): refused"
                )
        super()._dbg(level, msg)  # type: ignore[misc]  # typeshed leaves it out
