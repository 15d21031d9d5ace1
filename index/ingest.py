"""`newsradar ingest FILE.jsonl`: article records from a file, enriched and indexed.

A record needs `title`, `url` and `source`; `text`, `lead`, `authors`, `published`, `lang` (taken as
a hint for language detection) and any other `Article` field are optional. `published` may be what
real feeds send: ISO 8601 with or without zone, a bare date, `16.03.2023`, `16. März 2023`,
`2023年3月16日`, `vor 3 Stunden`, `3小时前`, RFC 822, epoch seconds; a value nobody can read becomes
unknown with a warning. A missing `id` is derived from the canonical URL, so ingesting the same file
twice updates the same documents. A bad line is reported with its line number and reason and skipped;
the rest of the file is still indexed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import ValidationError

from enrich.stages import StageContext, run_stages
from index.indexer import IndexReport, index_articles
from index.stories import story_state
from newsradar.article import Article, article_id
from newsradar.dates import parse_published
from newsradar.jsonl import read_ahead, read_records
from newsradar.settings import Settings
from newsradar.urls import canonicalize

REQUIRED = ("title", "url", "source")
MAX_TITLE_CHARS = 1000
MAX_URL_CHARS = 2048
MAX_NAME_CHARS = 200
MAX_AUTHOR_CHARS = 200
MAX_AUTHORS = 50


@dataclass
class IngestReport:
    read: int = 0
    indexed: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)  # repaired, still indexed
    failed: list[tuple[str, str]] = field(default_factory=list)
    by_lang: Counter[str] = field(default_factory=Counter)
    resubmitted: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "indexed": self.indexed,
            "failed": len(self.failed),
            "bad_lines": len(self.bad_lines),
            "warnings": len(self.warnings),
            "per_language": dict(sorted(self.by_lang.items())),
            "resubmitted": self.resubmitted,
        }


def _text(data: dict[str, Any], name: str, limit: int | None = None) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"field {name} must be a string, not {type(value).__name__}")
    return value[:limit] if limit else value


def _authors(value: Any) -> list[str]:
    """Authors as names: a string or a list of strings, each cut to a name's length (a 40 KB
    "author" is a scraping accident, not a name), at most a few dozen."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("field authors must be a string or a list of strings")
    return [name.strip()[:MAX_AUTHOR_CHARS] for name in names[:MAX_AUTHORS] if name.strip()]


def parse_record(data: dict[str, Any], warn: Callable[[str], None] = lambda _message: None) -> Article:
    """One input record to an Article; ValueError says what is wrong with it. ``warn`` hears about
    what was repaired (a publication time nobody can read is stored as unknown)."""
    missing = [name for name in REQUIRED if not isinstance(data.get(name), str) or not data[name].strip()]
    if missing:
        raise ValueError(f"missing or empty field(s): {', '.join(missing)}")
    url = data["url"].strip()
    if not url.startswith(("http://", "https://")) or len(url) > MAX_URL_CHARS:
        raise ValueError(f"url {url[:80]!r} is not an http(s) URL of at most {MAX_URL_CHARS} characters")
    lang = data.get("lang")
    if lang is not None and lang not in ("de", "en", "zh", "other"):
        raise ValueError(f"lang {lang!r} is not one of de, en, zh, other")
    record = {key: value for key, value in data.items() if value is not None}  # null = not given
    record["url"] = url
    record["title"] = " ".join(data["title"].split())[:MAX_TITLE_CHARS]
    record["source"] = data["source"].strip()[:MAX_NAME_CHARS]
    for name in ("text", "lead"):
        value = _text(data, name)
        if value is not None:
            record[name] = value
    record["authors"] = _authors(data.get("authors"))
    record["canonical_url"] = _text(data, "canonical_url", MAX_URL_CHARS) or canonicalize(url)
    if not isinstance(record.get("id"), str) or not record["id"].strip():
        record["id"] = article_id(record["canonical_url"])
    raw_published = data.get("published")
    record["published"] = parse_published(raw_published, lang=lang)
    if record["published"] is not None:
        record.setdefault("published_source", "input")
    elif raw_published not in (None, ""):
        warn(f"published {str(raw_published)[:60]!r} is not a date newsradar can read; stored without one")
    if lang is not None:
        record.setdefault("lang_hint", lang)
    try:
        return Article.model_validate(record)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"field {where}: {first['msg']}") from None


def load_articles(path: Path) -> list[Article]:
    """Every record of a JSON-lines file as an Article; the first bad line raises, naming it."""
    articles = []
    with path.open(encoding="utf-8") as handle:
        for line in read_records(handle):
            try:
                if line.record is None:
                    raise ValueError(line.error)
                articles.append(parse_record(line.record))
            except ValueError as error:
                raise ValueError(f"{path}:{line.number}: {error}") from None
    return articles


def ingest_file(
    client: Elasticsearch,
    settings: Settings,
    path: Path,
    *,
    enrich: bool = True,
    batch_size: int = 64,
    chunk_size: int = 500,
    on_bad_line: Callable[[int, str], None] = lambda _n, _r: None,
    on_warning: Callable[[int, str], None] = lambda _n, _r: None,
) -> IngestReport:
    report = IngestReport()

    def records() -> Iterator[Article]:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in read_records(handle):
                report.read += 1

                def warn(message: str, number: int = line.number) -> None:
                    report.warnings.append((number, message))
                    on_warning(number, message)

                try:
                    if line.record is None:
                        raise ValueError(line.error)
                    yield parse_record(line.record, warn)
                except ValueError as error:
                    report.bad_lines.append((line.number, str(error)))
                    on_bad_line(line.number, str(error))

    context = StageContext(settings, stories=story_state(client, settings))

    def enriched() -> Iterator[Article]:
        source = read_ahead(records(), 2 * chunk_size)
        while batch := list(islice(source, batch_size)):
            if enrich:
                run_stages(batch, context)
            else:
                for article in batch:
                    article.lang = article.lang or article.lang_hint  # type: ignore[assignment]
            yield from batch

    result: IndexReport = index_articles(client, settings, enriched(), chunk_size)
    report.indexed = result.indexed
    report.failed = result.failed
    report.by_lang = result.by_lang
    report.resubmitted = result.resubmitted
    return report
