from __future__ import annotations

from collections.abc import Iterable, Iterator

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
    fmt: str = common.format_option(
        ["text", "json", "jsonl", "html"],
        "jsonl: one estimate per program as it is done, then a summary; json: the summary "
        "and ranking; html: the ranking as a page (with -o FILE).",
    ),
    output: str | None = common.OUTPUT,
) -> None:
    """Rank every ELF program under PATHS, and the libraries they load, by cost.

    PATHS are directories, root file systems, or .deb/.apk/.tar.*/.rpm packages. Prints the
    most expensive programs and the libraries that cost most summed over the programs that
    load them ("who needs libX"). Results are cached across runs.
    """
    import msgspec

    from elfcost.analysis import Ranked, missing_of, rank, uncalibrated
    from elfcost.documents import ScanDoc
    from elfcost.errors import ClusterError, Exit
    from elfcost.report import jsonout
    from elfcost.scan import Scan, ScanOptions, ScanResult

    if scheduler is not None and jobs is not None:
        raise click.UsageError("-j/--jobs and --scheduler: the cluster's workers are the jobs")
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
        static_libs=scenario.static_libs,
        jobs=jobs,
        scheduler=scheduler,
        cache_dir=cache_dir,
        no_cache=no_cache,
    )

    caveats = {"missing": 0, "uncalibrated": 0}  # programs, counted in the summary

    def shown(results: Iterable[ScanResult]) -> Iterator[Ranked]:
        """Each result as it is done: an error reported, a JSON line written."""
        for r in results:
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
        try:
            # The page's tables hold every program; its bars and the other formats the top ones.
            ranking = rank(shown(sc.results()), None if fmt == "html" else top)
        except ClusterError as exc:  # the scan cannot finish: no summary, exit 5
            state.error(exc, path=exc.path, code=Exit.CLUSTER_ERROR)
            for line in state.take_errors():
                click.echo(line, nl=False)
            return
    summary = msgspec.structs.replace(sc.summary, **caveats)
    if fmt in ("json", "jsonl"):
        doc = ScanDoc(summary=summary, ranking=ranking)
        out = jsonout.dumps(doc, pretty=fmt == "json") + "\n"
    elif fmt == "html":
        from elfcost.report.html import scan_html

        out = scan_html(ScanDoc(summary=summary, ranking=ranking), top=max(top, 20))
    else:
        from elfcost.report.text import scan_text

        out = scan_text(msgspec.structs.asdict(summary), ranking)
    common.emit([out], output)
