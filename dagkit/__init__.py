"""What every newsradar DAG shares: the assets that chain them, default task arguments, the
operator notification on failure, and staging paths of a run's batches.

Kept out of `dags/` so DAG files stay short declarations and parse fast; nothing here imports
heavy libraries at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset

from newsradar.batches import batch_dir
from newsradar.settings import Settings, get_settings

RAW_ARTICLES = Asset(name="newsradar_raw_articles", uri="newsradar://raw-articles")
INDEXED_ARTICLES = Asset(name="newsradar_indexed_articles", uri="newsradar://indexed-articles")
TAGS = ["newsradar"]


def notify_failure(context: Mapping[str, Any]) -> None:
    """`on_failure_callback`: a task failed for good (retries exhausted); tell the operators."""
    from alerts.notify import notify_operators

    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id", "?")
    try_number = getattr(ti, "try_number", "?")
    error = context.get("exception")
    subject = f"newsradar pipeline failure: {dag_id}.{task_id}"
    text = (
        f"DAG {dag_id}, task {task_id}, run {run_id}, try {try_number} failed.\n"
        f"Error: {error!r}\n"
        f"What to do: read the task log in the Airflow UI, and the DAG's documentation for this task; "
        f"fix the cause, then clear the task (every task is safe to re-run for the same batch)."
    )
    notify_operators(get_settings(), f"{dag_id}/{task_id}/{run_id}/{try_number}", subject, text)


def dag_args(doc: str, *, max_active_runs: int = 1, **task_defaults: Any) -> dict[str, Any]:
    """What every newsradar DAG declares alike: start, no catch-up, tags, its documentation, and the
    default task arguments (``task_defaults`` override them, e.g. ``queue="enrich"``)."""
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": max_active_runs,
        "doc_md": doc,
        "tags": TAGS,
        "default_args": default_args(**task_defaults),
    }


def default_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": "newsradar",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": notify_failure,
    }
    args.update(overrides)
    return args


def stage_path(settings: Settings, run_id: str, step: int, name: str) -> str:
    """`<staging>/batches/<run_id>/<nn>-<stage>.jsonl`: a re-run of a stage overwrites its own output."""
    return f"{batch_dir(settings, run_id)}/{step:02d}-{name}.jsonl"


def enriched_path(settings: Settings, run_id: str) -> str:
    """The process DAG's enriched batch of a run (what `index` reads, and what a re-run of `enrich`
    overwrites)."""
    return stage_path(settings, run_id, 1, "enriched")
