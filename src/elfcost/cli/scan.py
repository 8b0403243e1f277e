from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import click

from elfcost.cli import common


@common.command
def command(
    state: common.State,
    paths: tuple[str, ...] = common.argument(nargs=-1),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    jobs: int | None = common.option("-j", "--jobs", type=click.IntRange(min=1)),
    no_cache: bool = common.option("--no-cache", is_flag=True),
    cache_dir: str | None = common.option("--cache-dir", type=click.Path(file_okay=False)),
    top: int = common.option("--top", type=common.count(), default=10),
    archive: bool = common.option(
        "--archive",
        is_flag=True,
        help="Each directory in PATHS is one archive: a directory of .deb/.apk/.rpm files or a "
        "Debian repository (dists/, pool/), scanned as one system with every package "
        "installed. Its packages' architecture is the machine.",
    ),
    max_unpacked: int = common.option(
        "--max-unpacked",
        type=common.Size(),
        default="4G",
        metavar="SIZE",
        help="What one package archive may unpack to, and what an --archive may keep of its "
        "ELF files (in package order: a package that does not fit is not installed).",
    ),
    remedies: bool = common.option(
        "--remedies",
        is_flag=True,
        help="Estimate each program's what-ifs too (static, the other libc, binding), and sum "
        "what each saves over the programs scanned.",
    ),
    weights: str | None = common.option(
        "--weights",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Instances of each program, one `INSTANCES PATH` a line: programs are ranked, "
        "and libraries and savings summed, times their instances (1 if not named).",
    ),
    fmt: str = common.format_option(
        ["text", "json", "jsonl", "html", "parquet"],
        "jsonl: one estimate per program as it is done, then a summary; json: the summary "
        "and ranking; html: the ranking as a page (with -o FILE); parquet: programs.parquet "
        "and objects.parquet in the directory -o DIR (pyarrow).",
    ),
    output: str | None = common.option("-o", "--output", type=click.Path()),
) -> None:
    """Rank every ELF program under PATHS, and the libraries they load, by cost.

    PATHS are directories, root file systems, or .deb/.apk/.tar.*/.rpm packages; with
    --archive, each directory is one archive of packages. Prints the most expensive programs
    and the libraries that cost most summed over the programs that load them ("who needs
    libX"). Results are cached across runs (not an --archive's).
    """
    import msgspec

    from elfcost.analysis import Ranked, missing_of, rank, read_weights, uncalibrated
    from elfcost.documents import ScanDoc
    from elfcost.report import jsonout
    from elfcost.scan import Scan, ScanOptions, ScanResult

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a directory: give -o DIR")
    if fmt != "parquet" and output is not None and os.path.isdir(output):
        raise click.UsageError(f"-o {output}: a directory (only --format parquet writes one)")
    if remedies and scenario.assume is not None:
        raise click.UsageError("--remedies estimates every what-if: not with --assume")
    tables = None
    if fmt == "parquet":
        from elfcost.report.parquet import ParquetTables, require_pyarrow

        require_pyarrow()
        tables = ParquetTables()
    counts = read_weights(weights) if weights is not None else None
    if not paths:
        if not host.confined:
            raise click.UsageError("give PATHS, or --root DIR to scan a whole root")
        paths = (host.root,)
    opts = ScanOptions(
        root=host.root,
        ld_library_path=host.ld_library_path,
        preload=host.preload,
        isa_level=host.isa_level,
        page_size=scenario.page_size,
        assume=scenario.assume,  # type: ignore[arg-type]  # one of click.Choice's
        jobs=jobs,
        cache_dir=cache_dir,
        no_cache=no_cache,
        archive=archive,
        remedies=remedies,
        max_archive_bytes=max_unpacked,
    )

    caveats = {"missing": 0, "uncalibrated": 0}  # programs, counted in the summary

    def shown(results: Iterable[ScanResult]) -> Iterator[Ranked]:
        """Each result as it is done: an error reported, a JSON line written."""
        for r in results:
            if tables is not None:
                tables.add(r.path, r.loader_path, r.doc, package=r.package, error=r.error)
            if r.error:
                state.error(r.error, path=r.path)
                for line in state.take_errors():  # jsonl: an elfcost.error/1 line in its place
                    click.echo(line, nl=False)
                continue
            if fmt == "jsonl":
                click.echo(r.jsonl())
            if r.doc is not None:
                caveats["missing"] += bool(missing_of(r.doc))
                caveats["uncalibrated"] += uncalibrated(r.doc)
                yield r.path, r.loader_path, r.doc

    state.json_errors(fmt == "jsonl")
    with state.progress("scanning", show=fmt != "jsonl") as bar:
        sc = Scan(list(paths), opts, on_progress=bar.update)
        # The page's tables hold every program; its bars and the other formats the top ones.
        ranking = rank(shown(sc.results()), None if fmt == "html" else top, weights=counts)
    summary = msgspec.structs.replace(sc.summary, **caveats)
    if tables is not None:
        assert output is not None
        tables.write(output)
        return
    if fmt in ("json", "jsonl"):
        doc = ScanDoc(summary=summary, ranking=ranking)
        out = jsonout.dumps(doc, pretty=fmt == "json") + "\n"
    elif fmt == "html":
        from elfcost.report.html import scan_html

        out = scan_html(ScanDoc(summary=summary, ranking=ranking), top=max(top, 20))
    else:
        from elfcost.report.text import scan_text

        out = scan_text(summary, ranking)
    common.emit([out], output)
