from __future__ import annotations

import click

from elfcost.cli import common


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A scheduler's address as distributed writes them (tcp://HOST:PORT, tls://, ...)."""
    scheme, sep, rest = (value or "").partition("://")
    if value is not None and not (sep and scheme.isalnum() and rest):
        raise click.BadParameter(f"{value!r} is not an address such as tcp://HOST:PORT")
    return value


@common.command
def command(
    state: common.State,
    paths: tuple[str, ...] = common.argument(nargs=-1),
    host: common.Host = common.HOST,
    scenario: common.Scenario = common.SCENARIO,
    jobs: int | None = common.option("-j", "--jobs", type=click.IntRange(min=1)),
    scheduler: str | None = common.option("--scheduler", metavar="ADDRESS", callback=_address),
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
    worker_store: int = common.option(
        "--worker-store",
        type=common.Size(),
        default="2G",
        metavar="SIZE",
        help="With --archive and --scheduler: what each worker keeps of the archive's ELF "
        "files, read from the packages where they are analysed (the packages used least "
        "recently are dropped first).",
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
    from elfcost.scan import ScanOptions
    from elfcost.scan.outputs import check_output, scan_report

    if scheduler is not None and jobs is not None:
        raise click.UsageError("-j/--jobs and --scheduler: the cluster's workers are the jobs")
    check_output(fmt, output)
    if remedies and (scenario.assume is not None or scenario.static_libs):
        raise click.UsageError("--remedies estimates every what-if: not with --assume")
    if not paths:
        if not host.confined:
            raise click.UsageError("give PATHS, or --root DIR to scan a whole root")
        paths = (host.root,)
    opts = ScanOptions.of(
        host,
        scenario,
        jobs=jobs,
        scheduler=scheduler,
        cache_dir=cache_dir,
        no_cache=no_cache,
        archive=archive,
        remedies=remedies,
        max_archive_bytes=max_unpacked,
        worker_store_bytes=worker_store,
    )
    out = scan_report(paths, opts, fmt=fmt, top=top, weights=weights, output=output, status=state)
    if out is not None:
        common.emit([out], output)
