"""Where reports go: standard output, whose write errors are one line naming it (exit 4), or
-o FILE; and the one-line form of an error message, whatever the names in it hold."""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Sequence

from elfcost.errors import OutputError


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Stdout(io.TextIOWrapper):
    """stdout, whose write errors are OutputError naming it (a full disk: one line, exit 4),
    except a closed pipe's, which stays BrokenPipeError (quiet, the status kept)."""

    def write(self, s: str) -> int:
        try:
            return super().write(s)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _stdout_error(exc) from None

    def flush(self) -> None:
        try:
            super().flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _stdout_error(exc) from None


def _stdout_error(exc: OSError) -> OutputError:
    return OutputError("stdout", "writing the report", exc.strerror or str(exc))


def install_stdout() -> None:
    """Make sys.stdout a Stdout on the same file descriptor (the `elfcost` script's)."""
    out = sys.stdout
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    out.flush()
    sys.stdout = Stdout(
        open(fd, "wb", closefd=False),  # noqa: SIM115  # lives as long as the process
        encoding=out.encoding,
        errors="surrogateescape",
        line_buffering=getattr(out, "line_buffering", False),
    )


def error_line(message: object, kind: str = "error") -> str:
    """`elfcost: KIND: MESSAGE` as one line of text, whatever the names in it hold."""
    return f"elfcost: {kind}: {escaped(str(message))}"


def escaped(text: str) -> str:
    """`text` with what would break the line or the terminal written as backslash escapes: a
    newline or another control character (\\n, \\x1b), a line separator (\\u2028), and a
    byte of a name that is not UTF-8 (kept as a lone surrogate, os.fsdecode) as that byte
    (\\xff). Printable text, in any script, is left as it is."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= o <= 0xDCFF:  # surrogateescape's stand-in for the byte o - 0xDC00
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1] if o > 0xFF or ch in "\t\n\r" else f"\\x{o:02x}")
    return "".join(out)


def emit(parts: Sequence[str], output: str | None) -> None:
    """The output to stdout (flushed as it goes, so a closed pipe is found while the command
    runs), or to -o FILE."""
    if output is None:
        for p in parts:
            sys.stdout.write(p)
            sys.stdout.flush()
        return
    try:
        # Opened without blocking: a FIFO no process reads is refused (ENXIO) instead of
        # waiting for ever for a reader; once open, writes block as usual (a reader that is
        # slow is waited for).
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC
        with open(os.open(output, flags, 0o666), "w", encoding="utf-8") as fh:
            os.set_blocking(fh.fileno(), True)
            fh.writelines(parts)
    except OSError as exc:
        why = "a FIFO that no process reads" if exc.errno == errno.ENXIO else exc.strerror
        raise OutputError(output, "writing the report", why or str(exc)) from None
