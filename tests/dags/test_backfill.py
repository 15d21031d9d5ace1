"""The backfill DAG with dag.test(): re-process indexed articles (export -> process) and migrate the
index to a new version, against the real Elasticsearch node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from index.indexer import index_articles
from index.ingest import load_articles
from index.mapping import alias_target, articles_alias, drop_articles
from newsradar.batches import read_articles
from newsradar.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "index" / "articles.jsonl"


@pytest.fixture
def indexed(
    es: Elasticsearch, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> Iterator[tuple[Settings, list[str]]]:
    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", f"{settings.index_prefix}-backfill")
    monkeypatch.setenv("NEWSRADAR_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    mine = get_settings()
    articles = load_articles(FIXTURE)[:6]
    for article in articles:  # as the crawler delivers them: no enrichment yet
        article.story_id, article.event_types, article.entities = None, [], []
    assert index_articles(es, mine, articles).indexed == len(articles)
    try:
        yield mine, [a.id for a in articles]
    finally:
        drop_articles(es, mine)
        get_settings.cache_clear()


def _dag(dag_id: str) -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags[dag_id]


def test_reprocess_exports_then_process_recomputes_in_place(
    es: Elasticsearch, indexed: tuple[Settings, list[str]]
) -> None:
    settings, ids = indexed
    # The trigger would wait for a process run that dag.test() does not execute; run it ourselves.
    run = _dag("newsradar_backfill").test(  # type: ignore[attr-defined]
        run_conf={"mode": "reprocess", "since": "2026-01-01", "until": None, "sources": []},
        mark_success_pattern="trigger_process",
    )
    assert str(run.state).endswith("success")
    assert str(run.get_task_instance("migrate").state).endswith("skipped")
    exported = run.get_task_instance("export").xcom_pull(task_ids="export")
    articles = list(read_articles(exported[0]))
    assert sorted(a.id for a in articles) == sorted(ids)
    assert all(a.title and a.text and a.url for a in articles)

    process = _dag("newsradar_process").test(run_conf={"raw": exported})  # type: ignore[attr-defined]
    assert str(process.state).endswith("success")
    alias = articles_alias(settings)
    es.indices.refresh(index=alias)
    docs = {h["_id"]: h["_source"] for h in es.search(index=alias, size=50)["hits"]["hits"]}
    assert sorted(docs) == sorted(ids)  # overwritten in place, nothing added
    assert all(doc["story_id"].startswith("s-") for doc in docs.values())  # stories recomputed
    assert any(doc["event_types"] for doc in docs.values())


def test_migrate_switches_the_alias_and_keeps_every_document(
    es: Elasticsearch, indexed: tuple[Settings, list[str]]
) -> None:
    settings, ids = indexed
    before = alias_target(es, settings)
    run = _dag("newsradar_backfill").test(  # type: ignore[attr-defined]
        run_conf={"mode": "migrate", "since": None, "until": None, "sources": []}
    )
    assert str(run.state).endswith("success")
    after = alias_target(es, settings)
    assert before and after and before != after and after.endswith("-v2")
    alias = articles_alias(settings)
    es.indices.refresh(index=alias)
    assert sorted(h["_id"] for h in es.search(index=alias, size=50)["hits"]["hits"]) == sorted(ids)
