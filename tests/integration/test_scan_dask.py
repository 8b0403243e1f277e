"""`elfcost scan --scheduler`: a real Dask scheduler and workers on loopback, started here as
`dask scheduler` and `dask worker` processes, scanning real Debian packages (downloaded once
with `apt-get download` into build/) and this machine's programs. The cluster's results are the
local pool's, line for line; a worker killed in the middle of a scan loses nothing; a broken
package is its own error line; an unreachable scheduler is one line and exit 5; a signal ends
the scan and cancels its tasks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from elfcost.scan import Scan, ScanOptions

distributed = pytest.importorskip("distributed", reason="pip install 'elfcost[distributed]'")

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DEB_CACHE = ROOT / "build" / "debian-packages"
# Packages of Debian 12 with programs: C and C++, static and dynamic, small and large.
PACKAGES = (
    "bc", "busybox-static", "bzip2", "coreutils", "cpio", "curl", "dc", "diffutils", "ed",
    "file", "findutils", "gawk", "grep", "gzip", "hostname", "iproute2", "jq", "less", "lsof",
    "make", "mawk", "patch", "procps", "psmisc", "rsync", "sed", "socat", "sqlite3", "strace",
    "tar", "time", "tree", "unzip", "wget", "xz-utils", "zip",
)  # fmt: skip
DEADLINE = 60.0  # seconds for a process of the cluster to start, or a scan's tasks to go


# -- the packages ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def debs() -> list[Path]:
    """A few dozen real .deb files, downloaded once (kept in build/ across runs)."""
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(DEB_CACHE.glob(f"{p}_*.deb"))]
    if missing and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "download", *missing],
            cwd=DEB_CACHE,
            capture_output=True,
            timeout=600,
        )
    found = sorted(DEB_CACHE.glob("*.deb"))
    if len(found) < len(PACKAGES):
        pytest.skip(f"only {len(found)} of {len(PACKAGES)} packages: `apt-get download` failed")
    return found


@pytest.fixture(scope="session")
def programs() -> list[str]:
    """This machine's programs: real ELF files with their libraries installed."""
    if not os.path.isdir("/usr/bin"):
        pytest.skip("no /usr/bin")
    return ["/usr/bin"]


def broken_deb(good: Path, out: Path) -> Path:
    """`good` repacked with its first program cut short after its program headers: a package
    that unpacks, holding one ELF file that cannot be analysed."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("no dpkg-deb to build a package")
    tree = out / "tree"
    subprocess.run(["dpkg-deb", "-R", str(good), str(tree)], check=True)
    prog = next(p for p in sorted((tree / "usr" / "bin").iterdir()) if p.is_file())
    with open(prog, "r+b") as fh:
        fh.truncate(2048)
    deb = out / "broken_1.0_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "-Zgzip", "--root-owner-group", "-b", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


# -- the cluster -------------------------------------------------------------------------------


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, and a client to watch them."""

    def __init__(self, tmp: Path, workers: int) -> None:
        dask = Path(sys.executable).with_name("dask")
        if not dask.exists():
            pytest.skip("no `dask` command beside this Python: pip install 'elfcost[distributed]'")
        # The workers import the elfcost under test, as this process does.
        path = os.environ.get("PYTHONPATH", "")
        self.env = {**os.environ, "PYTHONPATH": f"{SRC}:{path}" if path else str(SRC)}
        # What a worker killed by a test leaves behind (an archive's members) stays in tmp.
        self.env["TMPDIR"] = str(tmp)
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            self._up(tmp, dask, workers)
        except BaseException:  # a cluster that did not come up leaves no process behind
            self._end()
            raise

    def _up(self, tmp: Path, dask: Path, workers: int) -> None:
        file = tmp / "scheduler.json"
        common = ["--no-dashboard", "--host", "127.0.0.1"]
        self._start([str(dask), "scheduler", "--port", "0", "--scheduler-file", str(file), *common])
        deadline = time.monotonic() + DEADLINE
        while not file.exists() or not file.read_text().rstrip().endswith("}"):
            assert time.monotonic() < deadline, "the scheduler wrote no scheduler file"
            assert self.procs[0].poll() is None, "the scheduler exited"
            time.sleep(0.05)
        self.address: str = json.loads(file.read_text())["address"]
        for _ in range(workers):
            # One thread, no nanny: a killed worker stays dead (a nanny would restart it).
            self._start(
                [str(dask), "worker", "--scheduler-file", str(file), "--nthreads", "1",
                 "--no-nanny", *common]
            )  # fmt: skip
        self.client = distributed.Client(self.address, set_as_default=False, timeout=DEADLINE)
        self.client.wait_for_workers(workers, timeout=DEADLINE)

    def _start(self, argv: list[str]) -> None:
        self.procs.append(
            subprocess.Popen(
                argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

    def tasks(self) -> int:
        """Tasks the scheduler holds (every client's)."""
        n: int = self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        return n

    def close(self) -> None:
        self.client.close(timeout=DEADLINE)
        self._end()

    def _end(self) -> None:
        for p in reversed(self.procs):
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"), workers=2)
    yield c
    c.close()


# -- scans -------------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfcost", "scan", "--format", "jsonl", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def lines(r: subprocess.CompletedProcess[str]) -> list[str]:
    """The JSON lines of one result or error each, sorted: the summary, last, left out."""
    out = r.stdout.splitlines()
    assert json.loads(out[-1])["schema"] == "elfcost.scan/4", r.stderr
    return sorted(out[:-1])


def assert_same_as_local(
    remote: subprocess.CompletedProcess[str],
    local: subprocess.CompletedProcess[str],
    code: int = 0,
) -> None:
    """The cluster's run gave the local pool's exit code, result lines (in any order) and
    summary (counts of programs, libraries, skipped files, archives)."""
    assert local.returncode == remote.returncode == code, (local.stderr, remote.stderr)
    assert lines(remote) == lines(local)
    assert remote.stdout.splitlines()[-1] == local.stdout.splitlines()[-1]


def scan_jsonl(inputs: Sequence[str], **options: object) -> list[str]:
    """A scan in this process, its lines sorted. Local scans here run with jobs=1 (no worker
    processes): this process runs the client's threads, so a local pool would be spawned, and
    spawn's resource tracker would stay behind as its child for the rest of the session (the
    command line's pool, -j 2, is compared in test_cluster_results_equal_the_local_pools)."""
    s = Scan(inputs, ScanOptions(no_cache=True, **options))  # type: ignore[arg-type]
    return sorted(r.jsonl() for r in s.results())


def test_cluster_results_equal_the_local_pools(
    cluster: Cluster, debs: list[Path], programs: list[str]
) -> None:
    inputs = [*map(str, debs), *programs]
    local = cli("--no-cache", "-j", "2", *inputs)
    remote = cli("--no-cache", "--scheduler", cluster.address, *inputs)
    assert_same_as_local(remote, local)
    assert remote.stderr == ""
    docs = [json.loads(x) for x in lines(remote)]
    from_debs = {d["path"].partition("!")[0] for d in docs if "!" in d["path"]}
    assert len(from_debs) >= len(debs) - 2  # a package or two may hold scripts only
    assert all(d["estimate"] is not None for d in docs)


def test_a_worker_killed_mid_scan_loses_nothing(
    tmp_path: Path, debs: list[Path], programs: list[str]
) -> None:
    inputs = [*map(str, debs), *programs, "/usr/sbin"]
    expected = scan_jsonl(inputs, jobs=1)
    c = Cluster(tmp_path, workers=2)
    try:
        pids: dict[str, int] = c.client.run(os.getpid)
        got, victim = [], None
        for r in Scan(inputs, ScanOptions(no_cache=True, scheduler=c.address)).results():
            got.append(r.jsonl())
            if victim is None:
                # The first result is in: kill a worker that is analysing files right now.
                busy = [w for w, keys in c.client.processing().items() if keys]
                assert busy, "no worker had a task in progress"
                victim = busy[0]
                os.kill(pids[victim], signal.SIGKILL)
        assert victim is not None
        assert victim not in c.client.scheduler_info()["workers"]  # it was lost, not restarted
        assert sorted(got) == expected
    finally:
        c.close()


def test_a_broken_package_is_an_error_line_and_the_rest_goes_on(
    cluster: Cluster, debs: list[Path], tmp_path: Path
) -> None:
    broken = broken_deb(debs[0], tmp_path)
    truncated = tmp_path / "truncated_1.0_amd64.deb"
    truncated.write_bytes(debs[1].read_bytes()[:3000])
    inputs = [str(broken), str(truncated), *map(str, debs[2:8])]
    cache = tmp_path / "cache"
    local = cli("--no-cache", "-j", "2", *inputs)
    remote = cli("--cache-dir", str(cache), "--scheduler", cluster.address, *inputs)
    assert remote.returncode == local.returncode == 3, remote.stderr
    assert lines(remote) == lines(local)
    errors = [json.loads(x) for x in lines(remote) if '"elfcost.error/1"' in x]
    paths = sorted(e["path"] for e in errors)
    assert len(errors) == 2 and paths[0].startswith(f"{broken}!/usr/bin/"), paths
    assert paths[1] == str(truncated)
    assert all(e["exit_code"] == 3 for e in errors)
    assert len(remote.stderr.splitlines()) == 2  # one line each, nothing from distributed
    # The cluster's workers wrote the cache: the next scan, here, analyses nothing again but
    # the broken program (an error is never cached).
    warm = cli("--cache-dir", str(cache), "-j", "2", *inputs)
    summary = json.loads(warm.stdout.splitlines()[-1])["summary"]
    assert summary["cache_hits"] == summary["elf_files"] - 1 > 0
    assert lines(warm) == [x.replace('"cached":false', '"cached":true') for x in lines(local)]


def test_an_unreachable_scheduler_is_one_line_and_exit_5() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from elfcost.scan.engine import CONNECT_TIMEOUT

    t = time.monotonic()
    r = cli("--no-cache", "--scheduler", f"tcp://127.0.0.1:{port}", "/usr/bin/true")
    assert time.monotonic() - t < CONNECT_TIMEOUT + 30
    assert r.returncode == 5
    assert r.stderr.startswith(f"elfcost: error: tcp://127.0.0.1:{port}: connecting to the Dask")
    assert r.stderr.count("\n") == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "elfcost.error/1" and doc["exit_code"] == 5
    assert cli("--scheduler", "127.0.0.1", "/usr/bin/true").returncode == 2
    assert cli("-j", "2", "--scheduler", f"tcp://127.0.0.1:{port}", "/bin/true").returncode == 2


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_scan_and_its_tasks(
    cluster: Cluster, debs: list[Path], sig: signal.Signals, code: int
) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "elfcost", "scan", "--no-cache", "--format", "jsonl",
         "--scheduler", cluster.address, *map(str, debs), "/usr/bin", "/usr/sbin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert p.stdout is not None
        assert p.stdout.readline(), "the scan wrote nothing"  # tasks are on the cluster now
        p.send_signal(sig)
        _, err = p.communicate(timeout=DEADLINE)
    finally:
        p.kill()
    assert p.returncode == code, err
    assert "Traceback" not in err
    deadline = time.monotonic() + DEADLINE
    while cluster.tasks():  # its tasks cancelled, not left to run for nobody
        assert time.monotonic() < deadline, "the scan's tasks outlived it"
        time.sleep(0.05)


def test_a_scheduler_lost_mid_scan_is_one_line_and_exit_5(
    tmp_path: Path, debs: list[Path], programs: list[str]
) -> None:
    c = Cluster(tmp_path, workers=2)
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "elfcost", "scan", "--no-cache", "--format", "jsonl",
             "--scheduler", c.address, *map(str, debs), *programs, "/usr/sbin"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert p.stdout is not None
            assert p.stdout.readline(), "the scan wrote nothing"
            c.procs[0].kill()  # the scheduler
            out, err = p.communicate(timeout=DEADLINE)
        finally:
            p.kill()
    finally:
        c.close()
    assert p.returncode == 5, err
    assert err.count("\n") == 1 and err.startswith(f"elfcost: error: {c.address}: "), err
    last = json.loads(out.splitlines()[-1])
    assert last["schema"] == "elfcost.error/1" and last["exit_code"] == 5


def test_tar_members_are_scanned_on_the_cluster_as_locally(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A package elfcost unpacks from a plain tarball: its programs reach the workers too."""
    tgz = tmp_path / "tools.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name in ("true", "env", "sleep"):
            tf.add(f"/usr/bin/{name}", arcname=f"usr/bin/{name}")
    assert scan_jsonl([str(tgz)], scheduler=cluster.address) == scan_jsonl([str(tgz)], jobs=1)


# -- an archive as one root (--archive) --------------------------------------------------------


def copy_archive(debs: dict[str, Path], dest: Path) -> Path:
    """The packages in a directory of their own: the workers read them at this path."""
    dest.mkdir(parents=True)
    for f in debs.values():
        shutil.copyfile(f, dest / f.name)
    return dest


def test_an_archive_is_indexed_and_analysed_on_the_workers(
    cluster: Cluster, arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    archive = str(copy_archive(arm64_debs, tmp_path / "arm64"))
    local = cli("--archive", "--no-cache", "-j", "2", archive)
    with distributed.get_task_stream(client=cluster.client) as stream:
        remote = cli("--archive", "--no-cache", "--scheduler", cluster.address, archive)
    assert_same_as_local(remote, local)
    assert remote.stderr == ""
    docs = [json.loads(x) for x in lines(remote)]
    assert len(docs) > 100 and all(d["estimate"] is not None for d in docs)
    assert all(not d["estimate"]["missing"] for d in docs)  # libraries from other packages
    # Each package was indexed by a task of its own, and the programs analysed in tasks,
    # on the cluster's workers.
    keys = [str(t["key"]) for t in stream.data]
    assert sum(k.startswith("elfcost-index-") for k in keys) == len(arm64_debs)
    assert any(k.startswith("elfcost-scan-") for k in keys)
    # What the workers kept for the scan is gone with it.
    assert cluster.client.run(lambda: __import__("elfcost.scan.run").scan.run._STORES) == {
        w: {} for w in cluster.client.scheduler_info()["workers"]
    }


@pytest.mark.parametrize("phase", ["index", "scan"])
def test_a_worker_killed_while_an_archive_is_scanned_loses_nothing(
    tmp_path: Path, arm64_debs: dict[str, Path], phase: str
) -> None:
    """One of two workers killed while it indexes a package, or while it analyses programs:
    the scheduler runs its task again on the other, and the results are the local pool's."""
    archive = str(copy_archive(arm64_debs, tmp_path / "arm64"))
    expected = scan_jsonl([archive], archive=True, jobs=1)
    c = Cluster(tmp_path, workers=2)
    killed: list[str] = []

    def watch() -> None:
        """Kill the first worker seen running a task of this phase."""
        deadline = time.monotonic() + DEADLINE
        while not killed and time.monotonic() < deadline:
            for w, keys in c.client.processing().items():
                if any(str(k).startswith(f"elfcost-{phase}-") for k in keys):
                    os.kill(pids[w], signal.SIGKILL)
                    killed.append(w)
                    return
            time.sleep(0.01)  # polling, not waiting for an outcome

    try:
        pids: dict[str, int] = c.client.run(os.getpid)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            got = scan_jsonl([archive], archive=True, scheduler=c.address)
        finally:
            watcher.join()
        assert killed, f"no worker was seen running an {phase} task"
        assert killed[0] not in c.client.scheduler_info()["workers"]
        assert got == expected
    finally:
        c.close()


def test_a_truncated_package_of_an_archive_on_the_cluster(
    cluster: Cluster, arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    archive = copy_archive(arm64_debs, tmp_path / "arm64")
    broken = archive / arm64_debs["coreutils"].name
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    local = cli("--archive", "--no-cache", "-j", "2", str(archive))
    remote = cli("--archive", "--no-cache", "--scheduler", cluster.address, str(archive))
    assert_same_as_local(remote, local, code=3)
    errors = [json.loads(x) for x in lines(remote) if '"elfcost.error/1"' in x]
    assert [e["path"] for e in errors] == [str(broken)]
    assert remote.stderr.count("\n") == 1 and f"{broken}: " in remote.stderr
    programs = {json.loads(x).get("loader_path") for x in lines(remote)}
    assert "/bin/ls" not in programs and {"/bin/bash", "/bin/grep"} <= programs


def test_a_workers_store_of_members_stays_within_its_bound(
    cluster: Cluster, arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    """With a bound of one byte each task starts with nothing kept: every package is read
    again where it is needed, and the results are the same."""
    archive = str(copy_archive(arm64_debs, tmp_path / "arm64"))
    expected = scan_jsonl([archive], archive=True, jobs=1)
    bounded = scan_jsonl([archive], archive=True, scheduler=cluster.address, worker_store_bytes=1)
    assert bounded == expected


def test_a_signal_while_an_archive_is_indexed_cancels_its_tasks(
    cluster: Cluster, arm64_debs: dict[str, Path], tmp_path: Path
) -> None:
    archive = str(copy_archive(arm64_debs, tmp_path / "arm64"))
    p = subprocess.Popen(
        [sys.executable, "-m", "elfcost", "scan", "--archive", "--no-cache", "--format", "jsonl",
         "--scheduler", cluster.address, archive],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE
        while not any(
            str(k).startswith("elfcost-index-")
            for keys in cluster.client.processing().values()
            for k in keys
        ):
            assert p.poll() is None, "the scan ended before indexing on the cluster"
            assert time.monotonic() < deadline, "no indexing task reached the workers"
            time.sleep(0.01)  # polling the cluster's state
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=DEADLINE)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.monotonic() + DEADLINE
    while cluster.tasks():  # its indexing tasks cancelled
        assert time.monotonic() < deadline, "the scan's tasks outlived it"
        time.sleep(0.05)


def test_a_task_runs_where_its_package_was_indexed(
    cluster: Cluster, arm64_debs: dict[str, Path]
) -> None:
    """The worker that indexes a package keeps its members (repo.index_on_worker says which
    one it is), and the engine asks the scheduler to run that package's tasks there."""
    from elfcost.scan import engine, repo

    workers = sorted(cluster.client.scheduler_info()["workers"])
    assert len(workers) == 2
    deb = str(arm64_debs["coreutils"])
    one = cluster.client.submit(
        repo.index_on_worker, deb, 0, 1 << 30, "placement-test", 1 << 30, pure=False
    ).result()
    assert one.package is not None and one.worker in workers
    cluster.client.run(repo.release_kept, "placement-test")
    # Nothing kept (no scan to keep it for): no worker to prefer.
    none = cluster.client.submit(repo.index_on_worker, deb, 0, 1 << 30, pure=False).result()
    assert none.worker == ""

    # Files of package n placed on worker n % 2: every task ran where it was put, though each
    # would fit either worker.
    def where(config: object, chunk: Sequence[tuple[int, int]]) -> list[str]:
        """The task's answer: the worker it ran on (defined here: sent by value, as the workers
        cannot import this test module)."""
        import distributed

        return [distributed.get_worker().address for _ in chunk]

    work: engine.Work[tuple[int, int], str, None] = engine.Work(
        config=None,
        init=lambda c: None,
        run=lambda chunk: [],
        remote=where,
        died=lambda chunk, why: [why for _ in chunk],
        advance=lambda n: None,
        package=lambda t: t[0],
        place=lambda t: workers[t[0] % 2],
    )
    pool = engine.DaskEngine[tuple[int, int], str, None](cluster.client, work)
    files = [(n, i) for n in range(8) for i in range(engine.TASK_FILES)]  # a task per package
    for t in files:
        pool.add(t)
    answered = {t: pool.take(t, block=True) for t in files}
    pool.close()
    assert answered == {t: workers[t[0] % 2] for t in files}
