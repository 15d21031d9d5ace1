"""Airflow 3 on the embedded default: SQLite, LocalExecutor, loopback only, no login.

Each component (api-server, scheduler, dag-processor, triggerer) runs as its own process with a
pid file; stopping signals each leader, never the process group (a scheduler signalled by group
hangs). The same environment is used by `dag.test()` runs, so both see the same database.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from newsradar.settings import PROJECT_ROOT, Settings

COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
Echo = Callable[[str], None]


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
        "AIRFLOW__CORE__PARALLELISM": "4",
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


def migrate(settings: Settings) -> None:
    env = {**os.environ, **airflow_env(settings)}
    proc = subprocess.run([_airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AirflowError(f"airflow db migrate failed:\n{proc.stderr[-3000:]}")


def _pidfile(settings: Settings, component: str) -> Path:
    return settings.airflow_home / "run" / f"{component}.pid"


def _alive(pid: int) -> bool:
    try:  # reap it first if it is our own exited child, else kill(0) sees the zombie as alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid(settings: Settings, component: str) -> int | None:
    try:
        pid = int(_pidfile(settings, component).read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.airflow_port}"


def healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(api_url(settings) + "/api/v2/monitor/health", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def status(settings: Settings) -> dict[str, int | None]:
    return {name: _pid(settings, name) for name in COMPONENTS}


def start(settings: Settings, echo: Echo = print, timeout: float = 120.0) -> str:
    """Start every component that is not running; return the UI URL once the API answers."""
    running = status(settings)
    if all(running.values()) and healthy(settings):
        echo(f"Airflow already running at {api_url(settings)}")
        return api_url(settings)
    echo("Migrating the Airflow database ...")
    migrate(settings)
    env = {**os.environ, **airflow_env(settings)}
    (settings.airflow_home / "run").mkdir(parents=True, exist_ok=True)
    logs = settings.airflow_home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, args in COMPONENTS.items():
        if running[name]:
            continue
        with (logs / f"{name}.out").open("ab") as out:
            proc = subprocess.Popen(
                [_airflow_bin(), *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _pidfile(settings, name).write_text(str(proc.pid))
        echo(f"started airflow {name} (pid {proc.pid}, log {logs / (name + '.out')})")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(settings):
            echo(f"Airflow UI: {api_url(settings)} (no login: every user is admin on this local stack)")
            return api_url(settings)
        dead = [name for name in COMPONENTS if _pid(settings, name) is None]
        if dead:
            raise AirflowError(f"airflow {', '.join(dead)} exited during start; see logs in {logs}")
        time.sleep(1)
    raise AirflowError(f"Airflow API did not answer within {timeout:.0f}s; see logs in {logs}")


def stop(settings: Settings, echo: Echo = print, timeout: float = 30.0) -> None:
    for name in COMPONENTS:
        pid = _pid(settings, name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.3)
        else:
            echo(f"airflow {name} (pid {pid}) did not stop in {timeout:.0f}s; killing its group")
            os.killpg(pid, signal.SIGKILL)
        _pidfile(settings, name).unlink(missing_ok=True)
        echo(f"stopped airflow {name} (pid {pid})")
