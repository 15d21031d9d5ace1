"""`newsradar sources|crawl|extract|replay`: the catalog, crawling, extraction and the replay server.

Machine-readable output (JSON) goes to stdout, progress and per-source tables to stderr.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from commands.common import echo_err, fail
from newsradar.settings import get_settings

sources_app = typer.Typer(help="The source catalog (crawlers/sources.yaml).", no_args_is_help=True)

CatalogOption = Annotated[
    Path | None,
    typer.Option("--catalog", help="Catalog file; default NEWSRADAR_SOURCES_CATALOG or the built-in"),
]


def _catalog_path(catalog: Path | None) -> Path:
    from crawlers.catalog import CATALOG

    return catalog or get_settings().sources_catalog or CATALOG


def _load(catalog: Path | None) -> list[Any]:
    from crawlers.catalog import CatalogError, load_catalog

    try:
        return load_catalog(_catalog_path(catalog))
    except CatalogError as error:
        raise fail(str(error)) from error


@sources_app.command("list")
def sources_list(
    lang: Annotated[str | None, typer.Option(help="Only this language: de, en, zh")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per source")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Show the catalog: name, language, kind, entry points, enabled."""
    sources = [s for s in _load(catalog) if lang is None or s.lang == lang]
    for source in sources:
        if as_json:
            typer.echo(json.dumps(source.model_dump(mode="json"), ensure_ascii=False))
        else:
            state = "" if source.enabled else "  (disabled)"
            typer.echo(
                f"{source.name:<24} {source.lang}  {source.country or '--'}  {source.kind:<7} "
                f"feeds={len(source.feeds)} sitemaps={len(source.sitemaps)} "
                f"listings={len(source.listing_pages)}  {source.display_name}{state}"
            )
    if not as_json:
        echo_err(f"{len(sources)} sources")


@sources_app.command("schedule")
def sources_schedule(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per source")] = False,
) -> None:
    """When each source is polled next, its current interval and its last poll's outcome."""
    from crawlers.schedule import PollSchedule, policy_from
    from crawlers.state import CrawlState
    from newsradar.dates import utcnow

    settings = get_settings()
    with CrawlState(settings.crawl_state_path) as state:
        polls = PollSchedule(state, policy_from(settings)).all()
    if not polls:
        echo_err("no source has been polled yet (the crawl DAG polls every due source each minute)")
    now = utcnow()
    for poll in polls:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "source": poll.source,
                        "next_poll": poll.next_at.isoformat(),
                        "interval_s": round(poll.interval_s),
                        "last_poll": poll.last_at.isoformat() if poll.last_at else None,
                        "last_outcome": poll.last_outcome,
                        "last_new_articles": poll.last_new,
                    }
                )
            )
            continue
        due = "due now" if poll.next_at <= now else f"in {(poll.next_at - now).total_seconds():5.0f} s"
        typer.echo(
            f"{poll.source:<28} next {poll.next_at:%Y-%m-%d %H:%M:%S} ({due:>10})  "
            f"every {poll.interval_s:5.0f} s  last: {poll.last_outcome or '-'} ({poll.last_new} new)"
        )


@sources_app.command("check")
def sources_check(
    live: Annotated[bool, typer.Option("--live", help="Also fetch every feed/sitemap once")] = False,
    catalog: CatalogOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds per fetch with --live")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON report on stdout")] = False,
) -> None:
    """Validate every entry (schema, URL syntax, duplicates) offline; `--live` reports status per source."""
    from crawlers.catalog import check_catalog

    path = _catalog_path(catalog)
    sources, problems = check_catalog(path)
    report: dict[str, Any] = {
        "catalog": str(path),
        "sources": len(sources),
        "problems": [vars(problem) for problem in problems],
    }
    for problem in problems:
        echo_err(str(problem))
    if live and sources:
        from crawlers.check import check_live

        settings = get_settings()
        enabled = [source for source in sources if source.enabled]
        live_reports = check_live(
            enabled, timeout=timeout, user_agent=settings.user_agent, replay_base=settings.replay_url
        )
        report["live"] = live_reports
        for item in live_reports:
            docs = ", ".join(
                f"{d['kind']} {d['status'] or '-'}{' ' + d['error'] if d['error'] else ''}"
                for d in item["documents"]
            )
            echo_err(f"{'ok  ' if item['ok'] else 'FAIL'} {item['source']:<24} {docs}")
    failed_live = [item["source"] for item in report.get("live", []) if not item["ok"]]
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
    else:
        echo_err(
            f"{len(sources)} valid sources, {len(problems)} problems"
            + (f", {len(failed_live)} failing live" if live else "")
        )
    if problems or failed_live:
        raise typer.Exit(1)


def crawl(
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Source name (repeatable); default all enabled")
    ] = None,
    lang: Annotated[str | None, typer.Option(help="Only sources of this language: de, en, zh")] = None,
    since: Annotated[
        str | None, typer.Option(help="Skip articles older than a date (2026-11-20) or duration (6h, 2d)")
    ] = None,
    catalog: CatalogOption = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Crawl the sample site via a local replay server")
    ] = False,
    spider: Annotated[str, typer.Option(help="news (all entry points), feed, sitemap or listing")] = "news",
    output: Annotated[
        str | None, typer.Option(help="Batch file (path or fsspec URL); default on staging")
    ] = None,
) -> None:
    """Crawl the selected sources in one Scrapy subprocess; prints per-source stats and one JSON summary."""
    from crawlers.catalog import CatalogError, sample_catalog, select
    from crawlers.report import format_line
    from crawlers.run import CrawlError, default_output, new_run_id, run_crawl
    from newsradar.dates import parse_since
    from stack.replay import SAMPLE_SITE, ReplayServer

    if lang is not None and lang not in {"de", "en", "zh"}:
        raise fail(f"--lang must be de, en or zh, not {lang!r}")
    settings = get_settings()
    try:
        since_at: datetime | None = parse_since(since) if since else None
    except ValueError as error:
        raise fail(str(error)) from error
    run_id = new_run_id()
    target = output or default_output(settings, run_id)
    server = None
    if sample:
        # The usual replay port keeps sample URLs stable, so the seen-URL store applies across runs.
        try:
            server = ReplayServer(SAMPLE_SITE, port=settings.replay_port).start()
        except OSError:
            server = ReplayServer(SAMPLE_SITE).start()
    try:
        try:
            pool = sample_catalog(server.base_url, SAMPLE_SITE) if server else _load(catalog)
            chosen = select(pool, source or None, lang)
        except CatalogError as error:
            raise fail(str(error)) from error
        if not chosen:
            raise fail("no sources selected (check --source / --lang, or enable sources in the catalog)")
        echo_err(f"crawling {len(chosen)} sources -> {target}")
        try:
            result = run_crawl(chosen, target, spider=spider, since=since_at, settings=settings)
        except (CrawlError, ValueError) as error:
            raise fail(str(error)) from error
    finally:
        if server is not None:
            server.stop()
    for name, counts in sorted(result.stats["sources"].items()):
        echo_err(format_line(name, counts))
    echo_err(f"{result.articles} articles -> {result.output}\nstats -> {result.stats_file}")
    summary = {
        "run_id": run_id,
        "output": result.output,
        "stats_file": result.stats_file,
        "articles": result.articles,
        "sources": result.stats["sources"],
        "totals": result.stats["totals"],
        "finish_reason": result.stats["finish_reason"],
        "elapsed_s": result.stats.get("elapsed_s"),
    }
    typer.echo(json.dumps(summary, ensure_ascii=False))


def extract(
    files: Annotated[list[Path], typer.Argument(help="Saved HTML pages")],
    url: Annotated[str | None, typer.Option(help="The page's URL (resolves links, URL dates)")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone for dates without one")] = None,
) -> None:
    """Extract each file; one JSON object per file, in order (an unreadable file gives `error`)."""
    from crawlers.extract import extract as run_extract
    from enrich.language import detect_language

    for file in files:
        record: dict[str, Any] = {"file": str(file)}
        try:
            body = file.read_bytes()
        except OSError as error:
            record["error"] = f"{type(error).__name__}: {error.strerror or error}"
            typer.echo(json.dumps(record, ensure_ascii=False))
            continue
        result = run_extract(body, url, timezone=timezone)
        record.update(
            title=result.title,
            text=result.text,
            published=result.published.isoformat() if result.published else None,
            authors=result.authors,
            lang=detect_language(result.title, result.text, result.lang_hint),
            published_source=result.published_source,
            lead=result.lead,
            lang_hint=result.lang_hint,
            canonical_url=result.canonical_url,
            paywall=result.paywall,
            image=result.image,
            encoding=result.encoding,
        )
        typer.echo(json.dumps(record, ensure_ascii=False))


def replay(
    directory: Annotated[
        Path | None, typer.Argument(help="Directory of recorded pages; default: the sample site")
    ] = None,
    host: str = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port; default NEWSRADAR_REPLAY_PORT")] = None,
) -> None:
    """Serve recorded pages and feeds (with robots.txt) on loopback, in place of the live sites."""
    from stack.replay import SAMPLE_SITE, serve_forever

    root = directory or SAMPLE_SITE
    if not root.is_dir():
        raise fail(f"{root} is not a directory")
    chosen = port if port is not None else get_settings().replay_port
    echo_err(f"replaying {root} at http://{host}:{chosen}/ (Ctrl-C stops)")
    serve_forever(root, host, chosen)


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
    app.command()(crawl)
    app.command()(extract)
    app.command()(replay)
