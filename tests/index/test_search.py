"""Search on the real node over fixture articles with real multilingual embeddings: cross-lingual hits,
every filter, story collapse, sort, paging, facets, highlights, and the `newsradar search` contract."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from enrich.embed import Embedder, get_embedder, passage_text
from index.indexer import index_articles
from index.ingest import load_articles
from index.mapping import drop_articles
from index.search import HL_END, HL_START, SearchRequest, SearchResult, search_articles
from newsradar.article import Article
from newsradar.settings import Settings, get_settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "index" / "articles.jsonl"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    return load_articles(FIXTURE)


@pytest.fixture(scope="module")
def indexed(
    es: Elasticsearch, settings: Settings, embedder: Embedder, corpus: list[Article]
) -> Iterator[Settings]:
    mine = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-search"})
    vectors = embedder.passages([passage_text(a.title, a.lead, a.text) for a in corpus])
    for article, vector in zip(corpus, vectors, strict=True):
        article.embedding = [float(x) for x in vector]
        article.embedding_model = embedder.name
    report = index_articles(es, mine, corpus)
    assert report.indexed == len(corpus) and not report.failed
    yield mine
    drop_articles(es, mine)


Run = Callable[..., SearchResult]


@pytest.fixture
def run(es: Elasticsearch, indexed: Settings, embedder: Embedder) -> Run:
    def go(**kwargs: Any) -> SearchResult:
        use = kwargs.pop("embedder", embedder)
        return search_articles(es, indexed, SearchRequest(**kwargs), use)

    return go


def _ids(result: SearchResult) -> list[str]:
    return [h.id for h in result.hits]


def test_english_query_finds_chinese_and_german_coverage(run: Run, corpus: list[Article]) -> None:
    chips = {a.id: a.lang for a in corpus if a.story_id == "story-chips"}
    for mode in ("hybrid", "knn"):
        result = run(query="US export controls on Nvidia chips", collapse=False, limit=5, mode=mode)
        top = _ids(result)[:3]
        assert set(top) == set(chips), (mode, top)
        assert {chips[i] for i in top} == {"en", "de", "zh"}
    # and the other way round: a Chinese query finds the English and German articles
    result = run(query="美国收紧英伟达芯片出口管制", collapse=False, limit=3)
    assert set(_ids(result)) == set(chips)


def test_collapse_one_hit_per_story_with_more_outlets(run: Run, corpus: list[Article]) -> None:
    collapsed = run(query="Qwen open weights", limit=10)
    stories = [h.story_id for h in collapsed.hits]
    assert len(stories) == len(set(stories))
    qwen = next(h for h in collapsed.hits if h.story_id == "story-qwen")
    members = [a for a in corpus if a.story_id == "story-qwen"]
    assert qwen.story_size == len(members)
    assert qwen.more_outlets == len({a.source for a in members}) - 1
    assert qwen.story_langs == sorted({a.lang for a in members if a.lang})
    flat = run(query="Qwen open weights", limit=10, collapse=False)
    assert sum(1 for h in flat.hits if h.story_id == "story-qwen") == len(members)
    # filters only (Elasticsearch's own collapse): one hit per story, total counts stories
    everything = run(limit=50)
    assert len(everything.hits) == everything.total == len({a.story_id for a in corpus})


@pytest.mark.parametrize(
    ("request_field", "value", "predicate"),
    [
        ("langs", ["zh"], lambda a: a.lang == "zh"),
        ("sources", ["techblatt"], lambda a: a.source == "techblatt"),
        ("countries", ["at"], lambda a: a.country == "AT"),
        ("event_types", ["ban"], lambda a: "ban" in a.event_types),
        ("entities", ["qwen"], lambda a: "Qwen" in a.entities),
        ("paywall", True, lambda a: a.paywall),
        ("paywall", False, lambda a: not a.paywall),
        (
            "since",
            datetime.fromisoformat("2026-11-19T00:00:00+00:00"),
            lambda a: a.published >= datetime.fromisoformat("2026-11-19T00:00:00+00:00"),
        ),
        (
            "until",
            datetime.fromisoformat("2026-11-16T00:00:00+00:00"),
            lambda a: a.published < datetime.fromisoformat("2026-11-16T00:00:00+00:00"),
        ),
    ],
)
def test_every_filter(
    run: Run, corpus: list[Article], request_field: str, value: object, predicate: Callable[[Article], bool]
) -> None:
    expected = {a.id for a in corpus if predicate(a)}
    assert expected and expected != {a.id for a in corpus}  # the filter separates something
    result = run(collapse=False, limit=50, **{request_field: value})
    assert set(_ids(result)) == expected
    # with a text query (hybrid), every hit still satisfies the filter
    hybrid = run(query="AI regulation chips models", collapse=False, limit=50, **{request_field: value})
    shown = _ids(hybrid) + [h.id for h in hybrid.less_related]  # the relevance floor may demote hits
    assert shown and set(shown) <= expected


def test_query_syntax_field_filters_and_exclusions(run: Run, corpus: list[Article]) -> None:
    result = run(query="lang:zh event:restriction", collapse=False, limit=20)
    assert set(_ids(result)) == {a.id for a in corpus if a.lang == "zh" and "restriction" in a.event_types}
    result = run(query="entity:Kling OR entity:DeepSeek", collapse=False, limit=20)
    assert set(_ids(result)) == {a.id for a in corpus if {"Kling", "DeepSeek"} & set(a.entities)}
    excluded = run(query="export controls -lang:en", collapse=False, limit=20)
    assert excluded.hits and all(h.lang != "en" for h in excluded.hits)
    phrase = run(query='"出口管制"', collapse=False, limit=20, mode="bm25")
    assert [h.lang for h in phrase.hits] == ["zh"] and phrase.hits[0].story_id == "story-chips"
    unknown = run(query="title:Qwen", limit=5)
    assert any("unknown field" in w for w in unknown.warnings)


def test_sort_by_recency(run: Run) -> None:
    for query in ("", "AI chips models"):
        result = run(query=query, sort="recency", collapse=False, limit=50)
        for hits in (result.hits, result.less_related):  # each list newest first
            dates = [datetime.fromisoformat(h.published_at or "") for h in hits]
            assert dates == sorted(dates, reverse=True)
        assert len(result.hits) + len(result.less_related) > 3


@pytest.mark.parametrize(("query", "collapse"), [("", False), ("", True), ("Kling Qwen chips ban", False)])
def test_pages_cover_every_result_once(run: Run, query: str, collapse: bool) -> None:
    everything = run(query=query, collapse=collapse, limit=100, sort="recency")
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = run(query=query, collapse=collapse, limit=3, sort="recency", cursor=cursor)
        seen.extend(_ids(page))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(everything.hits)
    assert seen == _ids(everything)


def test_bad_cursor_is_a_clear_error(run: Run) -> None:
    with pytest.raises(ValueError, match="invalid page cursor"):
        run(query="qwen", cursor="not-a-cursor")


def test_facets_and_highlights(run: Run, corpus: list[Article]) -> None:
    result = run(facets=True, collapse=False, limit=1)
    langs = dict(result.facets["lang"])
    assert langs == {lang: sum(1 for a in corpus if a.lang == lang) for lang in {a.lang for a in corpus}}
    assert dict(result.facets["event"])["ban"] == sum(1 for a in corpus if "ban" in a.event_types)
    hit = run(query="Kling", mode="bm25", limit=1).hits[0]
    marked = [f for fragments in hit.highlights.values() for f in fragments]
    assert any(f"{HL_START}Kling{HL_END}" in f for f in marked)


def test_without_embedder_falls_back_to_bm25(run: Run) -> None:
    result = run(query="Kling", embedder=None, limit=5)
    assert result.mode == "bm25" and result.hits[0].story_id == "story-kling"


def test_search_cli_json_contract(
    indexed: Settings, monkeypatch: pytest.MonkeyPatch, corpus: list[Article]
) -> None:
    from commands.main import app

    monkeypatch.setenv("NEWSRADAR_INDEX_PREFIX", indexed.index_prefix)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            app, ["search", "US export controls", "--json", "--no-collapse", "--limit", "3"]
        )
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        hits = [json.loads(line) for line in lines]  # stdout holds JSON lines only
        assert len(hits) == 3
        for hit in hits:
            assert set(hit) >= {
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
        assert {h["story_id"] for h in hits} == {"story-chips"}
        collapsed = runner.invoke(app, ["search", "US export controls", "--json", "--limit", "3"])
        stories = [json.loads(x)["story_id"] for x in collapsed.stdout.splitlines()]
        assert stories[0] == "story-chips" and len(stories) == len(set(stories))
        recent = runner.invoke(
            app,
            [
                "search",
                "chips",
                "--json",
                "--since",
                "2026-11-20",
                "--lang",
                "zh",
                "--event",
                "restriction",
                "--entity",
                "Nvidia",
            ],
        )
        found = [json.loads(x) for x in recent.stdout.splitlines()]
        assert [h["lang"] for h in found] == ["zh"]
        bad = runner.invoke(app, ["search", "chips", "--since", "someday"])
        assert bad.exit_code != 0 and "neither a date" in bad.stderr
    finally:
        get_settings.cache_clear()


def test_query_in_any_language_reaches_the_others(run: Run, corpus: list[Article]) -> None:
    """Entity aliases and the event vocabulary carry a query into the other scripts (BM25 alone)."""
    chips = {a.id for a in corpus if a.story_id == "story-chips"}
    for query in ("英伟达芯片出口管制", "Exportkontrollen Nvidia-Chips", "Nvidia chip export controls"):
        result = run(query=query, mode="bm25", collapse=False, limit=10)
        assert set(_ids(result)[:3]) == chips, query
    kling = run(query="可灵 视频", mode="bm25", collapse=False, limit=5)
    assert {h.story_id for h in kling.hits} == {"story-kling"} and {h.lang for h in kling.hits} >= {
        "de",
        "en",
    }


def test_a_named_thing_finds_its_coverage_without_the_other_words(run: Run) -> None:
    """With a named company or model in the query, the rest needs one unit fewer: Kling's articles
    say nothing of export controls, yet "Kling export controls" finds them, and only them (the name
    stays required: the chip export stories do not come)."""
    result = run(query="Kling export controls", mode="bm25", collapse=False, limit=10)
    assert {h.story_id for h in result.hits} == {"story-kling"}


def test_relevance_floor_moves_unrelated_hits_below(run: Run) -> None:
    result = run(query="Exportkontrollen Chips", collapse=True, limit=10)
    assert result.hits and result.hits[0].story_id == "story-chips"
    assert "story-football" not in {h.story_id for h in result.hits}
    assert "story-football" in {h.story_id for h in result.less_related}


def test_multi_megabyte_body_is_searchable_and_highlighted(
    es: Elasticsearch, indexed: Settings, embedder: Embedder
) -> None:
    from index.ingest import parse_record

    big = parse_record(
        {
            "url": "https://big.example/a",
            "source": "big",
            "lang": "en",
            "story_id": "story-big",
            "title": "Zyxwvut regulator publishes a very long ruling",
            "authors": "A" * 40_000,  # a scraping accident, not a name
            "published": "2026-11-20",
            "text": ("Zyxwvut ruling paragraph on model audits. " * 60_000)[:2_500_000],
        }
    )
    big.embedding = [float(x) for x in embedder.passages(["Zyxwvut regulator ruling"])[0]]
    big.embedding_model = embedder.name
    assert index_articles(es, indexed, [big]).indexed == 1
    es.indices.refresh(index=f"{indexed.index_prefix}-articles")
    try:
        for mode in ("hybrid", "bm25"):
            result = search_articles(es, indexed, SearchRequest(query="Zyxwvut ruling", mode=mode), embedder)
            hit = next(h for h in result.hits if h.id == big.id)
            assert any(HL_START in f for f in hit.highlights.get("text", [])), mode
    finally:
        es.delete(index=f"{indexed.index_prefix}-articles", id=big.id, refresh=True)
        es.indices.refresh(index=f"{indexed.index_prefix}-articles")


def test_licence_decides_server_rrf(es: Elasticsearch) -> None:
    from index.capabilities import Capabilities, detect

    caps = detect(es)
    assert caps.license in ("basic", "trial", "gold", "platinum", "enterprise", "unknown")
    assert caps.rrf is (caps.has("rank-rrf") and caps.license in ("enterprise", "trial"))
    with_module = Capabilities("9.5.4", frozenset({"rank-rrf"}), frozenset(), "basic")
    assert not with_module.rrf  # a basic licence does not cover the rrf retriever: fuse in the client
    assert Capabilities("9.5.4", frozenset({"rank-rrf"}), frozenset(), "enterprise").rrf
