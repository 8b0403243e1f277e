"""What every part of the HTML report uses: escaping and the words for sizes and names."""

from __future__ import annotations

import html
import os

from elfcost.report.units import size


def esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def size_text(n: int) -> str:
    """Bytes for people: KiB below 10 MiB (pages are KiB multiples), then MiB, then GiB."""
    return size(n)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def basename(path: str) -> str:
    return os.path.basename(path.rstrip("/")) or path
