"""Story state in Elasticsearch, shared by every run and every worker, and the pipeline stage.

Two indices (names via ``settings.index_name``):

* ``<prefix>-dedupe``: one document per article (``_id`` = article id) with what later articles are
  compared against: canonical-URL key, content hash, LSH band keys as keyword terms, the MinHash
  signature, the embedding (``dense_vector``, kNN over recent vectors by time filter), entities,
  numbers, codes, names, time, and the decision (``story_id``, ``duplicate_of``).
* ``<prefix>-stories``: one document per story (``_id`` = story id): first report (article, outlet,
  language, time, title, URL), outlets, languages, member ids and size.

Writes are idempotent: an article document is created once (``op_type=create``; a second worker that
loses the race adopts the stored decision), and a story document is a read-modify-write with
optimistic concurrency (``if_seq_no``/``if_primary_term``), retried on conflict, whose merge ignores
members already counted. The node has no scripts, so nothing relies on Painless.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from enrich.dedupe import Record, Story, StoryState, Vector, merge_story
from index.mapping import (
    EMBEDDING_DIM,
    STORIES_MAPPING,
    dedupe_index,
    dedupe_mapping,
    ensure_index,
    stories_index,
)
from newsradar.dates import iso, iso_or_none, parse_iso_or_none
from newsradar.settings import Settings

log = logging.getLogger(__name__)

_MAX_CANDIDATES = 500
_RETRIES = 10


# ------------------------------------------------------------------------------------------ (de)serialisation


def record_to_doc(record: Record) -> dict[str, Any]:
    signature = None
    if record.signature is not None:
        signature = base64.b64encode(record.signature.astype("<u4").tobytes()).decode("ascii")
    return {
        "article_id": record.article_id,
        "story_id": record.story_id,
        "duplicate_of": record.duplicate_of,
        "match": record.match,
        "score": record.score,
        "lang": record.lang,
        "source": record.source,
        "title": record.title[:1000],
        "url": record.url,
        "url_key": record.url_key,
        "content_hash": record.content_hash,
        "bands": record.bands,
        "signature": signature,
        "published": iso_or_none(record.published),
        "vector": [float(x) for x in record.vector] if record.vector is not None else None,
        "embedding_model": record.embedding_model,
        "entities": record.entities,
        "salient": record.salient,
        "leads": record.leads,
        "numbers": record.numbers,
        "codes": record.codes,
        "title_codes": record.title_codes,
        "names": record.names,
        "processed_at": datetime.now(UTC).isoformat(),
    }


def doc_to_record(doc: dict[str, Any]) -> Record:
    signature = None
    if doc.get("signature"):
        signature = np.frombuffer(base64.b64decode(doc["signature"]), dtype="<u4").astype(np.uint64)
    vector: Vector | None = None
    if doc.get("vector") is not None:
        vector = np.asarray(doc["vector"], dtype=np.float32)
    return Record(
        article_id=doc["article_id"],
        lang=doc.get("lang") or "other",
        title=doc.get("title") or "",
        source=doc.get("source"),
        url=doc.get("url"),
        url_key=doc.get("url_key"),
        content_hash=doc.get("content_hash"),
        published=parse_iso_or_none(doc.get("published")),
        signature=signature,
        bands=list(doc.get("bands") or []),
        vector=vector,
        embedding_model=doc.get("embedding_model"),
        entities=list(doc.get("entities") or []),
        salient=list(doc.get("salient") or []),
        leads=list(doc.get("leads") or []),
        numbers=list(doc.get("numbers") or []),
        codes=list(doc.get("codes") or []),
        title_codes=list(doc.get("title_codes") or []),
        names=list(doc.get("names") or []),
        story_id=doc.get("story_id"),
        duplicate_of=doc.get("duplicate_of"),
        match=doc.get("match") or "new",
        score=float(doc.get("score") or 0.0),
    )


def story_to_doc(story: Story) -> dict[str, Any]:
    return {
        "story_id": story.story_id,
        "first_article_id": story.first_article_id,
        "first_source": story.first_source,
        "first_lang": story.first_lang,
        "first_published": iso_or_none(story.first_published),
        "first_title": story.first_title,
        "first_url": story.first_url,
        "outlets": story.outlets,
        "languages": story.languages,
        "article_ids": story.article_ids,
        "size": story.size,
        "updated_at": datetime.now(UTC).isoformat(),
    }


def doc_to_story(doc: dict[str, Any]) -> Story:
    return Story(
        story_id=doc["story_id"],
        first_article_id=doc["first_article_id"],
        first_source=doc.get("first_source"),
        first_lang=doc.get("first_lang") or "other",
        first_published=parse_iso_or_none(doc.get("first_published")),
        first_title=doc.get("first_title") or "",
        first_url=doc.get("first_url"),
        outlets=list(doc.get("outlets") or []),
        languages=list(doc.get("languages") or []),
        article_ids=list(doc.get("article_ids") or []),
    )


# ------------------------------------------------------------------------------------------ the state


class EsState:
    """The :class:`enrich.dedupe.StoryState` contract over the two indices.

    Article documents are written with ``refresh=true`` so the next article of the same batch (or
    another worker) finds them by search at once; the dedupe index only holds small documents.
    """

    def __init__(self, client: Elasticsearch, settings: Settings, dims: int = EMBEDDING_DIM) -> None:
        self.client = client
        self.records_index = ensure_index(client, dedupe_index(settings), dedupe_mapping(dims))
        self.stories_index = ensure_index(client, stories_index(settings), STORIES_MAPPING)

    def _search(self, query: dict[str, Any], size: int = _MAX_CANDIDATES) -> list[Record]:
        response = self.client.search(
            index=self.records_index,
            query=query,
            size=size,
            source_exclude_vectors=False,
            sort=[{"article_id": "asc"}],
        )
        return [doc_to_record(hit["_source"]) for hit in response["hits"]["hits"]]

    def get(self, article_id: str) -> Record | None:
        try:
            response = self.client.get(index=self.records_index, id=article_id, source_exclude_vectors=False)
        except NotFoundError:
            return None
        return doc_to_record(response["_source"])

    def by_url(self, key: str) -> list[Record]:
        return self._search({"term": {"url_key": key}})

    def by_hash(self, digest: str) -> list[Record]:
        return self._search({"term": {"content_hash": digest}})

    def by_bands(self, keys: Sequence[str]) -> list[Record]:
        if not keys:
            return []
        return self._search({"terms": {"bands": list(keys)}})

    def nearest(
        self, vector: Vector, model: str | None, since: datetime | None, until: datetime | None, k: int
    ) -> list[Record]:
        filters: list[dict[str, Any]] = [
            {"term": {"embedding_model": model}}
            if model
            else {"bool": {"must_not": {"exists": {"field": "embedding_model"}}}}
        ]
        if since is not None or until is not None:
            window = {key: iso(value) for key, value in (("gte", since), ("lte", until)) if value is not None}
            filters.append(
                {
                    "bool": {
                        "should": [
                            {"range": {"published": window}},
                            {"bool": {"must_not": {"exists": {"field": "published"}}}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            )
        response = self.client.search(
            index=self.records_index,
            knn={
                "field": "vector",
                "query_vector": [float(x) for x in vector],
                "k": k,
                "num_candidates": max(100, 4 * k),
                "filter": filters,
            },
            size=k,
            source_exclude_vectors=False,
        )
        return [doc_to_record(hit["_source"]) for hit in response["hits"]["hits"]]

    def add(self, record: Record) -> Record:
        try:
            self.client.index(
                index=self.records_index,
                id=record.article_id,
                document=record_to_doc(record),
                op_type="create",
                refresh=True,
            )
        except ConflictError:
            stored = self.get(record.article_id)
            if stored is not None:
                return stored
            raise
        return record

    def story(self, story_id: str) -> Story | None:
        try:
            response = self.client.get(index=self.stories_index, id=story_id)
        except NotFoundError:
            return None
        return doc_to_story(response["_source"])

    def add_to_story(self, record: Record) -> Story:
        assert record.story_id is not None
        for attempt in range(_RETRIES):
            try:
                response = self.client.get(index=self.stories_index, id=record.story_id)
            except NotFoundError:
                response = None
            current = doc_to_story(response["_source"]) if response is not None else None
            merged = merge_story(current, record)
            if current is not None and merged == current:
                return current  # already a member: nothing to write
            try:
                if response is None:
                    self.client.index(
                        index=self.stories_index,
                        id=record.story_id,
                        document=story_to_doc(merged),
                        op_type="create",
                    )
                else:
                    self.client.index(
                        index=self.stories_index,
                        id=record.story_id,
                        document=story_to_doc(merged),
                        if_seq_no=response["_seq_no"],
                        if_primary_term=response["_primary_term"],
                    )
                return merged
            except ConflictError:
                time.sleep(0.01 * (attempt + 1))  # another worker wrote the story first: merge again
        raise RuntimeError(f"story {record.story_id}: gave up after {_RETRIES} concurrent-update conflicts")


# ------------------------------------------------------------------------------------------ for the stage


def story_state(client: Elasticsearch, settings: Settings) -> Callable[[int], StoryState]:
    """The dedupe stage's state factory (``StageContext.stories``): the shared state in the index."""
    return lambda dims: EsState(client, settings, dims=dims)
