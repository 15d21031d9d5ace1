"""The whole pipeline with dag.test(): sample site on the replay server -> crawl -> process -> alerts
into a real SMTP server, with the real Elasticsearch node; a second cycle adds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from alertkit import free_port
from elasticsearch import Elasticsearch

from index.mapping import articles_alias, drop_articles
from newsradar.batches import raw_batches
from newsradar.settings import Settings, get_settings
from stack.replay import SAMPLE_SITE, ReplayServer

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((SAMPLE_SITE / "MANIFEST.json").read_text(encoding="utf-8"))
RULE = """
name: everything-that-matters
owner: e2e
event_types: [release, ban, restriction, regulation]
channels:
  email: [analysts@newsradar.test]
mode: immediate
"""


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.original_content)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def pipeline(
    es: Elasticsearch, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> Iterator[tuple[Settings, Inbox]]:
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "everything.yaml").write_text(RULE)
    with ReplayServer(SAMPLE_SITE) as site:
        env = {
            "NEWSRADAR_INDEX_PREFIX": f"{settings.index_prefix}-e2e",
            "NEWSRADAR_STATE_DIR": str(tmp_path / "state"),
            "NEWSRADAR_CRAWL_SOURCES": "sample",
            "NEWSRADAR_SAMPLE_BASE_URL": site.base_url,
            "NEWSRADAR_RULES_DIR": str(rules),
            "NEWSRADAR_SMTP_HOST": "127.0.0.1",
            "NEWSRADAR_SMTP_PORT": str(smtp_port),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        mine = get_settings()
        try:
            yield mine, inbox
        finally:
            smtp.stop()
            drop_articles(es, mine)
            get_settings.cache_clear()


def _dags() -> dict[str, object]:
    from airflow.dag_processing.dagbag import DagBag

    return dict(DagBag(dag_folder=str(ROOT / "dags")).dags)


def test_crawl_process_alerts_once_then_nothing_new(
    es: Elasticsearch, pipeline: tuple[Settings, Inbox]
) -> None:
    settings, inbox = pipeline
    dags = _dags()
    crawl = dags["newsradar_crawl"].test()  # type: ignore[attr-defined]
    assert str(crawl.state).endswith("success")
    raw = raw_batches(settings, crawl.run_id)  # one file per source with new articles
    reachable = [page for page in MANIFEST if not page["robots_disallowed"]]
    assert sum(len(Path(path).read_text().splitlines()) for path in raw) == len(reachable)

    process = dags["newsradar_process"].test(run_conf={"raw": raw})  # type: ignore[attr-defined]
    assert str(process.state).endswith("success")
    alias = articles_alias(settings)
    assert es.count(index=alias)["count"] == len(reachable)
    stories = es.search(index=alias, size=0, aggs={"s": {"cardinality": {"field": "story_id"}}})
    assert stories["aggregations"]["s"]["value"] == len({page["story"] for page in reachable})

    alerts = dags["newsradar_alerts"].test()  # type: ignore[attr-defined]
    assert str(alerts.state).endswith("success")
    matching = es.search(
        index=alias,
        size=0,
        query={  # what the rule asks for: an AI story of one of these types, with confidence
            "bool": {
                "filter": [
                    {"terms": {"event_types": ["release", "ban", "restriction", "regulation"]}},
                    {"term": {"ai_related": True}},
                    {
                        "bool": {
                            "should": [
                                {"range": {f"event_scores.{kind}": {"gte": 0.5}}}
                                for kind in ("release", "ban", "restriction", "regulation")
                            ]
                        }
                    },
                ]
            }
        },
        aggs={"s": {"terms": {"field": "story_id", "size": 100}}},
    )["aggregations"]["s"]["buckets"]
    assert len(inbox.messages) == len(matching) > 0  # one mail per story, not per article
    ids = [m.split(b"Message-ID:", 1)[1].split(b"\n", 1)[0].strip() for m in inbox.messages]
    assert len(set(ids)) == len(ids)

    # A second cycle: nothing new on the site, nothing new anywhere.
    again = dags["newsradar_crawl"].test(run_conf={"force": True})  # type: ignore[attr-defined]
    crawls = [ti for ti in again.get_task_instances() if ti.task_id == "crawl"]
    assert crawls and all(str(ti.state).endswith("skipped") for ti in crawls)  # polled: nothing new
    assert str(dags["newsradar_alerts"].test().state).endswith("success")  # type: ignore[attr-defined]
    assert len(inbox.messages) == len(matching)
    assert es.count(index=alias)["count"] == len(reachable)
