"""`newsradar ingest FILE.jsonl`: article records from a file, enriched and indexed.

A record needs `title`, `url` and `source`; `text`, `published` (ISO 8601), `lang` (taken as a hint
for language detection) and any other `Article` field are optional. A missing `id` is derived from
the canonical URL, so ingesting the same file twice updates the same documents. A bad line is
reported with its line number and skipped; the rest of the file is still indexed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import ValidationError

from enrich.stages import StageContext, run_stages
from index.indexer import IndexReport, index_articles
from index.stories import story_state
from newsradar.article import Article, article_id
from newsradar.settings import Settings

REQUIRED = ("title", "url", "source")


@dataclass
class IngestReport:
    read: int = 0
    indexed: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    by_lang: Counter[str] = field(default_factory=Counter)
    resubmitted: int = 0
    stories_updated: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "indexed": self.indexed,
            "failed": len(self.failed),
            "bad_lines": len(self.bad_lines),
            "per_language": dict(sorted(self.by_lang.items())),
            "resubmitted": self.resubmitted,
            "stories_updated": self.stories_updated,
        }


def parse_record(line: str) -> Article:
    """One JSON line to an Article; ValueError says what is wrong with it."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    missing = [name for name in REQUIRED if not isinstance(data.get(name), str) or not data[name].strip()]
    if missing:
        raise ValueError(f"missing or empty field(s): {', '.join(missing)}")
    url = data["url"].strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url {url!r} is not an http(s) URL")
    from newsradar.urls import canonicalize

    record = dict(data)
    record["canonical_url"] = data.get("canonical_url") or canonicalize(url)
    record.setdefault("id", article_id(record["canonical_url"]))
    if "published" in data and data["published"] not in (None, ""):
        try:
            datetime.fromisoformat(str(data["published"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"published {data['published']!r} is not an ISO 8601 date") from None
        record.setdefault("published_source", "input")
    lang = data.get("lang")
    if lang is not None:
        if lang not in ("de", "en", "zh", "other"):
            raise ValueError(f"lang {lang!r} is not one of de, en, zh, other")
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
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    articles.append(parse_record(line))
                except ValueError as error:
                    raise ValueError(f"{path}:{number}: {error}") from None
    return articles


def ingest_file(
    client: Elasticsearch,
    settings: Settings,
    path: Path,
    *,
    enrich: bool = True,
    batch_size: int = 64,
    on_bad_line: Callable[[int, str], None] = lambda _n, _r: None,
) -> IngestReport:
    report = IngestReport()

    def records() -> Iterator[Article]:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                report.read += 1
                try:
                    yield parse_record(line)
                except ValueError as error:
                    report.bad_lines.append((number, str(error)))
                    on_bad_line(number, str(error))

    context = StageContext(settings, stories=story_state(client, settings))

    def enriched() -> Iterator[Article]:
        source = records()
        while batch := list(islice(source, batch_size)):
            if enrich:
                run_stages(batch, context)
            else:
                for article in batch:
                    article.lang = article.lang or article.lang_hint  # type: ignore[assignment]
            yield from batch

    result: IndexReport = index_articles(client, settings, enriched())
    report.indexed = result.indexed
    report.failed = result.failed
    report.by_lang = result.by_lang
    report.resubmitted = result.resubmitted
    report.stories_updated = result.stories_updated
    return report
