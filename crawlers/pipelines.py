"""Item pipelines, one responsibility each: validate into `Article`, then write to staging."""

from __future__ import annotations

import json
from typing import Any, Self

import fsspec
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
            self.crawler.stats.inc_value(f"newsradar/{item.get('source', 'unknown')}/failed/invalid_article")
            raise DropItem(f"invalid article {item.get('url')}: {error.errors()[:3]}") from error


class StagingWriterPipeline:
    """Append articles as JSON lines to the batch named by NEWSRADAR_OUTPUT (a path or fsspec URL).

    The batch is written under a `.partial` name and moved into place on close, so a crashed crawl
    never leaves a half-written batch that the next stage would take for complete. Every line is
    flushed as it is written: what was extracted before a crash is still in the partial file.
    """

    def __init__(self, output: str) -> None:
        self.output = output
        self.fs, self.path = fsspec.core.url_to_fs(output)
        self.partial = self.path + ".partial"
        self.count = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        output = crawler.settings.get("NEWSRADAR_OUTPUT")
        if not output:
            raise NotConfigured("NEWSRADAR_OUTPUT not set: articles are not written")
        return cls(output)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.fs.makedirs(self.fs._parent(self.path), exist_ok=True)
        self.handle = self.fs.open(self.partial, "w", encoding="utf-8")

    def process_item(self, item: Article) -> Article:
        self.handle.write(json.dumps(item.model_dump(mode="json"), ensure_ascii=False) + "\n")
        self.handle.flush()
        self.count += 1
        return item

    def close_spider(self, spider: Spider | None = None) -> None:
        self.handle.close()
        self.fs.mv(self.partial, self.path)
