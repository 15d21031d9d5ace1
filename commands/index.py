"""`newsradar es ...` and `newsradar search`: the local node and the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from commands.common import echo_err, fail
from newsradar.settings import get_settings

es_app = typer.Typer(help="The local Elasticsearch node.", no_args_is_help=True)
index_app = typer.Typer(help="The articles index: status, migration, failed documents.", no_args_is_help=True)


@es_app.command("start")
def es_start() -> None:
    """Download (once), configure and start the node; reuse it when already running."""
    from stack import esnode as node

    try:
        current = node.start(get_settings(), echo_err)
    except node.NodeError as error:
        raise fail(str(error)) from error
    typer.echo(current.describe())


@es_app.command("stop")
def es_stop() -> None:
    """Stop the node started by `newsradar es start` (by its pid file)."""
    from stack import esnode as node

    node.stop(get_settings(), echo_err)


@es_app.command("status")
def es_status() -> None:
    """Is the node up, which version, and what can it do (modules, plugins)."""
    from index.capabilities import detect
    from index.client import get_client
    from stack import esnode as node

    settings = get_settings()
    current = node.status(settings)
    typer.echo(current.describe())
    if not current.running:
        raise typer.Exit(3)
    caps = detect(get_client(settings))
    typer.echo(f"modules: {', '.join(sorted(caps.modules))}")
    typer.echo(f"plugins: {', '.join(sorted(caps.plugins)) or '(none)'}")
    typer.echo(
        "capabilities: "
        + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in caps.summary().items())
        + f" (licence {caps.license})"
    )


def _client() -> Any:
    from index.client import get_client

    return get_client(get_settings())


@index_app.command("status")
def index_status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False) -> None:
    """Alias, the index behind it, mapping revision (live vs code), documents, pending failures."""
    from index.migrate import status

    facts = status(_client(), get_settings())
    if as_json:
        typer.echo(json.dumps(facts))
        return
    for key, value in facts.items():
        typer.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    if facts["needs_migration"]:
        echo_err("the live mapping is older than the code's: run `newsradar index migrate`")


@index_app.command("migrate")
def index_migrate(
    method: Annotated[
        str, typer.Option(help="auto | reindex (server _reindex) | client (scan + bulk)")
    ] = "auto",
    delete_old: Annotated[bool, typer.Option(help="Delete the previous index after the switch")] = False,
) -> None:
    """Create the next index version with the current mapping, copy every document, switch the alias."""
    from index.migrate import MigrationError, migrate

    if method not in ("auto", "reindex", "client"):
        raise fail(f"--method must be auto, reindex or client, not {method!r}")
    try:
        report = migrate(
            _client(),
            get_settings(),
            method=method,  # type: ignore[arg-type]  # checked above
            delete_old=delete_old,
            progress=echo_err,
        )
    except MigrationError as error:
        raise fail(str(error)) from error
    typer.echo(json.dumps(report.__dict__))


@index_app.command("retry")
def index_retry() -> None:
    """Re-submit documents that failed in earlier runs."""
    from index.indexer import retry_failed

    report = retry_failed(_client(), get_settings())
    for doc_id, reason in report.failed:
        echo_err(f"still failing {doc_id}: {reason}")
    typer.echo(json.dumps({"indexed": report.indexed, "failed": len(report.failed)}))
    if report.failed:
        raise typer.Exit(1)


@index_app.command("failures")
def index_failures() -> None:
    """List documents waiting for a retry (or quarantined: rejected for good, re-sent only by `index
    retry`), with the reason Elasticsearch gave."""
    from index.failures import FailureStore

    store = FailureStore(get_settings())
    entries = store.load().values()
    fields = ("id", "kind", "status", "reason", "attempts", "quarantined", "last_failed_at")
    for entry in entries:
        typer.echo(json.dumps({k: entry.get(k) for k in fields}, ensure_ascii=False))
    quarantined = sum(1 for entry in entries if entry.get("quarantined"))
    echo_err(f"{len(entries)} pending, {quarantined} of them quarantined; store: {store.url}")


def ingest(
    file: Annotated[
        Path, typer.Argument(help="JSON lines: title, text, url, published, source, optional lang")
    ],
    no_enrich: Annotated[
        bool, typer.Option("--no-enrich", help="Index records as they are (already enriched)")
    ] = False,
    batch: Annotated[int, typer.Option(help="Articles enriched per batch")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON object")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 2 when a line was bad")] = False,
) -> None:
    """Enrich and index article records; bad lines are reported with their number and skipped."""
    from index.ingest import ingest_file

    if not file.is_file():
        raise fail(f"{file} does not exist")
    settings = get_settings()
    report = ingest_file(
        _client(),
        settings,
        file,
        enrich=not no_enrich,
        batch_size=batch,
        on_bad_line=lambda number, reason: echo_err(f"{file}:{number}: skipped: {reason}"),
        on_warning=lambda number, reason: echo_err(f"{file}:{number}: warning: {reason}"),
    )
    for doc_id, reason in report.failed:
        echo_err(f"failed {doc_id}: {reason} (kept for retry: `newsradar index retry`)")
    facts = report.summary()
    if as_json:
        typer.echo(json.dumps(facts))
    else:
        langs = " ".join(f"{k}={v}" for k, v in facts["per_language"].items()) or "-"
        typer.echo(
            f"read {facts['read']}, indexed {facts['indexed']}, failed {facts['failed']}, "
            f"bad lines {facts['bad_lines']}; per language: {langs}"
        )
    if report.failed:
        raise typer.Exit(1)
    if strict and report.bad_lines:
        raise typer.Exit(2)


def search(
    query: Annotated[str, typer.Argument(help='Query syntax: words, "phrases", AND/OR/NOT, lang:zh, ...')],
    lang: Annotated[
        list[str] | None, typer.Option(help="Only this language (repeatable): de, en, zh")
    ] = None,
    event: Annotated[
        list[str] | None, typer.Option(help="Event type (repeatable): release, ban, ...")
    ] = None,
    entity: Annotated[list[str] | None, typer.Option(help="Entity canonical name (repeatable, all)")] = None,
    source: Annotated[list[str] | None, typer.Option(help="Outlet (repeatable)")] = None,
    country: Annotated[list[str] | None, typer.Option(help="Outlet country, e.g. DE (repeatable)")] = None,
    since: Annotated[str | None, typer.Option(help="Published since: a date or a duration (7d, 24h)")] = None,
    until: Annotated[str | None, typer.Option(help="Published before: a date or a duration")] = None,
    paywall: Annotated[
        bool | None, typer.Option("--paywall/--no-paywall", help="Only / never paywalled")
    ] = None,
    limit: Annotated[int, typer.Option(help="Number of hits")] = 10,
    no_collapse: Annotated[
        bool, typer.Option("--no-collapse", help="Every article, not one per story")
    ] = False,
    sort: Annotated[str, typer.Option(help="relevance | recency")] = "relevance",
    mode: Annotated[str, typer.Option(help="hybrid | bm25 | knn")] = "hybrid",
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor printed by the previous page")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per hit")] = False,
) -> None:
    """Hybrid (BM25 + multilingual kNN) search: an English query finds de/zh coverage."""
    from index.search import SearchRequest, search_articles
    from newsradar.dates import parse_since

    settings = get_settings()
    if sort not in ("relevance", "recency"):
        raise fail("--sort must be relevance or recency")
    if mode not in ("hybrid", "bm25", "knn"):
        raise fail("--mode must be hybrid, bm25 or knn")
    if limit < 1 or limit > 1000:
        raise fail("--limit must be between 1 and 1000")
    try:
        since_at = parse_since(since) if since else None
        until_at = parse_since(until) if until else None
    except ValueError as error:
        raise fail(str(error)) from error
    request = SearchRequest(
        query=query,
        langs=lang or [],
        event_types=event or [],
        entities=entity or [],
        sources=source or [],
        countries=country or [],
        since=since_at,
        until=until_at,
        paywall=paywall,
        limit=limit,
        collapse=not no_collapse,
        sort=sort,  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        cursor=cursor,
        highlight=False,
    )
    embedder = None
    if mode != "bm25":
        from enrich.embed import embedder_for

        try:
            embedder = embedder_for(settings)
        except Exception as error:  # a missing model degrades to BM25 instead of failing the search
            echo_err(f"warning: no query embedding ({error}); BM25 only")
    try:
        result = search_articles(_client(), settings, request, embedder)
    except ValueError as error:
        raise fail(str(error)) from error
    for warning in result.warnings:
        echo_err(f"warning: {warning}")
    for hit in result.hits:
        if as_json:
            typer.echo(json.dumps(hit.as_json(), ensure_ascii=False))
            continue
        if hit.headline:
            typer.echo(f"{hit.score:.4f}  [{hit.headline_lang}] {hit.headline}")
            typer.echo(f"        [{hit.lang}] {hit.title}")
        else:
            typer.echo(f"{hit.score:.4f}  [{hit.lang}] {hit.title}")
        if hit.translation:
            typer.echo(f"        en ({hit.translation_backend or 'machine translation'}): {hit.translation}")
        typer.echo(f"        {hit.source} {(hit.published_at or '')[:10]}  {hit.url}")
        if not no_collapse and hit.story_size > 1:
            typer.echo(
                f"        +{hit.more_outlets} more outlets in {len(hit.story_langs)} languages "
                f"(story {hit.story_id})"
            )
    if not result.hits and not as_json:
        echo_err("no hits")
    if result.less_related and not as_json:
        typer.echo("less related (neither the query's names nor its meaning):")
        for hit in result.less_related:
            typer.echo(f"        [{hit.lang}] {hit.title}  {hit.url}")
    elif result.less_related:
        echo_err(f"{len(result.less_related)} less related hits not listed (see the text output or the API)")
    if result.next_cursor:
        echo_err(f"more: --cursor {result.next_cursor}")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """The analyst web UI and its JSON API (read-only unless NEWSRADAR_ADMIN_TOKEN is set)."""
    import uvicorn

    from web.app import create_app

    settings = get_settings()
    echo_err(
        f"newsradar UI on http://{host}:{port}/ "
        f"({'admin token set' if settings.admin_token else 'read-only: no NEWSRADAR_ADMIN_TOKEN'})"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.add_typer(es_app, name="es")
    app.add_typer(index_app, name="index")
    app.command()(search)
    app.command()(ingest)
    app.command()(serve)
