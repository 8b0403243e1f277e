"""The causes table of docs/how-elfcost-works.md is what cost/causes.py generates."""

from __future__ import annotations

import sys
from pathlib import Path

from elfcost.cost.causes import CAUSES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_committed_causes_table_is_current() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import make_causes_md
    finally:
        sys.path.pop(0)
    doc = make_causes_md.DOC.read_text()
    assert doc == make_causes_md.render(doc), (
        "docs/how-elfcost-works.md's causes table is stale: run python3 docs/make_causes_md.py"
    )
    assert all(f"| `{c.name}` | {c.label} | `{c.letter}` |" in doc for c in CAUSES)
