#!/usr/bin/env python3
"""Coverage-guided fuzzing of the static pipeline with atheris (optional; `pip install atheris`).

    python3 tests/fuzz/atheris_pipeline.py CORPUS_DIR -max_total_time=600 -timeout=10

CORPUS_DIR starts with the seeds (the committed fixtures and, when built, a few samples) and
collects the inputs libFuzzer finds interesting. Each input is written to a file and fed to
resolve → estimate → JSON, like the hypothesis harness; anything but an ElfcostError is a
crash, saved by libFuzzer as crash-<hash>.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

with atheris.instrument_imports(include=["elfcost"]):
    from mutate import run_pipeline, seeds

    import elfcost.cost.estimate
    import elfcost.elf.reader
    import elfcost.elf.relocs
    import elfcost.report.jsonout
    import elfcost.resolve.search  # noqa: F401  (instrumented before run_pipeline uses them)

WORK = Path(tempfile.mkdtemp(prefix="elfcost-atheris-"))
TARGET = WORK / "input"


def one_input(data: bytes) -> None:
    tmp = WORK / "input.new"
    tmp.write_bytes(data)
    os.replace(tmp, TARGET)
    run_pipeline(str(TARGET))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if args:
        corpus = Path(args[0])
        corpus.mkdir(parents=True, exist_ok=True)
        samples = HERE.parents[1] / "build" / "samples"
        for s in seeds(samples if samples.is_dir() else None, slow=False):
            src = next(f for f in s.files if f.name == s.target)
            dst = corpus / s.name.replace("/", "_").replace(":", "__")
            if not dst.exists() and src.stat().st_size < 64 << 10:
                shutil.copyfile(src, dst)
        # libown.so beside the input lets the mutated program's DT_NEEDED resolve.
        if (samples / "libown.so").exists():
            shutil.copyfile(samples / "libown.so", WORK / "libown.so")
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
