"""The main job on the embedded default: the whole pipeline over the sample site, end to end.

Starts the local Elasticsearch node and the replay server, runs the pipeline DAG once with
`dag.test()` against them, and prints what it did and where to look.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from crawlers.replay import SAMPLE_SITE, ReplayServer
from index import node
from index.client import get_client
from index.mapping import articles_alias
from newsradar import airflow_local
from newsradar.settings import Settings

Echo = Callable[[str], None]


def sample_sources(base_url: str, site: Path = SAMPLE_SITE) -> list[dict[str, Any]]:
    """The sample site's outlets as pipeline sources, pointed at the replay server."""
    catalog = site / "outlets.yaml"
    if catalog.is_file():
        outlets = yaml.safe_load(catalog.read_text(encoding="utf-8"))
        if isinstance(outlets, dict):
            outlets = outlets.get("outlets", [])
        return [
            {
                "name": outlet["name"],
                "lang": outlet.get("lang"),
                "country": outlet.get("country"),
                "feeds": [base_url + "/" + feed.lstrip("/") for feed in outlet.get("feeds", [])],
            }
            for outlet in outlets
            if outlet.get("feeds")
        ]
    return [
        {"name": feed.parent.name, "feeds": [base_url + "/" + str(feed.relative_to(site))]}
        for feed in sorted(site.glob("*/feed.xml"))
    ]


def run_dag(settings: Settings, dag_id: str, conf: dict[str, Any], echo: Echo) -> None:
    airflow_local.migrate(settings)
    env = {**os.environ, **airflow_local.airflow_env(settings)}
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "newsradar.dagrun", dag_id, "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
    )
    log = settings.state_dir / "logs" / f"{dag_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"DAG {dag_id} failed (log: {log}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    echo(f"DAG {dag_id} succeeded in {time.monotonic() - began:.1f}s (log: {log})")


def summary(settings: Settings) -> dict[str, Any]:
    client = get_client(settings)
    alias = articles_alias(settings)
    result = client.search(
        index=alias,
        size=0,
        aggs={"lang": {"terms": {"field": "lang"}}, "stories": {"cardinality": {"field": "story_id"}}},
    )
    return {
        "articles": result["hits"]["total"]["value"],
        "per_language": {b["key"]: b["doc_count"] for b in result["aggregations"]["lang"]["buckets"]},
    }


def run(settings: Settings, echo: Echo = print) -> dict[str, Any]:
    echo("[1/4] Elasticsearch")
    node.start(settings, echo)
    echo("[2/4] Replay server with the sample site")
    with ReplayServer(SAMPLE_SITE, port=settings.replay_port) as replay:
        sources = sample_sources(replay.base_url)
        echo(f"      {replay.base_url}/ serving {len(sources)} sample outlets")
        echo("[3/4] Pipeline DAG (crawl -> language -> embed -> index)")
        run_dag(settings, "newsradar_pipeline", {"sources": sources}, echo)
    echo("[4/4] Summary")
    facts = summary(settings)
    facts["elasticsearch"] = settings.es_url
    facts["index"] = articles_alias(settings)
    return facts
