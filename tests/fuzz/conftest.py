"""Hostile-input tests: the harness modules beside this file, the seeds, a run summary.

`ELFCOST_FUZZ_EXAMPLES=N` (what `make fuzz` sets) turns the bounded, derandomized run of
`make test` into a long randomized one of about N mutants, and runs every corpus case on its
own as well as in the batch runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from channels import OUTCOMES  # noqa: E402
from mutate import TALLY  # noqa: E402  (found through the path entry above)


@pytest.fixture(scope="session")
def samples_or_none(request: pytest.FixtureRequest) -> Path | None:
    """The built samples, or None without a compiler (the committed fixtures still run)."""
    try:
        path: Path = request.getfixturevalue("samples")
    except pytest.skip.Exception:
        return None
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if OUTCOMES.counts:
        secs, label = OUTCOMES.slowest
        terminalreporter.write_line(
            f"fuzz channels: {sum(OUTCOMES.counts.values())} cases survived: "
            f"{OUTCOMES.summary()}; slowest {secs:.2f} s ({label})"
        )
    total = sum(TALLY.outcomes.values())
    if not total:
        return
    parts = ", ".join(f"{n} {what}" for what, n in sorted(TALLY.outcomes.items()))
    secs, label = TALLY.slowest
    terminalreporter.write_line(
        f"fuzz: {total} mutants survived ({parts}); slowest {secs:.2f} s ({label})"
    )
