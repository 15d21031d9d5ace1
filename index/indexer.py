"""Bulk indexing of articles with stable ids: a re-run overwrites, never duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from index.mapping import ensure_articles_index
from newsradar.article import Article
from newsradar.settings import Settings


@dataclass
class IndexReport:
    indexed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason), kept for retry


def to_document(article: Article, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    return {
        "id": article.id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "country": article.country,
        "lang": article.lang,
        "title": article.title,
        "text": article.text,
        "lead": article.lead,
        "title_en": article.title_en,
        "lead_en": article.lead_en,
        "translation_backend": article.translation_backend,
        "translation_status": article.translation_status,
        "authors": article.authors,
        "paywall": article.paywall,
        "published_at": article.published.isoformat() if article.published else None,
        "published_source": article.published_source,
        "first_seen_at": (article.fetched_at or now).isoformat(),
        "indexed_at": now.isoformat(),
        "story_id": article.story_id,
        "duplicate_of": article.duplicate_of,
        "event_types": article.event_types,
        "entities": article.entities,
        "embedding": article.embedding,
        "embedding_model": article.embedding_model,
    }


def index_articles(
    client: Elasticsearch, settings: Settings, articles: Iterable[Article], chunk_size: int = 200
) -> IndexReport:
    alias = ensure_articles_index(client, settings)
    report = IndexReport()

    def actions() -> Iterator[dict[str, Any]]:
        for article in articles:
            yield {"_op_type": "index", "_index": alias, "_id": article.id, "_source": to_document(article)}

    for ok, item in streaming_bulk(
        client,
        actions(),
        chunk_size=chunk_size,
        max_retries=5,
        initial_backoff=1,
        raise_on_error=False,
        raise_on_exception=False,
    ):
        if ok:
            report.indexed += 1
        else:
            info = next(iter(item.values()))
            report.failed.append((str(info.get("_id")), str(info.get("error"))))
    client.indices.refresh(index=alias)
    return report
