"""The `newsradar` command. Each area registers its own commands from its `cli.py`
(`crawlers/cli.py`, `enrich/cli.py`, `index/cli.py`, `alerts/cli.py`); this module only assembles them
and holds the commands that span areas (the main job, local Airflow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from commands import alerts as alerts_cli
from commands import crawl as crawlers_cli
from commands import dedupe as cli_dedupe
from commands import enrich as enrich_cli
from commands import index as index_cli
from commands.common import echo_err, fail
from newsradar.settings import get_settings

app = typer.Typer(
    help="newsradar: monitor AI releases, bans and restrictions in de/en/zh media.", no_args_is_help=True
)
airflow_app = typer.Typer(help="The local Airflow (SQLite, LocalExecutor, loopback).", no_args_is_help=True)
app.add_typer(airflow_app, name="airflow")
for area in (crawlers_cli, enrich_cli, cli_dedupe, index_cli, alerts_cli):
    area.register(app)


Executor = Annotated[
    str | None, typer.Option(help="local (SQLite, LocalExecutor) or celery (PostgreSQL, Redis, 2 workers)")
]


def _stack(executor: str | None) -> Any:
    """The module that runs Airflow with the chosen executor (default NEWSRADAR_AIRFLOW_EXECUTOR)."""
    from stack import airflow_celery, airflow_local

    chosen = executor or get_settings().airflow_executor
    if chosen not in ("local", "celery"):
        raise fail(f"--executor must be local or celery, not {chosen!r}")
    return airflow_celery if chosen == "celery" else airflow_local


@airflow_app.command("start")
def airflow_start(executor: Executor = None) -> None:
    """Start Airflow's components in the background (and PostgreSQL, Redis and workers for celery)."""
    stack = _stack(executor)
    try:
        stack.start(get_settings(), echo_err)
    except RuntimeError as error:  # AirflowError / CeleryStackError say what to do
        raise fail(str(error)) from error


@airflow_app.command("stop")
def airflow_stop(executor: Executor = None) -> None:
    """Stop every component by its pid file."""
    _stack(executor).stop(get_settings(), echo_err)


@airflow_app.command("status")
def airflow_status(executor: Executor = None) -> None:
    stack = _stack(executor)
    settings = get_settings()
    for name, pid in stack.status(settings).items():
        typer.echo(f"{name}: {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    state = "healthy" if stack.healthy(settings) else "down"
    typer.echo(f"api: {stack.api_url(settings)} {state}")


@app.command()
def run(
    live: Annotated[
        bool, typer.Option("--live", help="Crawl the live source catalog, not the sample site")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each DAG of the cycle")] = 900,
) -> None:
    """The main job: start the local stack, run one pipeline cycle in Airflow, summarise, keep running."""
    from stack import mainjob

    settings = get_settings()
    try:
        facts = mainjob.run(settings, echo_err, live=live, timeout=timeout)
    except Exception as error:  # the main job reports any stage's failure the same way
        raise fail(
            f"{error}\n(the stack is left running for inspection; `newsradar stop` stops it)"
        ) from error
    typer.echo(json.dumps(facts, indent=2, ensure_ascii=False))
    echo_err(
        f"Airflow: {facts['urls']['airflow_ui']}  search UI: {facts['urls']['search_ui']}  "
        f"mail sink: {facts['urls']['mail_sink']}\n"
        "Try: .venv/bin/newsradar search 'US export controls on Nvidia chips'.  Stop all: newsradar stop"
    )


@app.command()
def stop() -> None:
    """Stop everything `newsradar run` started: web UI, mail sink, replay server, Airflow, Elasticsearch."""
    from stack import mainjob

    mainjob.stop(get_settings(), echo_err)


@app.command()
def mailsink(
    smtp_port: Annotated[int, typer.Option(help="SMTP port")] = 1025,
    http_port: Annotated[
        int, typer.Option(help="Port of the web page and the Slack webhook endpoint")
    ] = 8025,
    directory: Annotated[Path | None, typer.Option(help="Where messages are kept")] = None,
) -> None:
    """A local SMTP server and Slack-webhook endpoint that keep every message, with a page to read them."""
    import os

    from stack.mailsink import serve

    folder = directory or Path(
        os.environ.get("NEWSRADAR_MAILSINK_DIR") or get_settings().state_dir / "mailsink"
    )
    echo_err(f"mail sink: SMTP 127.0.0.1:{smtp_port}, messages at http://127.0.0.1:{http_port}/ ({folder})")
    serve(folder, smtp_port=smtp_port, http_port=http_port)
