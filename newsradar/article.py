"""The `Article` record that flows from the crawlers through enrichment into the index.

One typed model shared by every stage, so a field renamed in one place breaks loudly everywhere
instead of silently producing half-filled documents downstream.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Lang = Literal["de", "en", "zh", "other"]
# What an AI story can report; everything else (and every story not about AI) is "other".
EventType = Literal["release", "ban", "restriction", "regulation", "other"]
EVENT_TYPES: tuple[EventType, ...] = ("release", "ban", "restriction", "regulation", "other")
DateSource = Literal["json-ld", "meta", "feed", "url", "text", "sitemap", "input", "unknown"]


def article_id(canonical_url: str) -> str:
    """Stable id derived from the canonical URL: a re-crawl or re-run maps to the same document."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()[:20]


class Article(BaseModel):
    """An extracted news article; enrichment stages fill the optional fields."""

    model_config = ConfigDict(extra="ignore")

    id: str
    url: str
    canonical_url: str
    source: str
    title: str
    text: str = ""
    lead: str = ""
    published: datetime | None = None
    published_source: DateSource = "unknown"
    authors: list[str] = Field(default_factory=list)
    lang_hint: str | None = None
    lang: Lang | None = None
    country: str | None = None
    paywall: bool = False
    fetched_at: datetime | None = None
    # enrichment
    embedding: list[float] | None = None
    embedding_model: str | None = None
    story_id: str | None = None
    duplicate_of: str | None = None
    title_en: str | None = None
    lead_en: str | None = None
    translation_backend: str | None = None
    translation_status: str | None = None
    event_types: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    # crawl provenance (appended)
    image: str | None = None
    encoding: str | None = None
    discovered_via: Literal["feed", "sitemap", "listing"] | None = None
    # enrichment (appended): the vector's size next to its model, so an index never mixes models;
    # the translated body when NEWSRADAR_TRANSLATION_FULL_TEXT is on; each event type's confidence
    # and evidence (the phrases that triggered it), most confident first
    embedding_dim: int | None = None
    text_en: str | None = None
    events: list[dict[str, str | float | list[str]]] = Field(default_factory=list)
    # judgment (appended): whether the story is about AI, its primary event type, and a calibrated
    # probability per type (release, ban, restriction, regulation, other)
    ai_related: bool | None = None
    event_type: EventType | None = None
    event_scores: dict[str, float] = Field(default_factory=dict)
