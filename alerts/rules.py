"""Alert rules: a typed schema, so a typo in a rule file is an error with file, field and reason
instead of a rule that silently never fires."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal["release", "ban", "restriction", "regulation", "other"]
Lang = Literal["de", "en", "zh"]


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: list[str] = Field(default_factory=list, description="recipient addresses")
    slack: list[str] = Field(
        default_factory=list, description="names of Slack webhook connections (never the webhook URL itself)"
    )


class Schedule(BaseModel):
    """When a digest goes out: e.g. daily at 08:00 Europe/Berlin."""

    model_config = ConfigDict(extra="forbid")

    every: Literal["hour", "day", "week"] = "day"
    at: str = "08:00"
    timezone: str = "Europe/Berlin"


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM local time")
    end: str = Field(description="HH:MM local time")
    timezone: str = "Europe/Berlin"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    owner: str
    query: str = Field(default="", description="search syntax of `newsradar search`")
    event_types: list[EventType] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    languages: list[Lang] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    min_outlets: int = Field(default=1, ge=1)
    min_languages: int = Field(default=1, ge=1)
    channels: Channels = Field(default_factory=Channels)
    mode: Literal["immediate", "digest"] = "immediate"
    schedule: Schedule | None = None
    quiet_hours: QuietHours | None = None
    enabled: bool = True
