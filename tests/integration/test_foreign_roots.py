"""Sysroots of other architectures, made from Debian 12's own packages (`apt-get download` +
`dpkg-deb -x`, kept under build/ between runs), against their real loaders: each
architecture's ld.so run by qemu's user-mode emulator (`qemu-ARCH -L ROOT ROOT/INTERP --list`),
and the i386 one natively in a chroot. Skipped, with the reason, when the packages, qemu or
the privileges cannot be had.

What is compared: the objects the loader maps, in load order, for one program of each set of
DT_NEEDED entries found in the root; then the page size and machine name an estimate of the
root's programs says it used (64 KiB on ppc64el, Debian's kernel page size there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from elfcost.elf.reader import is_elf, read_dso
from elfcost.pipeline import analyse, make_host
from elfcost.resolve.host import Host
from elfcost.resolve.search import resolve

# Debian architecture → (qemu user-mode emulator, PT_INTERP, elfcost's machine name, page size)
ARCHES = {
    "arm64": ("qemu-aarch64", "/lib/ld-linux-aarch64.so.1", "aarch64", 4096),
    "armhf": ("qemu-arm", "/lib/ld-linux-armhf.so.3", "arm", 4096),
    "ppc64el": ("qemu-ppc64le", "/lib64/ld64.so.2", "ppc64le", 65536),
    "s390x": ("qemu-s390x", "/lib/ld64.so.1", "s390x", 4096),
    "i386": (None, "/lib/ld-linux.so.2", "i386", 4096),
}
# A small closed system: coreutils and dash with every library they need.
PACKAGES = (
    "libc6",
    "libgcc-s1",
    "coreutils",
    "dash",
    "libacl1",
    "libattr1",
    "libselinux1",
    "libpcre2-8-0",
    "libgmp10",
    "libssl3",
)
SYSROOTS = Path(__file__).resolve().parents[2] / "build" / "sysroots"


@pytest.fixture(scope="module", params=sorted(ARCHES))
def sysroot(
    request: pytest.FixtureRequest, debs_of: Callable[..., dict[str, Path]]
) -> tuple[str, Path]:
    """(Debian architecture, a root with PACKAGES unpacked in it)."""
    arch = str(request.param)
    root = SYSROOTS / arch
    done = root / ".unpacked"
    if not done.exists():
        debs = debs_of(arch, PACKAGES)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for deb in debs.values():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        done.write_text("\n".join(sorted(p.name for p in debs.values())) + "\n")
    return arch, root


def programs(root: Path) -> list[str]:
    """One dynamic program (as the root sees it) per distinct DT_NEEDED list in /bin and
    /usr/bin: the others would ask the loader the same question."""
    chosen: dict[tuple[str, ...], str] = {}
    for d in ("bin", "usr/bin"):
        for f in sorted((root / d).iterdir()):
            if f.is_symlink() or not f.is_file() or not is_elf(str(f)):
                continue
            dso = read_dso(str(f))
            if dso.interp is not None:
                chosen.setdefault(dso.dynamic.needed if dso.dynamic else (), f"/{d}/{f.name}")
    return sorted(chosen.values())


def inside(root: Path, path: str) -> str:
    """`path` as the root sees it, as a path on this machine: its symlinks (ld64.so.2 links to
    /lib/powerpc64le-linux-gnu/ld64.so.2) followed inside the root."""
    for _ in range(40):  # ELOOP's limit
        here = root / path.lstrip("/")
        if not here.is_symlink():
            return str(here)
        target = os.readlink(here)
        path = target if target.startswith("/") else os.path.join(os.path.dirname(path), target)
    raise AssertionError(f"{path}: too many symbolic links in {root}")


def real_load_order(arch: str, root: Path, program: str) -> list[str]:
    """The paths the architecture's own ld.so maps for `program`, in load order."""
    qemu, interp, _, _ = ARCHES[arch]
    if qemu is not None:
        if shutil.which(qemu) is None:
            pytest.skip(f"{qemu} is not installed (Debian package qemu-user)")
        argv = [qemu, "-L", str(root), inside(root, interp), "--list", program]
    elif os.geteuid() != 0:
        pytest.skip("the i386 loader runs in a chroot: root privileges needed")
    else:
        argv = ["chroot", str(root), interp, "--list", program]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    paths = []
    for line in out.stdout.splitlines():
        # "\tlibc.so.6 => /lib/.../libc.so.6 (0x...)", "\t/lib/ld-x.so.1 => ROOT/lib/ld-x.so.1"
        # (the interpreter, named by its PT_INTERP, at the file qemu was given: ours names it
        # by PT_INTERP too), "\tlinux-vdso.so.1 (0x...)".
        name, arrow, where = line.strip().partition(" => ")
        if arrow:
            path = where.rsplit(" (", 1)[0]
            paths.append(name if path.startswith(f"{root}/") else path)
        elif name.startswith("/") and not name.startswith(program):
            paths.append(name.rsplit(" (", 1)[0])
    return paths


def test_load_order_is_the_real_loaders(sysroot: tuple[str, Path]) -> None:
    arch, root = sysroot
    chosen = programs(root)
    assert len(chosen) >= 3, chosen  # dash, ls (libselinux), the ones with libgmp or libcrypto
    host = Host(root=str(root))
    for program in chosen:
        graph = resolve(program, host)
        assert not graph.missing, (program, graph.missing)
        ours = [o.dso.path for o in graph.objects if o.role != "executable"]
        assert ours == real_load_order(arch, root, program), program


def test_page_size_and_machine_of_the_root(sysroot: tuple[str, Path]) -> None:
    """An estimate of another machine's program uses that machine's page size (from its ABI
    and PT_LOAD alignment), says so, and names the machine with its byte order."""
    arch, root = sysroot
    _, interp, machine, page_size = ARCHES[arch]
    est = analyse("/bin/ls", make_host(root=str(root))).estimate
    assert (est.machine, est.page_size, est.loader_path) == (machine, page_size, interp)
    assert not est.missing
    if arch != "i386":  # this machine runs i386 programs itself, with its own page size
        why = f"page size {page_size // 1024} KiB for this {machine} program: "
        assert any(a.startswith(why) for a in est.assumptions), est.assumptions
