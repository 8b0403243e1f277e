"""dh_elfcost's environment: the shell lines (or JSON) that make `dh --with elfcost` find the
dh_elfcost program and its sequence add-on shipped in this package, and run this elfcost."""

from __future__ import annotations

import os
import shlex
import sys

import msgspec

import elfcost
from elfcost.errors import ElfcostError


def debhelper_dir() -> str:
    """Where this elfcost keeps dh_elfcost and Debian/Debhelper/Sequence/elfcost.pm."""
    return os.path.join(os.path.dirname(os.path.abspath(elfcost.__file__)), "debhelper")


def env_text(fmt: str) -> str:
    """`export` lines for a shell's eval (fmt "text"), or {"path", "perl5lib", "elfcost"}."""
    here = debhelper_dir()
    tool = os.path.join(here, "dh_elfcost")
    if not os.access(tool, os.X_OK):
        raise ElfcostError(tool, "", "missing or not executable: reinstall elfcost")
    run = [sys.executable, "-m", "elfcost"]  # this elfcost, run by this Python
    if fmt == "json":
        doc = {"path": here, "perl5lib": here, "elfcost": run}
        return msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n"
    q = shlex.quote(here)
    return (
        f'export PATH={q}:"$PATH"\n'
        f'export PERL5LIB={q}${{PERL5LIB:+:"$PERL5LIB"}}\n'
        f"export ELFCOST={shlex.quote(shlex.join(run))}\n"
    )
