"""newsradar_backfill: re-process or re-index what is already indexed, for a date range and sources."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from dagkit import dag_args

DOC = """
### newsradar_backfill

Manual only. For use after a model or mapping change.

- `mode=reprocess`: exports the articles first seen in [`since`, `until`) (all when empty) of the
  given `sources` (all when empty) from the index into a raw batch on staging, then triggers
  `newsradar_process` on it: language, translation, embeddings, classification and stories are
  recomputed with the current models, and the documents are overwritten in place (same ids).
- `mode=migrate`: creates the next versioned articles index from the current template, copies every
  document (server-side `_reindex` where the node has it, else in the client), catches up on writes
  made meanwhile and switches the alias atomically.

**When it fails**: `export` needs Elasticsearch; `migrate` leaves the old index and the alias
untouched until the copy is complete, so a failed run is simply re-run.
"""


@dag(
    dag_id="newsradar_backfill",
    schedule=None,
    **dag_args(DOC, execution_timeout=pendulum.duration(hours=6)),
    params={
        "mode": Param("reprocess", enum=["reprocess", "migrate"], description="reprocess or migrate"),
        "since": Param(None, type=["null", "string"], format="date", description="first day (inclusive)"),
        "until": Param(None, type=["null", "string"], format="date", description="last day (exclusive)"),
        "sources": Param([], type="array", items={"type": "string"}, description="source names; empty = all"),
    },
)
def newsradar_backfill() -> None:
    @task.branch
    def choose() -> str:
        return "export" if get_current_context()["params"]["mode"] == "reprocess" else "migrate"

    @task
    def export() -> list[str]:
        from datetime import datetime

        from dagkit import stage_path
        from index.client import get_client
        from index.export import export_articles
        from newsradar.batches import write_articles
        from newsradar.settings import get_settings

        context = get_current_context()
        params = context["params"]
        settings = get_settings()
        since = datetime.fromisoformat(params["since"] + "T00:00:00+00:00") if params["since"] else None
        until = datetime.fromisoformat(params["until"] + "T00:00:00+00:00") if params["until"] else None
        articles = export_articles(get_client(settings), settings, since, until, params["sources"])
        target = stage_path(settings, context["run_id"], 0, "export")
        count = write_articles(target, articles)
        print(f"exported {count} articles -> {target}")
        return [target]

    @task
    def migrate() -> dict[str, Any]:
        from dataclasses import asdict

        from index.client import get_client
        from index.migrate import migrate as run_migrate
        from newsradar.settings import get_settings

        settings = get_settings()
        report = asdict(run_migrate(get_client(settings), settings))
        print(report)
        return report

    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    raw = export()
    trigger = TriggerDagRunOperator(
        task_id="trigger_process",
        trigger_dag_id="newsradar_process",
        conf={"raw": raw},
        wait_for_completion=True,
        poke_interval=10,
    )
    choose() >> [raw, migrate()]
    raw >> trigger


newsradar_backfill()
