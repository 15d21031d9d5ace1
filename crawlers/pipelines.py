"""Item pipelines, one responsibility each: validate into `Article`, then write to staging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from pydantic import ValidationError
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from newsradar.article import Article


class ValidateArticlePipeline:
    """Turn spider dicts into validated `Article` records; a bad record is dropped with its reason."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_item(self, item: dict[str, Any]) -> Article:
        try:
            return Article.model_validate(item)
        except ValidationError as error:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("newsradar/invalid_article")
            raise DropItem(f"invalid article {item.get('url')}: {error.errors()[:3]}") from error


class StagingWriterPipeline:
    """Append articles as JSON lines to the batch file named by the NEWSRADAR_OUTPUT setting.

    The file is written under a temporary name and renamed on close, so a crashed crawl never
    leaves a half-written batch that the next stage would take for complete.
    """

    def __init__(self, output: str) -> None:
        self.output = Path(output)
        self.partial = self.output.with_name(self.output.name + ".partial")
        self.count = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        output = crawler.settings.get("NEWSRADAR_OUTPUT")
        if not output:
            raise NotConfigured("NEWSRADAR_OUTPUT not set: articles are not written")
        return cls(output)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.partial.open("w", encoding="utf-8")

    def process_item(self, item: Article) -> Article:
        self.handle.write(json.dumps(item.model_dump(mode="json"), ensure_ascii=False) + "\n")
        self.count += 1
        return item

    def close_spider(self, spider: Spider | None = None) -> None:
        self.handle.close()
        self.partial.replace(self.output)
