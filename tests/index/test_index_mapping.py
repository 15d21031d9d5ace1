"""The versioned template, strict mapping, Chinese phrase matching and migration on the real node."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator

import pytest
from elasticsearch import BadRequestError, Elasticsearch
from typer.testing import CliRunner

from index.capabilities import detect
from index.indexer import index_documents
from index.mapping import (
    EMBEDDING_DIM,
    MAPPING_VERSION,
    alias_target,
    articles_alias,
    articles_index,
    drop_articles,
    ensure_articles_index,
    template_name,
)
from index.migrate import MigrationError, migrate, status
from newsradar.settings import Settings, get_settings


@pytest.fixture
def scoped(es: Elasticsearch, settings: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings whose index prefix is private to one test."""
    mine = settings.model_copy(
        update={"index_prefix": f"{settings.index_prefix}-map-{request.node.name[:20]}"}
    )
    mine = mine.model_copy(update={"index_prefix": mine.index_prefix.lower().replace("_", "-")})
    yield mine
    drop_articles(es, mine)


def _vector(seed: int) -> list[float]:
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(EMBEDDING_DIM)]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


def _doc(number: int, **extra: object) -> dict[str, object]:
    return {
        "id": f"doc-{number:04d}",
        "url": f"https://example.test/{number}",
        "canonical_url": f"https://example.test/{number}",
        "source": "example",
        "lang": "en",
        "title": f"Article number {number}",
        "text": "body",
        "story_id": f"story-{number % 7}",
        "indexed_at": "2026-11-20T10:00:00+00:00",
        "embedding": _vector(number),
        "embedding_model": "test",
        "embedding_dim": EMBEDDING_DIM,
        **extra,
    }


def test_template_alias_and_strict_mapping(es: Elasticsearch, scoped: Settings) -> None:
    alias = ensure_articles_index(es, scoped)
    assert alias == articles_alias(scoped)
    assert alias_target(es, scoped) == articles_index(scoped, 1)
    template = es.indices.get_index_template(name=template_name(scoped))["index_templates"][0][
        "index_template"
    ]
    assert template["index_patterns"] == [f"{alias}-v*"]
    mapping = es.indices.get_mapping(index=articles_index(scoped, 1))[articles_index(scoped, 1)]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["_meta"]["mapping_version"] == MAPPING_VERSION
    props = mapping["properties"]
    assert props["embedding"]["type"] == "dense_vector" and props["embedding"]["dims"] == EMBEDDING_DIM
    assert props["events"]["type"] == "nested"
    for name in ("event_types", "entities", "story_id", "lang", "source", "country"):
        assert props[name]["type"] == "keyword", name
    for name in ("published_at", "first_seen_at", "indexed_at"):
        assert props[name]["type"] == "date"
    caps = detect(es)
    subfields = set(props["title"].get("fields", {}))
    assert ("de" in subfields) == caps.language_analyzers
    assert ("zh" in subfields) == (caps.smartcn or caps.icu)
    assert props["title"]["analyzer"] == "standard"
    # a second call reuses what exists
    assert ensure_articles_index(es, scoped) == alias
    with pytest.raises(BadRequestError, match="strict_dynamic_mapping_exception"):
        es.index(index=alias, id="x", document={**_doc(1), "not_a_field": 1})


def test_chinese_phrase_query_on_standard_analyzer(es: Elasticsearch, scoped: Settings) -> None:
    docs = [
        _doc(1, lang="zh", title="美国收紧对英伟达芯片的出口管制", text="商务部宣布新的出口管制措施"),
        _doc(2, lang="zh", title="出口数据增长，管制放松", text="海关公布出口数据，部分管制放松"),
        _doc(3, lang="de", title="Exportkontrollen für Chips", text="Die USA verschärfen die Kontrollen"),
    ]
    report = index_documents(es, scoped, docs)
    assert report.indexed == 3 and not report.failed
    hits = es.search(index=articles_alias(scoped), query={"match_phrase": {"title": "出口管制"}})["hits"][
        "hits"
    ]
    assert [h["_id"] for h in hits] == ["doc-0001"]  # same characters, not adjacent: no phrase hit
    loose = es.search(index=articles_alias(scoped), query={"match": {"title": "出口管制"}})["hits"]["hits"]
    assert {h["_id"] for h in loose} == {"doc-0001", "doc-0002"}


def test_migration_v1_to_v2_keeps_every_document(es: Elasticsearch, scoped: Settings) -> None:
    docs = [_doc(n) for n in range(1, 1201)]
    assert index_documents(es, scoped, docs, chunk_size=500).indexed == len(docs)
    alias = articles_alias(scoped)
    before = status(es, scoped)
    assert before["index"] == articles_index(scoped, 1) and before["documents"] == len(docs)

    report = migrate(es, scoped, method="client", batch=300)
    assert (report.source, report.target) == (articles_index(scoped, 1), articles_index(scoped, 2))
    assert report.copied == len(docs)
    assert alias_target(es, scoped) == articles_index(scoped, 2)
    holders = es.indices.get_alias(name=alias)
    assert list(holders) == [articles_index(scoped, 2)]  # the switch left one index behind the alias
    assert es.count(index=alias)["count"] == len(docs)
    ids: set[str] = set()
    after = None
    while True:
        page = es.search(index=alias, size=500, sort=[{"id": "asc"}], search_after=after, source=False)[
            "hits"
        ]
        ids.update(h["_id"] for h in page["hits"])
        if len(page["hits"]) < 500:
            break
        after = page["hits"][-1]["sort"]
    assert ids == {d["id"] for d in docs}
    copy = es.get(index=alias, id="doc-0042", source_exclude_vectors=False)["_source"]
    assert copy["embedding"] == pytest.approx(docs[41]["embedding"], abs=1e-6)  # vectors copied too
    assert copy["title"] == "Article number 42"
    assert es.indices.exists(index=articles_index(scoped, 1))  # kept for rollback
    assert status(es, scoped)["needs_migration"] is False

    # kNN still works on the new version
    near = es.search(
        index=alias,
        knn={"field": "embedding", "query_vector": docs[9]["embedding"], "k": 1, "num_candidates": 50},
    )["hits"]["hits"]
    assert near[0]["_id"] == "doc-0010"

    again = migrate(es, scoped, delete_old=True)
    assert again.target == articles_index(scoped, 3) and again.deleted_old
    assert not es.indices.exists(index=articles_index(scoped, 2))
    assert es.count(index=alias)["count"] == len(docs)


def test_migration_without_reindex_module_says_so(es: Elasticsearch, scoped: Settings) -> None:
    if detect(es).reindex:
        pytest.skip("this node has _reindex")
    index_documents(es, scoped, [_doc(1)])
    with pytest.raises(MigrationError, match="no _reindex"):
        migrate(es, scoped, method="reindex")
    assert alias_target(es, scoped) == articles_index(scoped, 1)  # nothing changed


def test_index_cli_status_and_migrate(
    es: Elasticsearch, scoped: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands.main import app

    index_documents(es, scoped, [_doc(n) for n in range(5)])
    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", scoped.index_prefix)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["index", "status", "--json"])
        assert result.exit_code == 0, result.output
        facts = json.loads(result.stdout)
        assert facts["documents"] == 5 and facts["index"].endswith("-v1")
        result = runner.invoke(app, ["index", "migrate"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["target"].endswith("-v2")
        assert es.count(index=articles_alias(scoped))["count"] == 5
    finally:
        get_settings.cache_clear()


def test_every_index_gets_a_replica_once_the_cluster_has_a_second_node(
    es: Elasticsearch, scoped: Settings
) -> None:
    """Before: articles, stories, outbox and alert state were created with no replica, also on the
    three-node production cluster, so one lost node lost them. `auto_expand_replicas: 0-1` gives one
    replica wherever a second node exists and none on this single node (which stays green)."""
    from alerts.state import ensure_state_indices
    from index.stories import EsState

    ensure_articles_index(es, scoped)
    EsState(es, scoped)
    ensure_state_indices(es, scoped)
    names = es.indices.get(index=f"{scoped.index_prefix}-*")
    assert {n.rsplit("-", 1)[-1] for n in names} >= {"v1", "dedupe", "stories", "alerts", "state"}
    for name, body in names.items():
        assert body["settings"]["index"]["auto_expand_replicas"] == "0-1", name
    health = es.cluster.health(index=f"{scoped.index_prefix}-*", wait_for_status="green", timeout="10s")
    assert health["status"] == "green"
