"""Airflow 3 on the embedded default: SQLite, LocalExecutor, loopback only, no login.

Each component (api-server, scheduler, dag-processor, triggerer) runs as its own process with a
pid file; stopping signals each leader, never the process group (a scheduler signalled by group
hangs). The same environment is used by `dag.test()` runs, so both see the same database.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from newsradar.settings import PROJECT_ROOT, Settings
from stack import services

COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
Echo = Callable[[str], None]
# SQLite allows one writer at a time; tasks reporting heartbeats while the scheduler writes would
# otherwise fail after SQLite's default 5 s wait. WAL (set after migrating) lets readers go on.
SQLITE_CONNECT_ARGS = {"timeout": 60}


class AirflowError(RuntimeError):
    pass


def _secret(home: Path) -> str:
    """One JWT secret shared by every component; generated once so restarts keep sessions valid."""
    path = home / "jwt_secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_env(settings: Settings, home: Path | None = None) -> dict[str, str]:
    home = home or settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    port = settings.airflow_port
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "3",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "stack.airflow_local.SQLITE_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "stack.airflow_local.SQLITE_CONNECT_ARGS",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])),
    }


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow_cli(env: Mapping[str, str], *args: str) -> None:
    """Run one `airflow ...` command with the stack's environment; AirflowError with its stderr."""
    proc = subprocess.run([_airflow_bin(), *args], env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AirflowError(f"airflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def migrate(settings: Settings) -> None:
    airflow_cli(airflow_env(settings), "db", "migrate")
    with sqlite3.connect(settings.airflow_home / "airflow.db") as db:
        db.execute("PRAGMA journal_mode=WAL")


def _service(settings: Settings, name: str) -> services.Service:
    home = settings.airflow_home
    return services.Service(name, [_airflow_bin(), *COMPONENTS[name]], home / "run", home / "component-logs")


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.airflow_port}"


def healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(api_url(settings) + "/api/v2/monitor/health", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def status(settings: Settings) -> dict[str, int | None]:
    return {name: services.pid_of(_service(settings, name)) for name in COMPONENTS}


def ensure_pool(settings: Settings) -> None:
    """The crawl pool caps concurrent crawls; tasks in a missing pool would never be scheduled."""
    slots = str(settings.crawl_pool_slots)
    airflow_cli(airflow_env(settings), "pools", "set", settings.crawl_pool, slots, "newsradar crawls")


def start(
    settings: Settings, echo: Echo = print, timeout: float = 120.0, extra_env: dict[str, str] | None = None
) -> str:
    """Start every component that is not running; return the UI URL once the API answers.

    `extra_env` reaches the DAGs' tasks (e.g. NEWSRADAR_* settings of the embedded default)."""
    running = status(settings)
    if all(running.values()) and healthy(settings):
        echo(f"Airflow already running at {api_url(settings)}")
        return api_url(settings)
    echo("Migrating the Airflow database ...")
    migrate(settings)
    ensure_pool(settings)
    env = {**(extra_env or {}), **airflow_env(settings)}
    for name in COMPONENTS:
        if not running[name]:
            service = _service(settings, name)
            pid = services.start(service, env)
            echo(f"started airflow {name} (pid {pid}, log {service.log})")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(settings):
            echo(f"Airflow UI: {api_url(settings)} (no login: every user is admin on this local stack)")
            return api_url(settings)
        dead = [name for name in COMPONENTS if services.pid_of(_service(settings, name)) is None]
        if dead:
            tails = "\n".join(f"--- {n}:\n{services.log_tail(_service(settings, n))}" for n in dead)
            raise AirflowError(f"airflow {', '.join(dead)} exited during start:\n{tails}")
        time.sleep(1)
    raise AirflowError(
        f"Airflow API did not answer within {timeout:.0f}s; see logs in {settings.airflow_home / 'logs'}"
    )


def stop(settings: Settings, echo: Echo = print, timeout: float = 30.0) -> None:
    for name in COMPONENTS:
        services.stop(_service(settings, name), echo, timeout)
