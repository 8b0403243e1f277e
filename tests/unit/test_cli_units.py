from __future__ import annotations

import click
import pytest

from elfcost.cli import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("4K", 4096),
        ("64K", 65536),
        ("1M", 1 << 20),
        ("1.5MiB", 1572864),
        ("16k", 16384),
        ("2 KiB", 2048),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "K", "4X", "-1", "1.2.3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_size(text)


def test_kib_groups_thousands_and_check_uses_it() -> None:
    from elfcost.report.checkout import _fmt
    from elfcost.report.text import kib

    assert kib(1_048_584 * 1024) == "1,048,584 KiB"  # bss_huge's high bound
    assert kib(4096) == "4 KiB" and kib(1536) == "1.5 KiB"
    assert _fmt("max_private_dirty", 2_000 * 1024) == "2,000 KiB"
    assert _fmt("max_objects", 2000) == "2000"
