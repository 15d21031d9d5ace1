"""DAG integrity: every DAG file imports cleanly and declares what operators rely on."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "newsradar_crawl",
    "newsradar_process",
    "newsradar_alerts",
    "newsradar_maintenance",
    "newsradar_backfill",
}


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def _uris(assets: object) -> set[str]:
    return {asset.uri.rstrip("/") for asset in assets}  # type: ignore[attr-defined]


def test_no_import_errors_and_the_expected_dags(bag: DagBag) -> None:
    assert bag.import_errors == {}
    assert set(bag.dags) == EXPECTED


def test_every_dag_is_documented_tagged_retried_and_notifies(bag: DagBag) -> None:
    from dagkit import notify_failure

    for dag_id, dag in bag.dags.items():
        assert dag.doc_md and "when it fails" in dag.doc_md.lower(), dag_id
        assert "newsradar" in dag.tags, dag_id
        assert dag.max_active_runs is not None and dag.max_active_runs <= 3, dag_id  # bounded overlap
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.retries >= 1, where
            assert task.owner == "newsradar", where
            assert task.execution_timeout is not None, where
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify_failure in callbacks, where


def test_crawl_dag_maps_one_task_per_source_in_a_pool(bag: DagBag) -> None:
    dag = bag.dags["newsradar_crawl"]
    assert dag.timetable.expression == "* * * * *"  # looks for due sources every minute
    crawl = dag.get_task("crawl")
    assert crawl.pool == "newsradar_crawl"
    assert crawl.queue == "crawl"
    assert type(crawl).__name__.endswith("MappedOperator")
    assert _uris(crawl.outlets) == {"newsradar://raw-articles"}  # each source publishes its own batch
    assert set(dag.params) >= {"sources", "lang", "catalog", "force"}


def test_process_chain_and_assets(bag: DagBag) -> None:
    dag = bag.dags["newsradar_process"]
    chain = ["collect", "enrich", "index"]
    for upstream, downstream in itertools.pairwise(chain):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert _uris(dag.get_task("index").outlets) == {"newsradar://indexed-articles"}
    assert "raw-articles" in str(dag.timetable.asset_condition)


def test_alerts_on_indexed_asset_or_cron(bag: DagBag) -> None:
    dag = bag.dags["newsradar_alerts"]
    assert "indexed-articles" in str(dag.timetable.asset_condition)
    assert dag.timetable.timetable.expression == "*/15 * * * *"


def test_manual_params_are_validated(bag: DagBag) -> None:
    backfill = copy.deepcopy(bag.dags["newsradar_backfill"].params)
    backfill["mode"] = "migrate"
    assert backfill["mode"] == "migrate"
    with pytest.raises(Exception, match="delete-everything"):
        backfill["mode"] = "delete-everything"
    crawl = copy.deepcopy(bag.dags["newsradar_crawl"].params)
    with pytest.raises(Exception, match="fr"):
        crawl["lang"] = "fr"
