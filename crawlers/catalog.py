"""The source catalog: one typed declaration per outlet, loaded from YAML and checked before any crawl.

Operators edit `crawlers/sources.yaml` by hand, so every mistake must come back as file, entry, field
and reason — a crawl that silently skips a mistyped source is a story missed. The sample site's
outlets load into the same `Source` model, so the crawl code that runs in tests is the production code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from newsradar.urls import canonicalize

CATALOG = Path(__file__).resolve().parent / "sources.yaml"

Lang = Literal["de", "en", "zh"]
Kind = Literal["media", "primary"]
Paywall = Literal["none", "metered", "hard", "partial"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host: anything else cannot be fetched and is an authoring error."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ValueError(f"{url!r} is not an http(s) URL")
    if not parts.hostname or " " in url:
        raise ValueError(f"{url!r} has no valid host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise ValueError(f"{url!r}: {error}") from error
    return url


class Selectors(BaseModel):
    """Per-source overrides, used only where measured to help.

    A selector starting with `/` or `(` is XPath, anything else CSS.
    """

    model_config = ConfigDict(extra="forbid")

    links: str | None = Field(None, description="article links on listing pages (elements or their @href)")
    link_pattern: str | None = Field(None, description="regex an article URL must match (listing pages)")
    title: str | None = Field(None, description="headline element, replaces the extracted title")
    body: str | None = Field(None, description="body element(s), replaces the extracted text")

    @field_validator("link_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"invalid regular expression: {error}") from error
        return value


class Source(BaseModel):
    """One outlet or primary source; see docs/crawlers.md for the meaning of each field."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = ""
    lang: Lang | None = None  # required in catalog files (CatalogSource); pipeline params may omit it
    country: str | None = None
    kind: Kind = "media"
    homepage: str | None = None
    feeds: list[str] = Field(default_factory=list)
    sitemaps: list[str] = Field(default_factory=list)
    listing_pages: list[str] = Field(default_factory=list)
    selectors: Selectors = Field(default_factory=Selectors)
    timezone: str = "UTC"
    paywall: Paywall = "none"
    enabled: bool = True
    topics: list[str] = Field(default_factory=list)
    # Registered domains whose pages this source may name as their canonical copy (a syndication
    # partner, a wire service); any other cross-site canonical is ignored (it could hijack a URL).
    syndication: list[str] = Field(default_factory=list)
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a lowercase slug ([a-z0-9-], at most 63 characters)")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{2}", value):
            raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 code in capitals")
        return value

    @field_validator("homepage")
    @classmethod
    def _homepage(cls, value: str | None) -> str | None:
        return check_url(value) if value else value

    @field_validator("feeds", "sitemaps", "listing_pages")
    @classmethod
    def _urls(cls, values: list[str]) -> list[str]:
        errors = []
        for index, url in enumerate(values):
            try:
                check_url(url)
            except ValueError as error:
                errors.append(f"[{index}] {error}")
        if errors:
            raise ValueError("; ".join(errors))
        if len(set(values)) != len(values):
            raise ValueError("the same URL is listed twice")
        return values

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown IANA time zone {value!r}") from error
        return value

    @model_validator(mode="after")
    def _has_entry_point(self) -> Source:
        if not (self.feeds or self.sitemaps or self.listing_pages):
            raise ValueError("needs at least one of feeds, sitemaps, listing_pages")
        return self

    @property
    def display_name(self) -> str:
        return self.title or self.name

    def start_urls(self) -> list[tuple[str, str]]:
        """(kind, url) pairs the spiders begin with: feeds, then sitemaps, then listing pages."""
        return (
            [("feed", url) for url in self.feeds]
            + [("sitemap", url) for url in self.sitemaps]
            + [("listing", url) for url in self.listing_pages]
        )


class CatalogSource(Source):
    """A catalog entry: the language is mandatory, it decides `--lang` selection and the extraction hint."""

    lang: Lang


@dataclass(frozen=True)
class Problem:
    """One catalog mistake, located precisely enough to fix it without reading code."""

    file: str
    entry: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.entry}: {self.field}: {self.reason}"


class CatalogError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the source catalog:\n{lines}")


def _entry_label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"sources[{index}] ({name})" if name else f"sources[{index}]"


def _field_path(loc: Iterable[int | str]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "(entry)"


def validate_entries(raw_entries: list[Any], file: str) -> tuple[list[Source], list[Problem]]:
    """Validate every entry, collecting all problems instead of stopping at the first."""
    sources: list[Source] = []
    problems: list[Problem] = []
    for index, raw in enumerate(raw_entries):
        label = _entry_label(index, raw)
        if not isinstance(raw, dict):
            problems.append(Problem(file, label, "(entry)", "must be a mapping of fields"))
            continue
        try:
            sources.append(CatalogSource.model_validate(raw))
        except ValidationError as error:
            for item in error.errors():
                reason = item["msg"].removeprefix("Value error, ")
                problems.append(Problem(file, label, _field_path(item["loc"]), reason))
    problems += duplicates(sources, file)
    return sources, problems


def duplicates(sources: list[Source], file: str) -> list[Problem]:
    """Two entries with one name, or one feed/sitemap/listing URL claimed by two entries."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    urls: dict[str, str] = {}
    for source in sources:
        if source.name in names:
            problems.append(Problem(file, source.name, "name", "duplicate name"))
        names[source.name] = 1
        for kind, url in source.start_urls():
            key = canonicalize(url)
            owner = urls.get(key)
            if owner is not None and owner != source.name:
                problems.append(Problem(file, source.name, f"{kind}s", f"{url} is also listed by {owner}"))
            urls.setdefault(key, source.name)
    return problems


def read_entries(path: Path) -> list[Any]:
    file = str(path)
    if not path.is_file():
        raise CatalogError([Problem(file, "(file)", "(file)", "does not exist")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise CatalogError([Problem(file, "(file)", "(file)", f"not valid YAML: {error}")]) from error
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CatalogError([Problem(file, "(file)", "sources", "needs a top-level `sources:` list")])
    return entries


def check_catalog(path: Path = CATALOG) -> tuple[list[Source], list[Problem]]:
    """Offline validation: every problem in the file, plus the entries that are fine."""
    try:
        entries = read_entries(path)
    except CatalogError as error:
        return [], error.problems
    return validate_entries(entries, str(path))


def load_catalog(path: Path = CATALOG) -> list[Source]:
    """The catalog's sources; raises `CatalogError` listing every problem when any entry is bad."""
    sources, problems = check_catalog(path)
    if problems:
        raise CatalogError(problems)
    return sources


def select(
    sources: list[Source],
    names: list[str] | None = None,
    lang: str | None = None,
    include_disabled: bool = False,
) -> list[Source]:
    """Sources named (all when none) in the given language; asking for an unknown name is an error."""
    if names:
        known = {source.name for source in sources}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise CatalogError(
                [Problem("(selection)", name, "name", "no such source in the catalog") for name in unknown]
            )
        sources = [source for source in sources if source.name in names]
    elif not include_disabled:
        sources = [source for source in sources if source.enabled]
    if lang:
        sources = [source for source in sources if source.lang == lang]
    return sources


def sample_catalog(base_url: str, site: Path) -> list[Source]:
    """The sample site's fictional outlets as Sources pointing at a replay server at `base_url`."""
    data = yaml.safe_load((site / "outlets.yaml").read_text(encoding="utf-8"))
    base = base_url.rstrip("/")

    def absolute(paths: list[str]) -> list[str]:
        return [base + "/" + path.lstrip("/") for path in paths]

    sources = []
    for outlet in data.get("outlets", []):
        homepage = outlet.get("homepage")
        sources.append(
            Source(
                name=outlet["id"],
                title=outlet.get("name", ""),
                lang=outlet["lang"],
                country=outlet.get("country"),
                kind=outlet.get("kind", "media"),
                homepage=absolute([homepage])[0] if homepage else None,
                feeds=absolute(outlet.get("feeds", [])),
                sitemaps=absolute(outlet.get("sitemaps", [])),
                listing_pages=absolute(outlet.get("listing_pages", [])),
                timezone=outlet.get("timezone", "UTC"),
            )
        )
    return sources


def source_from_params(params: dict[str, Any]) -> Source:
    """A Source from a pipeline parameter (`name`, `lang`, `country`, `feeds`, ...).

    Pipeline runs may name a source by its display name ("智库快讯"); it becomes the title and the
    name a slug, so the same validation applies as for catalog entries.
    """
    raw = {key: value for key, value in params.items() if key in Source.model_fields and value is not None}
    lang = str(raw.get("lang", "")).lower()[:2]
    raw["lang"] = lang if lang in {"de", "en", "zh"} else None
    if isinstance(raw.get("country"), str):
        raw["country"] = raw["country"].upper()
    name = str(raw.get("name", ""))
    if not _NAME.match(name):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
        if not slug:
            import hashlib

            slug = "source-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        raw.setdefault("title", name)
        raw["name"] = slug
    return Source.model_validate(raw)
