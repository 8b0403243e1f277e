"""Profile selection: the file opened by name is the one the full list would give."""

from __future__ import annotations

import os

import pytest

from elfcost.cost import profile_data, profiles
from elfcost.cost.profiles import all_profiles, file_name, select

SHIPPED = sorted(n for n in os.listdir(profiles._FOLDER) if n.endswith(".toml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_profile_is_found_by_its_file_name(name: str) -> None:
    p = profiles._read(name)
    # A file named otherwise would never be opened directly: select would parse every profile.
    assert file_name(p.family, p.link, p.machine) == name
    chosen, warnings = select(p.family, p.link, p.machine)
    assert chosen == p and warnings == [] and not chosen.fallback
    assert [
        q for q in all_profiles() if (q.family, q.link, q.machine) == (p.family, p.link, p.machine)
    ] == [p]


def test_the_python_data_is_the_toml_files() -> None:
    """cost/profile_data.py is what `python3 -m elfcost.cost.profiles` makes of the TOML files."""
    with open(profile_data.__file__, encoding="utf-8") as fh:
        committed = fh.read()
    assert committed == profiles.render_data(), "run: python3 -m elfcost.cost.profiles"
    assert sorted(profile_data.PROFILES) == SHIPPED


def test_an_unprofiled_machine_still_falls_back_with_a_warning() -> None:
    chosen, warnings = select("glibc", "dynamic", "riscv64")
    assert chosen.machine == "x86_64" and chosen.fallback
    assert len(warnings) == 1 and "riscv64" in warnings[0]
