"""Scrapy extensions of newsradar: the end-of-crawl state commit and the stats report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import fsspec
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawlers.report import build_report
from crawlers.state import CrawlState


class CrawlStateCommit:
    """Store seen URLs and feed validators once the crawl is over and its batch is written.

    Runs on `spider_closed`, which Scrapy sends after the item pipelines closed (the staging file is
    renamed into place by then). Validators of a document are kept only when none of its articles
    failed, so the next crawl fetches that document again instead of getting a 304.
    """

    def __init__(self, crawler: Crawler, path: str) -> None:
        self.crawler = crawler
        self.path = Path(path)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("NEWSRADAR_STATE_DB")
        if not path:
            raise NotConfigured("NEWSRADAR_STATE_DB not set: no seen-URL store")
        ext = cls(crawler, path)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Spider, reason: str) -> None:
        seen: dict[str, str] = getattr(spider, "pending_seen", {})
        validators: dict[str, tuple[str | None, str | None]] = getattr(spider, "pending_validators", {})
        tainted: set[str] = getattr(spider, "tainted", set())
        keep = {url: value for url, value in validators.items() if url not in tainted}
        batch = self.crawler.settings.get("NEWSRADAR_OUTPUT") or ""
        with CrawlState(self.path) as state:
            new = state.mark_seen(seen, batch)
            state.set_validators(keep, batch)
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("newsradar_state/seen_added", new)
        self.crawler.stats.set_value("newsradar_state/validators_stored", len(keep))


class StatsFile:
    """Write the crawl report (per-source counters, errors) as JSON for the process that started it."""

    def __init__(self, crawler: Crawler, path: str) -> None:
        self.crawler = crawler
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("NEWSRADAR_STATS_FILE")
        if not path:
            raise NotConfigured
        ext = cls(crawler, path)
        # Connected late (after CoreStats), so elapsed time and finish reason are final.
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Spider, reason: str) -> None:
        assert self.crawler.stats is not None
        stats: dict[str, Any] = dict(self.crawler.stats.get_stats())
        report = build_report(stats, list(getattr(spider, "errors", [])), reason)
        report["state"] = {
            "seen_added": stats.get("newsradar_state/seen_added", 0),
            "validators_stored": stats.get("newsradar_state/validators_stored", 0),
        }
        fs, path = fsspec.core.url_to_fs(self.path)
        fs.makedirs(fs._parent(path), exist_ok=True)
        with fs.open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(report, default=str, indent=1, ensure_ascii=False))
