"""`elfcost BINARY` on a small program imports none of the slow modules it was made to avoid.

The speed target (bench/estimate: at most half of lddtree's time on s6-supervise) is mostly
start-up, so the modules an estimate imports are the budget. Each name here was measured on the
estimate's path and taken off it: numpy (relocations of small objects are grouped in plain
Python), dataclasses and inspect (elfcost.record), click (argparse), tomllib (the profiles are
read from cost/profile_data.py) and typing (imported for the type checker only).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

AVOIDED = ("numpy", "dataclasses", "inspect", "click", "tomllib", "typing")

DRIVER = """
import json, sys
from elfcost.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["/bin/true"], ["--format", "json", "/bin/true"], ["--help"]])
def test_a_small_estimate_imports_none_of_the_slow_modules(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv], capture_output=True, text=True, check=True
    )
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["status"] == 0
    loaded = set(doc["modules"])
    assert "elfcost.cli" in loaded
    if argv != ["--help"]:
        assert "elfcost.cost.estimate" in loaded  # the estimate did run
    assert sorted(loaded.intersection(AVOIDED)) == []
