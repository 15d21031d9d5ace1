"""Cluster policy of the production Airflow: route tasks to the Celery queues of the workers.

Crawl tasks wait on the network and enrichment tasks on the CPU, so they run on separate worker
pools (`crawl` and `enrich` queues) that scale independently. A task whose DAG chose a queue keeps
it (`@task(queue=...)` wins); every other task is routed here: the crawl DAG and tasks named
`crawl...` go to `crawl`, the rest to `enrich`. Airflow imports this module from
$AIRFLOW_HOME/config and applies `task_policy` to every task when a DAG file is parsed.
"""

from __future__ import annotations

import os
from typing import Any

CRAWL_QUEUE = os.environ.get("CRAWL_QUEUE", "crawl")
ENRICH_QUEUE = os.environ.get("ENRICH_QUEUE", "enrich")
CRAWL_DAG_IDS = frozenset({"newsradar_crawl"})


def _default_queue() -> str:
    from airflow.configuration import conf

    return str(conf.get("operators", "default_queue"))


def is_crawl_task(dag_id: str | None, task_id: str) -> bool:
    """Crawl tasks by DAG or by name (the last part of a task-group id: `group.crawl_feed`)."""
    return dag_id in CRAWL_DAG_IDS or task_id.rsplit(".", 1)[-1].startswith("crawl")


def route(task: Any, default_queue: str) -> None:
    if task.queue != default_queue:
        return
    task.queue = CRAWL_QUEUE if is_crawl_task(task.dag_id, task.task_id) else ENRICH_QUEUE


def task_policy(task: Any) -> None:
    route(task, _default_queue())
