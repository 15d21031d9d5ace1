"""Versioned index template and mapping of the articles index, adapted to the node's analyzers.

The alias (`<prefix>-articles`) is what every reader and writer uses; the concrete index carries a
sequence number (`<prefix>-articles-v<n>`) so a mapping change is a new index plus an atomic alias
switch (see `index.migrate`). The index template (`<prefix>-articles`, pattern
`<prefix>-articles-v*`) holds the current mapping, so every new version gets it without anyone
passing mappings around, and `_meta.mapping_version` records which revision of this module built it.
"""

from __future__ import annotations

import re
from typing import Any

from elasticsearch import Elasticsearch

from index.capabilities import Capabilities, detect
from newsradar.settings import Settings

# Revision of the mapping below; bump it with every change to `articles_mapping` so
# `newsradar index status` can tell that the live index needs `newsradar index migrate`.
MAPPING_VERSION = 2
EMBEDDING_DIM = 384
INDEX_SETTINGS: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"}


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
    keyword: dict[str, Any] = {"type": "keyword"}
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
            # Story-level facts, denormalised onto every member so one hit can say
            # "N more outlets in M languages" and filters like "stories in >= 2 languages" need no join.
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
