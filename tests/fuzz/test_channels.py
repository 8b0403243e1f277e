"""Mutated non-ELF inputs through the function the command line calls for each, in process.

The channels and their seeds are in channels.py: budgets (`check --budget`), baselines
(`check --baseline`), saved estimate reports (`diff`), scan cache entries, captures (`measure
--capture`) and package archives (`scan`), every seed made by elfcost or the system's tools
from the samples. A case survives when the function returns (the scan cache: a hit or a miss)
or refuses the file with an ElfcostError whose message starts with its name (a budget also
with the PolicyError of a usage error), within its deadline and without raising the process's
peak memory by more than channels.MAX_CASE_RSS_GROWTH; anything else fails the test.

`make test` runs a fixed set of hypothesis cases per channel (derandomized) and a fixed set of
random.Random cases (seeded by their number, as `python3 tests/fuzz/channels.py` numbers them,
so a failure there replays alone). ELFCOST_FUZZ_EXAMPLES (`make fuzz`) turns the hypothesis
cases into a long randomized run; ELFCOST_FUZZ_CHANNEL_CASES=N runs N random cases over all
channels instead of the fixed ones.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from channels import (
    ELFCOST,
    WEIGHTS,
    CacheChannel,
    Channel,
    make_seeds,
    run_random,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutate import LONG_EXAMPLES, DataChooser, RandomChooser

from elfcost.check.gate import PolicyError
from elfcost.check.run import policy_of
from elfcost.errors import ElfcostError, InputError

ROOT = Path(__file__).resolve().parents[2]
# Hypothesis cases per channel in `make test` (about 10 s in all on two busy cores), and as
# many again from random.Random.
BOUNDED = {"budget": 150, "baseline": 120, "cache": 100, "report": 80, "capture": 60, "archive": 50}
CHANNEL_CASES = int(os.environ.get("ELFCOST_FUZZ_CHANNEL_CASES", "0") or 0)


def examples(name: str) -> int:
    if LONG_EXAMPLES:
        return max(1, LONG_EXAMPLES * BOUNDED[name] // sum(BOUNDED.values()))
    return BOUNDED[name]


@pytest.fixture(scope="session")
def channels(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Channel]:
    return make_seeds(samples, tmp_path_factory.mktemp("channels"))


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_mutants_survive(name: str, channels: dict[str, Channel]) -> None:
    chan = channels[name]

    @settings(
        max_examples=examples(name),
        deadline=None,  # the channel's SIGALRM deadline is the hard limit
        derandomize=not LONG_EXAMPLES,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(data=st.data())
    def case(data: st.DataObject) -> None:
        chan.case(DataChooser(data))

    case()


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_fixed_seed_cases_survive(name: str, channels: dict[str, Channel]) -> None:
    """The first cases of `python3 tests/fuzz/channels.py N --seed 0` for this channel."""
    if CHANNEL_CASES:
        pytest.skip("ELFCOST_FUZZ_CHANNEL_CASES: test_long_random_run runs them")
    for i in range(BOUNDED[name]):
        rng = random.Random(f"0:{name}:{i}")
        channels[name].case(RandomChooser(rng), f"--seed 0 --channel {name} --replay {i}")


@pytest.mark.skipif(not CHANNEL_CASES, reason="ELFCOST_FUZZ_CHANNEL_CASES not set")
def test_long_random_run(channels: dict[str, Channel]) -> None:
    seed = int(os.environ.get("ELFCOST_FUZZ_SEED", "0"))
    run_random(channels, CHANNEL_CASES, seed)


def test_every_channel_reaches_past_the_parser(channels: dict[str, Channel]) -> None:
    """The mutants are not all refused at the door: among a channel's first 300 random cases,
    some are used (analysed, or a cache hit) and some refused (or a miss)."""
    assert set(WEIGHTS) == set(BOUNDED) == set(channels)
    for name, chan in channels.items():
        seen = set()
        for i in range(300):
            seen.add(chan.case(RandomChooser(random.Random(f"1:{name}:{i}"))))
            if len(seen) == 2:
                break
        assert seen == ({"hit", "miss"} if name == "cache" else {"ok", "refused"}), (name, seen)


# -- what the fuzzing found: each one a regression test --------------------------------------------


def _policy_error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "budget.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(PolicyError) as exc:
        policy_of(str(path))
    message = str(exc.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    return message


def test_budget_nested_too_deeply(tmp_path: Path) -> None:
    """tomllib parses arrays recursively: 5,000 levels were a RecursionError."""
    nested = "[" * 5000 + "]" * 5000
    assert "nested too deeply" in _policy_error(tmp_path, f"[defaults]\nmax_objects = {nested}\n")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[defaults]]\nmax_objects = 1\n", "[defaults] must be a table"),
        ("[rule]\nmatch = 'usr/bin/*'\n", "rule must be an array of tables"),
        ("waiver = 3\n", "waiver must be an array of tables"),
        ("rule = [1, 2]\n", "rule must be an array of tables"),
        ("[[baseline]]\nfile = 'b.json'\n", "[baseline] must be a table"),
        ("[baseline]\nfile = 3\n", "[baseline] file must be a string"),
    ],
)
def test_budget_tables_of_the_wrong_kind(tmp_path: Path, text: str, says: str) -> None:
    """Each was an AttributeError or a TypeError (the last one named the baseline file "3")."""
    assert says in _policy_error(tmp_path, text)


@pytest.mark.parametrize("value", ["1979-05-27T07:32:00Z", "1979-05-27T07:32:00", "07:32:00", "1"])
def test_waiver_expiry_that_is_not_a_date(tmp_path: Path, value: str) -> None:
    """A TOML date-time is a Python datetime, a date subclass: it passed the check and failed
    the comparison with today's date (TypeError) when the waiver was consulted."""
    text = f"[[waiver]]\nmatch = '*'\nreason = 'r'\nexpires = {value}\n"
    assert "expires must be a date" in _policy_error(tmp_path, text)


@pytest.mark.parametrize("value", ["1.5", "2027-01-31", "true", "[1]", "{ a = 1 }", "nan"])
def test_budget_size_that_is_not_a_size(tmp_path: Path, value: str) -> None:
    """A float, a date, a list or a table was a TypeError inside parse_size; true was 1 byte."""
    message = _policy_error(tmp_path, f"[defaults]\nmax_private_dirty = {value}\n")
    assert "is not a size" in message


def test_saved_report_with_its_schema_tag_last(
    channels: dict[str, Channel], tmp_path: Path
) -> None:
    """msgspec finds a union's tag by skipping the fields before it, recursively: a report whose
    `schema` comes after a value nested 5,000 deep was a RecursionError in `diff`."""
    from elfcost.diffing import diff_builds
    from elfcost.resolve.host import Host

    old = tmp_path / "old.json"
    old.write_bytes(next(iter(channels["report"].seeds.values())))
    bad = tmp_path / "new.json"
    bad.write_bytes(b'{"x":' + b"[" * 5000 + b"]" * 5000 + b',"schema":"elfcost.estimate/2"}')
    host = Host()
    with pytest.raises(InputError, match="nested too deeply") as exc:
        diff_builds(str(old), str(bad), host, host)
    assert str(exc.value).startswith(str(bad))
    r = _elfcost("diff", str(old), str(bad))
    _one_line_error(r, bad, 3)


def test_saved_report_with_a_400_digit_size(channels: dict[str, Channel], tmp_path: Path) -> None:
    """msgspec decodes any integer: a report whose total is 10**400 bytes made `diff`'s text
    end in OverflowError (a float division in report/units.py). Compared, it is rendered."""
    from elfcost.diffing import diff_builds
    from elfcost.report import outputs
    from elfcost.report.units import kib, size
    from elfcost.resolve.host import Host

    seed = next(iter(channels["report"].seeds.values()))
    old = tmp_path / "old.json"
    old.write_bytes(seed)
    doc = json.loads(seed)
    doc["total"]["private_dirty"]["expected"] = 10**400
    new = tmp_path / "new.json"
    new.write_text(json.dumps(doc))
    host = Host()
    text = outputs.diff(diff_builds(str(old), str(new), host, host, instances=129), "text")
    assert re.search(r"\d(,\d{3}){100,}\.\d\d GiB", text), text  # the fleet, to the byte
    assert size(10**400 + 1) == f"{10**400 // 1024**3:,}.00 GiB"
    assert kib(-(10**400) - 512) == f"-{10**400 // 1024:,}.5 KiB"
    assert (size(15 * 1024**3 + 1), kib(1536)) == ("15.00 GiB", "1.5 KiB")  # as before


def test_cache_entry_nested_too_deeply_is_a_miss(channels: dict[str, Channel]) -> None:
    """An unknown field of the header is skipped recursively: 5,000 levels of it were a
    RecursionError out of ResultCache.load, where a damaged entry must be a miss."""
    chan = channels["cache"]
    assert isinstance(chan, CacheChannel)
    name = next(n for n, d in chan.seeds.items() if b"\n{" in d)
    first, _, rest = chan.seeds[name].partition(b"\n")
    deep = b"[" * 5000 + b"]" * 5000
    path = chan.target(name)
    chan.write(path, first[:-1] + b',"x":' + deep + b"}\n" + rest)
    assert chan.feed(path) == "miss"
    chan.write(path, chan.seeds[name])
    assert chan.feed(path) == "hit"  # the entry as written is a hit: the test reaches load


def _smaps_capture() -> dict[str, bytes]:
    """A capture of committed, real smaps files (the same bytes on every run)."""
    data = ROOT / "tests" / "data" / "smaps"
    return {
        "smaps": (data / "glibc-pie-idle.txt").read_bytes(),
        "smaps_rollup": (data / "glibc-pie-idle.rollup.txt").read_bytes(),
        "pid": b"1234\n",
    }


def _tgz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def test_capture_with_a_corrupt_compressed_stream(tmp_path: Path) -> None:
    """A byte changed inside the deflate stream of a .tgz capture fails in the member's read
    with zlib.error, which was not an ElfcostError."""
    from elfcost.runtime.measure import measure

    good = _tgz(_smaps_capture())
    path = tmp_path / "cap.tgz"
    zlib_errors = 0
    for at in range(100, len(good) - 8, 37):
        bad = bytearray(good)
        bad[at] ^= 0x55
        try:  # what tarfile itself makes of it
            with tarfile.open(fileobj=io.BytesIO(bytes(bad))) as tar:
                for m in tar.getmembers():
                    if m.isfile():
                        tar.extractfile(m).read()  # type: ignore[union-attr]
        except zlib.error:
            zlib_errors += 1
        except (OSError, tarfile.TarError, EOFError):
            pass
        path.write_bytes(bad)
        try:
            measure(capture=str(path))
        except ElfcostError as exc:  # one line naming the capture
            assert str(exc).startswith(str(path))
    assert zlib_errors, "no corruption reached zlib.error: the test proves nothing"
    path.write_bytes(bytes(good[:200]) + b"\0" * 50 + bytes(good[250:]))
    r = _elfcost("measure", "--capture", str(path))
    assert r.returncode in (0, 3), r.stderr
    if r.returncode == 3:
        _one_line_error(r, path, 3)


def test_capture_tar_member_of_a_size_past_2_to_63(tmp_path: Path) -> None:
    """A member's size in base-256 (0x80 then eleven 0xff bytes) puts the next header past
    2**63: tarfile's seek raised ValueError, which was not an ElfcostError."""
    from channels import _checksum

    from elfcost.runtime.measure import measure

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in _smaps_capture().items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    header = bytearray(raw.getvalue()[:512])
    header[124:136] = b"\x80" + b"\xff" * 11
    _checksum(header)
    path = tmp_path / "cap.tar"
    path.write_bytes(bytes(header) + raw.getvalue()[512:])
    with pytest.raises(ElfcostError) as exc:
        measure(capture=str(path))
    assert str(exc.value).startswith(f"{path}: ")  # one line naming the capture


def test_capture_rollup_not_utf8(tmp_path: Path) -> None:
    """smaps_rollup was decoded strictly: a byte that is not UTF-8 was a UnicodeDecodeError;
    it is read as smaps is (the line it spoils is skipped or refused, never a crash)."""
    from elfcost.runtime.measure import measure

    files = _smaps_capture()
    files["smaps_rollup"] = files["smaps_rollup"].replace(b"Rss:", b"R\xffss:", 1)
    cap = tmp_path / "cap"
    cap.mkdir()
    for name, data in files.items():
        (cap / name).write_bytes(data)
    try:
        (m,) = measure(capture=str(cap))
    except ElfcostError as exc:
        assert str(exc).startswith(str(cap))
    else:
        assert m.pid == 1234


# -- end to end: the real command's one line and exit status --------------------------------------


def _elfcost(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [*ELFCOST, *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )


def _one_line_error(r: subprocess.CompletedProcess[str], path: Path, code: int) -> None:
    lines = r.stderr.splitlines()
    assert r.returncode == code, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"elfcost: error: {path}"), r.stderr
    assert "Traceback" not in r.stderr


def test_end_to_end(channels: dict[str, Channel], tmp_path: Path, samples: Path) -> None:
    """A few mutants of each kind through `elfcost` itself: one line naming the file, exit 3
    (a budget: exit 2, a usage error); a damaged cache entry changes nothing."""
    deep = b"[" * 5000 + b"]" * 5000
    baseline = tmp_path / "baseline.json"
    baseline.write_bytes(b'{"a": ' + deep + b"}")
    _one_line_error(_elfcost("check", "--baseline", str(baseline), "/bin/true"), baseline, 3)
    baseline.write_bytes(b'{"a": -1}')
    r = _elfcost("check", "--baseline", str(baseline), "/bin/true")
    _one_line_error(r, baseline, 3)
    assert "not an elfcost baseline document" in r.stderr  # it said "not an dict document"

    budget = tmp_path / "budget.toml"
    budget.write_text("[rule]\nmatch = 'x'\n")
    r = _elfcost("check", "--budget", str(budget), "/bin/true")
    assert r.returncode == 2 and str(budget) in r.stderr and "Traceback" not in r.stderr

    deb = tmp_path / "bad.deb"
    data = next(d for n, d in channels["archive"].seeds.items() if n.endswith(".deb"))
    deb.write_bytes(data[: len(data) // 2])
    r = _elfcost("scan", "--no-cache", str(deb))
    assert r.returncode == 3, r.stderr
    assert r.stderr.count(str(deb)) == 1 and "Traceback" not in r.stderr, r.stderr

    cap = tmp_path / "cap.tgz"
    cap.write_bytes(_tgz(_smaps_capture())[:-40])
    r = _elfcost("measure", "--capture", str(cap))
    if r.returncode != 0:  # a gzip cut in its trailer may still read whole
        _one_line_error(r, cap, 3)

    # scan with every cache entry damaged: the same results as a scan without a cache
    cache = tmp_path / "cache"
    prog = tmp_path / "prog"
    prog.write_bytes((samples / "trivial.pie").read_bytes())
    prog.chmod(0o755)
    args = ("scan", "-j", "1", "--format", "jsonl", "--cache-dir", str(cache), str(prog))
    first = _elfcost(*args)
    assert first.returncode == 0, first.stderr
    from elfcost.scan.cache import ResultCache

    stored = ResultCache(str(cache))
    entries = list(stored.entries())
    stored.close()
    assert entries
    shutil.rmtree(cache)  # stored again, each damaged, in a well-formed pack
    damaged = ResultCache(str(cache))
    for key, data in entries:
        damaged.put(key, data.replace(b'{"format"', b'{"x":' + deep + b',"format"', 1))
    damaged.close()
    again = _elfcost(*args)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    # the program's result line, then the scan's summary
    results = [json.loads(r.stdout.splitlines()[0]) for r in (first, again)]
    assert results[1].pop("cached") is False  # the damaged entry was a miss, not used
    results[0].pop("cached")
    assert results[0] == results[1]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
