"""The cause registry names every cause once, with distinct words, letters and colours."""

from __future__ import annotations

from elfcost.cost import causes
from elfcost.model import Cause


def test_every_cause_has_one_row_in_precedence_order() -> None:
    assert [c.name for c in causes.CAUSES] == [c.value for c in Cause]


def test_labels_letters_and_fills_are_distinct() -> None:
    for attr in ("label", "letter", "fill"):
        values = [getattr(c, attr) for c in causes.CAUSES]
        assert len(set(values)) == len(values), attr
    assert all(len(c.letter) == 1 for c in causes.CAUSES)


def test_every_row_says_why_and_where() -> None:
    for c in causes.CAUSES:
        assert c.rules and c.source and c.explanation.endswith("."), c.name


def test_lookup_by_enum_by_name_and_unknown() -> None:
    assert causes.info(Cause.RELOCATION).letter == "R"
    assert causes.info("bss-tail").label == "bss-tail"
    assert causes.info("from-a-newer-version") is causes.UNKNOWN
