"""Bulk indexing on the real node: idempotent ids, failures kept for retry, 429 backoff, story facts,
and `newsradar ingest`."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from ledger import Ledger
from typer.testing import CliRunner

from index.failures import FailureStore
from index.indexer import index_articles, index_documents, retry_failed, to_document
from index.ingest import load_articles
from index.mapping import EMBEDDING_DIM, articles_alias, articles_index, drop_articles
from index.search import Hit, SearchRequest, search_articles, story_context
from newsradar.article import Article, article_id
from newsradar.settings import Settings, get_settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index" / "articles.jsonl"


@pytest.fixture
def scoped(es: Elasticsearch, settings: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    name = request.node.name[:24].lower().replace("_", "-")
    mine = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-bulk-{name}"})
    yield mine
    drop_articles(es, mine)
    FailureStore(mine).clear()


def _vector(seed: int, dim: int = EMBEDDING_DIM) -> list[float]:
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = sum(x * x for x in raw) ** 0.5
    return [x / norm for x in raw]


def _articles() -> list[Article]:
    articles = load_articles(FIXTURE)
    for number, article in enumerate(articles):
        article.embedding = _vector(number)
        article.embedding_model = "test-vectors"
    return articles


def _all(es: Elasticsearch, settings: Settings) -> dict[str, dict[str, object]]:
    hits = es.search(index=articles_alias(settings), size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_reindexing_the_same_articles_never_duplicates(es: Elasticsearch, scoped: Settings) -> None:
    articles = _articles()
    first = index_articles(es, scoped, articles)
    assert first.indexed == len(articles) and not first.failed
    assert dict(first.by_lang) == {
        lang: sum(1 for a in articles if a.lang == lang) for lang in {a.lang for a in articles}
    }
    stored = _all(es, scoped)
    assert set(stored) == {article_id(a.canonical_url) for a in articles}
    seen_first = {doc_id: doc["first_seen_at"] for doc_id, doc in stored.items()}
    time.sleep(1.1)
    second = index_articles(es, scoped, _articles())
    assert second.indexed == len(articles)
    again = _all(es, scoped)
    assert len(again) == len(articles) == es.count(index=articles_alias(scoped))["count"]
    assert {doc_id: doc["first_seen_at"] for doc_id, doc in again.items()} == seen_first  # kept, not reset
    assert all(again[i]["indexed_at"] > stored[i]["indexed_at"] for i in again)  # type: ignore[operator]


def test_document_failures_are_reported_kept_and_retried(es: Elasticsearch, scoped: Settings) -> None:
    articles = _articles()[:4]
    broken = articles[1]
    broken.embedding = _vector(99, dim=8)  # wrong dimension: the mapping refuses it
    report = index_articles(es, scoped, articles)
    assert report.indexed == 3
    assert [doc_id for doc_id, _ in report.failed] == [broken.id]
    assert "dimension" in report.failed[0][1]
    pending = FailureStore(scoped).load()
    assert set(pending) == {broken.id}
    assert pending[broken.id]["document"]["title"] == broken.title  # the whole document is kept
    assert pending[broken.id]["attempts"] == 1 and pending[broken.id]["quarantined"]
    assert report.quarantined == 1

    # Rejected for good: later runs do not re-send it (it would fail every one of them) ...
    later = index_articles(es, scoped, articles[:1])
    assert later.resubmitted == 0 and not later.failed
    # ... until an operator retries: still broken, still kept, attempt counted.
    retried = retry_failed(es, scoped)
    assert retried.resubmitted == 1 and [d for d, _ in retried.failed] == [broken.id]
    assert FailureStore(scoped).load()[broken.id]["attempts"] == 2

    # The fixed article (same id) supersedes the pending one; the store empties.
    broken.embedding = _vector(99)
    fixed = index_articles(es, scoped, [broken])
    assert fixed.indexed == 1 and not fixed.failed and fixed.resubmitted == 0
    assert FailureStore(scoped).load() == {}
    assert es.count(index=articles_alias(scoped))["count"] == 4


def test_strict_mapping_violation_fixed_in_the_store_then_retried(
    es: Elasticsearch, scoped: Settings
) -> None:
    good = to_document(_articles()[0])
    bad = {**to_document(_articles()[1]), "sentiment": "positive"}  # not in the mapping
    report = index_documents(es, scoped, [good, bad])
    assert report.indexed == 1
    assert report.failed[0][0] == bad["id"] and "strict_dynamic_mapping_exception" in report.failed[0][1]
    store = FailureStore(scoped)
    entries = store.load()
    assert entries[bad["id"]]["status"] == 400

    assert entries[bad["id"]]["quarantined"]  # rejected for good: no longer re-sent by every run
    assert index_documents(es, scoped, []).resubmitted == 0
    entries[bad["id"]]["document"].pop("sentiment")  # an operator fixes the document in place
    store.record({bad["id"]: entries[bad["id"]]})
    retried = retry_failed(es, scoped)
    assert retried.indexed == 1 and not retried.failed
    assert store.load() == {}
    assert es.get(index=articles_alias(scoped), id=bad["id"])["found"]


def test_429_is_retried_with_backoff(es: Elasticsearch, scoped: Settings) -> None:
    articles = _articles()
    index_articles(es, scoped, articles[:1])
    index = articles_index(scoped, 1)
    # The flood-stage block answers every write with 429 TOO_MANY_REQUESTS, as a full disk would.
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})

    def lift() -> None:
        time.sleep(2.0)
        es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})

    lifter = threading.Thread(target=lift)
    lifter.start()
    started = time.monotonic()
    try:
        report = index_articles(es, scoped, articles, max_attempts=8, initial_backoff=0.4)
    finally:
        lifter.join()
    assert time.monotonic() - started >= 1.5  # it waited for the block to lift instead of failing
    assert report.indexed == len(articles) and not report.failed
    assert es.count(index=articles_alias(scoped))["count"] == len(articles)


def test_429_that_outlasts_the_retries_is_kept(es: Elasticsearch, scoped: Settings) -> None:
    articles = _articles()
    index_articles(es, scoped, articles[:1])
    index = articles_index(scoped, 1)
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
    try:
        report = index_articles(es, scoped, articles[1:3], max_attempts=2, initial_backoff=0.1)
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})
    assert report.indexed == 0 and len(report.failed) == 2
    assert all("TOO_MANY_REQUESTS" in reason and "gave up after 2" in reason for _, reason in report.failed)
    assert {e["status"] for e in FailureStore(scoped).load().values()} == {429}
    assert retry_failed(es, scoped).indexed == 2
    assert FailureStore(scoped).load() == {}


def _hit_of(es: Elasticsearch, scoped: Settings, article: Article) -> Hit:
    result = search_articles(es, scoped, SearchRequest(collapse=False, limit=50), None)
    return next(hit for hit in result.hits if hit.id == article.id)


def test_story_facts_follow_later_articles_without_rewriting_earlier_ones(
    es: Elasticsearch, scoped: Settings
) -> None:
    chips = [a for a in _articles() if a.story_id == "story-chips"]
    en = next(a for a in chips if a.lang == "en")
    index_articles(es, scoped, [en])
    hit = _hit_of(es, scoped, en)
    assert (hit.story_size, hit.story_sources, hit.story_langs) == (1, [en.source], ["en"])
    version = es.get(index=articles_alias(scoped), id=en.id)["_version"]

    index_articles(es, scoped, [a for a in chips if a is not en])
    assert es.get(index=articles_alias(scoped), id=en.id)["_version"] == version  # never rewritten
    for article in chips:  # every member, the earlier one too, tells the whole story
        hit = _hit_of(es, scoped, article)
        assert hit.story_size == 3
        assert hit.story_sources == sorted({a.source for a in chips})
        assert hit.story_langs == ["de", "en", "zh"]

    # One article moves to another story: both stories count what they hold now.
    moved = next(a for a in chips if a.lang == "zh")
    moved.story_id = "story-other"
    index_articles(es, scoped, [moved])
    hit = _hit_of(es, scoped, moved)
    assert (hit.story_size, hit.story_langs) == (1, ["zh"])
    hit = _hit_of(es, scoped, en)
    assert (hit.story_size, hit.story_langs) == (2, ["de", "en"])


def test_story_facts_the_node_cannot_count_leave_a_warning_not_an_error(
    es: Elasticsearch, scoped: Settings
) -> None:
    hit = Hit(id="a1", url="https://x.example/a1", title="t", lang="de", score=1.0, story_id="s1", source="x")
    warning = story_context(es, articles_alias(scoped), [hit], "en")  # no such index: every part fails
    assert warning is not None and warning.startswith("story facts incomplete") and "no such index" in warning
    assert (hit.story_size, hit.headline) == (1, None)


def test_story_entries_of_earlier_versions_are_resolved(es: Elasticsearch, scoped: Settings) -> None:
    """Versions that kept story facts on every member journalled the stories they still owed; nothing
    is owed any more, so the next run clears them instead of listing them for ever."""
    legacy = {"id": "story:story-chips", "kind": "story", "story_id": "story-chips", "reason": "node down"}
    FailureStore(scoped).record({legacy["id"]: legacy})
    assert set(FailureStore(scoped).load()) == {"story:story-chips"}
    report = index_articles(es, scoped, _articles()[:1])
    assert report.indexed == 1 and report.failed == []
    assert FailureStore(scoped).load() == {}


def _ingest(args: list[str], prefix: str, monkeypatch: pytest.MonkeyPatch) -> object:
    from commands.main import app

    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", prefix)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()


def test_ingest_cli_counts_and_bad_lines(
    es: Elasticsearch, scoped: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = FIXTURE.read_text("utf-8").splitlines()[:5]
    records = [json.loads(line) for line in lines]
    records[0].pop("story_id")
    source = tmp_path / "articles.jsonl"
    bad = [
        "{not json",
        json.dumps({"title": "no url", "source": "x"}),
        json.dumps({"title": "t", "url": "https://a.test/1", "source": "x", "published": "when pigs fly"}),
        json.dumps({"title": "t", "url": "ftp://a.test/1", "source": "x"}),
    ]
    good = [json.dumps(r) for r in records]
    body = [good[0], bad[0], good[1], bad[1], *good[2:], *bad[2:]]
    source.write_text("\n".join(body) + "\n\n", "utf-8")

    result = _ingest(["ingest", str(source)], scoped.index_prefix, monkeypatch)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert out.startswith("read 9, indexed 6, failed 0, bad lines 3; per language:")
    err = result.stderr  # type: ignore[attr-defined]
    expected = {
        2: "not JSON",
        4: "missing or empty field(s): url",
        9: "not an http(s) URL",
    }
    for number, reason in expected.items():
        line = next(x for x in err.splitlines() if f"articles.jsonl:{number}: skipped: " in x)
        assert reason in line
    # An unreadable date is a warning: the record is indexed without one.
    assert any("articles.jsonl:8: warning: published 'when pigs fly'" in x for x in err.splitlines())
    docs = _all(es, scoped)
    undated = docs.pop(article_id("https://a.test/1"))
    assert undated["published_at"] is None
    assert set(docs) == {article_id(r["url"]) for r in records}  # ids derived from the canonical URL
    first = docs[article_id(records[0]["url"])]
    # Ingest runs the story stage: every article belongs to a story the dedupe state assigned.
    assert all(doc["story_id"].startswith("s-") for doc in docs.values())
    assert first["embedding_model"] and first["embedding_dim"] == EMBEDDING_DIM

    again = _ingest(["ingest", str(source), "--json"], scoped.index_prefix, monkeypatch)
    assert json.loads(again.stdout)["indexed"] == 6  # type: ignore[attr-defined]
    assert es.count(index=articles_alias(scoped))["count"] == 6
    stories = {key: doc["story_id"] for key, doc in docs.items()}
    rerun = _all(es, scoped)
    rerun.pop(article_id("https://a.test/1"))
    assert {key: doc["story_id"] for key, doc in rerun.items()} == stories  # re-run: same stories


HOSTILE = [
    {"title": "Big body", "url": "https://a.example/1", "source": "x", "text": "KI-Verbot " * 250_000},
    {"title": "Huge author", "url": "https://a.example/2", "source": "x", "authors": ["a" * 40_000]},
    "not json at all",
    {"title": ["a", "list"], "url": "https://a.example/3", "source": "x"},
    {"title": "t", "url": "javascript:alert(1)", "source": "x"},
    {"title": "t", "url": "https://a.example/4", "source": "x", "published": {"a": 1}},
    {"title": "t", "url": "https://a.example/5", "source": "x", "published": "16. März 2023", "lang": "de"},
    {"title": "t", "url": "https://a.example/6", "source": "x", "lang": "xx"},
    {"title": "t", "url": "https://a.example/7", "source": "x", "embedding": "nope"},
    {"title": "t", "url": "https://a.example/8", "source": "x", "text": None, "id": 12345},
    {"title": "\ud800 lone surrogate \x00 and NUL", "url": "https://a.example/9", "source": "x"},
    [1, 2],
    {"title": "t" * 100_000, "url": "https://a.example/" + "x" * 5_000, "source": "x"},
]


def test_ingest_survives_hostile_records(
    es: Elasticsearch, scoped: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger: Ledger
) -> None:
    """Every hostile line gets a message or is indexed; none stops the file, none is a traceback.
    Before: a lone surrogate (legal in JSON) crashed the embedding of the whole batch."""
    source = tmp_path / "hostile.jsonl"
    source.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in HOSTILE) + "\n", "utf-8"
    )
    result = _ingest(["ingest", str(source), "--json"], scoped.index_prefix, monkeypatch)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    facts = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    # refused with a message, or indexed as harmless text: either way handled
    ledger.hostile(len(HOSTILE), facts["bad_lines"] + facts["indexed"])
    assert facts["read"] == len(HOSTILE) and facts["indexed"] == 6 and facts["bad_lines"] == 7
    docs = _all(es, scoped)
    assert len(str(docs[article_id("https://a.example/1")]["text"])) == 2_500_000
    assert docs[article_id("https://a.example/9")]["title"] == "lone surrogate and NUL"
    assert str(docs[article_id("https://a.example/5")]["published_at"]).startswith("2023-03-16")
