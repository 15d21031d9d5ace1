"""The main job on the embedded default: the whole pipeline, run and watched in a real local Airflow.

`newsradar run` starts (or reuses) every piece as a background service — the Elasticsearch node,
the replay server with the sample site, a mail sink that also receives Slack webhooks, the web UI
and Airflow — triggers the crawl DAG through Airflow's REST API, follows the asset-triggered
process and alerts DAGs to the end, prints a summary and leaves the stack running for
`newsradar stop`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from index.client import get_client
from index.mapping import articles_alias, outbox_index
from newsradar.dates import parse_iso
from newsradar.http import Transient, with_retries
from newsradar.settings import Settings
from stack import airflow_local, services
from stack import esnode as node

Echo = Callable[[str], None]
PIPELINE = ("newsradar_crawl", "newsradar_process", "newsradar_alerts")
DONE = {"success", "failed"}


class MainJobError(RuntimeError):
    pass


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "commands", *args]


def local_services(settings: Settings) -> list[services.Service]:
    run, logs = settings.state_dir / "run", settings.state_dir / "logs"
    return [
        services.Service("replay", _cli("replay", "--port", str(settings.replay_port)), run, logs),
        services.Service(
            "mailsink",
            _cli(
                "mailsink",
                "--smtp-port",
                str(settings.mailsink_smtp_port),
                "--http-port",
                str(settings.mailsink_http_port),
            ),
            run,
            logs,
        ),
        services.Service("web", _cli("serve", "--port", str(settings.web_port)), run, logs),
    ]


def mail_dir(settings: Settings) -> Path:
    return settings.state_dir / "mailsink"


def pipeline_env(settings: Settings, live: bool) -> dict[str, str]:
    """What the DAGs' tasks need to see: the sample site (or the live catalog) and the sinks."""
    sink = f"http://127.0.0.1:{settings.mailsink_http_port}/slack"
    env = {
        "NEWSRADAR_INDEX_PREFIX": settings.index_prefix,
        "NEWSRADAR_ES_URL": settings.es_url,
        "NEWSRADAR_STATE_DIR": str(settings.state_dir),
        "NEWSRADAR_CRAWL_SOURCES": "catalog" if live else "sample",
        "NEWSRADAR_SAMPLE_BASE_URL": f"http://127.0.0.1:{settings.replay_port}",
        "NEWSRADAR_SMTP_HOST": "127.0.0.1",
        "NEWSRADAR_SMTP_PORT": str(settings.mailsink_smtp_port),
        "NEWSRADAR_OPERATOR_EMAIL": settings.operator_email or "operators@localhost",
        "HF_HUB_OFFLINE": "1",
    }
    for name in ("policy", "trade_desk", "operators"):
        env.setdefault(f"NEWSRADAR_SLACK_WEBHOOK_{name.upper()}", f"{sink}/{name}")
    return env


class AirflowApi:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base + "/api/v2", timeout=30)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, retried a few times: a busy SQLite database answers 500 now and then."""

        def once() -> Any:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                raise Transient(f"{method} {path}: {error}") from None
            if response.status_code >= 500:
                raise Transient(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
            response.raise_for_status()
            return response.json()

        try:
            return with_retries(once, attempts=5, backoff=2.0)
        except Transient as error:
            raise MainJobError(f"Airflow API: {error}") from error

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, json=body)

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.get("/dags", limit=100)["dags"]}

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", order_by="-run_after", limit=20)["dag_runs"])

    def task_states(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """States of every map index of a task in one run."""
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)
        return [str(ti.get("state")) for ti in found["task_instances"] if ti["task_id"] == task_id]


def _wait(what: str, check: Callable[[], Any], timeout: float, echo: Echo, every: float = 2.0) -> Any:
    began = time.monotonic()
    next_note = 30.0
    while time.monotonic() - began < timeout:
        result = check()
        if result:
            return result
        if time.monotonic() - began > next_note:
            echo(f"      ... still waiting for {what} ({time.monotonic() - began:.0f}s)")
            next_note += 30
        time.sleep(every)
    raise MainJobError(f"timed out after {timeout:.0f}s waiting for {what}")


def _when(value: str | None) -> datetime:
    return parse_iso(value) if value else datetime.max.replace(tzinfo=UTC)


def _settle(
    api: AirflowApi, dag_id: str, since: datetime, timeout: float, echo: Echo
) -> list[dict[str, Any]]:
    """Wait until at least one run of `dag_id` queued after `since` exists and all such runs ended.

    Scheduled, triggered and asset-triggered runs are all followed: the scheduler may start a cycle
    on its own the moment a DAG is unpaused, and asset events may be merged into one run."""

    def settled() -> list[dict[str, Any]] | None:
        runs = [r for r in api.runs(dag_id) if _when(r.get("queued_at") or r.get("run_after")) >= since]
        if runs and all(r["state"] in DONE for r in runs):
            return runs
        return None

    runs: list[dict[str, Any]] = _wait(dag_id, settled, timeout, echo)
    for found in runs:
        echo(f"      {dag_id}: run {found['dag_run_id']} {found['state']}")
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise MainJobError(
            f"{dag_id} runs failed: {', '.join(failed)}; open the Airflow UI for their task logs"
        )
    return runs


def summary(settings: Settings) -> dict[str, Any]:
    client = get_client(settings)
    alias = articles_alias(settings)
    facts: dict[str, Any] = {"articles": 0, "per_language": {}, "stories": 0}
    if client.indices.exists_alias(name=alias):
        result = client.search(
            index=alias,
            size=0,
            aggs={"lang": {"terms": {"field": "lang"}}, "stories": {"cardinality": {"field": "story_id"}}},
        )
        facts["articles"] = result["hits"]["total"]["value"]
        facts["per_language"] = {b["key"]: b["doc_count"] for b in result["aggregations"]["lang"]["buckets"]}
        facts["stories"] = result["aggregations"]["stories"]["value"]
    outbox = outbox_index(settings)
    alerts: dict[str, int] = {}
    if client.indices.exists(index=outbox):
        result = client.search(index=outbox, size=0, aggs={"status": {"terms": {"field": "status"}}})
        alerts = {b["key"]: b["doc_count"] for b in result["aggregations"]["status"]["buckets"]}
    facts["alerts"] = alerts
    facts["mails_received"] = len(list(mail_dir(settings).glob("*.eml")))
    facts["slack_posts_received"] = len(list((mail_dir(settings) / "slack").glob("*.json")))
    facts["urls"] = {
        "airflow_ui": airflow_local.api_url(settings),
        "search_ui": f"http://127.0.0.1:{settings.web_port}/",
        "mail_sink": f"http://127.0.0.1:{settings.mailsink_http_port}/",
        "elasticsearch": settings.es_url,
        "replay_site": f"http://127.0.0.1:{settings.replay_port}/",
    }
    return facts


def start_stack(settings: Settings, echo: Echo, live: bool = False) -> None:
    echo("[1/5] Elasticsearch")
    node.start(settings, echo)
    echo("[2/5] Replay server (sample site), mail sink, search UI")
    env = pipeline_env(settings, live)
    for service in local_services(settings):
        pid = services.start(service, {**env, "NEWSRADAR_MAILSINK_DIR": str(mail_dir(settings))})
        echo(f"      {service.name}: pid {pid} (log {service.log})")
    if settings.airflow_executor == "celery":
        from stack import airflow_celery

        echo("[3/5] Airflow (PostgreSQL, Redis, CeleryExecutor with crawl and enrich workers, loopback)")
        airflow_celery.start(settings, echo, extra_env=env, timeout=180)
    else:
        echo("[3/5] Airflow (SQLite, LocalExecutor, loopback)")
        airflow_local.start(settings, echo, extra_env=env, timeout=180)


def run(settings: Settings, echo: Echo = print, live: bool = False, timeout: float = 900) -> dict[str, Any]:
    began = datetime.now(UTC)
    start_stack(settings, echo, live)
    api = AirflowApi(airflow_local.api_url(settings))
    _wait("the DAGs to be parsed", lambda: set(PIPELINE) <= api.dag_ids(), 180, echo)
    for dag_id in PIPELINE:
        api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    echo("[4/5] One pipeline cycle: crawl -> process -> alerts")
    # Every source now, due or not: the cycle shown is the whole sample site (or catalog).
    triggered = api.post("/dags/newsradar_crawl/dagRuns", {"logical_date": None, "conf": {"force": True}})
    echo(f"      newsradar_crawl: triggered {triggered['dag_run_id']}")
    crawls = _settle(api, "newsradar_crawl", began, timeout, echo)
    published = [  # a crawl task succeeds only with new articles (it is skipped otherwise)
        r for r in crawls if "success" in api.task_states("newsradar_crawl", r["dag_run_id"], "crawl")
    ]
    if not published:
        echo("      no new articles (all were crawled before): nothing to process this cycle")
    else:
        first = min(_when(r["end_date"]) for r in published) - timedelta(seconds=5)
        processed = _settle(api, "newsradar_process", first, timeout, echo)
        last = max(_when(r["end_date"]) for r in processed) - timedelta(seconds=5)
        _settle(api, "newsradar_alerts", last, timeout, echo)
    echo("[5/5] Summary (the stack keeps running; stop it with `newsradar stop`)")
    return summary(settings)


def stop(settings: Settings, echo: Echo = print, keep_elasticsearch: bool = False) -> None:
    for service in reversed(local_services(settings)):
        services.stop(service, echo)
    airflow_local.stop(settings, echo)
    from stack import airflow_celery

    airflow_celery.stop(settings, echo)  # nothing to do unless a Celery stack was started
    if not keep_elasticsearch:
        node.stop(settings, echo)
