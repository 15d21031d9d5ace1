"""Feed spider: read RSS/Atom/JSON feeds, follow each entry to its article page, extract it."""

from __future__ import annotations

import calendar
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
from scrapy import Request, Spider
from scrapy.http import Response

from crawlers.extract import extract
from crawlers.urls import canonicalize
from newsradar.article import article_id


def header_charset(response: Response) -> str | None:
    """The charset the server declared, if any; the page's own meta tags are judged by `extract`."""
    content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
    match = re.search(r"charset=([\w-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


class FeedSpider(Spider):
    """Arguments: `feeds` (comma-separated URLs), `source`, optional `lang` and `country`."""

    name = "feed"

    def __init__(
        self,
        feeds: str = "",
        source: str = "unknown",
        lang: str | None = None,
        country: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.feed_urls = [url.strip() for url in feeds.split(",") if url.strip()]
        if not self.feed_urls:
            raise ValueError("FeedSpider needs -a feeds=URL[,URL...]")
        self.source = source
        self.lang = lang
        self.country = country

    async def start(self) -> AsyncIterator[Request]:
        for url in self.feed_urls:
            yield Request(url, callback=self.parse_feed, dont_filter=True)

    def parse_feed(self, response: Response) -> Iterator[Request]:
        parsed = feedparser.parse(response.body)
        if parsed.bozo and not parsed.entries:
            self.crawler.stats.inc_value("newsradar/feed_broken")
            self.logger.warning("broken feed %s: %s", response.url, parsed.get("bozo_exception"))
            return
        for entry in parsed.entries:
            link = entry.get("link")
            if not link:
                continue
            self.crawler.stats.inc_value("newsradar/discovered")
            published = entry.get("published_parsed") or entry.get("updated_parsed")
            yield response.follow(
                link,
                callback=self.parse_article,
                cb_kwargs={
                    "feed_title": entry.get("title", ""),
                    "feed_published": datetime.fromtimestamp(calendar.timegm(published), UTC) if published else None,
                },
            )

    def parse_article(
        self, response: Response, feed_title: str, feed_published: datetime | None
    ) -> Iterator[dict[str, Any]]:
        result = extract(response.body, response.url, declared_encoding=header_charset(response))
        title = result.title or feed_title
        if not title or not result.text:
            self.crawler.stats.inc_value("newsradar/not_article")
            return
        published, published_source = result.published, result.published_source
        if published is None and feed_published is not None:
            published, published_source = feed_published, "feed"
        canonical = canonicalize(result.canonical_url or response.url)
        self.crawler.stats.inc_value("newsradar/extracted")
        yield {
            "id": article_id(canonical),
            "url": response.url,
            "canonical_url": canonical,
            "source": self.source,
            "title": title,
            "text": result.text,
            "lead": result.lead,
            "published": published,
            "published_source": published_source,
            "authors": result.authors,
            "lang_hint": result.lang_hint or self.lang,
            "country": self.country,
            "paywall": result.paywall,
            "fetched_at": datetime.now(UTC),
        }
