"""Package archives and repository indices that stand for far more than their size, or less
than they claim: refused in one line (InputError), quickly, never read to the end of a bomb or
cut short in silence."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
import zlib
from pathlib import Path

import pytest

from elfcost.errors import InputError
from elfcost.scan import archive, repo

INDEX = b"".join(
    b"Package: p%d\nVersion: 1\nFilename: pool/main/p%d.deb\nDescription: %s\n\n"
    % (i, i, b"x" * 400)
    for i in range(40)
)


def _repository(tmp_path: Path, name: str, data: bytes) -> Path:
    where = tmp_path / "repo" / "dists" / "stable" / "main" / "binary-amd64"
    where.mkdir(parents=True)
    (where / name).write_bytes(data)
    pool = tmp_path / "repo" / "pool" / "main"
    pool.mkdir(parents=True)
    for i in range(40):
        (pool / f"p{i}.deb").write_bytes(b"!<arch>\n")
    return tmp_path / "repo"


@pytest.mark.parametrize(
    ("name", "compress"),
    [("Packages", bytes), ("Packages.gz", gzip.compress), ("Packages.xz", lzma.compress)],
)
def test_an_index_lists_every_package_however_it_is_stored(
    tmp_path: Path, name: str, compress: object
) -> None:
    # Half the stanzas in one gzip member (xz stream), half in another, as `cat a.gz b.gz`
    # makes: the gzip and xz tools read both, and so does the scan.
    half = INDEX.index(b"Package: p20\n")
    c = compress  # type: ignore[assignment]
    data = INDEX if name == "Packages" else c(INDEX[:half]) + c(INDEX[half:])  # type: ignore[operator]
    files, errors = repo.repository_files(str(_repository(tmp_path, name, data)))
    assert errors == [] and [Path(f).name for f in files] == [f"p{i}.deb" for i in range(40)]


@pytest.mark.parametrize(
    ("name", "compress"), [("Packages.gz", gzip.compress), ("Packages.xz", lzma.compress)]
)
def test_a_truncated_index_is_an_error_not_fewer_packages(
    tmp_path: Path, name: str, compress: object
) -> None:
    # Cut in the middle, the stream still decompresses to the stanzas before the cut: without
    # its end marker checked, the packages after it would be missing without a word.
    data = compress(INDEX)  # type: ignore[operator]
    top = _repository(tmp_path, name, data[: len(data) // 2])
    files, errors = repo.repository_files(str(top))
    index = top / "dists" / "stable" / "main" / "binary-amd64" / name
    assert files == []
    assert [e.message for e in errors] == [
        f"{index}: decompressing: the stream ends before its end marker"
    ]


def test_a_corrupt_gzip_index_is_an_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(INDEX))
    data[12:40] = bytes(b ^ 0x55 for b in data[12:40])
    top = _repository(tmp_path, "Packages.gz", bytes(data))
    files, errors = repo.repository_files(str(top))
    assert files == [] and len(errors) == 1
    assert ": decompressing: " in errors[0].message  # zlib's error, once an internal error


def test_an_index_standing_for_more_than_the_bound_stops_there(tmp_path: Path) -> None:
    # 300 MB of zeros in 300 KB: decompressed only up to the bound (256 MiB) plus one byte.
    z = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = bytes(1 << 20)
    data = b"".join(z.compress(chunk) for _ in range(300)) + z.flush()
    top = _repository(tmp_path, "Packages.gz", data)
    files, errors = repo.repository_files(str(top))
    assert files == [] and len(errors) == 1
    assert errors[0].message.endswith(f"more than {repo.MAX_PACKAGES_INDEX:,} bytes uncompressed")


def test_a_filename_with_a_nul_byte_is_refused_and_the_others_are_listed(tmp_path: Path) -> None:
    top = _repository(tmp_path, "Packages", INDEX + b"Package: x\nFilename: pool/main/a\0b.deb\n\n")
    files, errors = repo.repository_files(str(top))
    assert len(files) == 40
    assert [e.message.split(": ", 1)[1] for e in errors] == ["'pool/main/a\\x00b.deb': a NUL byte"]


def test_a_stream_of_zero_blocks_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    # With ignore_zeros (an .apk's tar segments follow each other's end-of-archive blocks),
    # tarfile skips a zero block at a time: 16 GiB of zeros in a 568 KB .tar.zst took minutes.
    # Past MAX_SKIPPED_BLOCKS skipped blocks the archive is refused.
    bomb = tmp_path / "zeros.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as out:
        for _ in range(64):
            out.write(bytes(1 << 20))  # 131,072 blocks
    with pytest.raises(InputError, match="more than 65536 blocks that are no member header"):
        archive.unpack(str(bomb), str(tmp_path / "out"))
    # An archive with the few zero blocks real ones have between segments is read whole.
    ok = tmp_path / "two.tar"
    with ok.open("wb") as out:
        for name in ("a", "b"):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                info = tarfile.TarInfo(name)
                info.size = 3
                tf.addfile(info, io.BytesIO(b"abc"))
            out.write(buf.getvalue())  # each with its end-of-archive blocks and padding
    dest = tmp_path / "two"
    dest.mkdir()
    assert archive.unpack(str(ok), str(dest)).files == 2


def _header_bomb(path: Path, kind: bytes, claimed: int, data: int) -> None:
    """A .tar.gz whose first member is a pax extended header (kind b"x") or a GNU long name
    (b"L") claiming `claimed` bytes, followed by `data` bytes of zeros: tarfile read that
    data whole, at the size claimed, before anyone could look at the member."""
    info = tarfile.TarInfo("././@PaxHeader" if kind == b"x" else "././@LongLink")
    info.type, info.size = kind, claimed
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(info.tobuf(tarfile.GNU_FORMAT))
        out.write(bytes(data))


@pytest.mark.parametrize(("kind", "what"), [(b"x", "a pax extended header"), (b"L", "a long name")])
def test_an_extended_header_claiming_gigabytes_is_refused_before_it_is_read(
    tmp_path: Path, kind: bytes, what: str
) -> None:
    # 2 MiB of it here; a 109 KB .tar.zst claiming 3 GiB with the zeros to match took 3.2 GB.
    bomb = tmp_path / "bomb.tar.gz"
    _header_bomb(bomb, kind, 3 << 30, 2 << 20)
    with pytest.raises(InputError) as refused:
        archive.unpack(str(bomb), str(tmp_path))
    assert str(refused.value) == (
        f"{bomb}: unpacking: {what} of 3,221,225,472 bytes at 0x0 (more than 1,048,576): refused"
    )
    # The same in a capture (`measure --capture FILE.tgz`).
    from elfcost.runtime.capture import read_capture

    with pytest.raises(InputError) as refused:
        read_capture(str(bomb))
    assert str(refused.value).startswith(f"{bomb}: reading the capture: {what} of 3,221,225,472")
