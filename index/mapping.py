"""Every Elasticsearch index newsradar keeps: its name and its mapping, in one place.

* ``<prefix>-articles``: what analysts search and alerts read (versioned, behind an alias, below);
* ``<prefix>-dedupe`` (every record; the kNN copies of dated ones in ``<prefix>-dedupe-<year>w<week>``,
  one index per ISO week of publication) and ``<prefix>-stories``: story assignment state
  (``index.stories``);
* ``<prefix>-alert-state``, ``<prefix>-alerts`` (the outbox) and ``<prefix>-rules``: alerting state
  (``alerts/``).

The articles index: versioned template and mapping, adapted to the node's analyzers.

The alias (`<prefix>-articles`) is what every reader and writer uses; the concrete index carries a
sequence number (`<prefix>-articles-v<n>`) so a mapping change is a new index plus an atomic alias
switch (see `index.migrate`). The index template (`<prefix>-articles`, pattern
`<prefix>-articles-v*`) holds the current mapping, so every new version gets it without anyone
passing mappings around, and `_meta.mapping_version` records which revision of this module built it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from index.capabilities import Capabilities, detect
from newsradar.article import EVENT_TYPES
from newsradar.settings import Settings

# Revision of the mapping below; bump it with every change to `articles_mapping` so
# `newsradar index status` can tell that the live index needs `newsradar index migrate`.
MAPPING_VERSION = 3
EMBEDDING_DIM = 384
KEYWORD_MAX_CHARS = 4096  # at most 4 bytes a character: well under the 32,766-byte term limit
# One replica as soon as the cluster has a second node (production's three), none on a single node
# (which could never place it and would stay yellow): articles, stories, outbox and alert state
# survive the loss of a node.
REPLICAS: dict[str, Any] = {"auto_expand_replicas": "0-1"}
INDEX_SETTINGS: dict[str, Any] = {"number_of_shards": 1, **REPLICAS, "refresh_interval": "1s"}


def articles_alias(settings: Settings) -> str:
    return settings.index_name("articles")


def articles_index(settings: Settings, version: int = 1) -> str:
    return f"{articles_alias(settings)}-v{version}"


def template_name(settings: Settings) -> str:
    return articles_alias(settings)


def index_version(settings: Settings, index: str) -> int | None:
    """The sequence number of a concrete index name, or None when it is not one of ours."""
    match = re.fullmatch(re.escape(articles_alias(settings)) + r"-v(\d+)", index)
    return int(match.group(1)) if match else None


def _text_field(caps: Capabilities) -> dict[str, Any]:
    """`standard` everywhere (it splits CJK into single characters, so Chinese phrases still match
    as phrases); language sub-fields where the node has the analyzers."""
    field: dict[str, Any] = {"type": "text", "analyzer": "standard"}
    subfields: dict[str, Any] = {}
    if caps.language_analyzers:
        subfields["de"] = {"type": "text", "analyzer": "german"}
        subfields["en"] = {"type": "text", "analyzer": "english"}
    if caps.smartcn:
        subfields["zh"] = {"type": "text", "analyzer": "smartcn"}
    elif caps.icu:
        subfields["zh"] = {"type": "text", "analyzer": "icu_analyzer"}
    if subfields:
        field["fields"] = subfields
    return field


def language_subfields(caps: Capabilities) -> list[str]:
    """Sub-field suffixes the mapping adds on this node (searched next to the standard field)."""
    return sorted(_text_field(caps).get("fields", {}))


def articles_mapping(caps: Capabilities) -> dict[str, Any]:
    text = _text_field(caps)
    # A keyword value over Lucene's 32 KB term limit rejects the whole document (a 40 KB "author"
    # scraped by accident): longer values are stored but not indexed instead.
    keyword: dict[str, Any] = {"type": "keyword", "ignore_above": KEYWORD_MAX_CHARS}
    date: dict[str, Any] = {"type": "date"}
    return {
        "dynamic": "strict",
        "_meta": {"mapping_version": MAPPING_VERSION, "embedding_dim": EMBEDDING_DIM},
        "properties": {
            "id": keyword,
            "url": keyword,
            "canonical_url": keyword,
            "source": keyword,
            "country": keyword,
            "lang": keyword,
            "title": {
                **text,
                "fields": {**text.get("fields", {}), "raw": {"type": "keyword", "ignore_above": 512}},
            },
            "text": text,
            "lead": text,
            "title_en": text,
            "lead_en": text,
            "text_en": text,
            "translation_backend": keyword,
            "translation_status": keyword,
            "authors": keyword,
            "paywall": {"type": "boolean"},
            "published_at": date,
            "published_source": keyword,
            "first_seen_at": date,
            "indexed_at": date,
            "story_id": keyword,
            "duplicate_of": keyword,
            "event_types": keyword,
            "events": {
                "type": "nested",
                "properties": {"type": keyword, "confidence": {"type": "float"}},
            },
            "entities": keyword,
            "ai_related": {"type": "boolean"},
            "event_type": keyword,
            "event_scores": {
                "properties": {kind: {"type": "float"} for kind in EVENT_TYPES},
            },
            # Story facts once kept on every member; no longer written or read (`index.story_facts`
            # counts them per search). Kept so documents written before, and journalled failures
            # holding such documents, still pass the strict mapping.
            "story_size": {"type": "integer"},
            "story_sources": keyword,
            "story_langs": keyword,
            "story_first_seen_at": date,
            "embedding": {
                "type": "dense_vector",
                "dims": EMBEDDING_DIM,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": "int8_hnsw"},
            },
            "embedding_model": keyword,
            "embedding_dim": {"type": "integer"},
        },
    }


def put_template(client: Elasticsearch, settings: Settings, caps: Capabilities | None = None) -> None:
    """Install (or update) the template; it only affects indices created after this call."""
    caps = caps or detect(client)
    client.indices.put_index_template(
        name=template_name(settings),
        index_patterns=[f"{articles_alias(settings)}-v*"],
        priority=200,
        template={"settings": INDEX_SETTINGS, "mappings": articles_mapping(caps)},
        meta={"mapping_version": MAPPING_VERSION, "managed_by": "newsradar"},
    )


def alias_target(client: Elasticsearch, settings: Settings) -> str | None:
    """The concrete index the alias points to (its write index), or None before the first run."""
    alias = articles_alias(settings)
    if not client.indices.exists_alias(name=alias):
        return None
    found = client.indices.get_alias(name=alias)
    names = sorted(found.keys())
    for name in names:
        if found[name]["aliases"][alias].get("is_write_index"):
            return str(name)
    return str(names[-1])


def ensure_articles_index(client: Elasticsearch, settings: Settings) -> str:
    """Template, first versioned index and alias, unless the alias already exists."""
    alias = articles_alias(settings)
    if client.indices.exists_alias(name=alias):
        return alias
    put_template(client, settings)
    name = articles_index(settings, 1)
    if not client.indices.exists(index=name):
        client.indices.create(index=name, aliases={alias: {"is_write_index": True}})
    else:
        client.indices.put_alias(index=name, name=alias, is_write_index=True)
    return alias


def drop_articles(client: Elasticsearch, settings: Settings) -> None:
    """Delete every versioned index and the template of this prefix (tests and benchmarks clean up)."""
    found = client.indices.get(index=f"{articles_alias(settings)}-v*", allow_no_indices=True)
    for name in found:  # by name: production nodes refuse wildcard deletes
        client.indices.delete(index=name, ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name=template_name(settings))


class EmbeddingModelMismatch(RuntimeError):
    """The index holds vectors of another model (or size) than the configured one."""


def ensure_same_model(client: Elasticsearch, index: str, name: str, dim: int) -> None:
    """Raise :class:`EmbeddingModelMismatch` when ``index`` (an index or alias) holds vectors of another
    model or size, or is mapped for another vector size. A missing or empty index is fine.

    Called before writing vectors, so one wrong setting cannot silently mix two vector spaces.
    """
    mapping = client.options(ignore_status=404).indices.get_mapping(index=index)
    if mapping.meta.status == 404:
        return
    for concrete, body in dict(mapping).items():
        props = body.get("mappings", {}).get("properties", {})
        mapped = props.get("embedding", {}).get("dims")
        if mapped is not None and int(mapped) != dim:
            raise EmbeddingModelMismatch(
                f"index {concrete} is mapped for {mapped}-dimensional vectors, but the configured model "
                f"{name!r} makes {dim}-dimensional ones; use a new index (or alias) for this model, or set "
                "NEWSRADAR_EMBEDDING_BACKEND/NEWSRADAR_EMBEDDING_MODEL back to the index's model"
            )
    response = client.search(
        index=index,
        size=0,
        query={
            "bool": {
                "filter": [{"exists": {"field": "embedding_model"}}],
                "must_not": [{"term": {"embedding_model": name}}],
            }
        },
        aggs={"models": {"terms": {"field": "embedding_model", "size": 5}}},
    )
    buckets = response["aggregations"]["models"]["buckets"]
    if buckets:
        others = ", ".join(f"{b['key']} ({b['doc_count']} docs)" for b in buckets)
        raise EmbeddingModelMismatch(
            f"index {index} holds vectors of {others}, but the configured embedding model is {name!r}; "
            "vectors of different models cannot be compared: re-embed into a new index, or configure the "
            "index's model again"
        )


# ------------------------------------------------------------------------------------------ state indices
# Small indices of pipeline state, created on first use. `dynamic` is strict where every writer is
# ours, off where documents carry free-form objects (rules, messages) that must stay readable across
# schema changes: a saved rule is re-validated on load and reported if it no longer fits.

_KEYWORD: dict[str, Any] = {"type": "keyword"}
_DATE: dict[str, Any] = {"type": "date"}
_STORED_ONLY: dict[str, Any] = {"type": "keyword", "index": False, "doc_values": False}
_STATE_SETTINGS: dict[str, Any] = {"number_of_shards": 1, **REPLICAS, "refresh_interval": "1s"}


def dedupe_index(settings: Settings) -> str:
    """Every story-assignment record, for the look-ups by id and term."""
    return settings.index_name("dedupe")


def dedupe_records(settings: Settings) -> str:
    """The base index and every week's kNN copies: wherever a record's vector may be."""
    return f"{dedupe_index(settings)}*"


def dedupe_partition(settings: Settings, published: datetime | None) -> str:
    """The index of a dated record's kNN copy: one per ISO week of publication. Why: a story's kNN
    candidates are filtered to a few days around the article, and a filter that keeps a small share
    of a large HNSW graph makes the search walk most of it; a week's index keeps that share large, so
    the cost of a look-up depends on how many articles a week brings, not on how many were ever
    indexed. Undated records have no copy (the base index is theirs)."""
    if published is None:
        return dedupe_index(settings)
    year, week, _ = published.astimezone(UTC).isocalendar()
    return f"{dedupe_index(settings)}-{year}w{week:02d}"


def ensure_dedupe_weeks(client: Elasticsearch, settings: Settings, dims: int) -> None:
    """The template every week index gets at its first write (no request per batch to create one).
    Rewritten only when the mapping it would hold changed."""
    name = f"{dedupe_index(settings)}-weeks"
    mappings = dedupe_mapping(dims)
    meta = {"managed_by": "newsradar", "dims": dims, "fields": ",".join(sorted(mappings["properties"]))}
    current = client.options(ignore_status=404).indices.get_index_template(name=name)
    templates = current.get("index_templates") or []
    if templates and templates[0]["index_template"].get("_meta") == meta:
        return
    client.indices.put_index_template(
        name=name,
        index_patterns=[f"{dedupe_index(settings)}-*"],
        priority=200,
        template={"settings": _STATE_SETTINGS, "mappings": mappings},
        meta=meta,
    )


def dedupe_partitions(settings: Settings, start: datetime, end: datetime) -> list[str]:
    """The week indices that can hold records published between ``start`` and ``end``, plus the
    undated records' index (some may not exist yet: readers ignore missing ones)."""
    names = [dedupe_index(settings)]
    day = start
    while True:
        if (name := dedupe_partition(settings, day)) not in names:
            names.append(name)
        if day >= end:
            return names
        day = min(day + timedelta(days=7), end)


def stories_index(settings: Settings) -> str:
    return settings.index_name("stories")


def alert_state_index(settings: Settings) -> str:
    return settings.index_name("alert-state")


def outbox_index(settings: Settings) -> str:
    return settings.index_name("alerts")


def rules_index(settings: Settings) -> str:
    return settings.index_name("rules")


def ensure_index(client: Elasticsearch, name: str, mappings: dict[str, Any]) -> str:
    """Create the index unless it exists (a parallel run creating it first is fine: 400); an existing
    index gets the fields a newer mapping adds (fields are never changed or removed in place)."""
    if not client.indices.exists(index=name):
        client.options(ignore_status=400).indices.create(
            index=name, settings=_STATE_SETTINGS, mappings=mappings
        )
        return name
    current: dict[str, Any] = {}
    for body in dict(client.indices.get_mapping(index=name)).values():
        current = body.get("mappings", {}).get("properties", {})
    missing = {key: value for key, value in mappings.get("properties", {}).items() if key not in current}
    if missing:
        client.indices.put_mapping(index=name, properties=missing)
    return name


def dedupe_mapping(dims: int) -> dict[str, Any]:
    """One document per article: what later articles are compared against, and the decision."""
    return {
        "dynamic": "strict",
        "properties": {
            "article_id": _KEYWORD,
            "story_id": _KEYWORD,
            "duplicate_of": _KEYWORD,
            "match": _KEYWORD,
            "score": {"type": "float"},
            "lang": _KEYWORD,
            "source": _KEYWORD,
            "title": _STORED_ONLY,
            "url": _STORED_ONLY,
            "url_key": _KEYWORD,
            "content_hash": _KEYWORD,
            "bands": _KEYWORD,
            "signature": {"type": "binary"},
            "published": _DATE,
            # true only on records without a publication time: the kNN time filter takes them with
            # a term query instead of a "field missing" clause that would visit every document
            "undated": {"type": "boolean"},
            "vector": {
                "type": "dense_vector",
                "dims": dims,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": "hnsw"},
            },
            "embedding_model": _KEYWORD,
            "entities": _KEYWORD,
            "salient": _KEYWORD,
            "leads": _KEYWORD,
            "numbers": _KEYWORD,
            "codes": _KEYWORD,
            "title_codes": _KEYWORD,
            "names": _STORED_ONLY,
            # What a kNN hit needs (story, language, time, outlet, model and the sets the features
            # compare) as one compact stored field: fetched without reading the whole _source, which
            # halves the cost of a batch's kNN queries (bench.scaling)
            "hit": {"type": "binary", "store": True},
            "processed_at": _DATE,
        },
    }


# One document per story: what story assignment needs (members, the members' vector sum for the
# centroid, redirects after merges). Article-level facts (size, outlets, languages) are
# counted from the articles index by `index.story_facts`, never kept here.
STORIES_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "story_id": _KEYWORD,
        "article_ids": _KEYWORD,
        "vector_sum": {"type": "binary"},  # float32 little-endian, base64
        "vectors": {"type": "integer"},  # members in the sum
        "embedding_model": _KEYWORD,
        "merged_into": _KEYWORD,
        "merged_from": _KEYWORD,
        "created_at": _DATE,
        "updated_at": _DATE,
    },
}

ALERT_STATE_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "doc_id": _KEYWORD,
        "type": _KEYWORD,  # watermark | alert | digest
        "rule": _KEYWORD,
        "story_id": _KEYWORD,
        "alert_id": _KEYWORD,
        "parent_id": _KEYWORD,
        "kind": _KEYWORD,  # new | update | digest
        "mode": _KEYWORD,
        "status": _KEYWORD,  # queued | outboxed | waiting | digested | orphaned
        "digest_id": _KEYWORD,
        "alert_ids": _KEYWORD,
        "created_at": _DATE,
        "updated_at": _DATE,
        "watermark": _DATE,
        "languages": _KEYWORD,
        "countries": _KEYWORD,
        "outlets": _KEYWORD,
        "message": {"type": "object", "enabled": False},
    },
}

OUTBOX_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "doc_id": _KEYWORD,
        "alert_id": _KEYWORD,
        "rule": _KEYWORD,
        "kind": _KEYWORD,
        "story_ids": _KEYWORD,
        "channel": _KEYWORD,  # email | slack
        "destination": _KEYWORD,  # email | slack:<connection>
        "target": _KEYWORD,
        "operator": {"type": "boolean"},
        "status": _KEYWORD,
        "attempts": {"type": "integer"},
        "attempt_id": _KEYWORD,
        "claimed_at": _DATE,
        "created_at": _DATE,
        "not_before": _DATE,
        "sent_at": _DATE,
        "updated_at": _DATE,
        "last_error": {"type": "text"},
        "receipt": _KEYWORD,
        "operator_notified": {"type": "boolean"},
        "message": {"type": "object", "enabled": False},
    },
}

RULES_MAPPING: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "name": _KEYWORD,
        "owner": _KEYWORD,
        "updated_at": _DATE,
        "rule": {"type": "object", "enabled": False},
    },
}
