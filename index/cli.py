"""`newsradar es ...` and `newsradar search`: the local node and the index."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from newsradar.clitools import echo_err, fail
from newsradar.settings import get_settings

es_app = typer.Typer(help="The local Elasticsearch node.", no_args_is_help=True)


@es_app.command("start")
def es_start() -> None:
    """Download (once), configure and start the node; reuse it when already running."""
    from index import node

    try:
        current = node.start(get_settings(), echo_err)
    except node.NodeError as error:
        raise fail(str(error)) from error
    typer.echo(current.describe())


@es_app.command("stop")
def es_stop() -> None:
    """Stop the node started by `newsradar es start` (by its pid file)."""
    from index import node

    node.stop(get_settings(), echo_err)


@es_app.command("status")
def es_status() -> None:
    """Is the node up, which version, and what can it do (modules, plugins)."""
    from index import node
    from index.capabilities import detect
    from index.client import get_client

    settings = get_settings()
    current = node.status(settings)
    typer.echo(current.describe())
    if not current.running:
        raise typer.Exit(3)
    caps = detect(get_client(settings))
    typer.echo(f"modules: {', '.join(sorted(caps.modules))}")
    typer.echo(f"plugins: {', '.join(sorted(caps.plugins)) or '(none)'}")
    typer.echo("capabilities: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in caps.summary().items()))


def search(
    query: str,
    lang: Annotated[str | None, typer.Option(help="Only this language: de, en, zh")] = None,
    limit: Annotated[int, typer.Option(help="Number of hits")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per hit")] = False,
) -> None:
    """Hybrid (BM25 + multilingual kNN) search over the index: an English query finds de/zh coverage."""
    from enrich.embed import get_embedder
    from index.client import get_client
    from index.search import search as run_search

    settings = get_settings()
    hits = run_search(
        get_client(settings),
        settings,
        query,
        get_embedder(settings.embedding_backend, settings.embedding_threads),
        lang=lang,
        limit=limit,
    )
    for hit in hits:
        if as_json:
            typer.echo(json.dumps(hit.as_json(), ensure_ascii=False))
        else:
            typer.echo(f"{hit.score:.4f}  [{hit.lang}] {hit.title}\n        {hit.url}")
    if not hits and not as_json:
        echo_err("no hits")


def register(app: typer.Typer) -> None:
    app.add_typer(es_app, name="es")
    app.command()(search)
