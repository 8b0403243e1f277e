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
