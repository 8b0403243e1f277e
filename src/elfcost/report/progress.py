"""A progress bar on standard error for work over many inputs (scan now; check and validate
over many binaries can use it alike).

    with progress("scanning") as bar:
        for done, path in enumerate(paths, 1):
            ...
            bar.update(done, len(paths))
            bar.message(f"elfcost: error: {path}: ...")  # a line that stays

The bar is drawn only when standard error is a terminal (rich's Progress, erased when the work
ends); elsewhere nothing is drawn and a message is just a line on standard error, so a log or a
pipe gets exactly what it got without a bar. The bar is redrawn from `update` itself, no more
than ten times a second, rather than by rich's refresh thread: a scan with no extra thread
can fork its workers (scan/engine.py `mp_context`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

_REDRAW_EVERY = 0.1  # seconds


class Bar:
    """What the work reports to: how far it has got, and lines that must stay."""

    def __init__(self, stream: TextIO, label: str, total: int | None, *, show: bool) -> None:
        self._stream = stream
        self._rich: Progress | None = None
        self._last = 0.0
        if show and stream.isatty():
            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                console=Console(file=stream, highlight=False, markup=False, emoji=False),
                auto_refresh=False,
                transient=True,
                # Output goes past the bar only through message(): nothing replaces sys.stdout.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._rich.add_task(label, total=total)

    def update(self, done: int, total: int | None = None) -> None:
        """`done` of `total` inputs (the total may first be known here)."""
        if self._rich is None:
            return
        self._rich.update(self._task, completed=done, total=total)
        now = time.monotonic()
        if (total is not None and done >= total) or now - self._last >= _REDRAW_EVERY:
            self._last = now
            self._rich.refresh()

    def message(self, text: str) -> None:
        """A line printed above the bar (or just printed, when there is no bar)."""
        if self._rich is None:
            self._stream.write(text + "\n")
            self._stream.flush()
        else:
            self._rich.console.print(text, soft_wrap=True)

    def _start(self) -> None:
        if self._rich is not None:
            self._rich.start()

    def _stop(self) -> None:
        if self._rich is not None:
            self._rich.stop()


@contextmanager
def progress(
    label: str, total: int | None = None, *, show: bool = True, stream: TextIO | None = None
) -> Iterator[Bar]:
    """A bar labelled `label` on `stream` (standard error) while the block runs; `show=False`
    keeps it off even on a terminal (when the results themselves go to that terminal)."""
    bar = Bar(stream if stream is not None else sys.stderr, label, total, show=show)
    bar._start()
    try:
        yield bar
    finally:
        bar._stop()
