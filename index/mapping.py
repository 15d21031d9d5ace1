"""Versioned mapping of the articles index, adapted to the node's analyzers.

The alias (`<prefix>-articles`) is what every reader and writer uses; the concrete index carries
a version (`<prefix>-articles-v<n>`) so a mapping change is a new index plus an alias switch.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from index.capabilities import Capabilities, detect
from newsradar.settings import Settings

MAPPING_VERSION = 1
EMBEDDING_DIM = 384


def articles_alias(settings: Settings) -> str:
    return settings.index_name("articles")


def articles_index(settings: Settings, version: int = MAPPING_VERSION) -> str:
    return f"{articles_alias(settings)}-v{version}"


def _text_field(caps: Capabilities) -> dict[str, Any]:
    """`standard` everywhere (it splits CJK into single characters, so Chinese phrases still match);
    language sub-fields where the node has the analyzers."""
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


def articles_mapping(caps: Capabilities) -> dict[str, Any]:
    text = _text_field(caps)
    keyword = {"type": "keyword"}
    return {
        "dynamic": "strict",
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
            "translation_backend": keyword,
            "translation_status": keyword,
            "authors": keyword,
            "paywall": {"type": "boolean"},
            "published_at": {"type": "date"},
            "published_source": keyword,
            "first_seen_at": {"type": "date"},
            "indexed_at": {"type": "date"},
            "story_id": keyword,
            "duplicate_of": keyword,
            "event_types": keyword,
            "entities": keyword,
            "embedding": {
                "type": "dense_vector",
                "dims": EMBEDDING_DIM,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": "int8_hnsw"},
            },
            "embedding_model": keyword,
        },
    }


def ensure_articles_index(client: Elasticsearch, settings: Settings) -> str:
    """Create the current versioned index and its alias unless the alias already exists."""
    alias = articles_alias(settings)
    if client.indices.exists_alias(name=alias):
        return alias
    name = articles_index(settings)
    if not client.indices.exists(index=name):
        client.indices.create(
            index=name,
            settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
            mappings=articles_mapping(detect(client)),
            aliases={alias: {"is_write_index": True}},
        )
    else:
        client.indices.put_alias(index=name, name=alias, is_write_index=True)
    return alias
