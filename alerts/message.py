"""What an alert says, frozen when the alert is created: the outbox keeps this snapshot, so a retry
days later sends the same message instead of whatever the story looks like by then."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal["new", "update", "digest", "operator"]


class Link(BaseModel):
    source: str
    lang: str | None = None
    title: str = ""
    title_en: str | None = None
    url: str = ""
    first_seen_at: str | None = None


class StorySummary(BaseModel):
    """One story as a reader needs it: the headline in the original and in English, who reports it
    in which languages, who reported first, and links."""

    story_id: str
    headline: str
    headline_en: str | None = None  # only a real English headline: an English member's, or an MT's
    headline_en_from: str | None = None  # which: "from <outlet>" or "machine translation (<backend>)"
    lang: str | None = None
    lead: str = ""
    lead_en: str | None = None
    event_type: str | None = None  # the story's primary event type
    event_types: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    outlets: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    article_count: int = 0
    first_report: Link | None = None
    links: list[Link] = Field(default_factory=list)
    update_reasons: list[str] = Field(default_factory=list)
    is_update: bool = False

    @property
    def english_title(self) -> str:
        """The title a subject line shows: the English headline where there is one, else the original."""
        return self.headline_en or self.headline

    @property
    def event_label(self) -> str:
        """The primary type alone: an alert says what happened, not every word a classifier saw."""
        return self.event_type or (self.event_types[0] if self.event_types else "news")


class Message(BaseModel):
    alert_id: str
    rule: str
    rule_description: str = ""
    kind: Kind
    stories: list[StorySummary] = Field(default_factory=list)
    parent_id: str | None = None  # an update points at the alert it updates (mail threads it)
    period: str | None = None  # digest: the scheduled time this digest stands for
    text: str = ""  # operator notices: plain text

    def as_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
