"""Scale-out: the pipeline on the CeleryExecutor (real PostgreSQL, real Redis, a crawl worker and an
enrich worker) gives the same articles, stories and alerts as on the LocalExecutor, with the crawl
map spread over the crawl worker's slots and enrichment running batches in parallel.

One cycle per executor over the sample site, each with its own index prefix, state dir and ports,
run the way `newsradar run` runs it (REST trigger, asset-triggered DAGs followed to the end).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alertkit import free_port
from elasticsearch import Elasticsearch

from index.mapping import articles_alias, drop_articles, outbox_index
from newsradar.batches import raw_batches
from newsradar.settings import Settings
from stack import airflow_celery, airflow_local, mainjob

_PACKAGES = shutil.which("redis-server") and list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
pytestmark = [
    pytest.mark.slow,
    # CI always has them (scripts/setup.sh installs both): there a missing package is a failure.
    pytest.mark.skipif(
        not _PACKAGES and not os.environ.get("CI"),
        reason="postgresql / redis-server not installed (scripts/setup.sh installs them)",
    ),
]


def _own(settings: Settings, name: str, state: Path, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "index_prefix": f"{settings.index_prefix}-scale-{name}",
            "state_dir": state,
            "airflow_port": free_port(),
            "web_port": free_port(),
            "mailsink_smtp_port": free_port(),
            "mailsink_http_port": free_port(),
            **extra,
        }
    )


def outcome(es: Elasticsearch, settings: Settings) -> dict[str, Any]:
    """What a cycle produced, independent of run ids and of which article founded a story."""
    es.indices.refresh(index=articles_alias(settings))
    hits = es.search(index=articles_alias(settings), size=1000, source_includes=["story_id"])["hits"]["hits"]
    members: dict[str, set[str]] = {}
    for hit in hits:
        members.setdefault(hit["_source"]["story_id"], set()).add(hit["_id"])
    story = {story_id: frozenset(ids) for story_id, ids in members.items()}
    outbox = outbox_index(settings)
    es.indices.refresh(index=outbox)
    sent = sorted(
        (
            entry["_source"]["rule"],
            entry["_source"]["kind"],
            entry["_source"]["destination"],
            sorted(sorted(story[s]) for s in entry["_source"]["story_ids"]),
        )
        for entry in es.search(index=outbox, size=1000, query={"term": {"status": "sent"}})["hits"]["hits"]
    )
    return {"ids": {hit["_id"] for hit in hits}, "stories": set(story.values()), "sent": sent}


def overlaps(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of task instances (one from each list, never one with itself) that ran at the same time."""
    return [
        (f"{a['task_id']}[{a['map_index']}]", f"{b['task_id']}[{b['map_index']}]")
        for a in first
        for b in second
        if a["id"] != b["id"]
        and mainjob._when(a["start_date"]) < mainjob._when(b["end_date"])
        and mainjob._when(b["start_date"]) < mainjob._when(a["end_date"])
    ]


def task_instances(api: mainjob.AirflowApi, dag_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for run in api.runs(dag_id):
        found += api.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances", limit=100)[
            "task_instances"
        ]
    return found


def _span(api: mainjob.AirflowApi) -> float:
    """Seconds from the first crawl task's start to the last alerts task's end: the cycle itself."""
    tis = [ti for dag_id in mainjob.PIPELINE for ti in task_instances(api, dag_id) if ti["end_date"]]
    return (
        max(mainjob._when(ti["end_date"]) for ti in tis) - min(mainjob._when(ti["start_date"]) for ti in tis)
    ).total_seconds()


@pytest.fixture(scope="module")
def cycles(
    es: Elasticsearch, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    # One replay port for both: article ids derive from URLs, so both cycles must crawl the same site
    # (one stack runs at a time, so the port is free again for the second).
    replay_port = free_port()
    local = _own(settings, "local", tmp_path_factory.mktemp("scale-local"), replay_port=replay_port)
    # PostgreSQL runs as its own user when we are root: its data dir must not sit below a 0700 folder.
    pg_dir = Path(tempfile.mkdtemp(prefix="newsradar-scale-pg-"))
    celery = _own(
        settings,
        "celery",
        tmp_path_factory.mktemp("scale-celery"),
        replay_port=replay_port,
        airflow_executor="celery",
        postgres_dir=pg_dir,
        postgres_port=free_port(),
        redis_port=free_port(),
    )
    facts: dict[str, Any] = {"local": local, "celery": celery}
    try:
        began = time.monotonic()
        facts["local_summary"] = mainjob.run(local, print, timeout=300)
        facts["local_total_s"] = time.monotonic() - began
        facts["local_cycle_s"] = _span(mainjob.AirflowApi(airflow_local.api_url(local)))
        facts["local_outcome"] = outcome(es, local)
        mainjob.stop(local, print, keep_elasticsearch=True)  # two cores: one stack at a time

        began = time.monotonic()
        facts["celery_summary"] = mainjob.run(celery, print, timeout=300)
        facts["celery_total_s"] = time.monotonic() - began
        api = mainjob.AirflowApi(airflow_celery.api_url(celery))
        facts["celery_cycle_s"] = _span(api)
        facts["celery_outcome"] = outcome(es, celery)
        facts["celery_tis"] = {dag_id: task_instances(api, dag_id) for dag_id in mainjob.PIPELINE}
        facts["parallel"] = _two_batches_at_once(api, celery)
        facts["celery_outcome_after"] = outcome(es, celery)
        print(
            f"cycle (first crawl task to last alerts task): local {facts['local_cycle_s']:.0f}s, "
            f"celery {facts['celery_cycle_s']:.0f}s; with stack start: local {facts['local_total_s']:.0f}s, "
            f"celery {facts['celery_total_s']:.0f}s; "
            f"two parallel process runs {facts['parallel']['span_s']:.0f}s"
        )
        yield facts
    finally:
        mainjob.stop(local, print, keep_elasticsearch=True)
        mainjob.stop(celery, print, keep_elasticsearch=True)
        for mine in (local, celery):
            drop_articles(es, mine)
        shutil.rmtree(pg_dir, ignore_errors=True)


def _two_batches_at_once(api: mainjob.AirflowApi, settings: Settings) -> dict[str, Any]:
    """Re-process the cycle's crawl batch as two manual process runs triggered together: the enrich
    worker takes both (max_active_runs 2, two slots), and a re-run changes nothing."""
    crawl = next(
        r
        for r in api.runs("newsradar_crawl")
        if "success" in api.task_states("newsradar_crawl", r["dag_run_id"], "crawl")
    )
    raw = raw_batches(settings, crawl["dag_run_id"])
    since = mainjob._when(api.runs("newsradar_alerts")[0]["end_date"])
    run_ids = [
        api.post("/dags/newsradar_process/dagRuns", {"logical_date": None, "conf": {"raw": raw}})[
            "dag_run_id"
        ]
        for _ in range(2)
    ]
    mainjob._wait(
        "two process runs",
        lambda: all(
            api.get(f"/dags/newsradar_process/dagRuns/{r}")["state"] in mainjob.DONE for r in run_ids
        ),
        240,
        print,
    )
    # Each index task updates the asset: wait for the alerts runs they start, so nothing is still sending.
    mainjob._settle(api, "newsradar_alerts", since, 240, print)
    tis = {
        run_id: api.get(f"/dags/newsradar_process/dagRuns/{run_id}/taskInstances", limit=100)[
            "task_instances"
        ]
        for run_id in run_ids
    }
    first, second = (tis[r] for r in run_ids)
    overlapping = overlaps(first, second)
    print(f"process runs {run_ids}: tasks at the same time: {overlapping}")
    every = first + second
    return {
        "states": [api.get(f"/dags/newsradar_process/dagRuns/{r}")["state"] for r in run_ids],
        "overlapping": overlapping,
        "hosts": {ti["hostname"] for ti in every},
        "span_s": (
            max(mainjob._when(ti["end_date"]) for ti in every)
            - min(mainjob._when(ti["start_date"]) for ti in every)
        ).total_seconds(),
    }


def test_celery_gives_the_same_articles_stories_and_alerts(cycles: dict[str, Any]) -> None:
    local, celery = cycles["local_outcome"], cycles["celery_outcome"]
    assert local["ids"], "the local cycle indexed nothing"
    assert celery["ids"] == local["ids"]
    assert celery["stories"] == local["stories"]
    assert local["sent"], "no alert was sent: nothing to compare"
    assert celery["sent"] == local["sent"]
    for key in ("mails_received", "slack_posts_received", "alerts"):
        assert cycles["celery_summary"][key] == cycles["local_summary"][key]


def test_crawl_map_runs_on_the_crawl_worker_and_the_rest_on_the_enrich_worker(cycles: dict[str, Any]) -> None:
    crawl_node = airflow_celery.node_name("worker-crawl-1")
    enrich_node = airflow_celery.node_name("worker-enrich-1")
    tis = cycles["celery_tis"]
    mapped = [ti for ti in tis["newsradar_crawl"] if ti["task_id"] == "crawl"]
    # One map index per host group and run (the scheduler may add a scheduled run that finds nothing
    # new); the sample site is one host, so each run maps one crawl task.
    per_run = {(ti["dag_run_id"], ti["map_index"]) for ti in mapped}
    assert mapped and len(mapped) == len(per_run)
    for ti in mapped:
        print(f"crawl[{ti['map_index']}] on {ti['hostname']} (queue {ti['queue']}), {ti['state']}")
        assert ti["queue"] == "crawl" and ti["hostname"] in (crawl_node, None, "")
    # The cycle's own run finished on the crawl worker; a scheduled run that started meanwhile may not have.
    runs: dict[str, set[str]] = {}
    for ti in mapped:
        runs.setdefault(ti["dag_run_id"], set()).add(ti["state"])
    assert any(states == {"success"} for states in runs.values()), runs
    # Sources are crawled one task per host (politeness); the sample site is one host, so a run maps
    # one crawl task, and two crawls overlap only when a scheduled run meets the triggered one.
    mapped = [ti for ti in mapped if ti["state"] == "success"]
    for run_id in {ti["dag_run_id"] for ti in mapped}:
        assert len([ti for ti in mapped if ti["dag_run_id"] == run_id]) == 1, run_id
    print(f"crawls at the same time on {crawl_node}: {sorted(set(overlaps(mapped, mapped)))}")
    others = [
        ti for dag_id in tis for ti in tis[dag_id] if ti["task_id"] != "crawl" and ti["state"] == "success"
    ]
    assert {ti["task_id"] for ti in others} >= {"select_sources", "collect", "index", "evaluate"}
    for ti in others:
        assert ti["hostname"] == enrich_node, ti
        assert ti["queue"] in {"enrich", "default"}, ti


def test_enrichment_runs_two_batches_at_once_without_changing_the_result(cycles: dict[str, Any]) -> None:
    parallel = cycles["parallel"]
    assert parallel["states"] == ["success", "success"]
    assert parallel["overlapping"], "the two process runs never ran a task at the same time"
    assert parallel["hosts"] == {airflow_celery.node_name("worker-enrich-1")}
    # Re-processing the same batch twice at once: no new article, story or alert.
    assert cycles["celery_outcome_after"] == cycles["celery_outcome"]
