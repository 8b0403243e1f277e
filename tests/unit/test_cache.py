"""scan/cache.py: entries in packs, found through their indexes, merged when there are many;
whatever is found in the directory is a hit or a miss, never an error, a hang or a large read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest

from elfcost.scan import cache
from elfcost.scan.cache import Entry, ResultCache, Validity, digest, file_stat

ENV = "env-1"


def _validity(file: Path) -> Validity:
    st = file_stat(str(file))
    assert st is not None
    return Validity(env=ENV, identity=(str(file), st))


def _locate(p: str) -> str:
    return p


def _store(directory: Path, items: dict[str, tuple[Path, str]]) -> None:
    """One writer's entries: key -> (the file it is about, its kind)."""
    c = ResultCache(str(directory))
    for key, (file, kind) in items.items():
        c.store(key, _validity(file), Entry(kind=kind, text=None))
    c.close()


def _more_packs_than_kept(tmp_path: Path) -> Path:
    """A cache of MAX_PACKS + 1 writers' packs, an entry each: the next tidy() merges."""
    d, f = tmp_path / "c", tmp_path / "f"
    f.write_bytes(b"x")
    for i in range(cache.MAX_PACKS + 1):
        _store(d, {f"k{i}": (f, "library")})
    return d


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory / f"scan-{cache.FORMAT}"))


def test_entries_are_found_once_their_pack_is_indexed(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    writer = ResultCache(str(tmp_path / "c"))
    writer.store("k1", _validity(f), Entry(kind="library", text=None))
    writer.store("k2", _validity(f), Entry(kind="not_loadable", text=None))
    # Not indexed yet: another reader finds nothing (a writer still running, or killed).
    assert ResultCache(str(tmp_path / "c")).load("k1", ENV, _locate) is None
    writer.close()
    (name,) = {n.rsplit(".", 1)[0] for n in _files(tmp_path / "c")}
    assert _files(tmp_path / "c") == [f"{name}.idx", f"{name}.pack"]  # one file per writer
    reader = ResultCache(str(tmp_path / "c"))
    assert reader.load("k1", ENV, _locate) == Entry(kind="library", text=None)
    assert reader.load("k2", ENV, _locate) == Entry(kind="not_loadable", text=None)
    assert reader.load("k3", ENV, _locate) is None
    assert reader.load("k1", "another env", _locate) is None
    f.write_bytes(b"changed")  # the file it was computed from changed: stale
    assert ResultCache(str(tmp_path / "c")).load("k1", ENV, _locate) is None
    reader.close()


def test_a_writer_that_stores_nothing_leaves_nothing(tmp_path: Path) -> None:
    c = ResultCache(str(tmp_path))
    c.close()
    assert not (tmp_path / f"scan-{cache.FORMAT}").exists()


def test_a_later_pack_wins_for_a_key_stored_again(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    _store(tmp_path / "c", {"k": (f, "library")})
    _store(tmp_path / "c", {"k": (f, "program-less")})
    entry = ResultCache(str(tmp_path / "c")).load("k", ENV, _locate)
    assert entry is not None and entry.kind == "program-less"


def test_many_packs_are_merged_without_superseded_or_stale_entries(tmp_path: Path) -> None:
    d = tmp_path / "c"
    keep, gone = tmp_path / "keep", tmp_path / "gone"
    keep.write_bytes(b"x")
    gone.write_bytes(b"x")
    runs = cache.MAX_PACKS + 1
    for i in range(runs):
        _store(d, {f"k{i}": (keep, "library"), "again": (keep, f"kind{i}"), "old": (gone, "x")})
    assert len([n for n in _files(d) if n.endswith(".idx")]) == runs
    gone.unlink()
    reader = ResultCache(str(d))
    before = {k: reader.read(k) for k in (*(f"k{i}" for i in range(runs)), "again")}
    reader.close()
    assert ResultCache(str(d)).tidy() is True
    names = _files(d)
    assert [n for n in names if n.endswith(".idx")] and len(names) == 3  # idx, pack, lock
    merged = ResultCache(str(d))
    assert {k: merged.read(k) for k in before} == before  # the latest of each, unchanged
    assert merged.read("old") is None  # its file is gone: left out
    assert len(list(merged.entries())) == runs + 1
    assert ResultCache(str(d)).tidy() is False  # one pack: nothing to merge


def test_a_merge_leaves_a_later_writers_pack_winning(tmp_path: Path) -> None:
    d = tmp_path / "c"
    f = tmp_path / "f"
    f.write_bytes(b"x")
    for i in range(cache.MAX_PACKS + 1):
        _store(d, {"k": (f, f"old{i}")})
    earlier = set(_files(d))
    late = ResultCache(str(d))
    late.store("k", _validity(f), Entry(kind="late", text=None))
    late.close()  # indexed after the others: newer than all of them
    # Take the late one out of the merge, as if it had been indexed while the merge ran.
    (late_idx,) = [n for n in _files(d) if n not in earlier and n.endswith(".idx")]
    hold = tmp_path / "held.idx"
    os.rename(d / f"scan-{cache.FORMAT}" / late_idx, hold)
    assert ResultCache(str(d)).tidy() is True
    os.rename(hold, d / f"scan-{cache.FORMAT}" / late_idx)
    entry = ResultCache(str(d)).load("k", ENV, _locate)
    assert entry is not None and entry.kind == "late"


def test_a_merge_removes_abandoned_packs_and_temporary_files(tmp_path: Path) -> None:
    d = _more_packs_than_kept(tmp_path)
    top = d / f"scan-{cache.FORMAT}"
    (top / "killed-1-aa-0.pack").write_bytes(b"half an entry")
    (top / ".tmp-killed-1-aa-0.idx").write_bytes(b"{")
    (top / "running-2-bb-0.pack").write_bytes(b"being written")
    old = time.time() - cache.ABANDONED_SECONDS - 60
    for n in ("killed-1-aa-0.pack", ".tmp-killed-1-aa-0.idx"):
        os.utime(top / n, (old, old))
    assert ResultCache(str(d)).tidy() is True
    names = _files(d)
    assert "running-2-bb-0.pack" in names  # a writer still at work keeps its pack
    assert "killed-1-aa-0.pack" not in names and ".tmp-killed-1-aa-0.idx" not in names


def test_a_merge_already_under_way_is_not_repeated(tmp_path: Path) -> None:
    import fcntl

    d = _more_packs_than_kept(tmp_path)
    fd = os.open(d / f"scan-{cache.FORMAT}" / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert ResultCache(str(d)).tidy() is False
    finally:
        os.close(fd)
    assert ResultCache(str(d)).tidy() is True


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)


def _one_entry(d: Path, f: Path) -> tuple[Path, Path]:
    _store(d, {"k": (f, "library")})
    top = d / f"scan-{cache.FORMAT}"
    (idx,) = top.glob("*.idx")
    return idx, idx.with_suffix(".pack")


def _index(size: int, entries: list[tuple[str, int, int]]) -> bytes:
    return msgspec.json.encode(
        {"format": cache.FORMAT, "written": 1, "size": size, "entries": entries}
    )


@pytest.mark.parametrize(
    "damage",
    [
        # the pack
        lambda idx, pack: (pack.unlink(), os.mkfifo(pack)),  # would block a plain open()
        lambda idx, pack: (pack.unlink(), os.symlink("/dev/zero", pack)),
        lambda idx, pack: (pack.unlink(), _sparse(pack, 100 << 30)),  # not its indexed size
        lambda idx, pack: pack.write_bytes(pack.read_bytes()[:-1]),  # truncated
        lambda idx, pack: pack.write_bytes(b"\0" * len(pack.read_bytes())),  # overwritten
        lambda idx, pack: pack.unlink(),
        # the index
        lambda idx, pack: (idx.unlink(), os.mkfifo(idx)),
        lambda idx, pack: (idx.unlink(), os.symlink("/dev/zero", idx)),
        lambda idx, pack: (idx.unlink(), _sparse(idx, 100 << 30)),
        lambda idx, pack: idx.write_bytes(_index(1, [("k", 0, 1)])[:-5]),  # torn
        lambda idx, pack: idx.write_bytes(b"[" * 5000 + b"]" * 5000),
        lambda idx, pack: idx.write_bytes(_index(1 << 62, [("k", 0, 1 << 61)])),
        lambda idx, pack: idx.write_bytes(_index(100, [("k", -5, 10)])),
        lambda idx, pack: idx.write_bytes(_index(10, [("k", 5, 10)])),  # past its end
        lambda idx, pack: idx.write_bytes(_index(pack.stat().st_size, [("k", 0, 3)])),
    ],
    ids=[
        "pack-fifo", "pack-dev-zero", "pack-sparse-100G", "pack-truncated", "pack-zeroed",
        "pack-absent", "idx-fifo", "idx-dev-zero", "idx-sparse-100G", "idx-torn", "idx-deep",
        "idx-huge-length", "idx-negative", "idx-past-end", "idx-wrong-length",
    ],
)  # fmt: skip
def test_a_damaged_pack_or_index_is_a_miss(tmp_path: Path, damage: object) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    idx, pack = _one_entry(tmp_path / "c", f)
    damage(idx, pack)  # type: ignore[operator]
    c = ResultCache(str(tmp_path / "c"))
    assert c.load("k", ENV, _locate) is None
    # entries() yields nothing from it, or (an index naming the wrong length) the bytes the
    # index names, which load() found no entry in
    assert [k for k, _ in c.entries()] in ([], ["k"])
    c.close()


def test_an_unwritable_directory_is_no_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    f = tmp_path / "f"
    f.write_bytes(b"x")
    c = ResultCache(str(blocked))
    c.store("k", _validity(f), Entry(kind="library", text=None))
    c.close()
    assert c.load("k", ENV, _locate) is None and c.tidy() is False


def test_keys_are_stable_hashes() -> None:
    assert digest(["a", 1, None]) == digest(["a", 1, None]) != digest(["a", 1])


def test_an_entry_whose_text_was_altered_is_a_miss(tmp_path: Path) -> None:
    # A number changed in place still decodes as an estimate: the text's hash tells it.
    f = tmp_path / "f"
    f.write_bytes(b"x")
    c = ResultCache(str(tmp_path / "c"))
    c.store("k", _validity(f), Entry(kind="program", text=b'{"pages":12}'))
    c.close()
    entry = ResultCache(str(tmp_path / "c")).load("k", ENV, _locate)
    assert entry == Entry(kind="program", text=b'{"pages":12}')
    (pack,) = (tmp_path / "c").rglob("*.pack")
    pack.write_bytes(pack.read_bytes().replace(b'"pages":12', b'"pages":13'))
    assert ResultCache(str(tmp_path / "c")).load("k", ENV, _locate) is None


def test_a_run_stats_each_loader_path_once_when_it_stores(tmp_path: Path) -> None:
    # The programs of a scan depend on the same libraries and directories: each is stat'ed
    # at its first observation, and that stat is recorded in every entry until close().
    lib, d = tmp_path / "libx.so", tmp_path / "c"
    lib.write_bytes(b"x")
    located: list[str] = []

    def locate(p: str) -> str:
        located.append(p)
        return str(tmp_path / p.removeprefix("/"))

    c = ResultCache(str(d))
    first = c.observe(ENV, _validity(lib).identity, ["/libx.so"], ["/"], locate)
    lib.write_bytes(b"changed")  # the Host of this run keeps what it read first
    second = c.observe(ENV, _validity(lib).identity, ["/libx.so", "/liby.so"], ["/"], locate)
    assert located == ["/libx.so", "/", "/liby.so"]
    assert second.files[0] == first.files[0] and second.files[1] == ("/liby.so", None)
    c.close()
    third = c.observe(ENV, _validity(lib).identity, ["/libx.so"], ["/"], locate)
    assert third.files[0] == ("/libx.so", file_stat(str(lib)))
    assert third.files[0] != first.files[0]


def test_an_entry_naming_a_path_with_a_nul_byte_is_left_out_of_a_merge(tmp_path: Path) -> None:
    # A damaged entry whose file is named with a NUL byte (no path holds one): os.stat raises
    # ValueError, not OSError. The merge at the end of a scan met it as an internal error, the
    # scan's report was lost, and every later scan failed the same way; now it is a miss.
    d = _more_packs_than_kept(tmp_path)
    f = tmp_path / "f"
    st = file_stat(str(f))
    assert st is not None
    c = ResultCache(str(d))
    c.store("nul", Validity(env=ENV, identity=(f"{f}\0x", st)), Entry(kind="library", text=None))
    c.close()
    assert ResultCache(str(d)).load("nul", ENV, _locate) is None
    assert ResultCache(str(d)).tidy() is True
    merged = ResultCache(str(d))
    assert merged.read("nul") is None and merged.read("k0") is not None
