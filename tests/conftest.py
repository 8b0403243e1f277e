"""Shared fixtures: the sample binaries, built once per session by sample_binaries/Makefile,
estimate documents built by hand, and real Debian packages (downloaded once with apt, kept
under build/debs/ARCH between runs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from elfcost.documents import (
    EstimateDoc,
    Fleet,
    Loader,
    ObjectDoc,
    ProcessDoc,
    Role,
    Total,
)
from elfcost.errors import ElfcostError
from elfcost.model import ZERO, LoaderFamily, Range

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def samples() -> Path:
    out = ROOT / "build" / "samples"
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler: the samples cannot be built")
    # make is idempotent: a no-op when `make samples` already built them.
    subprocess.run(
        ["make", "-C", str(ROOT / "sample_binaries"), f"OUT={out}", "-j2"],
        check=True,
        capture_output=True,
    )
    os.sync()  # freshly written binaries show dirty page cache as Private_Dirty
    return out


@pytest.fixture(scope="session")
def link_modes() -> tuple[str, ...]:
    """Every link mode sample_binaries/Makefile knows: glibc's, musl's, i386 glibc's (its lists)."""
    text = (ROOT / "sample_binaries" / "Makefile").read_text()
    modes: list[str] = []
    for var in ("GLIBC_MODES", "MUSL_MODES", "I386_MODES"):
        m = re.search(rf"^{var} :=(.*)$", text, re.M)
        assert m, f"sample_binaries/Makefile has no {var}"
        modes.extend(m[1].split())
    return tuple(modes)


@pytest.fixture(scope="session")
def has_musl() -> bool:
    return shutil.which("musl-gcc") is not None and Path("/lib/ld-musl-x86_64.so.1").exists()


class Skalike(NamedTuple):
    """One build of sample_binaries/src/skalike.c in two forms: with libskalike.so loaded, and
    with libskalike.a linked in (the what-if of --assume static-lib and what it predicts)."""

    shared: str  # the program that loads the library
    linked: str  # the same program with the archive linked in
    pie: bool
    lib: str = "libskalike.so"


@pytest.fixture(
    params=[("pie", False), ("pie", True), ("nopie", False), ("nopie", True)],
    ids=["pie-glibc", "pie-musl", "nopie-glibc", "nopie-musl"],
)
def skalike(request: pytest.FixtureRequest, samples: Path, has_musl: bool) -> Skalike:
    """Each of skalike's builds: glibc and musl (skipped without musl-gcc), PIE and not."""
    pie, musl = request.param
    if musl and not has_musl:
        pytest.skip("musl-gcc not installed")
    d = samples / "staticlib" / ("musl" if musl else "")
    return Skalike(str(d / f"skalike.{pie}-shared"), str(d / f"skalike.{pie}-linked"), pie == "pie")


# -- estimate documents built by hand ----------------------------------------------------------


def expected_range(n: int) -> Range:
    """The Range a hand-built item of `n` expected bytes gets: half at entry and low, double
    high, so a test can tell the four figures apart."""
    return Range(at_entry=n // 2, low=n // 2, expected=n, high=2 * n)


def build_estimate(
    objects: Sequence[tuple[str, str | None, Role, int]],
    process: Mapping[str, int] | None = None,
    *,
    shared_clean: int = 0,
    assumptions: tuple[str, ...] = (),
) -> EstimateDoc:
    """An estimate document: `objects` as (path, soname, role, expected bytes) in load order,
    the first the program; `process` items as name → expected bytes; every object with
    `shared_clean` bytes of shared clean. Totals add up as the estimator's do."""
    process = {} if process is None else process
    docs = tuple(
        ObjectDoc(
            path=path,
            soname=soname,
            role=role,
            writable_pages=0,
            pages=(),
            private_dirty=expected_range(n),
            shared_clean=shared_clean,
            notes=(),
        )
        for path, soname, role, n in objects
    )
    items = {name: _item(expected_range(n)) for name, n in process.items()}
    total = ZERO
    for r in [o.private_dirty for o in docs] + [p.private_dirty for p in items.values()]:
        total = total + r
    shared = shared_clean * len(docs)
    dynamic = any(o.role == "interpreter" for o in docs)
    return EstimateDoc(
        binary=objects[0][0],
        page_size=4096,
        machine="x86_64",
        loader=Loader(
            family=LoaderFamily.GLIBC if dynamic else LoaderFamily.NONE,
            path=next((o.path for o in docs if o.role == "interpreter"), None),
        ),
        profile="glibc-dynamic" if dynamic else "glibc-static",
        objects=docs,
        process=items,
        total=Total(
            private_dirty=total,
            shared_clean=shared,
            fleet=Fleet(
                instances=1,
                shared_clean=shared,
                private_dirty=total,
                total_expected=total.expected + shared,
            ),
        ),
        missing=(),
        warnings=(),
        assumptions=assumptions,
    )


def _item(r: Range) -> ProcessDoc:
    return ProcessDoc(
        at_entry=r.at_entry, low=r.low, expected=r.expected, high=r.high, certain=False, detail=""
    )


@pytest.fixture
def make_estimate() -> Callable[..., EstimateDoc]:
    """build_estimate, for tests anywhere under tests/ (conftest modules are not importable)."""
    return build_estimate


# -- real Debian packages ----------------------------------------------------------------------
#
# `apt-get download NAME:ARCH` fetches a package of a foreign architecture only when dpkg knows
# that architecture and apt has its index: as root, `dpkg --add-architecture arm64 && apt-get
# update` (`make deps-apt` does it). Without apt, the network or the architecture, the fixtures
# skip with the reason.

DEBS = ROOT / "build" / "debs"  # downloaded packages, kept between runs

# A closed set: every program's libraries are in the set (the Depends of Debian 12's
# coreutils, bash, grep, sed, tar, zstd... and libc6's own), ld.so.conf from libc-bin and
# ld.so.conf.d/<triplet>.conf from libc6.
CLOSED_SET = (
    "libc6",
    "libc-bin",
    "libgcc-s1",
    "libstdc++6",
    "coreutils",
    "libacl1",
    "libattr1",
    "libgmp10",
    "libselinux1",
    "libpcre2-8-0",
    "libssl3",
    "dash",
    "sed",
    "grep",
    "hostname",
    "bzip2",
    "libbz2-1.0",
    "xz-utils",
    "liblzma5",
    "zlib1g",
    "libzstd1",
    "zstd",
    "liblz4-1",
    "gzip",
    "bash",
    "libtinfo6",
    "less",
    "tar",
    "findutils",
    "diffutils",
    "libcap2",
    "libcap2-bin",
)


def cached(arch: str, name: str) -> Path | None:
    """The package file of `name` for `arch` in the cache, if it was downloaded."""
    found = sorted((DEBS / arch).glob(f"{name}_*_{arch}.deb")) + sorted(
        (DEBS / arch).glob(f"{name}_*_all.deb")
    )
    return found[-1] if found else None


def debian_packages(arch: str, names: Sequence[str] = CLOSED_SET) -> dict[str, Path]:
    """name -> .deb file for `arch`, downloading the ones the cache lacks; pytest.skip when
    they cannot be had."""
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get: cannot download Debian packages")
    where = DEBS / arch
    where.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if cached(arch, n) is None]
    if missing:
        r = subprocess.run(
            ["apt-get", "download", "-q", *(f"{n}:{arch}" for n in missing)],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or ["failed"])[-1]
            pytest.skip(
                f"apt-get download of {arch} packages failed ({why}); as root: "
                f"dpkg --add-architecture {arch} && apt-get update"
            )
    out = {}
    for n in names:
        f = cached(arch, n)
        if f is None:
            pytest.skip(f"apt-get download gave no {n} for {arch}")
        out[n] = f
    return out


@pytest.fixture(scope="session")
def arm64_debs() -> dict[str, Path]:
    """CLOSED_SET for arm64: name -> .deb in the download cache (read-only: copy_packages
    to change them)."""
    return debian_packages("arm64")


@pytest.fixture(scope="session")
def amd64_libc_debs() -> dict[str, Path]:
    """libc6, libc-bin and libgcc-s1 for amd64: the C library of a small archive."""
    return debian_packages("amd64", ("libc6", "libc-bin", "libgcc-s1"))


@pytest.fixture(scope="session")
def arm64_older_zstd(arm64_debs: dict[str, Path]) -> dict[str, Path]:
    """zstd and libzstd1 for arm64 at an older version than arm64_debs' (another release of
    the same packages, as apt's sources still list it)."""
    out = {}
    for name in ("zstd", "libzstd1"):
        r = subprocess.run(
            ["apt-cache", "madison", f"{name}:arm64"], capture_output=True, text=True, timeout=60
        )
        versions = [line.split("|")[1].strip() for line in r.stdout.splitlines() if "|" in line]
        current = arm64_debs[name].name.split("_")[1].replace("%3a", ":")
        older = [v for v in versions if v != current]
        if not older:
            pytest.skip(f"apt lists no other version of {name}:arm64 than {current}")
        where = DEBS / "arm64-older"
        where.mkdir(parents=True, exist_ok=True)
        file = next(where.glob(f"{name}_*_arm64.deb"), None)
        if file is None:
            got = subprocess.run(
                ["apt-get", "download", "-q", f"{name}:arm64={older[-1]}"],
                cwd=where,
                capture_output=True,
                text=True,
                timeout=600,
            )
            file = next(where.glob(f"{name}_*_arm64.deb"), None)
            if got.returncode != 0 or file is None:
                pytest.skip(f"apt-get download {name}:arm64={older[-1]} failed")
        out[name] = file
    return out


@pytest.fixture(scope="session")
def debs_of() -> Callable[..., dict[str, Path]]:
    """debian_packages, for tests anywhere under tests/: (arch, names) -> name -> .deb."""
    return debian_packages


class Collect:
    """An `each` (errors.Each) that keeps what each input raised and goes on, as the command
    line does: the library's loops are tested with it."""

    def __init__(self) -> None:
        self.errors: list[ElfcostError] = []

    @contextmanager
    def __call__(self) -> Iterator[None]:
        try:
            yield
        except ElfcostError as exc:
            self.errors.append(exc)


@pytest.fixture
def each() -> Collect:
    return Collect()
