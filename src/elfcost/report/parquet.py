"""`elfcost scan --format parquet -o DIR`: the scan as two tables, so that a question over a
whole archive is one query.

DIR/programs.parquet has one row per program (and one per input that could not be analysed,
with `error` set); DIR/objects.parquet one row per (program, object mapped), the program
itself first (`position` 0). Sizes are bytes. `archive` is the prefix the scan shows before
the loader path (an archive's path and "!"; "" for files of this machine), `package` the
package the program comes from (scan --archive). pyarrow is an optional dependency
(pip install 'elfcost[parquet]').
"""

from __future__ import annotations

import errno
import os
from typing import Any

from elfcost.analysis import missing_of, uncalibrated
from elfcost.documents import EstimateDoc
from elfcost.errors import InputError, OutputError

PROGRAMS = "programs.parquet"
OBJECTS = "objects.parquet"


def require_pyarrow() -> None:
    """Raises InputError (a usage the installation cannot serve) when pyarrow is missing,
    before any work is done."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputError(
            "--format parquet",
            "",
            "needs the pyarrow module: pip install 'elfcost[parquet]'",
        ) from None


class ParquetTables:
    """Rows gathered as the scan yields them, written at the end (Parquet is columnar)."""

    def __init__(self) -> None:
        self.programs: dict[str, list[Any]] = {k: [] for k in _PROGRAM_COLUMNS}
        self.objects: dict[str, list[Any]] = {k: [] for k in _OBJECT_COLUMNS}

    def add(
        self,
        path: str,
        loader_path: str,
        doc: EstimateDoc | None,
        *,
        package: str | None = None,
        error: str | None = None,
    ) -> None:
        prefix = path[: -len(loader_path)] if loader_path and path.endswith(loader_path) else ""
        p = self.programs
        p["archive"].append(prefix)
        p["package"].append(package)
        p["path"].append(path)
        p["loader_path"].append(loader_path)
        p["error"].append(error)
        if doc is None:
            for k in list(_PROGRAM_COLUMNS)[5:]:
                p[k].append(None)
            return
        t = doc.total
        p["machine"].append(doc.machine)
        p["page_size"].append(doc.page_size)
        p["expected"].append(t.private_dirty.expected)
        p["low"].append(t.private_dirty.low)
        p["high"].append(t.private_dirty.high)
        p["at_entry"].append(t.private_dirty.at_entry)
        p["shared_clean"].append(t.shared_clean)
        p["objects"].append(len(doc.objects))
        p["missing"].append(list(missing_of(doc)))
        p["uncalibrated"].append(uncalibrated(doc))
        saved = {s.assume: s.per_instance for s in doc.savings or ()}
        for k in _SAVINGS:
            p[f"saved_{k.replace('-', '_')}"].append(saved.get(k))
        o = self.objects
        for i, obj in enumerate(doc.objects):
            o["archive"].append(prefix)
            o["package"].append(package)
            o["program"].append(path)
            o["position"].append(i)
            o["object"].append(prefix + obj.path)
            o["loader_path"].append(obj.path)
            o["soname"].append(obj.soname)
            o["role"].append(obj.role)
            o["expected"].append(obj.private_dirty.expected)
            o["low"].append(obj.private_dirty.low)
            o["high"].append(obj.private_dirty.high)
            o["at_entry"].append(obj.private_dirty.at_entry)
            o["shared_clean"].append(obj.shared_clean)
            o["writable_pages"].append(obj.writable_pages)

    def write(self, directory: str) -> None:
        """DIR/programs.parquet and DIR/objects.parquet; DIR is made if missing. Raises
        OutputError."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if os.path.exists(directory) and not os.path.isdir(directory):
                # makedirs says "File exists" of a file or a device (-o /dev/full)
                raise NotADirectoryError(errno.ENOTDIR, "not a directory")
            os.makedirs(directory, exist_ok=True)
            for name, columns, types in (
                (PROGRAMS, self.programs, _PROGRAM_COLUMNS),
                (OBJECTS, self.objects, _OBJECT_COLUMNS),
            ):
                table = pa.table(columns, schema=_schema(types))
                pq.write_table(table, os.path.join(directory, name))
        except OSError as exc:
            raise OutputError(directory, "writing Parquet", exc.strerror or str(exc)) from None


_SAVINGS = ("static", "musl", "glibc", "musl-static", "glibc-static", "bind-now", "lazy")

# Column name -> type: "s" string, "i" 64-bit integer, "b" boolean, "ls" list of strings.
_PROGRAM_COLUMNS: dict[str, str] = {
    "archive": "s",
    "package": "s",
    "path": "s",
    "loader_path": "s",
    "error": "s",
    # from here on, null for an input that could not be analysed
    "machine": "s",
    "page_size": "i",
    "expected": "i",
    "low": "i",
    "high": "i",
    "at_entry": "i",
    "shared_clean": "i",
    "objects": "i",
    "missing": "ls",
    "uncalibrated": "b",
    # what each --assume what-if saves one instance (scan --remedies); null: not computed or
    # not applicable
    **{f"saved_{k.replace('-', '_')}": "i" for k in _SAVINGS},
}
_OBJECT_COLUMNS: dict[str, str] = {
    "archive": "s",
    "package": "s",
    "program": "s",
    "position": "i",
    "object": "s",
    "loader_path": "s",
    "soname": "s",
    "role": "s",
    "expected": "i",
    "low": "i",
    "high": "i",
    "at_entry": "i",
    "shared_clean": "i",
    "writable_pages": "i",
}


def _schema(columns: dict[str, str]) -> Any:
    import pyarrow as pa

    kinds = {"s": pa.string(), "i": pa.int64(), "b": pa.bool_(), "ls": pa.list_(pa.string())}
    return pa.schema([(name, kinds[kind]) for name, kind in columns.items()])
