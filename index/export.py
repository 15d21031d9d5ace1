"""Read indexed articles back as `Article` records, for re-processing after a model or mapping change.

The index keeps the original title, text and metadata, so a backfill can re-run enrichment without
re-crawling (and without asking publishers for the pages again).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from index.mapping import articles_alias
from newsradar.article import Article
from newsradar.settings import Settings

FIELDS = [
    "id", "url", "canonical_url", "source", "country", "lang", "title", "text", "lead", "authors",
    "paywall", "published_at", "published_source", "first_seen_at",
]  # fmt: skip


def export_query(since: datetime | None, until: datetime | None, sources: list[str]) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if since or until:
        window: dict[str, str] = {}
        if since:
            window["gte"] = since.isoformat()
        if until:
            window["lt"] = until.isoformat()
        filters.append({"range": {"first_seen_at": window}})
    if sources:
        filters.append({"terms": {"source": sources}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


def to_article(source: dict[str, Any]) -> Article:
    return Article(
        id=source["id"],
        url=source["url"],
        canonical_url=source.get("canonical_url") or source["url"],
        source=source["source"],
        country=source.get("country"),
        title=source.get("title") or "",
        text=source.get("text") or "",
        lead=source.get("lead") or "",
        authors=source.get("authors") or [],
        paywall=bool(source.get("paywall")),
        published=source.get("published_at"),
        published_source=source.get("published_source") or "unknown",
        lang_hint=source.get("lang"),
        fetched_at=source.get("first_seen_at"),
    )


def export_articles(
    client: Elasticsearch,
    settings: Settings,
    since: datetime | None = None,
    until: datetime | None = None,
    sources: list[str] | None = None,
    page: int = 500,
) -> Iterator[Article]:
    """Every matching article, in a stable order, through a point in time (consistent while writes go on)."""
    alias = articles_alias(settings)
    pit = client.open_point_in_time(index=alias, keep_alive="2m")["id"]
    after: list[Any] | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"search_after": after} if after else {}
            result = client.search(
                size=page,
                query=export_query(since, until, sources or []),
                pit={"id": pit, "keep_alive": "2m"},
                sort=[{"_shard_doc": "asc"}],
                source_includes=FIELDS,
                **kwargs,
            )
            hits = result["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield to_article(hit["_source"])
            after = hits[-1]["sort"]
    finally:
        client.close_point_in_time(id=pit)
