"""DAG integrity: every DAG file imports cleanly and declares what operators rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parent.parent / "dags"


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    assert "newsradar_pipeline" in bag.dags


def test_every_dag_is_documented_tagged_and_retried(bag: DagBag) -> None:
    for dag_id, dag in bag.dags.items():
        assert dag.doc_md and "fail" in dag.doc_md.lower(), dag_id
        assert "newsradar" in dag.tags, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id}"
            assert task.owner == "newsradar"


def test_pipeline_shape(bag: DagBag) -> None:
    dag = bag.dags["newsradar_pipeline"]
    assert set(dag.task_ids) == {"list_sources", "crawl", "process", "index"}
    assert dag.get_task("process").upstream_task_ids == {"crawl"}
    outlets = dag.get_task("index").outlets
    assert [asset.uri.rstrip("/") for asset in outlets] == ["newsradar://indexed-articles"]
