"""The `newsradar` command: every part of the project is reachable from here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from newsradar.settings import get_settings

app = typer.Typer(
    help="newsradar: monitor AI releases, bans and restrictions in de/en/zh media.", no_args_is_help=True
)
es_app = typer.Typer(help="The local Elasticsearch node.", no_args_is_help=True)
airflow_app = typer.Typer(help="The local Airflow (SQLite, LocalExecutor, loopback).", no_args_is_help=True)
app.add_typer(es_app, name="es")
app.add_typer(airflow_app, name="airflow")


def _echo(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg="red", err=True)
    return typer.Exit(1)


@es_app.command("start")
def es_start() -> None:
    """Download (once), configure and start the node; reuse it when already running."""
    from index import node

    try:
        current = node.start(get_settings(), _echo)
    except node.NodeError as error:
        raise _fail(str(error)) from error
    typer.echo(current.describe())


@es_app.command("stop")
def es_stop() -> None:
    """Stop the node started by `newsradar es start` (by its pid file)."""
    from index import node

    node.stop(get_settings(), _echo)


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


@airflow_app.command("start")
def airflow_start() -> None:
    """Start api-server, scheduler, dag-processor and triggerer in the background."""
    from newsradar import airflow_local

    try:
        airflow_local.start(get_settings(), _echo)
    except airflow_local.AirflowError as error:
        raise _fail(str(error)) from error


@airflow_app.command("stop")
def airflow_stop() -> None:
    from newsradar import airflow_local

    airflow_local.stop(get_settings(), _echo)


@airflow_app.command("status")
def airflow_status() -> None:
    from newsradar import airflow_local

    settings = get_settings()
    for name, pid in airflow_local.status(settings).items():
        typer.echo(f"{name}: {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    typer.echo(
        f"api: {airflow_local.api_url(settings)} {'healthy' if airflow_local.healthy(settings) else 'down'}"
    )


@app.command()
def replay(
    directory: Annotated[
        Path | None, typer.Argument(help="Directory of recorded pages; default: the sample site")
    ] = None,
    host: str = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port; default NEWSRADAR_REPLAY_PORT")] = None,
) -> None:
    """Serve recorded pages and feeds (with robots.txt) on loopback, in place of the live sites."""
    from crawlers.replay import SAMPLE_SITE, serve_forever

    root = directory or SAMPLE_SITE
    if not root.is_dir():
        raise _fail(f"{root} is not a directory")
    chosen = port if port is not None else get_settings().replay_port
    _echo(f"replaying {root} at http://{host}:{chosen}/ (Ctrl-C stops)")
    serve_forever(root, host, chosen)


@app.command()
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
        _echo("no hits")


@app.command()
def run() -> None:
    """The main job: start the local stack and run the pipeline over the sample site, then summarise."""
    from newsradar import mainjob

    settings = get_settings()
    try:
        facts = mainjob.run(settings, _echo)
    except Exception as error:  # the main job reports any stage's failure the same way
        raise _fail(str(error)) from error
    typer.echo(json.dumps(facts, indent=2, ensure_ascii=False))
    typer.echo(
        "Search it: .venv/bin/newsradar search 'Nvidia export controls' ; stop the node: newsradar es stop"
    )


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
