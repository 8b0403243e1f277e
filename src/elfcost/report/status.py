"""A run's status over many inputs: the exit status so far, each bad input's one line (past the
progress bar while one is drawn) and, with a JSON output, its elfcost.error/1 document."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from elfcost.errors import ElfcostError, Exit, OutputError, UsageError
from elfcost.report.streams import error_line, quiet_stdout

if TYPE_CHECKING:
    from elfcost.documents import ErrorDoc
    from elfcost.report.progress import Bar


class Status:
    """Per run: whether to show tracebacks, the exit status so far, and the progress bar that
    error lines go past while it is drawn."""

    # What per_input lets through: the run's own ends, not an input's error.
    # A UsageError (an option that does not fit this input) ends the run: exit 2.
    passes: tuple[type[BaseException], ...] = (BrokenPipeError, OutputError, UsageError)

    def __init__(self, traceback: bool = False) -> None:
        self.traceback = traceback
        self.status = Exit.OK
        self.bar: Bar | None = None
        # With a JSON output, each input error is also an elfcost.error/1 document, kept here
        # until the command writes it in the input's place (take_errors).
        self.error_docs: list[ErrorDoc] | None = None

    def json_errors(self, on: bool = True) -> None:
        """Keep an elfcost.error/1 document for each input error from now on (if `on`)."""
        if on:
            self.error_docs = []

    def take_error_docs(self) -> list[ErrorDoc]:
        """The error documents kept since the last call."""
        docs, self.error_docs = self.error_docs or [], ([] if self.error_docs is not None else None)
        return docs

    def take_errors(self, *, pretty: bool = False) -> list[str]:
        """The error documents kept since the last call, as JSON text lines."""
        from elfcost.documents import encode

        return [encode(d, pretty=pretty) + "\n" for d in self.take_error_docs()]

    def fail(self, code: Exit = Exit.CHECK_FAILED) -> None:
        self.status = max(self.status, code)  # 3 (an input error) wins over 1

    def error(
        self,
        message: object,
        kind: str = "error",
        path: str | None = None,
        code: Exit = Exit.INPUT_ERROR,
    ) -> None:
        """An input that could not be analysed: one line, and exit status 3, or `code` (and,
        with a JSON output, an elfcost.error/1 document for it)."""
        line = error_line(message, kind)
        if self.bar is None:
            print(line, file=sys.stderr, flush=True)
        else:
            self.bar.message(line)
        self.fail(code)
        if self.error_docs is not None:
            from elfcost.documents import ErrorDoc

            self.error_docs.append(ErrorDoc(path=path, message=str(message), exit_code=int(code)))

    def output_failed(self, exc: OutputError) -> None:
        """The report could not be written: one line, exit status 4. What is left of it for
        stdout is dropped, so that the last flush cannot fail again."""
        print(error_line(exc), file=sys.stderr, flush=True)
        self.fail(Exit.OUTPUT_ERROR)
        if exc.path == "stdout":
            quiet_stdout()

    @contextmanager
    def per_input(self) -> Iterator[None]:
        """One bad input is reported in one line; the others go on."""
        try:
            yield
        except self.passes:
            raise
        except Exception as exc:
            if self.traceback:
                raise
            if isinstance(exc, ElfcostError):
                self.error(exc, path=exc.path)
            else:  # a bug in elfcost: still one line, still the next input
                self.error(
                    f"{type(exc).__name__}: {exc} (run with --traceback and report it)",
                    "internal error",
                )

    @contextmanager
    def progress(self, label: str, *, show: bool = True) -> Iterator[Bar]:
        """A progress bar on a terminal's stderr (report/progress.py) while the block runs."""
        from elfcost.report.progress import progress

        with progress(label, show=show) as self.bar:
            try:
                yield self.bar
            finally:
                self.bar = None
