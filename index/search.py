"""Hybrid search: BM25 over original and translated text plus kNN over the query's embedding,
fused with reciprocal-rank fusion in the client (the local node has no RRF retriever).

kNN is what lets an English query find Chinese and German coverage: the multilingual embedding
puts the same story close together whatever the language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from enrich.embed import Embedder
from index.mapping import articles_alias
from newsradar.settings import Settings

RRF_K = 60
SOURCE_FIELDS = [
    "id",
    "url",
    "title",
    "lang",
    "story_id",
    "event_types",
    "entities",
    "published_at",
    "source",
]


@dataclass
class Hit:
    id: str
    url: str
    title: str
    lang: str | None
    score: float
    story_id: str | None
    event_types: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    published_at: str | None = None
    source: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "lang": self.lang,
            "score": round(self.score, 6),
            "story_id": self.story_id,
            "event_types": self.event_types,
            "entities": self.entities,
            "published_at": self.published_at,
        }


def _filters(lang: str | None) -> list[dict[str, Any]]:
    return [{"term": {"lang": lang}}] if lang else []


def rrf(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal-rank fusion: robust to the incomparable score scales of BM25 and cosine."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return scores


def search(
    client: Elasticsearch,
    settings: Settings,
    query: str,
    embedder: Embedder | None,
    *,
    lang: str | None = None,
    limit: int = 10,
) -> list[Hit]:
    alias = articles_alias(settings)
    if not client.indices.exists_alias(name=alias):
        return []
    window = max(limit * 5, 50)
    filters = _filters(lang)
    bm25 = client.search(
        index=alias,
        size=window,
        source_includes=SOURCE_FIELDS,
        query={
            "bool": {
                "must": [
                    {
                        "simple_query_string": {
                            "query": query,
                            "fields": ["title^3", "title_en^3", "lead^2", "lead_en^2", "text"],
                            "default_operator": "and",
                        }
                    }
                ],
                "filter": filters,
            }
        },
    )
    sources: dict[str, dict[str, Any]] = {h["_id"]: h["_source"] for h in bm25["hits"]["hits"]}
    rankings = [[h["_id"] for h in bm25["hits"]["hits"]]]
    if embedder is not None:
        vector = embedder.queries([query])[0].tolist()
        knn = client.search(
            index=alias,
            size=window,
            source_includes=SOURCE_FIELDS,
            knn={
                "field": "embedding",
                "query_vector": vector,
                "k": window,
                "num_candidates": max(window * 2, 100),
                "filter": filters,
            },
        )
        sources.update({h["_id"]: h["_source"] for h in knn["hits"]["hits"]})
        rankings.append([h["_id"] for h in knn["hits"]["hits"]])
    fused = sorted(rrf(rankings).items(), key=lambda item: item[1], reverse=True)[:limit]
    hits = []
    for doc_id, score in fused:
        src = sources[doc_id]
        hits.append(
            Hit(
                id=doc_id,
                url=src.get("canonical_url") or src.get("url", ""),
                title=src.get("title", ""),
                lang=src.get("lang"),
                score=score,
                story_id=src.get("story_id"),
                event_types=src.get("event_types") or [],
                entities=src.get("entities") or [],
                published_at=src.get("published_at"),
                source=src.get("source"),
            )
        )
    return hits
