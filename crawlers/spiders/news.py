"""The crawl spider: feeds, news sitemaps and listing pages of the selected sources in one scheduler.

One scheduler means one dedup set: an article listed by the feed *and* the sitemap is fetched once,
and per-domain politeness holds across all three entry points.
"""

from __future__ import annotations

from typing import ClassVar

from crawlers.spiders.base import CatalogSpider


class NewsSpider(CatalogSpider):
    name = "news"
    kinds: ClassVar[tuple[str, ...]] = ("feed", "sitemap", "listing")
