"""A one-line progress counter on a terminal's standard error, rewritten in place."""

from __future__ import annotations

import time
from typing import TextIO

_CLEAR = "\r\x1b[2K"  # carriage return, then ECMA-48 EL 2: erase the whole line


class Progress:
    """`label done/total`, redrawn at most ten times a second; messages go above it."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._last = 0.0
        self._shown = ""

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        pct = f" {100 * done // total}%" if total else ""
        self._shown = f"{self._label} {done}/{total}{pct}"
        self._stream.write(_CLEAR + self._shown)
        self._stream.flush()

    def message(self, text: str) -> None:
        """A line that stays: printed where the counter was, the counter redrawn below it."""
        self._stream.write(_CLEAR + text + "\n" + self._shown)
        self._stream.flush()

    def close(self) -> None:
        self._stream.write(_CLEAR)
        self._stream.flush()
