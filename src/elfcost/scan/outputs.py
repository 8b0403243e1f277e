"""`elfcost scan`'s run and output: each result reported as it is done (an error line, a JSON
line, a Parquet row), then the ranking rendered in the format asked for. The command line
parses its options, has `check_output` hold -o to --format, and calls `scan_report`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence

import msgspec

from elfcost.analysis import Ranked, missing_of, rank, read_weights, uncalibrated
from elfcost.documents import ScanDoc
from elfcost.errors import ClusterError, Exit, UsageError
from elfcost.report import jsonout
from elfcost.report.status import Status
from elfcost.scan.run import Scan, ScanOptions, ScanResult


def check_output(fmt: str, output: str | None) -> None:
    """-o fits --format: Parquet is two tables in a directory, every other format one file.
    Raises UsageError (exit 2), before anything is scanned."""
    if fmt == "parquet" and output is None:
        raise UsageError("--format parquet writes a directory: give -o DIR")
    if fmt != "parquet" and output is not None and os.path.isdir(output):
        raise UsageError(f"-o {output}: a directory (only --format parquet writes one)")


def scan_report(
    paths: Sequence[str],
    opts: ScanOptions,
    *,
    fmt: str,
    top: int,
    weights: str | None,
    output: str | None,
    status: Status,
) -> str | None:
    """Scan `paths`; the report for stdout or -o FILE, or None when there is none to write
    (Parquet tables were written to the directory `output`, or the cluster failed: exit 5)."""
    tables = None
    if fmt == "parquet":
        from elfcost.report.parquet import ParquetTables, require_pyarrow

        require_pyarrow()
        tables = ParquetTables()
    counts = read_weights(weights) if weights is not None else None
    caveats = {"missing": 0, "uncalibrated": 0}  # programs, counted in the summary

    def shown(results: Iterable[ScanResult]) -> Iterator[Ranked]:
        """Each result as it is done: an error reported, a JSON line written."""
        for r in results:
            if tables is not None:
                tables.add(r.path, r.loader_path, r.doc, package=r.package, error=r.error)
            if r.error:
                status.error(r.error, path=r.path)
                sys.stdout.writelines(status.take_errors())  # jsonl: an error line in its place
                continue
            if fmt == "jsonl":
                sys.stdout.write(r.jsonl() + "\n")
            if r.doc is not None:
                caveats["missing"] += bool(missing_of(r.doc))
                caveats["uncalibrated"] += uncalibrated(r.doc)
                yield r.path, r.loader_path, r.doc

    status.json_errors(fmt == "jsonl")
    with status.progress("scanning", show=fmt != "jsonl") as bar:
        sc = Scan(list(paths), opts, on_progress=bar.update)
        try:
            # The page's tables hold every program; its bars and the other formats the top ones.
            ranking = rank(shown(sc.results()), None if fmt == "html" else top, weights=counts)
        except ClusterError as exc:  # the scan cannot finish: no summary, exit 5
            status.error(exc, path=exc.path, code=Exit.CLUSTER_ERROR)
            sys.stdout.writelines(status.take_errors())
            return None
    summary = msgspec.structs.replace(sc.summary, **caveats)
    if tables is not None:
        assert output is not None
        tables.write(output)
        return None
    if fmt in ("json", "jsonl"):
        return jsonout.dumps(ScanDoc(summary=summary, ranking=ranking), pretty=fmt == "json") + "\n"
    if fmt == "html":
        from elfcost.report.html import scan_html

        return scan_html(ScanDoc(summary=summary, ranking=ranking), top=max(top, 20))
    from elfcost.report.text import scan_text

    return scan_text(summary, ranking)
