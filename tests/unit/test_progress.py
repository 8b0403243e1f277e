"""The scan's progress line: redrawn in place, messages kept above it, erased at the end."""

from __future__ import annotations

import io

from elfcost.report.progress import Progress


def test_progress_redraws_in_place_and_leaves_nothing_behind() -> None:
    out = io.StringIO()
    p = Progress(out, "scanning")
    p.update(1, 4)
    p.update(2, 4)  # within 0.1 s of the first: not redrawn
    p.message("elfcost: error: /x: not an ELF file")
    p.update(4, 4)  # the last one is always drawn
    p.close()
    text = out.getvalue()
    assert text.startswith("\r\x1b[2Kscanning 1/4 25%")
    assert "2/4" not in text
    assert "\r\x1b[2Kelfcost: error: /x: not an ELF file\nscanning 1/4 25%" in text
    assert "scanning 4/4 100%" in text
    assert text.endswith("\r\x1b[2K")
