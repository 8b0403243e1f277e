"""elf/gather.py reads an object's facts in one pass: one open of the file, whatever is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from elfcost.elf import reader
from elfcost.elf.facts import FactsWanted
from elfcost.elf.gather import read_facts
from elfcost.elf.reader import read_dso


@pytest.mark.parametrize(
    "sample, wanted",
    [
        # relocations with a COPY record, nothing more
        ("copy_reloc.nopie", FactsWanted()),
        # the static program's libc banner, its start-up symbols and glibc's TCB size
        (
            "trivial.static",
            FactsWanted(symbols=("__environ", "_dl_phdr"), pthread_size=True, static_libc=True),
        ),
    ],
)
def test_one_open_per_object(
    samples: Path, sample: str, wanted: FactsWanted, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = samples / sample
    if not program.exists():
        pytest.skip(f"no {sample}")
    dso = read_dso(str(program))
    opens: list[str] = []
    real = reader.open_regular

    def counting(path: str) -> tuple[int, object]:
        opens.append(path)
        return real(path)

    monkeypatch.setattr(reader, "open_regular", counting)
    facts = read_facts(dso, wanted)
    assert opens == [str(program)]
    if wanted.static_libc:
        assert facts.static_libc == "glibc"
        assert set(facts.symbols) == {"__environ", "_dl_phdr"}
    else:
        assert facts.relocs.copies and all(size > 0 for size in facts.copy_sizes.values())
