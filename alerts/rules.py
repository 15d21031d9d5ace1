"""Alert rules: a typed schema, so a typo in a rule file is an error with file, field and reason
instead of a rule that silently never fires."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from newsradar.article import EventType

Lang = Literal["de", "en", "zh"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _check_hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-23:59)")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from error
    return value


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: list[str] = Field(default_factory=list, description="recipient addresses")
    slack: list[str] = Field(
        default_factory=list, description="names of Slack webhook connections (never the webhook URL itself)"
    )

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("slack")
    @classmethod
    def _connection_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if "://" in name:
                raise ValueError("give the name of a Slack connection, never the webhook URL (a secret)")
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(f"{name!r} is not a connection name (letters, digits, _ and -)")
        return value


class Schedule(BaseModel):
    """When a digest goes out: e.g. daily at 08:00 Europe/Berlin (weekly ones on `weekday`)."""

    model_config = ConfigDict(extra="forbid")

    every: Literal["hour", "day", "week"] = "day"
    at: str = "08:00"
    timezone: str = "Europe/Berlin"
    weekday: Weekday = "mon"

    _at = field_validator("at")(_check_hhmm)
    _tz = field_validator("timezone")(_check_timezone)


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM local time")
    end: str = Field(description="HH:MM local time")
    timezone: str = "Europe/Berlin"

    _start = field_validator("start", "end")(_check_hhmm)
    _tz = field_validator("timezone")(_check_timezone)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    owner: str
    query: str = Field(default="", description="search syntax of `newsradar search`")
    event_types: list[EventType] = Field(default_factory=list)
    min_confidence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="an article counts for event_types only when the classifier's probability of one of "
        "them reaches this",
    )
    ai_only: bool = Field(default=True, description="only stories about AI (the classifier's ai_related)")
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
    description: str = ""
    updates: bool = Field(
        default=True, description="send one update when a story crosses a threshold (new language, ...)"
    )

    @field_validator("entities")
    @classmethod
    def _canonical_entities(cls, names: list[str]) -> list[str]:
        """Spellings become the catalog's canonical names ("US" → "United States"); an unknown name is
        an error, since articles only ever carry catalog names and the rule would never fire."""
        from enrich.entities import canonical_entity

        out: list[str] = []
        unknown: list[str] = []
        for name in names:
            canonical = canonical_entity(name)
            if canonical is None:
                unknown.append(name)
            elif canonical not in out:
                out.append(canonical)
        if unknown:
            raise ValueError(
                f"unknown entit{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}: "
                "rules match the canonical names of enrich/catalog/entities.yaml (or an alias of one); "
                "add the name to the catalog or use `query` for free text"
            )
        return out

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if not (self.query.strip() or self.event_types or self.entities or self.sources):
            raise ValueError("a rule needs a query, event_types, entities or sources (else it matches all)")
        if self.enabled and not (self.channels.email or self.channels.slack):
            raise ValueError("an enabled rule needs channels.email or channels.slack: it would alert nobody")
        if self.mode == "digest" and self.schedule is None:
            self.schedule = Schedule()
        return self


@dataclass(frozen=True)
class RuleProblem:
    """Why one rule was not loaded: where it came from, which field, and what is wrong."""

    source: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.reason}"


def validate_rule(data: Any, source: str) -> tuple[Rule | None, list[RuleProblem]]:
    """Validate one rule mapping; problems name the field path (``channels.email.0``)."""
    if not isinstance(data, dict):
        return None, [RuleProblem(source, "(rule)", f"expected a mapping, got {type(data).__name__}")]
    try:
        return Rule.model_validate(data), []
    except ValidationError as error:
        problems = [
            RuleProblem(source, ".".join(str(part) for part in err["loc"]) or "(rule)", err["msg"])
            for err in error.errors()
        ]
        return None, problems


def load_rule_file(path: Path) -> tuple[list[Rule], list[RuleProblem]]:
    """A file holds one rule (a mapping), a list of rules, or ``{rules: [...]}``."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return [], [RuleProblem(str(path), "(file)", f"cannot read: {error}")]
    except yaml.YAMLError as error:
        return [], [RuleProblem(str(path), "(file)", f"not valid YAML: {error}")]
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    items = data if isinstance(data, list) else [data]
    rules: list[Rule] = []
    problems: list[RuleProblem] = []
    for position, item in enumerate(items):
        source = str(path) if not isinstance(data, list) else f"{path}[{position}]"
        rule, found = validate_rule(item, source)
        problems.extend(found)
        if rule is not None:
            rules.append(rule)
    return rules, problems


def rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_rule_dir(path: Path) -> tuple[list[tuple[Rule, Path]], list[RuleProblem]]:
    """Every rule file under ``path`` (or the one file), each rule with its file; a bad file never
    hides the good ones."""
    rules: list[tuple[Rule, Path]] = []
    problems: list[RuleProblem] = []
    if not path.exists():
        return rules, [RuleProblem(str(path), "(path)", "does not exist")]
    for file in rule_files(path):
        found, bad = load_rule_file(file)
        rules.extend((rule, file) for rule in found)
        problems.extend(bad)
    return rules, problems
