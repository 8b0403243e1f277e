"""elfcost scan."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import click

from elfcost.cli import common
from elfcost.errors import Exit


@common.command(
    click.argument("paths", nargs=-1),
    common.ROOT,
    common.ESTIMATE,
    common.option("-j", "--jobs", type=click.IntRange(min=1)),
    common.option("--no-cache", is_flag=True),
    common.option("--cache-dir", type=click.Path(file_okay=False)),
    common.option("--top", type=click.IntRange(min=1), default=10),
    common.format_option(
        ["text", "json", "jsonl", "html"],
        "jsonl: one estimate per program as it is done, then a summary; json: the summary "
        "and ranking; html: the ranking as a page (with -o FILE).",
    ),
    common.OUTPUT,
)
def command(
    state: common.State,
    paths: Sequence[str],
    root: str,
    ld_library_path: str | None,
    env_llp: bool,
    assume: str | None,
    page_size: int | None,
    jobs: int | None,
    no_cache: bool,
    cache_dir: str | None,
    top: int,
    fmt: str,
    output: str | None,
) -> None:
    """Rank every ELF program under PATHS, and the libraries they load, by cost.

    PATHS are directories, root file systems, or .deb/.apk/.tar.*/.rpm packages. Prints the
    most expensive programs and the libraries that cost most summed over the programs that
    load them ("who needs libX"). Results are cached across runs.
    """
    import msgspec

    from elfcost.analysis import Ranked, rank
    from elfcost.documents import ScanDoc
    from elfcost.report import jsonout
    from elfcost.scan import Scan, ScanOptions, ScanResult

    if not paths:
        if os.path.realpath(root) == "/":
            raise click.UsageError("give PATHS, or --root DIR to scan a whole root")
        paths = (root,)
    opts = ScanOptions(
        root=root,
        ld_library_path=common.host_of(root, ld_library_path, env_llp).ld_library_path,
        page_size=page_size,
        assume=assume,  # type: ignore[arg-type]  # one of click.Choice's
        jobs=jobs,
        cache_dir=cache_dir,
        no_cache=no_cache,
    )
    from elfcost.report.progress import Bar, progress

    def shown(results: Iterable[ScanResult], bar: Bar) -> Iterator[Ranked]:
        """Each result as it is done: an error reported, a JSON line written."""
        for r in results:
            if r.error:
                bar.message(f"elfcost: error: {r.error}")
                state.fail(Exit.INPUT_ERROR)
                continue
            if fmt == "jsonl":
                click.echo(r.jsonl())
            if r.doc is not None:
                yield r.path, r.loader_path, r.doc

    with progress("scanning", show=fmt != "jsonl") as bar:
        sc = Scan(list(paths), opts, on_progress=bar.update)
        # The page's tables hold every program; its bars and the other formats the top ones.
        ranking = rank(shown(sc.results(), bar), None if fmt == "html" else top)
    if fmt in ("json", "jsonl"):
        doc = ScanDoc(summary=sc.summary, ranking=ranking)
        out = jsonout.dumps(doc, pretty=fmt == "json") + "\n"
    elif fmt == "html":
        from elfcost.report.html import scan_html

        out = scan_html(ScanDoc(summary=sc.summary, ranking=ranking), top=max(top, 20))
    else:
        from elfcost.report.text import scan_text

        out = scan_text(msgspec.structs.asdict(sc.summary), ranking)
    common.emit([out], output)
    state.finish()
