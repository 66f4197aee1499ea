"""``synset crawl``: collect candidates for the target synsets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from synset_builder.cli.common import open_session, print_json, settings, writing_to
from synset_builder.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.orm import Session

    from synset_builder.config import Settings
    from synset_builder.crawl.plan import CrawlConfig
    from synset_builder.crawl.records import Tally
    from synset_builder.crawl.sources import Source


def crawl_command(
    synset: list[str] = typer.Option([], "--synset", help="Only this wnid (repeatable)."),
    source: list[str] = typer.Option(
        [],
        "--source",
        help="openverse | wikimedia | flickr | urls:FILE | dir:PATH (repeatable; "
        "default openverse).",
    ),
    per_synset: int = typer.Option(
        1000, "--per-synset", help="Stop a synset at this many candidates (per round in --refill)."
    ),
    concurrency: int = typer.Option(
        32, "--concurrency", help="Downloads at once, in all (with --cluster: per task)."
    ),
    per_host: int = typer.Option(
        8, "--per-host", help="Downloads at once from one host (with --cluster: cluster-wide)."
    ),
    processes: int = typer.Option(
        1,
        "--processes",
        help="Download processes sharing --concurrency (one per core is best; not with --cluster).",
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Only try again the URLs that failed before."
    ),
    refill: bool = typer.Option(
        False,
        "--refill",
        help="Add candidates where the acceptance rate so far will not reach the goal.",
    ),
    max_side: int | None = typer.Option(
        None, "--max-side", help="Store a copy downscaled to this many pixels per side."
    ),
    timeout: float = typer.Option(20.0, "--timeout", help="Seconds to wait for a server."),
    retries: int = typer.Option(2, "--retries", help="Tries again on timeouts and 5xx."),
    max_bytes: int = typer.Option(20 * 1024 * 1024, "--max-bytes", help="Largest file taken."),
    ignore_robots: bool = typer.Option(
        False, "--ignore-robots", help="Download even where X-Robots-Tag says noai/noindex."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Download on Dask, split by synset and result page: local:N or tcp://HOST:PORT.",
    ),
) -> None:
    """Search the sources with every synset's queries and download the hits.

    Resumable: run it again to go on where it stopped; what is stored is not fetched
    twice.
    """
    # Long by its option list only (each option's help is the CLI's documentation);
    # the configuration and the report are built in helpers.
    from synset_builder.crawl.run import crawl
    from synset_builder.crawl.sources import SourceError, make_source
    from synset_builder.distributed import cluster_runner

    cfg, crawl_cfg = _crawl_config(
        wnids=tuple(synset),
        per_synset=per_synset,
        concurrency=concurrency,
        per_host=per_host,
        retry_failed=retry_failed,
        refill=refill,
        max_side=max_side,
        timeout=timeout,
        retries=retries,
        max_bytes=max_bytes,
        honour_robots=not ignore_robots,
        progress=not quiet,
        processes=processes,
    )
    data_dir = cfg.ensure_data_dir()
    sources = [make_source(spec, cfg) for spec in (source or ["openverse"])]
    with (
        writing_to(data_dir),
        cluster_runner(cluster) as runner,
        open_session(cfg) as session,
    ):
        _check_folders(session, sources)
        tallies = crawl(session, data_dir, sources, crawl_cfg, runner)
    if tallies and all(t.errors and not t.found for t in tallies.values()):
        first = next(t.errors[0] for t in tallies.values())
        raise SourceError(f"No source could be searched. {first}")
    _print_tallies(tallies, as_json)


def _crawl_config(
    *,
    wnids: tuple[str, ...],
    per_synset: int,
    concurrency: int,
    per_host: int,
    retry_failed: bool,
    refill: bool,
    max_side: int | None,
    timeout: float,
    retries: int,
    max_bytes: int,
    honour_robots: bool,
    progress: bool,
    processes: int,
) -> tuple[Settings, CrawlConfig]:
    """The settings and the crawl's configuration; the options are checked first, so a
    bad value fails before the settings are read or any folder is opened."""
    from synset_builder.crawl.fetch import FetchConfig
    from synset_builder.crawl.plan import CrawlConfig
    from synset_builder.crawl.sources.http import user_agent

    counts = (("--per-synset", per_synset), ("--concurrency", concurrency))
    for name, value in (*counts, ("--processes", processes)):
        if value < 1:
            raise InvalidInput(f"{name} must be at least 1.")
    if per_host < 1 or (max_side is not None and max_side < 16):
        raise InvalidInput("--per-host must be at least 1 and --max-side at least 16.")
    cfg = settings()
    fetch = FetchConfig(
        user_agent=user_agent(cfg),
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
        deadline=cfg.crawl.download_deadline,
        retries=retries,
        max_bytes=max_bytes,
        per_host=per_host,
        allow_private=cfg.crawl.allow_private_networks,
        honour_robots=honour_robots,
        max_side=max_side,
    )
    return cfg, CrawlConfig(
        fetch=fetch,
        per_synset=per_synset,
        concurrency=concurrency,
        wnids=wnids,
        retry_failed=retry_failed,
        refill=refill,
        progress=progress,
        processes=processes,
    )


def _print_tallies(tallies: Mapping[str, Tally], as_json: bool) -> None:
    """One line per source (its first distinct errors as warnings), or JSON."""
    if as_json:
        print_json({name: t.as_json() for name, t in tallies.items()})
        return
    for name, tally in tallies.items():
        typer.echo(tally.line(name))
        for error in dict.fromkeys(tally.errors[:20]):
            typer.echo(f"warning: {error}", err=True)


def _check_folders(session: Session, sources: list[Source]) -> None:
    """Name the ``dir:`` folders no target takes; refuse a folder that gives nothing.

    A collection laid out by hand rarely uses wnids, so a silent "0 imported" is
    the worst answer: each lost folder is named with the nearest targets.
    """
    from sqlalchemy import select

    from synset_builder.crawl.sources import SynsetRef
    from synset_builder.crawl.sources.dir import DirSource
    from synset_builder.db.models import Synset

    folders = [s for s in sources if isinstance(s, DirSource)]
    if not folders:
        return
    targets = [
        SynsetRef(s.wnid, s.name, tuple(s.lemmas or ()))
        for s in session.scalars(select(Synset).where(Synset.target).order_by(Synset.wnid))
    ]
    for source in folders:
        lost = source.unmatched(targets)
        lines = [
            f"  {name}/" + (f" (nearest targets: {', '.join(near)})" if near else "")
            for name, near in lost
        ] or ["  (it has no sub-folders)"]
        if targets and not any(source.folders(t) for t in targets):
            raise NotFound(
                f"No folder of {source.root} matches a target synset, so nothing can be "
                "imported; name folders by wnid or lemma (plurals are fine):\n" + "\n".join(lines)
            )
        if lost:
            typer.echo(
                f"warning: {len(lost)} folder(s) of {source.root} match no target synset "
                "and are not imported:\n" + "\n".join(lines),
                err=True,
            )


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl_command)
