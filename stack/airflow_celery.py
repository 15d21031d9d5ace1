"""Airflow 3 with the CeleryExecutor on one machine: the production layout, scaled down to loopback.

PostgreSQL (metadata database and Celery result backend) and Redis (broker) run as local processes
from the Debian packages, next to api-server, scheduler, dag-processor, triggerer and Celery
workers on the production queues: crawl workers serve `crawl` (the mapped crawl tasks), enrich
workers serve `enrich` and `default` (processing, alerts and the small crawl-DAG tasks that set no
queue). Every piece is a `services.Service` with a pid file under `<state>/airflow-celery/run`, so
a second start reuses what runs and `stop` finds all of it.

Two workers on one host would report the same host name for their task instances; each worker
therefore gets its own Celery node name, and `worker_hostname` (Airflow's `hostname_callable`)
reports that name, so the UI and REST API show which worker ran which task.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from newsradar.settings import Settings, get_settings
from stack import airflow_local, services

Echo = Callable[[str], None]
DB_USER = "airflow"
DB_NAME = "airflow"
AIRFLOW_COMPONENTS = tuple(airflow_local.COMPONENTS)
# Which queues each kind of worker serves (production: docker/compose.yml).
QUEUES = {"crawl": "crawl", "enrich": "enrich,default"}


class CeleryStackError(RuntimeError):
    pass


def worker_hostname() -> str:
    """`[core] hostname_callable` of the workers: the worker's Celery node name, else the FQDN."""
    return get_settings().celery_worker_name or socket.getfqdn()


def home(settings: Settings) -> Path:
    return settings.state_dir / "airflow-celery"


def _run_dir(settings: Settings) -> Path:
    return home(settings) / "run"


def _log_dir(settings: Settings) -> Path:
    return home(settings) / "component-logs"


def _is_root() -> bool:
    return os.geteuid() == 0


def postgres_dir(settings: Settings) -> Path:
    """PostgreSQL refuses to run as root, and its own user cannot traverse /root: as root the data
    live in a system location by default."""
    if settings.postgres_dir is not None:
        return settings.postgres_dir
    if _is_root():
        return Path("/var/lib/newsradar/postgres")
    return settings.state_dir / "postgres"


def _secret(name: str, settings: Settings) -> str:
    """Generated once per stack and kept beside it (mode 0600), like Airflow's JWT secret."""
    path = home(settings) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def postgres_bin(name: str, required: bool = True) -> str:
    """Debian keeps the server programs under /usr/lib/postgresql/<version>/bin, off the PATH."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/")[4])],
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path or not required:
        return on_path or name
    raise CeleryStackError(
        f"PostgreSQL's {name} was not found (install the Debian package postgresql: "
        "apt-get install postgresql, or run scripts/setup.sh)"
    )


def redis_bin(required: bool = True) -> str:
    found = shutil.which("redis-server")
    if not found and not required:
        return "redis-server"
    if not found:
        raise CeleryStackError(
            "redis-server was not found (install the Debian package redis-server, or run scripts/setup.sh)"
        )
    return found


def _as_postgres(command: list[str]) -> list[str]:
    """As root, run as the `postgres` system user (setpriv execs, so the pid stays the server's)."""
    if not _is_root():
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]


def db_url(settings: Settings, driver: str = "postgresql+psycopg2") -> str:
    password = _secret("postgres_password", settings)
    return f"{driver}://{DB_USER}:{password}@127.0.0.1:{settings.postgres_port}/{DB_NAME}"


def broker_url(settings: Settings) -> str:
    return f"redis://:{_secret('redis_password', settings)}@127.0.0.1:{settings.redis_port}/0"


def airflow_env(settings: Settings) -> dict[str, str]:
    """The local stack's environment with the CeleryExecutor, PostgreSQL and Redis swapped in."""
    env = airflow_local.airflow_env(settings, home(settings))
    for sqlite_only in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
    ):
        env.pop(sqlite_only)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            # Task slots across all workers; each worker caps its own with --concurrency.
            "AIRFLOW__CORE__PARALLELISM": str(
                settings.celery_crawl_workers * settings.celery_crawl_concurrency
                + settings.celery_enrich_workers * settings.celery_enrich_concurrency
            ),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url(settings),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": db_url(settings, "postgresql+asyncpg"),
            "AIRFLOW__CELERY__BROKER_URL": broker_url(settings),
            "AIRFLOW__CELERY__RESULT_BACKEND": db_url(settings, "db+postgresql+psycopg2"),
            # Longer than the longest task: Redis re-delivers unacknowledged tasks after this long.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "stack.airflow_celery.worker_hostname",
        }
    )
    return env


def worker_names(settings: Settings) -> list[tuple[str, str]]:
    """(service name, queue kind) of every worker: `worker-crawl-1`, ..., `worker-enrich-1`, ..."""
    names = [(f"worker-crawl-{i}", "crawl") for i in range(1, settings.celery_crawl_workers + 1)]
    names += [(f"worker-enrich-{i}", "enrich") for i in range(1, settings.celery_enrich_workers + 1)]
    return names


def node_name(service: str) -> str:
    """The Celery node name of a worker, e.g. `crawl-1@host`: what its task instances report."""
    return f"{service.removeprefix('worker-')}@{socket.getfqdn()}"


def _services(settings: Settings) -> dict[str, services.Service]:
    run, logs = _run_dir(settings), _log_dir(settings)
    data = postgres_dir(settings) / "data"
    airflow = airflow_local._airflow_bin()
    found = {
        "postgres": services.Service(
            "postgres",
            _as_postgres(
                [
                    postgres_bin("postgres", required=False),
                    "-D",
                    str(data),
                    "-p",
                    str(settings.postgres_port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "max_connections=200",
                ]
            ),
            run,
            logs,
        ),
        "redis": services.Service(
            "redis", [redis_bin(required=False), str(home(settings) / "redis.conf")], run, logs
        ),
    }
    for name in AIRFLOW_COMPONENTS:
        found[name] = services.Service(name, [airflow, *airflow_local.COMPONENTS[name]], run, logs)
    for name, kind in worker_names(settings):
        crawl = kind == "crawl"
        concurrency = settings.celery_crawl_concurrency if crawl else settings.celery_enrich_concurrency
        found[name] = services.Service(
            name,
            [
                airflow,
                "celery",
                "worker",
                "--queues",
                QUEUES[kind],
                "--concurrency",
                str(concurrency),
                "--celery-hostname",
                node_name(name),
                "--pid",  # Airflow's own pid file, one per worker (the default is shared)
                str(home(settings) / "celery" / f"{name}.pid"),
                "--skip-serve-logs",  # two workers on one host would fight over the log server port
            ],
            run,
            logs,
        )
    return found


def status(settings: Settings) -> dict[str, int | None]:
    return {name: services.pid_of(service) for name, service in _services(settings).items()}


def healthy(settings: Settings) -> bool:
    return airflow_local.healthy(settings)


def api_url(settings: Settings) -> str:
    return airflow_local.api_url(settings)


def _wait_port(port: int, what: str, service: services.Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if services.pid_of(service) is None:
            raise CeleryStackError(f"{what} exited during start:\n{services.log_tail(service)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise CeleryStackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def _initdb(settings: Settings, echo: Echo) -> None:
    root = postgres_dir(settings)
    data = root / "data"
    if (data / "PG_VERSION").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    pwfile = root / "initdb.pw"
    pwfile.write_text(_secret("postgres_password", settings))
    pwfile.chmod(0o600)
    if _is_root():
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    echo(f"Creating the PostgreSQL cluster in {data} ...")
    command = [
        postgres_bin("initdb"),
        "-D",
        str(data),
        "-U",
        DB_USER,
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
    ]
    try:
        proc = subprocess.run(_as_postgres(command), capture_output=True, text=True, cwd=root)
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        who = " (as the postgres user: it must be able to reach this folder)" if _is_root() else ""
        raise CeleryStackError(f"initdb failed in {data}{who}:\n{proc.stderr[-2000:]}")


def _create_database(settings: Settings) -> None:
    import psycopg2

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg2.connect(
                host="127.0.0.1",
                port=settings.postgres_port,
                user=DB_USER,
                password=_secret("postgres_password", settings),
                dbname="postgres",
                connect_timeout=3,
            )
            break
        except psycopg2.OperationalError as error:  # still starting up ("the database system is starting")
            if time.monotonic() > deadline:
                raise CeleryStackError(f"PostgreSQL on port {settings.postgres_port}: {error}") from error
            time.sleep(0.5)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        conn.close()


def _redis_conf(settings: Settings) -> None:
    """Loopback only, a password, no persistence: the broker of a local stack holds nothing worth keeping
    once every task has been acknowledged."""
    path = home(settings) / "redis.conf"
    path.write_text(
        f"port {settings.redis_port}\nbind 127.0.0.1\nprotected-mode yes\n"
        f"requirepass {_secret('redis_password', settings)}\nsave ''\nappendonly no\n"
        f"dir {home(settings)}\nlogfile ''\ndaemonize no\n"
    )
    path.chmod(0o600)


def _airflow(settings: Settings, *args: str) -> None:
    try:
        airflow_local.airflow_cli(airflow_env(settings), *args)
    except airflow_local.AirflowError as error:
        raise CeleryStackError(str(error)) from error


def start(
    settings: Settings, echo: Echo = print, timeout: float = 180.0, extra_env: dict[str, str] | None = None
) -> str:
    """Start every piece that is not running; return the UI URL once the API answers.

    `extra_env` reaches the DAGs' tasks (e.g. NEWSRADAR_* settings of the embedded default)."""
    postgres_bin("postgres"), redis_bin()  # clear errors up front when a package is missing
    if _is_root():
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise CeleryStackError(
                "running as root, PostgreSQL must run as the system user `postgres`, which does not exist "
                "(the Debian package postgresql creates it)"
            ) from None
    found = _services(settings)
    if all(status(settings).values()) and healthy(settings):
        echo(f"Airflow (Celery) already running at {api_url(settings)}")
        return api_url(settings)
    home(settings).mkdir(parents=True, exist_ok=True)
    _initdb(settings, echo)
    pid = services.start(found["postgres"])
    _wait_port(settings.postgres_port, "PostgreSQL", found["postgres"], 60)
    _create_database(settings)
    echo(f"PostgreSQL on 127.0.0.1:{settings.postgres_port} (pid {pid}, data {postgres_dir(settings)})")
    _redis_conf(settings)
    pid = services.start(found["redis"])
    _wait_port(settings.redis_port, "Redis", found["redis"], 30)
    echo(f"Redis on 127.0.0.1:{settings.redis_port} (pid {pid})")
    echo("Migrating the Airflow database ...")
    _airflow(settings, "db", "migrate")
    # The crawl pool caps concurrent crawls; tasks in a missing pool would never be scheduled.
    _airflow(settings, "pools", "set", settings.crawl_pool, str(settings.crawl_pool_slots), "crawls")
    env = {**(extra_env or {}), **airflow_env(settings)}
    for name in AIRFLOW_COMPONENTS:
        pid = services.start(found[name], env)
        echo(f"started airflow {name} (pid {pid}, log {found[name].log})")
    (home(settings) / "celery").mkdir(exist_ok=True)
    log_offsets: dict[str, int] = {}
    for name, kind in worker_names(settings):
        log_offsets[name] = found[name].log.stat().st_size if found[name].log.is_file() else 0
        pid = services.start(found[name], {**env, "NEWSRADAR_CELERY_WORKER_NAME": node_name(name)})
        echo(f"started celery worker {node_name(name)} on queues {QUEUES[kind]} (pid {pid})")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [name for name, service in found.items() if services.pid_of(service) is None]
        if dead:
            tails = "\n".join(f"--- {n}:\n{services.log_tail(found[n])}" for n in dead)
            raise CeleryStackError(f"{', '.join(dead)} exited during start:\n{tails}")
        if healthy(settings) and all(
            _worker_ready(found[name], log_offsets[name]) for name, _ in worker_names(settings)
        ):
            echo(f"Airflow UI: {api_url(settings)} (CeleryExecutor; no login on this local stack)")
            return api_url(settings)
        time.sleep(1)
    raise CeleryStackError(
        f"the Celery stack was not ready within {timeout:.0f}s; see logs in {_log_dir(settings)}"
    )


def _worker_ready(service: services.Service, offset: int) -> bool:
    """Celery logs `<node> ready.` once it consumes from its queues (looked for past `offset`: the
    log is appended to across restarts)."""
    if not service.log.is_file():
        return False
    with service.log.open("rb") as log:
        log.seek(offset)
        return b" ready." in log.read()


def stop(settings: Settings, echo: Echo = print, timeout: float = 30.0) -> None:
    """Workers first (they finish their tasks against a live API), PostgreSQL last."""
    if not _run_dir(settings).is_dir():
        return
    found = _services(settings)
    run, logs = _run_dir(settings), _log_dir(settings)
    # Every worker with a pid file, also those of an earlier start with more workers than configured now.
    workers = [services.Service(p.stem, [], run, logs) for p in sorted(run.glob("worker-*.pid"))]
    for service in workers + [found[n] for n in ("scheduler", "triggerer", "dag-processor", "api-server")]:
        services.stop(service, echo, timeout)
    services.stop(found["redis"], echo, timeout)
    postgres = found["postgres"]
    pid = services.pid_of(postgres)
    if pid is not None:
        os.kill(pid, signal.SIGINT)  # fast shutdown; SIGTERM would wait for every client to leave
    services.stop(postgres, echo, timeout)
