"""The `newsradar` command. Each area registers its own commands from its `cli.py`
(`crawlers/cli.py`, `enrich/cli.py`, `index/cli.py`, `alerts/cli.py`); this module only assembles them
and holds the commands that span areas (the main job, local Airflow)."""

from __future__ import annotations

import json

import typer

from alerts import cli as alerts_cli
from crawlers import cli as crawlers_cli
from enrich import cli as enrich_cli
from index import cli as index_cli
from newsradar.clitools import echo_err, fail
from newsradar.settings import get_settings

app = typer.Typer(
    help="newsradar: monitor AI releases, bans and restrictions in de/en/zh media.", no_args_is_help=True
)
airflow_app = typer.Typer(help="The local Airflow (SQLite, LocalExecutor, loopback).", no_args_is_help=True)
app.add_typer(airflow_app, name="airflow")
for area in (crawlers_cli, enrich_cli, index_cli, alerts_cli):
    area.register(app)


@airflow_app.command("start")
def airflow_start() -> None:
    """Start api-server, scheduler, dag-processor and triggerer in the background."""
    from newsradar import airflow_local

    try:
        airflow_local.start(get_settings(), echo_err)
    except airflow_local.AirflowError as error:
        raise fail(str(error)) from error


@airflow_app.command("stop")
def airflow_stop() -> None:
    """Stop every component by its pid file."""
    from newsradar import airflow_local

    airflow_local.stop(get_settings(), echo_err)


@airflow_app.command("status")
def airflow_status() -> None:
    from newsradar import airflow_local

    settings = get_settings()
    for name, pid in airflow_local.status(settings).items():
        typer.echo(f"{name}: {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
    state = "healthy" if airflow_local.healthy(settings) else "down"
    typer.echo(f"api: {airflow_local.api_url(settings)} {state}")


@app.command()
def run() -> None:
    """The main job: start the local stack and run the pipeline over the sample site, then summarise."""
    from newsradar import mainjob

    settings = get_settings()
    try:
        facts = mainjob.run(settings, echo_err)
    except Exception as error:  # the main job reports any stage's failure the same way
        raise fail(str(error)) from error
    typer.echo(json.dumps(facts, indent=2, ensure_ascii=False))
    echo_err("Search it: .venv/bin/newsradar search 'Nvidia export controls' ; stop: make stop")
