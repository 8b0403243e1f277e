from __future__ import annotations

import click
import pytest

from elfcost.cli.common import Size


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
    assert Size().convert(text, None, None) == size


@pytest.mark.parametrize("text", ["", "K", "4X", "-1", "1.2.3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Size().convert(text, None, None)


def test_kib_groups_thousands_and_check_uses_it() -> None:
    from elfcost.check.output import _fmt
    from elfcost.report.text import kib

    assert kib(1_048_584 * 1024) == "1,048,584 KiB"  # bss_huge's high bound
    assert kib(4096) == "4 KiB" and kib(1536) == "1.5 KiB"
    assert _fmt("max_private_dirty", 2_000 * 1024) == "2,000 KiB"
    assert _fmt("max_objects", 2000) == "2000"


def test_assume_choices_are_the_model_s() -> None:
    """The CLI's --assume values, scan's, and the ones the model implements are one set, with
    static-lib=SONAME beside them (repeatable), which the savings documents accept too."""
    import re
    import typing

    import msgspec

    from elfcost import cli, documents
    from elfcost.cli.common import ASSUME, Assume
    from elfcost.cost.estimate import BIND_NOW
    from elfcost.cost.whatif import RELINKS, STATIC_LIB
    from elfcost.scan import ScanOptions

    model = {*BIND_NOW, *RELINKS}
    assert set(ASSUME) == model
    top = click.Context(cli.main, info_name="elfcost", **cli.main.context_settings)
    for name in ("estimate", "explain", "check", "diff", "scan"):
        command = cli.main.get_command(top, name)
        assert command is not None
        option = next(p for p in command.params if p.name == "assume")
        assert isinstance(option.type, Assume) and option.multiple, name
        for value in (*model, STATIC_LIB + "libskarnet.so.2.13", STATIC_LIB + "all"):
            assert option.type.convert(value, option, None) == value
        with pytest.raises(click.BadParameter):
            option.type.convert("static-libfoo", option, None)
    meta = typing.get_args(documents.Assume)[1]
    assert isinstance(meta, msgspec.Meta) and meta.pattern is not None
    for value in (*model, STATIC_LIB + "libfoo.so.1"):
        assert re.match(meta.pattern, value), value
    hint = typing.get_type_hints(ScanOptions)["assume"]
    literal = next(a for a in typing.get_args(hint) if a is not type(None))
    assert set(typing.get_args(literal)) == model
